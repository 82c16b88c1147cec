"""Safety controls from the hazard log (docs/safety/hazards.md) that had no test failing without them,
and the defects the safety case found (each test failed before its fix).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import SHIPPED_PROTOCOLS, TEST_PROTOCOLS

from dosecalc import batch as core
from dosecalc.cli import cli
from dosecalc.errors import OutputError, Problem

DATE = "2026-11-21"


def test_every_shipped_protocol_names_a_version_that_its_sheet_shows(runner: CliRunner) -> None:
    shipped = tomllib.loads(SHIPPED_PROTOCOLS.read_text(encoding="utf-8"))
    assert shipped["protocols"]
    for pid, body in shipped["protocols"].items():
        version = body["version"]
        assert version.strip(), pid
        # A protocol on ideal body weight (issue 10) needs the height and sex.
        basis = ["--height", "170 cm", "--sex", "female"] if "dosing_weight" in body else []
        result = runner.invoke(
            cli, ["sheet", "--weight", "72 kg", "--protocol", pid, "--format", "json", *basis]
        )
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["protocol_version"] == version


@pytest.mark.parametrize(
    "args",
    [
        ["--protocols", "", "sheet", "--weight", "72 kg"],
        ["sheet", "--protocols", "", "--weight", "72 kg"],
        ["--protocols", "", "batch", "-"],
        ["--protocols", "", "protocols", "list"],
    ],
)
def test_an_empty_protocols_option_is_refused_not_replaced_by_the_shipped_file(
    runner: CliRunner, args: list[str]
) -> None:
    # Before the fix, `--protocols ""` (an unset shell variable) silently used the shipped file.
    result = runner.invoke(cli, args, input="patient_id,weight\nA1,72 kg\n")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "protocols: --protocols is empty" in result.stderr


def test_an_audit_log_path_with_a_nul_is_repeated_without_the_nul(
    runner: CliRunner, tmp_path: Path
) -> None:
    # Before the fix the raw NUL of the path was written to stderr.
    result = runner.invoke(
        cli,
        ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "72 kg", "--audit-log",
         f"{tmp_path}/a\x00b.jsonl"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "\x00" not in result.stderr
    assert f"cannot append to {tmp_path}/a\\x00b.jsonl" in result.stderr


def test_a_forced_rerun_removes_the_old_manifest_before_its_first_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A --force rerun that stops after one sheet leaves no manifest over mixed old and new files."""
    from dosecalc import protocols

    library = protocols.load(TEST_PROTOCOLS)
    daylist = tmp_path / "list.csv"
    daylist.write_text("patient_id,weight\nA1,72 kg\nA2,73 kg\n")
    out = tmp_path / "out"
    options = core.Options(date=DATE, out=out, sheets=("json",))
    streams = {"stdin": None, "stdout": None, "stderr": open(tmp_path / "err", "w")}  # noqa: SIM115
    core.run(library, str(daylist), options, **streams)  # type: ignore[arg-type]
    assert (out / "manifest.json").exists()

    daylist.write_text("patient_id,weight\nA1,74 kg\nA2,75 kg\n")
    from dosecalc.batch import write as batch_write
    from dosecalc.errors import IncompleteOutputError

    real_write = batch_write.write_atomic
    calls = []

    def write_one_then_fail(path: Path, data: object, **kwargs: object) -> None:
        if path.name == "INCOMPLETE":  # the run's own marker (Writer.begin, and the undo's)
            real_write(path, data, **kwargs)  # type: ignore[arg-type]
            return
        calls.append(path.name)
        if len(calls) == 2:  # the second sheet
            raise OutputError(Problem("out", "cannot_write", "out: disk full (simulated)"))
        real_write(path, data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batch_write, "write_atomic", write_one_then_fail)
    with pytest.raises(IncompleteOutputError):
        core.run(
            library,
            str(daylist),
            core.Options(date=DATE, out=out, sheets=("json",), force=True),
            **streams,
        )  # type: ignore[arg-type]
    streams["stderr"].close()  # type: ignore[union-attr]
    assert json.loads((out / f"{DATE}_A1.json").read_text())["weight_kg"] == 74  # new
    assert json.loads((out / f"{DATE}_A2.json").read_text())["weight_kg"] == 73  # old
    assert not (out / "manifest.json").exists()  # visibly incomplete
    marker = (out / "INCOMPLETE").read_text()
    assert "A1.json" in marker  # replaced, so not undone: named
    # The earlier run's A2 sheet is still here with its old dose: named as out of date.
    stale = marker.split("Files of an earlier run still here (out of date: do not use):\n")[1]
    assert f"  {DATE}_A2.json\n" in stale


def test_a_duration_far_past_the_hard_limit_is_refused_before_its_checkpoints_are_listed(
    runner: CliRunner,
) -> None:
    # Before the fix the engine listed a checkpoint every 10 min of any duration before the limits
    # were checked: "99999999 min" took all the memory. 6001 min (600 checkpoints) is cheap either
    # way, but only the fix refuses it for its checkpoints, at once.
    for duration in ("6001 min", "99999999 min"):
        result = runner.invoke(
            cli,
            ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "70 kg", "--duration",
             duration],
        )  # fmt: skip
        assert result.exit_code == 1
        assert result.stdout == ""
        assert (
            f"duration '{duration}' is above the hard limit 120 min (range 20 min to 120 min)"
        ) in result.stderr
    as_json = runner.invoke(
        cli,
        ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "70 kg", "--duration",
         "99999999 min", "--format", "json"],
    )  # fmt: skip
    (error,) = json.loads(as_json.stdout)["errors"]
    assert (error["field"], error["code"]) == ("duration", "hard_limit")


def test_a_duration_of_exactly_sixty_checkpoints_gets_the_ordinary_hard_limit_message(
    runner: CliRunner,
) -> None:
    # 600 min is 60 checkpoints of 10 min: listed, then refused by the duration hard limit 120 min.
    result = runner.invoke(
        cli,
        ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "70 kg", "--duration", "600 min"],
    )
    assert result.exit_code == 1
    assert "duration 600 min is above the hard limit 120 min" in result.stderr
    assert "checkpoints" not in result.stderr
