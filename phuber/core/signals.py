"""Signals held for the length of a ``with`` block: the handlers installed before are kept and
put back on leaving it. Only the main thread can install handlers; elsewhere nothing is held.
The base of the trainer's ``StopSignals`` and the sweep's ``SweepSignals``. No heavy imports."""

import signal
import threading
from types import FrameType
from typing import Any


class HeldSignals:
    """Subclasses say which ``SIGNALS`` and what ``_handle`` does with one."""

    SIGNALS: tuple[signal.Signals, ...] = ()

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        raise NotImplementedError

    def __enter__(self) -> "HeldSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
