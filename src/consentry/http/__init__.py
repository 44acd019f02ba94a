"""HTTP: the URL table, auth, middleware and the mapping of errors to problem+json."""
