"""Byte-identical outputs for a fixed day list: performance work must not change a single byte.

The expected files in tests/data/golden/ were produced before the performance work (issue 6) and
checked by hand against the worked examples (e.g. G001: 36 mg, 3.6 mL, 103.6 mL, 155.4 mL/h).
Regenerate them only for an intended output change: DOSECALC_UPDATE_GOLDEN=1 python -m pytest ...
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import DATA, TEST_PROTOCOLS

from dosecalc.cli import cli

GOLDEN = DATA / "golden"
DAYLIST = GOLDEN / "daylist.csv"
# Run from tests/data with a relative protocols path: the path is printed (and, on the text sheet,
# wraps by its length), so it must be the same in every checkout.
BASE = ["--protocols", TEST_PROTOCOLS.name]


@pytest.fixture(autouse=True)
def in_the_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(TEST_PROTOCOLS.parent)


def check(name: str, data: bytes) -> None:
    expected = GOLDEN / name
    if os.environ.get("DOSECALC_UPDATE_GOLDEN"):
        expected.write_bytes(data)
    assert data == expected.read_bytes(), name


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_batch_results_on_stdout_are_byte_identical(runner: CliRunner, fmt: str) -> None:
    args = [*BASE, "batch", str(DAYLIST), "--format", fmt, "--date", "2026-11-21"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1  # G007 hard limit, G008 long row
    check(f"results.{fmt}", result.stdout_bytes)


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("sheet-72kg", ["--weight", "72 kg", "--patient-id", "G001"]),
        ("sheet-154lb", ["--weight", "154 lb"]),
        ("sheet-dex", ["--weight", "70 kg", "--protocol", "dex-load"]),
        (
            "sheet-override",
            ["--weight", "154 kg", "--override", "weighed today", "--operator", "RN Lee"],
        ),
        (
            "sheet-tie",
            ["--weight", "69 kg", "--protocol", "ketamine-undiluted", "--dose", "0.5 mg/kg"],
        ),
    ],
)
@pytest.mark.parametrize("fmt", ["text", "json", "html"])
def test_single_sheets_are_byte_identical(
    runner: CliRunner, tmp_path: Path, name: str, args: list[str], fmt: str
) -> None:
    out = tmp_path / "sheet"
    cli_args = [*BASE, "sheet", *args, "--date", "2026-11-21", "--format", fmt, "-o", str(out)]
    result = runner.invoke(cli, cli_args)
    assert result.exit_code == 0, result.stderr
    check(f"{name}.{fmt}", out.read_bytes())
