"""No process outlives the command that started it.

A sweep's process holds SIGTERM and SIGINT while its jobs run (``SweepSignals``): it asks the
sweep to stop (a ``.stop`` file in the sweep directory, naming the signal) and hands the signal
to its worker processes, whose running jobs stop at a checkpoint; jobs not yet started see the
file and do not start; the sweep then prints its summary and exits with 128 + the signal's
number. A worker process watches its parent (``watch_parent``): if the sweep's process dies
(SIGKILL, a crash), the worker stops its job at a checkpoint and exits within seconds, instead
of training on for nobody. Imports nothing heavy.
"""

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from phuber.core.files import atomic_write
from phuber.core.signals import HeldSignals

STOP = ".stop"  # in the sweep directory: the number of the signal that stopped the sweep
SWEEP_PID = "PHUBER_SWEEP_PID"  # the sweep process's pid, for its jobs to tell a worker
_POLL_S = 1.0  # how often a worker looks at its parent
_GRACE_S = 60.0  # how long an orphaned worker may take to save its checkpoint


def request_stop(sweep_dir: Path, signum: int) -> None:
    """Ask every job of the sweep in ``sweep_dir`` to stop (the first signal is kept)."""
    if stop_requested(sweep_dir) is None:
        with contextlib.suppress(OSError):  # a sweep directory that cannot be written: the
            atomic_write(sweep_dir / STOP, lambda f: f.write(str(signum).encode()))  # signal
            # still reaches the running jobs


def stop_requested(sweep_dir: Path) -> int | None:
    """The signal that stopped the sweep in ``sweep_dir``, or ``None``."""
    try:
        return int((sweep_dir / STOP).read_text())
    except (OSError, ValueError):
        return None


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (read from /proc; none where there is no /proc)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.parent.name))
    return found


class SweepSignals(HeldSignals):
    """Held by the sweep's process while its jobs run: SIGTERM or SIGINT requests a stop and
    reaches the worker processes, which stop their jobs at a checkpoint."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, sweep_dir: Path) -> None:
        super().__init__()
        self.sweep_dir = sweep_dir

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        request_stop(self.sweep_dir, signum)
        for pid in children(os.getpid()):
            with contextlib.suppress(OSError):  # gone already
                os.kill(pid, signal.SIGTERM)

    _handle.phuber_sweep = True  # type: ignore[attr-defined]  # not a launcher's to hand on to

    def __enter__(self) -> "SweepSignals":
        (self.sweep_dir / STOP).unlink(missing_ok=True)  # a new launch: a stopped one resumes
        os.environ[SWEEP_PID] = str(os.getpid())
        super().__enter__()
        return self


def in_worker() -> bool:
    """Whether this process runs a sweep's jobs for the sweep's process (a launcher's worker)."""
    return os.environ.get(SWEEP_PID) not in (None, str(os.getpid()))


_watching = threading.Event()
_job = threading.Event()  # set while this process runs a job


@contextlib.contextmanager
def running_job() -> Any:
    """Marks a job running in this process (an orphaned worker waits for it to stop)."""
    _job.set()
    try:
        yield
    finally:
        _job.clear()


def watch_parent() -> None:
    """From now on, if this process's parent dies, send this process SIGTERM (a running job
    stops at its next step and saves a checkpoint) and end the process once no job runs, or
    after a grace period regardless. Once per process."""
    if _watching.is_set():
        return
    _watching.set()
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.time() + _GRACE_S
        while _job.is_set() and time.time() < deadline:
            time.sleep(_POLL_S / 10)
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=watch, name="phuber-parent-watch", daemon=True).start()


def hands_on(handler: Any) -> bool:
    """Whether a signal handler installed before phuber's belongs to a launcher that acts on
    the signal itself (submitit requeues the job), rather than to phuber's sweep."""
    return (
        callable(handler)
        and handler is not signal.default_int_handler
        and not getattr(handler, "phuber_sweep", False)
    )
