"""Auth: API keys, roles and the one permission table."""
