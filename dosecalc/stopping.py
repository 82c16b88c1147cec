"""Ctrl-C and SIGTERM: a stop that waits for the file being written.

`cli.main` installs `handler` for SIGTERM (a scheduler's timeout, a service stopping), and for
SIGINT (Ctrl-C) where Python's own handler is in place. Outside a `held()` block it stops the run
at once, as Python's Ctrl-C does: KeyboardInterrupt, or Terminated (errors.py) for SIGTERM, and the
batch removes what it had written. Inside one (a file being written and recorded as this run's),
the stop waits for the block to end: a file is then either absent or complete and on the run's
list, so the undo removes it, and no temporary file is left behind.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from dosecalc.errors import Terminated

_held = 0  # depth of held() blocks (they nest: the batch's writer holds around write_atomic)
_pending: type[KeyboardInterrupt] | None = None  # the stop that came during a held() block


def handler(signum: int, frame: FrameType | None) -> None:
    """The signal handler: the stop, now or at the end of the held() block."""
    global _pending
    stop = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    if _held:
        _pending = _pending or stop
        return
    raise stop


@contextmanager
def held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends, then stop the run."""
    global _held, _pending
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not _held and _pending is not None:
            stop, _pending = _pending, None
            raise stop


def install() -> dict[int, object]:
    """Install `handler` (the main thread only, where Python runs signal handlers); returns the
    handlers it replaced, for restore(). SIGINT is left alone where it is ignored (a background
    job) or handled by someone else."""
    replaced: dict[int, object] = {}
    if threading.current_thread() is not threading.main_thread():
        return replaced
    for signum in (signal.SIGTERM, signal.SIGINT):
        current = signal.getsignal(signum)
        if signum == signal.SIGINT and current is not signal.default_int_handler:
            continue
        replaced[signum] = signal.signal(signum, handler)
    return replaced


def restore(replaced: dict[int, object]) -> None:
    for signum, previous in replaced.items():
        if previous is not None:
            signal.signal(signum, previous)  # type: ignore[arg-type]
