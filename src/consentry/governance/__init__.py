"""Governance: the data map (systems), transfer rules and the record of processing (Art. 30)."""
