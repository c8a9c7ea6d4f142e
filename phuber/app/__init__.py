"""The top layer: Hydra entry points' glue (one message for a user's error, the output folder's
check), unknown keys, and sweeps as one unit."""
