"""Data: the registry of data sets, their checked readers and downloads, label noise (class-
conditional, instance-dependent, human, or from a file), the labels a run writes, and the
batched input pipeline. Imports only ``phuber.core``."""
