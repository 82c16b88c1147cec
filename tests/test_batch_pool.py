"""`dosecalc batch --jobs N`: rows computed in worker processes give the same bytes as one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import TEST_PROTOCOLS

from dosecalc.batch import pool
from dosecalc.cli import cli

# Good rows, lb, a hard-limit refusal, an invalid row, a blank line and a duplicate id: every kind
# of outcome, spread over several chunks.
ROWS = [
    "P01,72 kg,Ann",
    "P02,154 lb,Bob",
    "P03,700 kg,Cy",
    "P04,70.5 kg,Di",
    "",
    "P05,kg,Ed",
    "P06,81.25 kg,Flo",
    "P07,45 kg,Gus",
    "P01,60 kg,Ann again",
    "P08,99.9 kg,Hal",
    "P09,130 kg,Ida",
]
DAYLIST = "patient_id,weight,name\n" + "\n".join(ROWS) + "\n"


def run(runner: CliRunner, tmp_path: Path, jobs: int, *extra: str) -> tuple[int, bytes, Path]:
    daylist = tmp_path / "day.csv"
    daylist.write_text(DAYLIST, encoding="utf-8")
    audit = tmp_path / f"audit-{jobs}.jsonl"
    args = ["--protocols", str(TEST_PROTOCOLS), "batch", str(daylist), "--date", "2026-11-21",
            "--jobs", str(jobs), "--audit-log", str(audit), *extra]  # fmt: skip
    result = runner.invoke(cli, args)
    return result.exit_code, result.stdout_bytes, audit


def audit_lines(path: Path) -> list[dict[str, object]]:
    """The audit records without what differs between any two runs (time, run id)."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for key in ("time", "batch_run", "versions"):
            record.pop(key, None)
        records.append(record)
    return records


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of two rows: the eleven rows travel through the workers in several pieces."""
    monkeypatch.setattr(pool, "CHUNK_ROWS", 2)
    monkeypatch.setattr(pool, "CHUNK_SHEETS", 2)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_two_processes_write_the_same_bytes_as_one_on_stdout(
    runner: CliRunner, tmp_path: Path, small_chunks: None, fmt: str
) -> None:
    code1, out1, audit1 = run(runner, tmp_path, 1, "--format", fmt)
    code2, out2, audit2 = run(runner, tmp_path, 2, "--format", fmt)
    assert code1 == code2 == 1  # P03 refused, P05 invalid, P01 twice
    assert out1 == out2
    assert out1.count(b"\n") == len(ROWS) + (1 if fmt == "csv" else 0)  # every line, in order
    assert audit_lines(audit1) == audit_lines(audit2)


def test_two_processes_write_the_same_sheet_files_and_combined_pdf_as_one(
    runner: CliRunner, tmp_path: Path, small_chunks: None
) -> None:
    folders = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        code, _, _ = run(
            runner, tmp_path, jobs, "--out", str(out), "--sheets", "pdf,json",
            "--combined", str(out / "day.pdf"),
        )  # fmt: skip
        assert code == 1
        folders[jobs] = out
    names = sorted(p.name for p in folders[1].iterdir())
    assert names == sorted(p.name for p in folders[2].iterdir())
    assert "day.pdf" in names
    sheets = [n for n in names if n.endswith(".json") and n != "manifest.json"]
    assert len(sheets) == 6  # P02, P04, P06-P09
    for name in names:
        if name != "manifest.json":  # it holds the run's start and end times
            assert (folders[1] / name).read_bytes() == (folders[2] / name).read_bytes(), name


def test_a_long_list_uses_the_workers_by_default_and_a_short_one_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dosecalc.batch import Options
    from dosecalc.batch.evaluate import Context

    monkeypatch.setattr(pool, "usable_cpus", lambda: 2)
    ctx = Context(None, Options(date="2026-11-21"), "run")  # type: ignore[arg-type]
    assert pool.jobs_for(ctx, pool.MIN_BYTES) == 2
    assert pool.jobs_for(ctx, pool.MIN_BYTES - 1) == 1
    assert pool.jobs_for(ctx, None) == 1  # stdin: one process unless --jobs says otherwise
    one = Context(None, Options(date="2026-11-21", jobs=1), "run")  # type: ignore[arg-type]
    assert pool.jobs_for(one, 10**9) == 1
