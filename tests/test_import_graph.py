"""The import arrows point down: the engine runs without click or rich, and help or version
output starts without pint. Each check runs in a fresh interpreter, so nothing is already imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TEST_PROTOCOLS = Path(__file__).parent / "data" / "test_protocols.toml"

# Runs the console-script entry point with ARGV, then reports on stderr whether pint was imported.
CLI_WRAPPER = """
import sys
sys.argv = ["dosecalc", *sys.argv[1:]]
from dosecalc.cli import main
try:
    main()
except SystemExit:
    pass
print("PINT-IMPORTED" if "pint" in sys.modules else "PINT-NOT-IMPORTED", file=sys.stderr)
"""


def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_engine_modules_import_neither_click_nor_rich() -> None:
    code = (
        "import dosecalc.dosing, dosecalc.model, dosecalc.limits, dosecalc.render.as_json, sys; "
        "print('click' in sys.modules, 'rich' in sys.modules)"
    )
    done = python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False False"


def test_a_whole_json_sheet_can_be_made_without_click_or_rich() -> None:
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from dosecalc import protocols\n"
        "from dosecalc.model import Order, make_sheet\n"
        "from dosecalc.render.as_json import render\n"
        "library = protocols.load(Path(sys.argv[1]))\n"
        "sheet = make_sheet(library, Order(weight='72 kg', date='2026-11-21'))\n"
        "data = render(sheet)\n"
        "print('click' in sys.modules, 'rich' in sys.modules, b'\"dose\": 36' in data)\n"
    )
    done = python(code, str(TEST_PROTOCOLS))
    assert done.returncode == 0, done.stderr
    # 72 kg x 0.5 mg/kg = 36 mg
    assert done.stdout.strip() == "False False True"


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["sheet", "--help"],
        ["protocols", "--help"],
        ["--protocols", str(TEST_PROTOCOLS), "protocols", "list"],
    ],
    ids=" ".join,
)
def test_help_version_and_the_protocols_list_do_not_import_pint(argv: list[str]) -> None:
    # Issue 14: `protocols list` computes no dose; it lists the file's ids, names and versions
    # (protocols_file.inventory) and leaves the unit checks to every sheet and `protocols check`.
    done = python(CLI_WRAPPER, *argv)
    assert "Traceback" not in done.stderr
    assert done.stdout.strip()  # help or version text was printed
    assert done.stderr.strip().endswith("PINT-NOT-IMPORTED"), done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["sheet", "--weight", "72 kg"],
        ["sheet", "--weight", "72 kg", "--format", "json"],
        ["protocols", "check", str(TEST_PROTOCOLS)],
        ["protocols", "show", "ketamine-iv"],
        ["check", "--weight", "72 kg", "--operator", "RN Kim", "--rate", "155.4 mL/h"],
    ],
    ids=" ".join,
)
def test_every_run_that_loads_protocols_imports_pint(argv: list[str]) -> None:
    # Issue 9: pint checks every formula's dimensions and supplies every conversion factor at run
    # time; there is no build-time table to answer instead.
    done = python(CLI_WRAPPER, "--protocols", str(TEST_PROTOCOLS), *argv)
    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith("PINT-IMPORTED"), done.stderr


def test_a_batch_imports_pint(tmp_path: Path) -> None:
    day = tmp_path / "day.csv"
    day.write_text("patient_id,weight\nA1,72 kg\n", encoding="utf-8")
    done = python(CLI_WRAPPER, "--protocols", str(TEST_PROTOCOLS), "batch", str(day))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith("PINT-IMPORTED"), done.stderr


def test_version_prints_the_package_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dosecalc", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("dosecalc ")
