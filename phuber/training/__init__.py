"""Training and evaluation: config checks, building the run's objects (which validates their
values), the loop, gradient clipping, checkpoints and resume, metrics and their records."""
