"""Clipping, at the import path earlier versions documented: LogitClip lives in
``phuber.losses``, gradient clipping in ``phuber.training.clipping``."""

from phuber.losses.logit_clip import LogitClip
from phuber.training.clipping import CLIP_MODES, GradientStep

__all__ = ["CLIP_MODES", "GradientStep", "LogitClip"]
