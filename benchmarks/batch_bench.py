"""Benchmark `dosecalc batch` against a plain-Python float baseline, in the same run.

Not a test: run it by hand and record the figures in BENCHMARKS.md.

    python benchmarks/batch_bench.py              # 100,000 rows, 10,000 text sheets
    python benchmarks/batch_bench.py --rows 2000 --sheets 200   # a quick smoke run

The baseline (benchmarks/floor.py, shared with run.py) reads the same CSV with the csv module,
does the same arithmetic (ketamine-iv: 0.5 mg/kg, 10 mg/mL, 100 mL bag, 40 min) in binary floats
and writes JSON Lines. It is the floor for "read, compute, write" in Python; dosecalc adds the
strict grammar, exact decimals, limits, rounding notices and the full dosecalc.sheet/1 object per
row. `benchmarks/run.py` is the fuller harness (issue 6).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from floor import baseline, make_list

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ROOT / "protocols.toml"


def timed(args: list[str], stdout: Path | None = None) -> float:
    start = time.perf_counter()
    with open(stdout or os.devnull, "wb") as sink:
        subprocess.run(args, stdout=sink, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def dosecalc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dosecalc", "--protocols", str(PROTOCOLS), "batch", *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the JSONL run")
    parser.add_argument("--sheets", type=int, default=10_000, help="text sheets to write")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dosecalc-bench-") as tmp:
        folder = Path(tmp)
        big, small = folder / "list.csv", folder / "sheets.csv"
        make_list(big, args.rows)
        make_list(small, args.sheets)

        base = timed([sys.executable, "-c", "pass"])  # interpreter start, for reference
        start = time.perf_counter()
        baseline(big, folder / "baseline.jsonl")
        floats = time.perf_counter() - start
        jsonl = timed(dosecalc(str(big), "--format", "jsonl"), folder / "batch.jsonl")
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        with open(folder / "batch.jsonl", "rb") as produced:
            lines = sum(1 for _ in produced)
        startup = timed(dosecalc(str(folder / "empty.csv")))  # exits 2 at once: start-up cost
        sheets = timed(dosecalc(str(small), "--out", str(folder / "out"), "--sheets", "text"))
        written = len(list((folder / "out").glob("*.txt")))
        shutil.rmtree(folder / "out")

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"python start-up: {base:.2f} s; dosecalc batch start-up (usage error): {startup:.2f} s")
    print(f"float baseline, {args.rows:,} rows to JSONL: {floats:.2f} s")
    print(
        f"dosecalc batch, {args.rows:,} rows to JSONL: {jsonl:.2f} s "
        f"({lines:,} lines, {jsonl / args.rows * 1e6:.0f} us/row, max RSS {rss_mb:.0f} MB)"
    )
    print(f"ratio dosecalc / baseline: {jsonl / floats:.1f}x (target 3x)")
    print(
        f"dosecalc batch, {args.sheets:,} text sheets: {sheets:.2f} s ({written:,} files, "
        f"{sheets / max(written, 1) * 1e3:.1f} ms/sheet; "
        f"{sheets / floats * args.rows / args.sheets:.0f}x the baseline per row)"
    )


if __name__ == "__main__":
    main()
