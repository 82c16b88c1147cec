"""`dosecalc batch` as a real process: killed mid-run, in a pipe, and at a size where memory matters."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from helpers import DATE, command, day_list

from dosecalc import batch as core

# The kill test (SIGKILL at random moments) is tests/test_crash_safety.py; it uses the same helpers.


def test_stdin_to_stdout_in_a_pipe_closed_early_exits_without_a_traceback(
    tmp_path: Path,
) -> None:
    daylist = day_list(tmp_path / "list.csv", 1500)
    dosecalc = " ".join(f"'{part}'" for part in command("-", "--format", "jsonl"))
    err = tmp_path / "err.txt"
    pipeline = f"cat '{daylist}' | {dosecalc} 2>'{err}' | head -1"
    result = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, timeout=60)
    first = json.loads(result.stdout)
    assert first["schema"] == "dosecalc.sheet/1"
    assert first["patient_id"] == "P000000"
    assert first["line"] == 2
    errors = err.read_text()
    assert "Traceback" not in errors
    assert "Exception ignored" not in errors
    assert "1500 line(s) read" in errors


def test_stdin_to_stdout_pipe_passes_every_row_through(tmp_path: Path) -> None:
    daylist = day_list(tmp_path / "list.csv", 300)
    with open(daylist, "rb") as stdin:
        result = subprocess.run(
            command("-", "--format", "jsonl", "--date", DATE),
            stdin=stdin,
            capture_output=True,
            timeout=60,
        )
    assert result.returncode == 0
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 300
    assert [json.loads(line)["line"] for line in lines] == list(range(2, 302))
    assert b"dosecalc" not in result.stdout.split(b"\n", 1)[0][:9]


def _peak(tmp_path: Path, library: object, rows: int) -> int:
    daylist = day_list(tmp_path / f"list{rows}.csv", rows)
    options = core.Options(date=DATE, output_format="jsonl")
    sink = open(os.devnull, "wb")  # noqa: SIM115
    tracemalloc.start()
    try:
        core.run(
            library,  # type: ignore[arg-type]
            str(daylist),
            options,
            stdin=sys.stdin.buffer if hasattr(sys.stdin, "buffer") else io.BytesIO(),
            stdout=sink,
            stderr=io.StringIO(),
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        sink.close()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_memory_does_not_grow_with_the_number_of_rows(tmp_path: Path, library: object) -> None:
    _peak(tmp_path, library, 50)  # warm caches (pint registry, imports) outside the measurement
    small, large = _peak(tmp_path, library, 300), _peak(tmp_path, library, 1500)
    assert large < small * 1.3 + 256 * 1024, (small, large)
