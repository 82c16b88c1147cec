"""Ctrl-C and SIGTERM: a stop that waits for the few steps that must happen together.

`cli.main` installs `handler` for SIGTERM (a scheduler's timeout, a service stopping), and for
SIGINT (Ctrl-C) where Python's own handler is in place. Outside a `held()` block it stops the run
at once, as Python's Ctrl-C does: KeyboardInterrupt, or Terminated (errors.py) for SIGTERM, and a
batch removes what it had written. Inside one the stop waits for the block to end. The blocks are
short: a temporary file's creation (so it is always removed), a file's appearance under its name
together with the batch's record of it (so the undo removes it), and the undo itself.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from dosecalc.errors import Terminated

_held = 0  # depth of held() blocks (they nest; the outermost decides)
_pending: type[KeyboardInterrupt] | None = None  # the first stop that came during a held() block
_stopping = False  # a stop was raised: the run is stopping, later stops are not raised again
_finished = False  # the run's work is done (finished()): a stop now is dropped


def handler(signum: int, frame: FrameType | None) -> None:
    """The signal handler: the stop, now or at the end of the held() block. Only the first stop
    is raised: a second Ctrl-C or SIGTERM while the run stops (before its undo is held, say)
    cannot cut the undo short."""
    global _pending, _stopping
    if _finished:  # the run is complete: an exit code of 143 would say it was undone
        return
    stop = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    if _held or _stopping:
        _pending = _pending or stop
        return
    _pending, _stopping = None, True
    raise stop


@contextmanager
def held(then_stop: bool = True) -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends; then a stop that came is raised (`then_stop`),
    unless an exception is already on its way out (the run is failing anyway: it is not replaced).
    `then_stop=False`: the block is part of stopping already (the undo); a second stop is dropped,
    so the undo's message and the first stop's exit code stand."""
    global _held, _pending, _stopping
    _held += 1
    failing = False
    try:
        yield
    except BaseException:
        failing = True
        raise
    finally:
        _held -= 1
        if not _held:
            stop, _pending = _pending, None
            if stop is not None and then_stop and not failing and not _stopping and not _finished:
                _stopping = True
                raise stop


def finished() -> None:
    """The run's work is done and recorded (a batch's manifest and run record are written): a
    Ctrl-C or SIGTERM from now on, or one waiting at the end of the current held() block, is
    dropped, so the exit code says what the run did (143 says its files were removed)."""
    global _finished
    _finished = True


def install() -> dict[int, object]:
    """Install `handler` (from the main thread only, where Python runs signal handlers); returns
    the handlers it replaced, for restore(). SIGINT is left alone where it is ignored (a
    background job) or handled by someone else."""
    global _finished
    _finished = False  # a new run
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
    """The handlers install() replaced put back; where the run finished(), the signals are ignored
    instead for the moments the process takes to exit (the default action would end it with 143
    after a complete run)."""
    global _held, _pending, _stopping, _finished
    for signum, previous in replaced.items():
        if _finished:
            signal.signal(signum, signal.SIG_IGN)
        elif previous is not None:
            signal.signal(signum, previous)  # type: ignore[arg-type]
    _held, _pending, _stopping, _finished = 0, None, False, False
