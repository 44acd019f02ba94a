"""Delivery: the outbox, the worker and its sinks, and rights notices to recipients."""
