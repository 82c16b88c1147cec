"""Regenerate docs/examples/: a ketamine 72 kg PDF sheet and a small PNG picture of it.

Run from anywhere: `python scripts/make_examples.py`. Needs pdftoppm (Debian package poppler-utils)
for the PNG. The inputs are fixed (shipped protocols.toml, named by its relative path, and a fixed
date), so a rerun with the same fpdf2 and poppler gives the same bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dosecalc import protocols
from dosecalc.model import Order, make_sheet
from dosecalc.render import render

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "examples"
STEM = "ketamine-72kg"
ORDER = Order(
    weight="72 kg",
    date="2026-11-21",
    protocol_id="ketamine-iv",
    patient_id="EXAMPLE-001",
    name="Zoë Example",
)
PNG_DPI = "60"  # small enough to commit, large enough to read the PUMP box and the timeline


def main() -> int:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        print("make_examples: pdftoppm not found: apt-get install poppler-utils", file=sys.stderr)
        return 1
    os.chdir(ROOT)  # the sheet names the protocols file as given: keep it relative
    library = protocols.load(Path("protocols.toml"), "shipped")
    pdf = render(make_sheet(library, ORDER), "pdf")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{STEM}.pdf").write_bytes(pdf)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                pdftoppm,
                "-png",
                "-r",
                PNG_DPI,
                "-singlefile",
                str(OUT / f"{STEM}.pdf"),
                str(Path(tmp) / STEM),
            ],
            check=True,
        )
        shutil.copyfile(Path(tmp) / f"{STEM}.png", OUT / f"{STEM}.png")
    for suffix in ("pdf", "png"):
        path = OUT / f"{STEM}.{suffix}"
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
