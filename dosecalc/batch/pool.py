"""Phase 1 on several cores: rows evaluated in worker processes, a chunk at a time, in line order.

Each row's outcome is a pure function of the row, the protocols file and the options, so the
outcomes are the same bytes whichever process computes them; they come back in line order and go
into the spool exactly as a one-process run puts them there. Workers are forked after the
protocols file is loaded (the same Library, never re-read), before any other thread starts; they
ignore Ctrl-C and SIGTERM (the main process stops them and undoes the run), and at most a few chunks
are in flight at a time, so memory does not grow with the day list.
"""

from __future__ import annotations

import gc
import os
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from typing import Any

from dosecalc.batch.evaluate import Context, Outcome, evaluate, kept_sheet
from dosecalc.batch.rows import RawRow

# Rows per chunk: a JSON Lines or CSV row takes about a millisecond, a sheet file 10 to 100.
CHUNK_ROWS = 250
CHUNK_SHEETS = 4
IN_FLIGHT = 3  # chunks per worker
# Below these sizes (bytes of day list) forking workers costs more than it saves.
MIN_BYTES = 32 * 1024
MIN_BYTES_SHEETS = 2 * 1024

_CTX: Context | None = None  # in a worker: set before it forks, inherited
_STOP: Any = None  # in a worker: the main process's "stop now" event


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def jobs_for(ctx: Context, size: int | None) -> int:
    """How many worker processes: the option, else (None) the usable CPUs when the list is long
    enough to gain (a file of known size only); 1 means this process alone."""
    options = ctx.options
    if options.jobs is not None:
        return options.jobs
    heavy = options.out is not None or options.combined is not None
    if size is None or size < (MIN_BYTES_SHEETS if heavy else MIN_BYTES):
        return 1
    return min(usable_cpus(), 8)


def quiet_collector() -> tuple[int, ...]:
    """Before the rows: what is loaded (the protocols file, pint's registry, the modules) moves out
    of the cycle collector's way (gc.freeze), so its full passes do not walk it again and again,
    and forked workers do not copy it by touching it; and the youngest generation is collected
    less often (a row makes a few hundred objects, nearly all freed by reference counting).
    Returns the thresholds to restore (restore_collector)."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNGEST, *before[1:])
    return before


def restore_collector(before: tuple[int, ...]) -> None:
    gc.set_threshold(*before)
    gc.unfreeze()


STOPS = frozenset({signal.SIGINT, signal.SIGTERM})  # Ctrl-C, and SIGTERM (cli.main, stopping.py)

# Objects allocated between passes of the youngest generation (Python's default is 700).
GC_YOUNGEST = 20_000


def _start(ctx: Context, parent: int, stop: Any) -> None:
    global _CTX, _STOP
    # Ctrl-C and SIGTERM are the main process's to handle (a signal to the whole process group,
    # as `timeout` or systemd send, reaches the workers too): it stops them through `stop`. A
    # worker killed while sending its results would leave the pool waiting for them for ever.
    # They were blocked across the fork (Workers), so none can come before this.
    for signum in STOPS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
    _die_with(parent)
    _CTX, _STOP = ctx, stop


def _die_with(parent: int) -> None:
    """A worker ends when the main process does, even by SIGKILL: it holds copies of the main
    process's descriptors (the output folder's lock among them) and patient data."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() != parent:  # the main process died before the line above took effect
        os._exit(1)


def _work(rows: list[RawRow]) -> list[Outcome]:
    ctx = _CTX
    assert ctx is not None
    done = []
    for raw in rows:
        if _STOP.is_set():  # the run is stopping (Ctrl-C, a refusal): nobody reads this chunk
            return []
        # A Sheet holds the Library: it is not sent back; the main process makes the few it keeps.
        done.append(evaluate(raw, ctx)._replace(sheet=None))
    return done


class Workers:
    """A pool of `jobs` forked workers (or none, for jobs == 1) over chunks of rows."""

    def __init__(self, ctx: Context, jobs: int) -> None:
        self.ctx = ctx
        self.executor: ProcessPoolExecutor | None = None
        self.collector = quiet_collector()
        if jobs > 1:
            import multiprocessing

            fork = multiprocessing.get_context("fork")
            self.stop = fork.Event()
            # Ctrl-C and SIGTERM wait (blocked, in this thread and the pool's threads made here)
            # until every worker is forked and ignores them (_start); then they reach this process.
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
            try:
                self.executor = ProcessPoolExecutor(
                    jobs,
                    mp_context=fork,
                    initializer=_start,
                    initargs=(ctx, os.getpid(), self.stop),
                )
                # Fork every worker now, before the progress display starts its thread.
                self.executor.submit(os.getpid).result()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.jobs = jobs
        heavy = ctx.options.out is not None or ctx.options.combined is not None
        self.chunk = CHUNK_SHEETS if heavy else CHUNK_ROWS

    def outcomes(self, records: Iterable[RawRow]) -> Iterator[Outcome]:
        """Each record's outcome, in the order of the records."""
        if self.executor is None:
            for raw in records:
                yield evaluate(raw, self.ctx)
            return
        it = iter(records)
        pending: deque[tuple[list[RawRow], Future[list[Outcome]]]] = deque()
        limit = self.jobs * IN_FLIGHT
        while True:
            while len(pending) < limit:
                rows = list(islice(it, self.chunk))
                if not rows:
                    break
                pending.append((rows, self.executor.submit(_work, rows)))
            if not pending:
                return
            rows, future = pending.popleft()
            for raw, outcome in zip(rows, future.result(), strict=True):
                yield self._with_sheet(raw, outcome)

    def _with_sheet(self, raw: RawRow, outcome: Outcome) -> Outcome:
        if self.ctx.options.combined is None:
            return outcome
        return outcome._replace(sheet=kept_sheet(raw, outcome, self.ctx))

    def close(self, wait: bool = False) -> None:
        """Stop the workers: once every row is in (`wait`), or soon (after Ctrl-C or a refusal
        their work is not needed): chunks not started are cancelled and a chunk under way stops
        at its next row. Never killed: a worker killed while sending its results would leave
        the pool waiting for the rest of them for ever."""
        if self.collector:
            restore_collector(self.collector)
            self.collector = ()
        executor, self.executor = self.executor, None
        if executor is None:
            return
        if not wait:
            self.stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
