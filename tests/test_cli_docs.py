"""docs/cli.md is generated from the click commands and must match them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gen_cli_docs.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_docs", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_is_up_to_date() -> None:
    expected = _generator().render()
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == expected, (
        "docs/cli.md is out of date: run python scripts/gen_cli_docs.py"
    )


def test_the_reference_covers_every_command_and_option() -> None:
    text = _generator().render()
    for heading in ("## `dosecalc`", "## `dosecalc sheet`", "## `dosecalc batch`",
                    "## `dosecalc config`", "## `dosecalc protocols list`",
                    "## `dosecalc protocols show`", "## `dosecalc protocols check`"):  # fmt: skip
        assert heading in text
    for option in ("--weight QUANTITY", "--paper [a4|letter]", "--audit-log FILE", "--combined"):
        assert option in text


def test_check_mode_fails_when_the_reference_is_stale(tmp_path: Path) -> None:
    module = _generator()
    stale = tmp_path / "cli.md"
    stale.write_text("# old\n", encoding="utf-8")
    module.OUT = stale
    assert module.main(["--check"]) == 1
    assert module.main([]) == 0
    assert module.main(["--check"]) == 0
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
