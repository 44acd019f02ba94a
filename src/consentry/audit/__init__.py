"""Audit: the tamper-evident record of every privacy-relevant act."""
