"""Errors a user can fix, and the one place that turns them into a one-screen message."""


class PhuberError(Exception):
    """An error caused by the user's input (config, files); shown without a traceback."""


class ConfigError(PhuberError):
    """A config value out of range or of the wrong kind."""


class DataError(PhuberError):
    """A data set that is missing, unreadable or corrupt."""


class CheckpointError(PhuberError):
    """A checkpoint that is missing, unsafe, corrupt or does not fit the model."""
