"""The pre-infusion gate (issue 13): vitals in a strict grammar, soft and hard limits from the
protocol's [preinfusion] table, required vitals, and the checklist printed as boxes to tick."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SHIPPED_PROTOCOLS, TEST_PROTOCOLS

from dosecalc import protocols
from dosecalc.cli import cli
from dosecalc.errors import ProtocolFileError

SHIPPED = ["--protocols", str(SHIPPED_PROTOCOLS)]
GATE = """
[protocols.ketamine-iv.preinfusion]
required = {required}
systolic = {{ soft = ["90 mmHg", "140 mmHg"], hard = ["80 mmHg", "180 mmHg"] }}
diastolic = {{ soft = ["50 mmHg", "90 mmHg"], hard = ["40 mmHg", "120 mmHg"] }}
heart_rate = {{ soft = ["50 /min", "100 /min"], hard = ["40 /min", "140 /min"] }}
spo2 = {{ soft = ["94%", "100%"], hard = ["90%", "100%"] }}
checklist = ["Escort home confirmed"]
"""


def _gated(tmp_path: Path, required: bool = False, gate: str = GATE) -> Path:
    path = tmp_path / "gated.toml"
    text = TEST_PROTOCOLS.read_text(encoding="utf-8")
    path.write_text(text + gate.format(required=str(required).lower()), encoding="utf-8")
    return path


def _sheet(runner: CliRunner, base: list[str], *args: str, fmt: str = "text"):
    return runner.invoke(
        cli, [*base, "sheet", "--weight", "72 kg", "--date", "2026-11-25", "--format", fmt, *args]
    )


def test_the_shipped_protocols_have_a_gate_that_is_not_required(shipped: protocols.Library) -> None:
    for protocol in shipped.protocols.values():
        gate = protocol.preinfusion
        assert gate is not None
        assert gate.required is False
        assert set(gate.limits) == {"systolic", "diastolic", "heart_rate", "spo2"}
        assert gate.limits["systolic"].soft.high == 140
        assert gate.limits["diastolic"].soft.high == 90
    text = SHIPPED_PROTOCOLS.read_text(encoding="utf-8")
    assert "SPRAVATO" in text
    assert ">140 mmHg systolic, >90 mmHg diastolic" in text


def test_vitals_within_limits_pass_and_the_checklist_is_printed_as_boxes(
    runner: CliRunner,
) -> None:
    result = _sheet(runner, SHIPPED, "--bp", "128/82", "--hr", "76", "--spo2", "98%")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "PRE-INFUSION CHECK" in out
    assert "Systolic BP   128 mmHg: within limits (90 mmHg to 140 mmHg)" in out
    assert "Diastolic BP  82 mmHg: within limits" in out
    assert "Heart rate    76 /min: within limits (50 /min to 100 /min)" in out
    assert "SpO2          98%: within limits (94% to 100%)" in out
    assert "Verdict       PASSED: every value given is within the protocol's limits" in out
    assert "[ ] Escort home confirmed; no driving until the next day" in out


def test_existing_command_lines_keep_working_and_show_the_vitals_as_not_checked(
    runner: CliRunner,
) -> None:
    result = _sheet(runner, SHIPPED)
    assert result.exit_code == 0, result.output
    assert "Systolic BP   not given: NOT CHECKED" in result.stdout
    assert "INCOMPLETE: not checked: Systolic BP, Diastolic BP, Heart rate," in result.stdout


def test_a_hard_breach_refuses_the_sheet(runner: CliRunner) -> None:
    result = _sheet(runner, SHIPPED, "--bp", "128/82", "--spo2", "88", fmt="json")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["status"] == "refused"
    assert {k: body["errors"][0][k] for k in ("field", "code")} == {
        "field": "spo2",
        "code": "hard_limit",
    }
    assert "spo2 88% is below the hard limit 90%" in body["errors"][0]["message"]
    # Even with an override: a hard limit is never overridden.
    again = _sheet(runner, SHIPPED, "--spo2", "88", "--override", "x", "--operator", "RN Lee")
    assert again.exit_code == 1


def test_a_soft_breach_needs_an_override_with_reason_and_operator(runner: CliRunner) -> None:
    refused = _sheet(runner, SHIPPED, "--bp", "150/92")
    assert refused.exit_code == 1
    assert "systolic 150 mmHg is above the soft limit 140 mmHg" in refused.stderr
    assert "diastolic 92 mmHg is above the soft limit 90 mmHg" in refused.stderr
    assert "--override" in refused.stderr
    no_operator = _sheet(runner, SHIPPED, "--bp", "150/92", "--override", "rested, rechecked")
    assert no_operator.exit_code == 2
    done = _sheet(
        runner, SHIPPED, "--bp", "150/92", "--hr", "70", "--spo2", "97", "--override", "rested",
        "--operator", "RN Lee", fmt="json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    body = json.loads(done.stdout)
    assert [o["limit"] for o in body["overrides"]] == ["systolic", "diastolic"]
    assert body["overrides"][0]["operator"] == "RN Lee"
    assert body["preinfusion"]["verdict"] == "PASSED WITH OVERRIDE"
    readings = {r["name"]: r for r in body["preinfusion"]["readings"]}
    assert readings["systolic"]["value"] == "150 mmHg"
    assert readings["systolic"]["verdict"].startswith("OUTSIDE SOFT LIMITS, overridden by RN Lee")
    assert [w["code"] for w in body["warnings"]] == ["SOFT_LIMIT_OVERRIDDEN"] * 2


def test_required_vitals_that_are_missing_refuse_with_a_clear_message(
    runner: CliRunner, tmp_path: Path
) -> None:
    base = ["--protocols", str(_gated(tmp_path, required=True))]
    result = _sheet(runner, base, "--bp", "128/82")
    assert result.exit_code == 1
    assert "requires vitals before the infusion; not given: Heart rate, SpO2" in result.stderr
    assert "--hr, --spo2" in result.stderr
    assert _sheet(runner, base, "--bp", "128/82", "--hr", "76", "--spo2", "98").exit_code == 0


def test_not_required_vitals_may_be_missing(runner: CliRunner, tmp_path: Path) -> None:
    base = ["--protocols", str(_gated(tmp_path))]
    result = _sheet(runner, base, "--hr", "76")
    assert result.exit_code == 0, result.output
    assert "Heart rate    76 /min: within limits" in result.stdout
    assert "INCOMPLETE: not checked: Systolic BP, Diastolic BP, SpO2" in result.stdout


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--bp", "128 / 82"),
        ("--bp", "128/82/1"),
        ("--bp", "82/128"),  # diastolic above systolic: the numbers are swapped
        ("--bp", "128"),
        ("--bp", "0/0"),
        ("--bp", "128.5/82"),
        ("--bp", "400/82"),
        ("--bp", "128/82 mmhg x"),
        ("--hr", "076"),
        ("--hr", "76.5"),
        ("--hr", "-76"),
        ("--hr", "\uff17\uff16"),  # fullwidth digits
        ("--hr", "7e1"),
        ("--hr", "76 bpm"),
        ("--hr", ""),
        ("--spo2", "101"),
        ("--spo2", "98.5%"),
        ("--spo2", "0.98"),
        ("--spo2", "98 %%"),
        ("--spo2", "nan"),
    ],
)
def test_vitals_outside_the_grammar_are_refused_with_exit_2(
    runner: CliRunner, option: str, value: str
) -> None:
    result = _sheet(runner, SHIPPED, option, value, fmt="json")
    assert result.exit_code == 2, (value, result.output)
    body = json.loads(result.stdout)
    assert body["errors"][0]["code"] == "bad_vital"
    assert "Accepted:" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("option", "value"),
    [("--bp", "128/82 mmHg"), ("--hr", "76 /min"), ("--hr", "76/min"), ("--spo2", "98")],
)
def test_vitals_with_their_unit_are_accepted(runner: CliRunner, option: str, value: str) -> None:
    assert _sheet(runner, SHIPPED, option, value).exit_code == 0


def test_a_protocol_without_a_gate_shows_nothing_unless_vitals_are_given(
    runner: CliRunner,
) -> None:
    base = ["--protocols", str(TEST_PROTOCOLS)]
    plain = _sheet(runner, base, fmt="json")
    assert "preinfusion" not in json.loads(plain.stdout)
    assert "PRE-INFUSION" not in _sheet(runner, base).stdout
    given = _sheet(runner, base, "--bp", "128/82", "--spo2", "98")
    assert "Systolic BP   128 mmHg: no limit in this protocol" in given.stdout
    assert "values recorded only" in given.stdout


def test_html_and_pdf_show_the_gate_and_the_checklist(runner: CliRunner, tmp_path: Path) -> None:
    import subprocess

    for fmt in ("html", "pdf"):
        out = tmp_path / f"s.{fmt}"
        result = _sheet(runner, SHIPPED, "--bp", "128/82", "--hr", "76", "--spo2", "98",
                        "-o", str(out), fmt=fmt)  # fmt: skip
        assert result.exit_code == 0, result.output
        if fmt == "pdf":
            text = subprocess.run(
                ["pdftotext", str(out), "-"], capture_output=True, text=True, check=True
            ).stdout
        else:  # a number is joined to its unit by a no-break space in the HTML
            text = out.read_text(encoding="utf-8").replace("\u00a0", " ")
        assert "Pre-infusion check" in text or "PRE-INFUSION CHECK" in text
        assert "[ ] Escort home confirmed" in text
        assert "128 mmHg: within limits" in text


def test_the_audit_log_records_the_vitals(runner: CliRunner, tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _sheet(runner, SHIPPED, "--bp", "128/82", "--hr", "76", "--audit-log", str(log))
    [record] = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert (record["inputs"]["bp"], record["inputs"]["hr"], record["inputs"]["spo2"]) == (
        "128/82",
        "76",
        None,
    )
    assert record["result"]["preinfusion"]["verdict"].startswith("INCOMPLETE")


@pytest.mark.parametrize(
    ("gate", "key", "code"),
    [
        ("[protocols.ketamine-iv.preinfusion]\nrequired = 1\nchecklist = ['x']\n", "required",
         "wrong_type"),
        ("[protocols.ketamine-iv.preinfusion]\nsystolic = { soft = [90, 140] }\n",
         "systolic.soft[0]", "wrong_type"),
        ("[protocols.ketamine-iv.preinfusion]\nsystolic = { soft = ['90', '140 mmHg'] }\n",
         "systolic.soft[0]", "bad_vital"),
        ("[protocols.ketamine-iv.preinfusion]\nspo2 = { soft = ['94%', '101%'] }\n",
         "spo2.soft[1]", "bad_vital"),
        ("[protocols.ketamine-iv.preinfusion]\nheart_rate = { soft = ['100 /min', '50 /min'] }\n",
         "heart_rate.soft", "low_above_high"),
        ("[protocols.ketamine-iv.preinfusion]\nspo2 = { soft = ['90%', '100%'], "
         "hard = ['94%', '100%'] }\n", "spo2.soft", "soft_outside_hard"),
        ("[protocols.ketamine-iv.preinfusion]\npulse = { soft = ['50 /min', '90 /min'] }\n",
         "pulse", "unknown_key"),
        ("[protocols.ketamine-iv.preinfusion]\nrequired = true\nchecklist = ['x']\n", "required",
         "nothing_required"),
        ("[protocols.ketamine-iv.preinfusion]\nchecklist = []\n", "checklist", "wrong_type"),
        ("[protocols.ketamine-iv.preinfusion]\nchecklist = [\"\\u001b[2J\"]\n", "checklist[0]",
         "control_character"),
        ("[protocols.ketamine-iv]\npreinfusion = 'yes'\n", "", "wrong_type"),
    ],
)  # fmt: skip
def test_a_bad_preinfusion_table_is_refused_with_its_key_path(
    tmp_path: Path, gate: str, key: str, code: str
) -> None:
    path = tmp_path / "bad.toml"
    text = TEST_PROTOCOLS.read_text(encoding="utf-8")
    if gate.startswith("[protocols.ketamine-iv]\n"):  # a key inside the existing table
        text = text.replace("[protocols.ketamine-iv]\n", gate, 1)
    else:
        text += "\n" + gate
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProtocolFileError) as caught:
        protocols.load(path)
    where = "protocols.ketamine-iv.preinfusion" + (f".{key}" if key else "")
    assert (where, code) in {(p.field, p.code) for p in caught.value.problems}, (
        caught.value.problems
    )


def test_a_bad_preinfusion_table_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        TEST_PROTOCOLS.read_text(encoding="utf-8")
        + "\n[protocols.ketamine-iv.preinfusion]\nspo2 = { hard = ['90', '100'] }\n",
        encoding="utf-8",
    )
    result = runner.invoke(cli, ["protocols", "check", str(path)])
    assert result.exit_code == 3
    assert "protocols.ketamine-iv.preinfusion.spo2.hard[0]" in result.stderr


@pytest.mark.parametrize("paper", ["a4", "letter"])
@pytest.mark.parametrize("vitals", [[], ["--bp", "128/82", "--hr", "76", "--spo2", "98"]])
def test_the_gate_keeps_the_shipped_pdf_sheet_on_one_page(
    runner: CliRunner, tmp_path: Path, paper: str, vitals: list[str]
) -> None:
    import subprocess

    for pid in ("ketamine-iv", "ketamine-iv-syringe"):
        out = tmp_path / f"{pid}.pdf"
        args = ["--protocol", pid, "--paper", paper, "-o", str(out), *vitals]
        assert _sheet(runner, SHIPPED, *args, fmt="pdf").exit_code == 0
        info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True)
        assert "Pages:           1" in info.stdout, (pid, paper)


def test_missing_required_vitals_and_a_hard_breach_are_reported_together(
    runner: CliRunner, tmp_path: Path
) -> None:
    base = ["--protocols", str(_gated(tmp_path, required=True))]
    result = runner.invoke(
        cli, [*base, "sheet", "--weight", "400 kg", "--spo2", "85", "--format", "json"]
    )
    assert result.exit_code == 1
    codes = {(e["field"], e["code"]) for e in json.loads(result.stdout)["errors"]}
    assert {("weight", "hard_limit"), ("spo2", "hard_limit")} <= codes
    assert ("preinfusion", "vitals_required") in codes
