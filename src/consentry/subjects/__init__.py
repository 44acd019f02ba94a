"""Subjects: the customers, known by normalised identities behind a blind index."""
