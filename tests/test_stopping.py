"""Ctrl-C and SIGTERM (dosecalc/stopping.py): a stop that comes while a file is being written waits
until the file is complete and on the run's list, so the batch's undo removes it and no temporary
file is left; elsewhere it stops the run at once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from dosecalc import stopping
from dosecalc.errors import Terminated
from dosecalc.files import TEMP_PREFIX, write_atomic


def test_outside_a_held_block_the_stop_is_at_once() -> None:
    with pytest.raises(Terminated):
        stopping.handler(signal.SIGTERM, None)
    with pytest.raises(KeyboardInterrupt) as stop:
        stopping.handler(signal.SIGINT, None)
    assert not isinstance(stop.value, Terminated)  # Ctrl-C stays Ctrl-C (exit 130, not 143)


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


def test_a_stop_during_a_write_leaves_the_whole_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sheet.json"

    def chunks() -> Iterator[bytes]:
        yield b'{"dose": '
        stopping.handler(signal.SIGTERM, None)  # SIGTERM between two chunks
        yield b"36}\n"

    with pytest.raises(Terminated):
        write_atomic(target, chunks())
    assert target.read_bytes() == b'{"dose": 36}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.json"]  # no TEMP_PREFIX file
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
