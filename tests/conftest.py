"""Shared fixtures: an isolated environment, a CliRunner, and the test protocols files."""

from __future__ import annotations

import contextlib
import getpass
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import SHIPPED_PROTOCOLS, TEST_PROTOCOLS

from dosecalc import protocols

ISOLATED_VARIABLES = (
    "DOSECALC_PROTOCOLS",
    "DOSECALC_OPERATOR",
    "DOSECALC_AUDIT_LOG",
    "DOSECALC_PAPER",
    "NO_COLOR",
    "FORCE_COLOR",
    "COLUMNS",
    "LINES",
    "TERM",
)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's dosecalc settings (variables or config.toml), colour settings or
    terminal."""
    for name in ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOSECALC_CONFIG", "")  # no settings file (tests of it set their own)
    monkeypatch.setattr("dosecalc.cli.is_interactive", lambda: False)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def library() -> protocols.Library:
    """The test protocols: ketamine-iv (as shipped), dex-load (mcg), ketamine-undiluted."""
    return protocols.load(TEST_PROTOCOLS)


@pytest.fixture
def shipped() -> protocols.Library:
    return protocols.load(SHIPPED_PROTOCOLS, "shipped")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Nothing left in /tmp: pytest removes each passed run's folder (tmp_path_retention_policy
    "failed") but keeps the empty folder above them; remove it too when it is empty (a failed
    test's folder, kept on purpose, keeps it)."""
    root = Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}"
    with contextlib.suppress(OSError):  # absent, or not empty
        root.rmdir()
