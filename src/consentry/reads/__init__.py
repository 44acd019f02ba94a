"""Query-time enforcement: purpose-scoped counts, event reads, exports and DP aggregates."""
