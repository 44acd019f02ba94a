"""Stream mode: `consentry stream` on Kafka (consume raw events, produce consented and refused
records exactly once) and the compacted topic of ledger changes."""
