"""Ctrl-C and SIGTERM (dosecalc/stopping.py): a stop waits only while a temporary file is made,
while a file appears under its name together with the caller's record of it, and during an undo;
elsewhere it stops the run at once. Only the first stop is raised."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from dosecalc import stopping
from dosecalc.errors import Terminated
from dosecalc.files import TEMP_PREFIX, write_atomic


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    """Each test starts as a run does (cli.main's restore() clears the module's state)."""
    stopping.restore({})
    yield
    stopping.restore({})


def test_outside_a_held_block_the_stop_is_at_once() -> None:
    with pytest.raises(Terminated):
        stopping.handler(signal.SIGTERM, None)
    stopping.restore({})
    with pytest.raises(KeyboardInterrupt) as stop:
        stopping.handler(signal.SIGINT, None)
    assert not isinstance(stop.value, Terminated)  # Ctrl-C stays Ctrl-C (exit 130, not 143)


def test_only_the_first_stop_is_raised() -> None:
    """A second Ctrl-C or SIGTERM while the run stops (before its undo is held) is not raised:
    it cannot cut the undo short."""
    with pytest.raises(Terminated):
        stopping.handler(signal.SIGTERM, None)
    stopping.handler(signal.SIGINT, None)  # returns
    with stopping.held():  # and is not raised later either
        pass


def test_inside_held_blocks_the_stop_waits_for_the_outermost_to_end() -> None:
    done = []

    def nested() -> None:
        with stopping.held():
            with stopping.held():
                stopping.handler(signal.SIGTERM, None)  # returns: the stop is pending
                done.append("inner")
            done.append("outer")  # the inner block's end does not stop the run

    with pytest.raises(Terminated):
        nested()
    assert done == ["inner", "outer"]
    with stopping.held():  # the pending stop was used up: the next block ends normally
        pass


def test_the_first_stop_of_several_is_the_one_raised() -> None:
    def two_stops() -> None:
        with stopping.held():
            stopping.handler(signal.SIGTERM, None)
            stopping.handler(signal.SIGINT, None)

    with pytest.raises(Terminated):
        two_stops()


def test_a_stop_while_the_data_is_written_leaves_no_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sheet.json"

    def chunks() -> Iterator[bytes]:
        yield b'{"dose": '
        stopping.handler(signal.SIGTERM, None)  # SIGTERM between two chunks: stops at once
        yield b"36}\n"

    with pytest.raises(Terminated):
        write_atomic(target, chunks())
    assert list(tmp_path.iterdir()) == []  # neither the sheet nor a TEMP_PREFIX file


def test_a_stop_as_the_file_lands_waits_for_the_callers_record(tmp_path: Path) -> None:
    target, noted = tmp_path / "sheet.json", []

    def note() -> None:
        stopping.handler(signal.SIGTERM, None)  # the signal comes as the file appears
        noted.append(target.read_bytes())

    with pytest.raises(Terminated):
        write_atomic(target, b'{"dose": 36}\n', committed=note)
    assert noted == [b'{"dose": 36}\n']  # the record was made, then the run stopped
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.json"]
    assert not any(p.name.startswith(TEMP_PREFIX) for p in tmp_path.iterdir())


def test_install_and_restore_put_the_handlers_back() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    replaced = stopping.install()
    try:
        assert signal.getsignal(signal.SIGTERM) is stopping.handler
        if before[1] is signal.default_int_handler:
            assert signal.getsignal(signal.SIGINT) is stopping.handler
    finally:
        stopping.restore(replaced)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_an_ignored_ctrl_c_stays_ignored() -> None:
    """A background job's SIGINT is ignored by its shell: dosecalc does not take it back."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        replaced = stopping.install()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        stopping.restore(replaced)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_stop_never_replaces_an_exception_already_on_its_way_out() -> None:
    def failing_write() -> None:
        with stopping.held():
            stopping.handler(signal.SIGTERM, None)
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):  # the disk-full error stands (exit 4)
        failing_write()
    with stopping.held():  # and the stop is not left pending for a later block
        pass


def test_a_stop_during_the_undo_waits_for_it_and_is_dropped() -> None:
    undone = []
    with stopping.held(then_stop=False):
        stopping.handler(signal.SIGTERM, None)  # a second SIGTERM while undoing
        undone.append("every file")
    assert undone == ["every file"]
    with stopping.held():  # nothing pending afterwards
        pass


def test_a_stop_raised_at_once_clears_an_earlier_pending_one() -> None:
    """A signal landing as the last block ends is raised at once; it must not fire again at the
    next block (a stale stop would break the undo)."""
    stopping._pending = Terminated  # as if left by a block whose end the signal interrupted
    with pytest.raises(KeyboardInterrupt):
        stopping.handler(signal.SIGINT, None)
    stopping._stopping = False  # (the latch would drop it anyway: test the pending stop alone)
    with stopping.held():
        pass


def test_after_finished_a_stop_is_dropped_and_the_signals_are_ignored_until_exit() -> None:
    """A SIGTERM in the moments after a batch had written its manifest and run record gave exit
    143, which says the run's files were removed (found by the script-author attack)."""
    stopping.finished()
    stopping.handler(signal.SIGTERM, None)  # dropped, not raised
    with stopping.held():
        stopping.handler(signal.SIGINT, None)  # not raised at the block's end either
    replaced = {signal.SIGTERM: signal.getsignal(signal.SIGTERM)}
    try:
        stopping.restore(replaced)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, replaced[signal.SIGTERM])  # type: ignore[arg-type]
    # restore() ends the run: the next one stops as usual.
    with pytest.raises(Terminated):
        stopping.handler(signal.SIGTERM, None)
