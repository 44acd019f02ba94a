"""Consentry: a consent-aware privacy gateway for real-time CX analytics."""

__version__ = "0.1.0"
