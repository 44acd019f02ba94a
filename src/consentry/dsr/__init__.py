"""Data-subject requests: state machine, deadlines, runner, access, erasure, rectification."""
