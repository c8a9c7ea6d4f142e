"""Label noise, at the import path earlier versions documented; it lives in
``phuber.datasets.noise``."""

from phuber.datasets.noise import (
    NOISE_TYPES,
    apply_transition,
    instance_noise,
    realized_transition,
    symmetric_noise,
    transition_matrix,
)

__all__ = [
    "NOISE_TYPES",
    "apply_transition",
    "instance_noise",
    "realized_transition",
    "symmetric_noise",
    "transition_matrix",
]
