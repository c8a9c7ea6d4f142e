"""The bottom layer, no torch: errors a user can fix, the one strict and atomic file writer, the
run's identity, the run directory's rules, and config checks as data."""
