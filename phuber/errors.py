"""Errors, at the import path earlier versions documented (``phuber.errors.InvalidValue``); they
live in ``phuber.core.errors``."""

from phuber.core.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    InvalidValue,
    PhuberError,
    StorageError,
)

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "InvalidValue",
    "PhuberError",
    "StorageError",
]
