"""Operations: current figures from the database, process counters, `/metrics` and alerts."""
