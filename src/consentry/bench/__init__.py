"""`consentry bench`: the benchmark harness (ingest, HTTP ingest, consent checks, opt-outs,
redaction), each section building its own fictional data."""
