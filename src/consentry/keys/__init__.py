"""Keys: envelope encryption, per-subject data keys, named secrets, signing keys."""
