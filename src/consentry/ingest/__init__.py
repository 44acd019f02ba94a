"""The ingest pipeline: treatments applied to CX events before anything else sees them."""
