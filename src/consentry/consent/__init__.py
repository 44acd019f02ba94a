"""Consent: purposes, notices, the ledger, signals (GPC, TCF), the policy, tokens."""
