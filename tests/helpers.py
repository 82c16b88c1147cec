"""Shared test helpers: paths of the test data, day lists, the CLI as a process, external tools.

Tests import from here (never from conftest.py or from another test file)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
TEST_PROTOCOLS = DATA / "test_protocols.toml"
SHIPPED_PROTOCOLS = Path(__file__).resolve().parent.parent / "protocols.toml"
DATE = "2026-11-21"


def day_list(path: Path, rows: int) -> Path:
    """A CSV day list of `rows` good rows (P000000, P000001, ...) with weights 40 to 139 kg."""
    lines = ["patient_id,weight"] + [f"P{i:06d},{40 + i % 100} kg" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def command(*args: str) -> list[str]:
    """`dosecalc batch ARGS` as a process, on the test protocols."""
    return [sys.executable, "-m", "dosecalc", "--protocols", str(TEST_PROTOCOLS), "batch", *args]


def need(tool: str, package: str) -> str:
    """The tool's path; skip naming the Debian package when missing (fail when CI is set)."""
    path = shutil.which(tool)
    if path is None:
        message = (
            f"{tool} not found: install the Debian package {package} (apt-get install {package})"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_tool(*args: str | Path) -> str:
    """An external tool's stdout; its failure fails the test."""
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def pages(pdf: Path) -> int:
    info = run_tool(need("pdfinfo", "poppler-utils"), pdf)
    return int(re.search(r"^Pages:\s+(\d+)$", info, re.MULTILINE)[1])  # type: ignore[index]


def assert_no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr
