"""Consentry: a consent-aware privacy gateway for real-time CX analytics."""

__version__ = "0.2.0"
