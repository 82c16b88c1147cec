"""The hazard log (docs/safety/hazards.md) is traced to tests that exist.

Every hazard row names at least one test as a pytest node id (`tests/file.py::test_name`, a
parametrised test by its function name); every test named must exist in the file named (read with
ast, so the test functions are found without importing or running them).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HAZARDS = ROOT / "docs" / "safety" / "hazards.md"
NODE_ID = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[[^\]`]*\])?`")
# The hazards issue 5 names: each must have a row (matched on a word or phrase from its name).
REQUIRED = (
    "lb taken as kg", "Unitless weight", "Decimal comma", "tenfold", "mg/mcg", "Rate confused",
    "stock concentration", "protocols file", "typo", "Soft-limit breach", "Hard-limit breach",
    "Rounding that hides", "rounded rate", "terminal-escape injection", "HTML injection",
    "CSV formula injection", "Path traversal", "Silent loss of a batch row",
    "Partial or overwritten files", "Unbounded input", "exponent bombs", "Stale shipped protocol",
)  # fmt: skip


def hazard_rows() -> dict[str, list[str]]:
    """Hazard id -> the table cells of its row."""
    rows = {}
    for line in HAZARDS.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and re.fullmatch(r"H\d{2}", cells[0]):
            rows[cells[0]] = cells
    return rows


@cache
def defined_tests(path: str) -> frozenset[str]:
    """The names of the test functions (and test methods) defined in a test file."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    )


def test_the_hazard_log_has_a_row_for_every_hazard_the_issue_names() -> None:
    rows = hazard_rows()
    assert len(rows) >= 20
    text = " ".join(cells[1] for cells in rows.values()).lower()
    assert [h for h in REQUIRED if h.lower() not in text] == []


def test_every_row_has_a_hazard_a_cause_a_control_naming_code_and_tests() -> None:
    for hazard, cells in hazard_rows().items():
        assert len(cells) == 5, hazard
        _, name, cause, control, tests = cells
        assert name, hazard
        assert cause, hazard
        assert re.search(r"`[\w/]+\.py`", control), f"{hazard}: the control names no file"
        assert NODE_ID.search(tests), f"{hazard} names no test"


def test_every_test_the_hazard_log_names_exists() -> None:
    missing = []
    for hazard, cells in hazard_rows().items():
        for path, name in NODE_ID.findall(cells[4]):
            if not (ROOT / path).is_file() or name not in defined_tests(path):
                missing.append(f"{hazard}: {path}::{name}")
    assert missing == []


def test_the_checker_would_notice_a_test_that_does_not_exist() -> None:
    """The existence check itself can fail: a made-up name is not found."""
    assert "test_a_name_that_no_file_defines" not in defined_tests("tests/test_hazard_log.py")
    assert "test_every_test_the_hazard_log_names_exists" in defined_tests(
        "tests/test_hazard_log.py"
    )
