"""Shell completion: protocol ids for --protocol, through click and through a real bash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TEST_PROTOCOLS

from dosecalc.cli import cli


def complete(runner: CliRunner, words: str) -> list[str]:
    env = {"_DOSECALC_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split(" ")) - 1)}  # fmt: skip
    result = runner.invoke(cli, [], env=env, prog_name="dosecalc")
    assert result.exit_code == 0, result.output
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if line]


def test_protocol_ids_of_the_shipped_file_complete(runner: CliRunner) -> None:
    assert complete(runner, "dosecalc sheet --protocol ") == [
        "ketamine-iv",
        "ketamine-iv-ibw",
        "ketamine-iv-syringe",
    ]
    assert complete(runner, "dosecalc sheet --protocol ketamine-iv-s") == ["ketamine-iv-syringe"]


def test_completion_reads_the_protocols_file_given_on_the_line(runner: CliRunner) -> None:
    words = f"dosecalc --protocols {TEST_PROTOCOLS} batch --protocol d"
    assert complete(runner, words) == ["dex-load"]


def test_a_broken_protocols_file_completes_nothing_without_a_traceback(
    runner: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("not toml [", encoding="utf-8")
    assert complete(runner, f"dosecalc sheet --protocols {bad} --protocol ") == []


def test_bash_completes_protocol_ids_with_the_documented_line(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    dosecalc = Path(sys.executable).parent / "dosecalc"
    if bash is None or not dosecalc.exists():
        pytest.skip("needs bash and the dosecalc script in this environment")
    script = (
        'eval "$(_DOSECALC_COMPLETE=bash_source dosecalc)"\n'  # as in the README
        "COMP_WORDS=(dosecalc sheet --protocol ketamine-iv); COMP_CWORD=3\n"
        '_dosecalc_completion dosecalc; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{dosecalc.parent}{os.pathsep}{os.environ['PATH']}",
           "HOME": str(tmp_path)}  # fmt: skip
    done = subprocess.run([bash, "--norc", "-c", script], capture_output=True, text=True,
                          env=env, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ketamine-iv", "ketamine-iv-ibw", "ketamine-iv-syringe"]
