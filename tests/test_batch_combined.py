"""`dosecalc batch --combined FILE.pdf`: a cover page for every line, then one page per sheet."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from click.testing import CliRunner
from helpers import TEST_PROTOCOLS, need, pages

from dosecalc.cli import cli

DAYLIST = "patient_id,weight,name\nA1,72 kg,Ann\nB2,700 kg,Bob\nC3,80 kg,Cé\n"


def page(pdf: Path, number: int) -> str:
    tool = need("pdftotext", "poppler-utils")
    args = [tool, "-f", str(number), "-l", str(number), "-layout", str(pdf), "-"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def run_batch(runner: CliRunner, tmp_path: Path, *extra: str) -> tuple[int, Path, Path]:
    daylist = tmp_path / "day.csv"
    daylist.write_text(DAYLIST, encoding="utf-8")
    out, combined = tmp_path / "out", tmp_path / "out" / "day.pdf"
    args = ["--protocols", str(TEST_PROTOCOLS), "batch", str(daylist), "--out", str(out),
            "--date", "2026-11-21", "--combined", str(combined), *extra]  # fmt: skip
    result = runner.invoke(cli, args)
    return result.exit_code, out, combined


def test_the_combined_pdf_lists_every_line_then_a_page_per_sheet(
    runner: CliRunner, tmp_path: Path
) -> None:
    need("pdftotext", "poppler-utils")
    code, out, combined = run_batch(runner, tmp_path)
    assert code == 1  # B2 is refused by the hard weight limit
    # A cover page, then the two sheets (A1, C3) in input order.
    assert pages(combined) == 3
    cover, first, second = (page(combined, n) for n in (1, 2, 3))
    for fragment in ("A1", "B2", "C3", "refused", "36 mg", "40 mg"):  # 0.5 x 72, 0.5 x 80
        assert fragment in cover, fragment
    assert "A1" in first
    assert "36 mg" in first
    assert "C3" in second
    assert "40 mg" in second
    # The manifest lists the combined PDF, written before the manifest.
    manifest = json.loads((out / "manifest.json").read_text())
    assert "day.pdf" in [f["name"] for f in manifest["files"]]


def test_an_existing_combined_pdf_is_not_overwritten_and_nothing_is_written(
    runner: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "day.pdf").write_bytes(b"yesterday")
    code, out, combined = run_batch(runner, tmp_path)
    assert code == 2
    assert combined.read_bytes() == b"yesterday"
    assert sorted(p.name for p in out.iterdir()) == ["day.pdf"]
