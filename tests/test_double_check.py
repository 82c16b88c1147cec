"""The check code on every sheet, and `dosecalc check`: the second nurse's blind, independent
recomputation compared with what is in their hands and on the pump (issue 13)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TEST_PROTOCOLS

from dosecalc import checkcode, protocols
from dosecalc.cli import cli
from dosecalc.display import figure
from dosecalc.model import Order, make_sheet

BASE = ["--protocols", str(TEST_PROTOCOLS)]
# ketamine-iv (test file), 72 kg: 36 mg, 3.6 mL of 10 mg/mL, VTBI 103.6 mL, 155.4 mL/h, 40 min.
AS_PRINTED = ["--vial", "10 mg/mL", "--drawn", "3.6 mL", "--rate", "155.4 mL/h"]
AS_PRINTED += ["--vtbi", "103.6 mL"]
CODE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")


def _sheet_json(runner: CliRunner, *args: str) -> dict:
    result = runner.invoke(cli, [*BASE, "sheet", "--format", "json", "--date", "2026-11-25", *args])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _check(runner: CliRunner, *args: str, fmt: str = "text"):
    return runner.invoke(
        cli,
        [*BASE, "check", "--operator", "RN Kim", "--date", "2026-11-25", "--format", fmt, *args],
    )


# --- the check code ----------------------------------------------------------------------------


def test_every_sheet_format_carries_the_same_check_code(runner: CliRunner, tmp_path: Path) -> None:
    code = _sheet_json(runner, "--weight", "72 kg")["check_code"]
    assert CODE.fullmatch(code)
    for fmt in ("text", "html", "pdf"):
        out = tmp_path / f"sheet.{fmt}"
        args = [*BASE, "sheet", "--weight", "72 kg", "--date", "2026-11-25", "--format", fmt]
        result = runner.invoke(cli, [*args, "-o", str(out)])
        assert result.exit_code == 0, result.stderr
        if fmt == "pdf":
            import subprocess

            text = subprocess.run(
                ["pdftotext", str(out), "-"], capture_output=True, text=True, check=True
            ).stdout
        else:
            text = out.read_text(encoding="utf-8")
        assert code in text, fmt


def test_the_code_uses_crockford_base32_without_i_l_o_u() -> None:
    assert checkcode.ALPHABET == "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    assert len(set(checkcode.ALPHABET)) == 32
    assert not set("ILOU") & set(checkcode.ALPHABET)


def test_changing_any_one_printed_figure_changes_the_code(library: protocols.Library) -> None:
    # With a gravity giving set, so the drop factor and drops a minute are on the sheet too.
    sheet = make_sheet(library, Order(weight="72 kg", date="2026-11-25", drop_factor="20 gtt/mL"))
    assert {name for _, name in checkcode.COVERED} <= set(sheet.figures.values)
    values = dict(sheet.figures.values)
    p = sheet.protocol
    original = checkcode.code(p.id, p.version, library.sha256, values)
    assert original == sheet.check_code
    seen = {original}
    for _, name in checkcode.COVERED:
        fig = values[name]
        for change in (fig.step, -fig.step, fig.rounded * 9):  # one step either way; tenfold
            changed = figure(fig.rounded + change, fig.step, fig.unit)
            code = checkcode.code(p.id, p.version, library.sha256, {**values, name: changed})
            assert code != original, (name, changed.text)
            seen.add(code)
        unit = figure(fig.rounded, fig.step, fig.unit.replace("mg", "mcg").replace("mL", "L"))
        if unit.text != fig.text:
            assert checkcode.code(p.id, p.version, library.sha256, {**values, name: unit}) != (
                original
            )
    # The protocol's id, version and file hash are covered too.
    assert checkcode.code("other", p.version, library.sha256, values) != original
    assert checkcode.code(p.id, "test-2", library.sha256, values) != original
    assert checkcode.code(p.id, p.version, "0" * 64, values) != original


def test_the_code_covers_the_figures_as_printed_not_the_exact_values(
    library: protocols.Library,
) -> None:
    sheet = make_sheet(library, Order(weight="72 kg", date="2026-11-25"))
    values = dict(sheet.figures.values)
    conc = values["concentration"]  # 0.34749... printed as 0.347 mg/mL
    assert conc.exact != conc.rounded
    same_print = conc._replace(exact=conc.exact + Decimal("0.0001"))
    p = sheet.protocol
    code = checkcode.code(p.id, p.version, library.sha256, {**values, "concentration": same_print})
    assert code == sheet.check_code


def test_different_weights_give_different_codes(library: protocols.Library) -> None:
    codes = {
        make_sheet(library, Order(weight=f"{w} kg", date="2026-11-25")).check_code
        for w in range(40, 121)
    }
    assert len(codes) == 81


def test_the_code_covers_the_giving_set_and_the_drops_a_minute(runner: CliRunner) -> None:
    # 72 kg: 155.4 mL/h. With a 20 gtt/mL set: 155.4 x 20 / 60 = 51.8, 52 gtt/min; with a
    # 10 gtt/mL set: 25.9, 26 gtt/min. A nurse holding the wrong set sets half (or twice) the
    # drops: the two sheets must not share a code, nor with the sheet without a set.
    plain = _sheet_json(runner, "--weight", "72 kg")
    twenty = _sheet_json(runner, "--weight", "72 kg", "--drop-factor", "20 gtt/mL")
    ten = _sheet_json(runner, "--weight", "72 kg", "--drop-factor", "10 gtt/mL")
    assert (twenty["drops_per_min"], ten["drops_per_min"]) == (52, 26)
    assert len({plain["check_code"], twenty["check_code"], ten["check_code"]}) == 3
    # The second nurse gives the set prescribed: their code is the sheet's.
    same = _check(runner, "--weight", "72 kg", "--drop-factor", "20 gtt/mL", "--rate", "155.4 mL/h")
    assert same.exit_code == 0, same.output
    assert f"Check code      {twenty['check_code']}" in same.stdout
    # Checked against the 20 gtt/mL sheet's code with a 10 gtt/mL set: a mismatch.
    wrong = _check(
        runner, "--weight", "72 kg", "--drop-factor", "10 gtt/mL", "--code", twenty["check_code"]
    )
    assert wrong.exit_code == 1
    assert "MISMATCH" in wrong.stdout


# --- dosecalc check ------------------------------------------------------------------------------


def test_a_matching_check_exits_0_with_the_sheets_code(runner: CliRunner) -> None:
    code = _sheet_json(runner, "--weight", "72 kg")["check_code"]
    result = _check(runner, "--weight", "72 kg", *AS_PRINTED)
    assert result.exit_code == 0, result.output
    assert f"Check code      {code}" in result.stdout
    # The protocols file as the sheet names it (its name and short hash), not its whole path.
    assert f"Protocols file  {TEST_PROTOCOLS.name} (sha256 " in result.stdout
    assert str(TEST_PROTOCOLS.parent) not in result.stdout
    assert "MATCH: every value entered" in result.stdout
    assert result.stdout.count(": matches") == 4
    done = _check(runner, "--weight", "72 kg", *AS_PRINTED, "--code", code.lower(), fmt="json")
    assert done.exit_code == 0
    body = json.loads(done.stdout)
    assert body["status"] == "match"
    assert body["check_code"] == code
    assert [e["field"] for e in body["entries"]] == ["vial", "drawn", "rate", "vtbi", "code"]


def test_equal_values_in_other_units_or_with_trailing_zeros_match(runner: CliRunner) -> None:
    result = _check(
        runner, "--weight", "72 kg", "--vial", "10000 mcg/mL", "--drawn", "3.60 mL",
        "--rate", "155.40 mL/h", "--vtbi", "0.1036 L",
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_a_rate_with_a_slipped_decimal_is_a_mismatch_with_the_dose_it_implies(
    runner: CliRunner,
) -> None:
    slipped = [*AS_PRINTED[:4], "--rate", "15.54 mL/h", *AS_PRINTED[6:]]
    result = _check(runner, "--weight", "72 kg", *slipped)
    assert result.exit_code == 1
    out = result.stdout
    assert "Pump rate        15.54 mL/h: MISMATCH, this computation prints 155.4 mL/h" in out
    # 103.6 mL at 15.54 mL/h: 400 min; 5.4 mg/h; in the prescribed 40 min only 10.36 mL = 3.6 mg.
    flat = " ".join(out.split())  # a sentence broken at the terminal's width (80 piped)
    assert "runs 400 min, not 40 min" in flat
    assert "5.4 mg/h (0.075 mg/kg/h), not 54 mg/h (0.75 mg/kg/h)" in flat
    assert "it delivers 3.6 mg (0.05 mg/kg), not the 36 mg (0.5 mg/kg) prescribed" in flat
    assert "MISMATCH: 1 of 4 value(s) differ" in out


def test_tenfold_entries_never_deliver_more_than_the_bag_holds(runner: CliRunner) -> None:
    # 36 mL drawn up (tenfold) into the 100 mL bag: 136 mL holding 36 x 10 = 360 mg. A VTBI of
    # 1,036 mL at 1,554 mL/h runs 1,036 / 1,554 x 60 = 40 min, the prescribed time (never "runs
    # 40 min, not 40 min"); but the bag is empty after 136 / 1,554 x 60 = 5.2510 min, so at most
    # 360 mg (360 / 72 = 5 mg/kg) is delivered, not 1,036 mL x 360 / 136 = 2,742.353 mg.
    result = _check(
        runner, "--weight", "72 kg", "--drawn", "36 mL", "--rate", "1554 mL/h",
        "--vtbi", "1036 mL",
    )  # fmt: skip
    assert result.exit_code == 1
    out = " ".join(result.stdout.split())
    assert "runs 40 min: " in out
    assert "not 40 min" not in out
    assert "in the prescribed 40 min it delivers 360 mg (5 mg/kg), not the 36 mg (0.5 mg/kg)" in out
    assert "runs 40 min and delivers 360 mg (5 mg/kg), not the 36 mg (0.5 mg/kg) prescribed" in out
    assert out.count("only 136 mL is prepared: the pump would run the bag dry after 5.251 min") == 2
    assert "2,742" not in out


def test_a_rate_too_fast_that_still_gives_the_whole_dose_says_so(runner: CliRunner) -> None:
    # 103.6 mL at 160 mL/h: 38.85 min; within the prescribed 40 min the whole bag, 36 mg, goes
    # in: "delivers the 36 mg (0.5 mg/kg) prescribed", never "delivers 36 mg, not the 36 mg".
    result = _check(runner, "--weight", "72 kg", "--rate", "160 mL/h")
    assert result.exit_code == 1
    out = " ".join(result.stdout.split())
    assert "runs 38.85 min, not 40 min" in out
    assert "in the prescribed 40 min it delivers the 36 mg (0.5 mg/kg) prescribed" in out
    assert "not the 36 mg (0.5 mg/kg) prescribed" not in out


def test_a_50_mg_per_ml_vial_instead_of_10_is_a_mismatch_with_the_dose_drawn_up(
    runner: CliRunner,
) -> None:
    result = _check(runner, "--weight", "72 kg", "--vial", "50 mg/mL", "--drawn", "3.6 mL")
    assert result.exit_code == 1
    # 3.6 mL x 50 mg/mL = 180 mg = 2.5 mg/kg: five times the dose.
    flat = " ".join(result.stdout.split())
    assert "3.6 mL of 50 mg/mL holds 180 mg (2.5 mg/kg)" in flat
    assert "not the 36 mg (0.5 mg/kg) prescribed" in flat


def test_a_weight_read_in_lb_as_kg_is_caught_by_the_second_nurse(runner: CliRunner) -> None:
    # The first nurse typed the patient's 154 lb as 154 kg (and overrode the soft limit).
    wrong = _sheet_json(runner, "--weight", "154 kg", "--override", "as weighed", "--operator", "A")
    drawn, rate, vtbi = wrong["drug_volume_ml"], wrong["rate_ml_per_h"], wrong["total_volume_ml"]
    assert (drawn, rate, vtbi) == (7.7, 161.6, 107.7)  # 77 mg in 107.7 mL over 40 min
    # The second nurse confirms 69.9 kg (154 lb) and reads the syringe and the pump.
    result = _check(
        runner, "--weight", "69.9 kg", "--drawn", f"{drawn} mL", "--rate", f"{rate} mL/h",
        "--vtbi", f"{vtbi} mL", fmt="json",
    )  # fmt: skip
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["status"] == "mismatch"
    assert body["check_code"] != wrong["check_code"]
    entries = {e["field"]: e for e in body["entries"]}
    assert not any(e["matches"] for e in entries.values())
    # 7.7 mL x 10 mg/mL = 77 mg for 69.9 kg: 1.102 mg/kg, more than twice the 0.5 mg/kg; the
    # prescribed 0.5 mg/kg x 69.9 kg = 34.95 mg is named unrounded (printed 35 mg on a sheet).
    assert (
        "holds 77 mg (1.102 mg/kg), not the 34.95 mg (0.5 mg/kg) prescribed"
        in (entries["drawn"]["implies"])
    )
    assert "delivers 77 mg (1.102 mg/kg)" in entries["vtbi"]["implies"]


def test_a_different_code_from_the_sheet_is_a_mismatch(runner: CliRunner) -> None:
    code = _sheet_json(runner, "--weight", "72 kg", "--duration", "45 min")["check_code"]
    result = _check(runner, "--weight", "72 kg", "--code", code)
    assert result.exit_code == 1
    assert "MISMATCH, this computation prints" in result.stdout
    assert "the two computations differ" in result.stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--vial", "10,0 mg/mL"], "vial"),
        (["--drawn", "3.6"], "drawn"),
        (["--rate", "155.4 mL"], "rate"),
        (["--vtbi", "1e2 mL"], "vtbi"),
        (["--rate", "nan mL/h"], "rate"),
        (["--code", "MV2O-XBKG"], "code"),  # O is not in the alphabet: never read as 0
        (["--code", "MV2T-XBK"], "code"),
        ([], "check"),  # nothing to compare
    ],
)
def test_bad_entries_are_refused_with_exit_2(
    runner: CliRunner, args: list[str], field: str
) -> None:
    result = _check(runner, "--weight", "72 kg", *args, fmt="json")
    assert result.exit_code == 2, result.output
    body = json.loads(result.stdout)
    assert body["status"] == "error"
    assert field in {e["field"] for e in body["errors"]}


def test_a_bad_weight_and_a_bad_entry_are_reported_together(runner: CliRunner) -> None:
    result = _check(runner, "--weight", "72", "--rate", "15,54 mL/h")
    assert result.exit_code == 2
    assert "weight:" in result.stderr
    assert "rate:" in result.stderr


def test_the_check_needs_the_checking_nurses_name(runner: CliRunner) -> None:
    result = runner.invoke(cli, [*BASE, "check", "--weight", "72 kg", "--rate", "155.4 mL/h"])
    assert result.exit_code == 2
    assert "operator" in result.stderr


def test_a_soft_limit_needs_the_second_nurses_own_override(runner: CliRunner) -> None:
    refused = _check(runner, "--weight", "154 kg", "--rate", "161.6 mL/h")
    assert refused.exit_code == 1
    assert "soft limit" in refused.stderr
    done = _check(runner, "--weight", "154 kg", "--rate", "161.6 mL/h", "--override", "confirmed")
    assert done.exit_code == 0, done.output


def test_a_bad_protocols_file_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text("format = 2\n", encoding="utf-8")
    result = runner.invoke(
        cli, ["--protocols", str(bad), "check", "--weight", "72 kg", "--operator", "A"]
    )
    assert result.exit_code == 3


def test_sheet_and_check_are_both_audit_logged_with_their_operators(
    runner: CliRunner, tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    sheet = _sheet_json(
        runner, "--weight", "72 kg", "--operator", "RN Lee", "--audit-log", str(log)
    )
    _check(runner, "--weight", "72 kg", *AS_PRINTED, "--audit-log", str(log))
    _check(runner, "--weight", "72 kg", "--rate", "15.54 mL/h", "--audit-log", str(log))
    _check(runner, "--weight", "72", "--rate", "15.54 mL/h", "--audit-log", str(log))
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [r["event"] for r in records] == ["sheet", "check", "check", "check"]
    assert records[0]["inputs"]["operator"] == "RN Lee"
    assert records[0]["result"]["check_code"] == sheet["check_code"]
    first, second, bad = records[1:]
    assert first["inputs"]["operator"] == "RN Kim"
    assert first["result"]["status"] == "match"
    assert first["result"]["check_code"] == sheet["check_code"]
    assert first["inputs"]["entered"]["rate"] == "155.4 mL/h"
    assert second["result"]["status"] == "mismatch"
    assert bad["error"]["status"] == "error"
    assert "result" not in bad
    assert all(r["protocols_sha256"] for r in records)


def test_the_check_ignores_a_required_preinfusion_gate(runner: CliRunner, tmp_path: Path) -> None:
    text = TEST_PROTOCOLS.read_text(encoding="utf-8") + (
        "\n[protocols.ketamine-iv.preinfusion]\nrequired = true\n"
        'spo2 = { hard = ["90%", "100%"] }\n'
    )
    gated = tmp_path / "gated.toml"
    gated.write_text(text, encoding="utf-8")
    args = ["--protocols", str(gated), "check", "--weight", "72 kg", "--operator", "RN Kim"]
    result = runner.invoke(cli, [*args, *AS_PRINTED])
    assert result.exit_code == 0, result.output


def test_a_hard_limit_refuses_the_check_as_it_refuses_the_sheet(runner: CliRunner) -> None:
    result = _check(runner, "--weight", "400 kg", "--rate", "155.4 mL/h", fmt="json")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["status"] == "refused"
    assert body["errors"][0]["code"] == "hard_limit"


def test_at_a_terminal_the_check_asks_for_the_weight_and_the_checking_nurse(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dosecalc.cli.is_interactive", lambda: True)
    result = runner.invoke(cli, [*BASE, "check", "--rate", "155.4 mL/h"], input="72 kg\nRN Kim\n")
    assert result.exit_code == 0, result.output
    assert "Weight you confirmed" in result.stderr
    assert "the checking nurse" in result.stderr
    assert "Pump rate  155.4 mL/h: matches" in result.stdout


def test_values_not_entered_are_named_so_a_match_is_not_read_as_complete(
    runner: CliRunner,
) -> None:
    result = _check(runner, "--weight", "72 kg", "--rate", "155.4 mL/h")
    assert result.exit_code == 0
    assert "Not compared (not entered): Vial strength, Volume drawn up, Pump VTBI" in result.stdout
    body = json.loads(
        _check(runner, "--weight", "72 kg", "--rate", "155.4 mL/h", fmt="json").stdout
    )
    assert body["not_entered"] == ["vial", "drawn", "vtbi"]
    full = _check(runner, "--weight", "72 kg", *AS_PRINTED)
    assert "Not compared" not in full.stdout


# --- a fixed dose (no dose per kg): the check crashed with a traceback (outside check) ---------

MORE = Path(__file__).resolve().parent.parent / "examples" / "protocols-more.toml"
# metronidazole-premix-gravity: 500 mg fixed, a 500 mg/100 mL premixed bag (5 mg/mL), 100 mL over
# 60 min = 100 mL/h, whatever the weight.
METRO = ["--protocols", str(MORE), "check", "--protocol", "metronidazole-premix-gravity",
         "--weight", "72 kg", "--operator", "RN Kim", "--date", "2026-11-25"]  # fmt: skip


def test_the_double_check_of_a_fixed_dose_matches_its_own_sheet(runner: CliRunner) -> None:
    entered = ["--vial", "500 mg/100 mL", "--drawn", "100 mL", "--rate", "100 mL/h"]
    result = runner.invoke(cli, [*METRO, *entered, "--vtbi", "100 mL"])
    assert result.exit_code == 0, result.output
    assert "MATCH: every value entered equals this independent computation" in result.stdout


def test_the_double_check_of_a_fixed_dose_says_what_wrong_entries_give(
    runner: CliRunner,
) -> None:
    entered = ["--vial", "500 mg/100 mL", "--drawn", "90 mL", "--rate", "110 mL/h"]
    result = runner.invoke(cli, [*METRO, *entered, "--vtbi", "90 mL"])
    assert result.exit_code == 1, result.output
    out = " ".join(result.stdout.split())
    # 90 mL x 5 mg/mL = 450 mg; 90 mL / 110 mL/h = 49.0909 min; 110 mL/h x 5 mg/mL = 550 mg/h,
    # / 72 kg = 7.6389 mg/kg/h (the sheet: 500 mg/h, 500 / 72 = 6.94 mg/kg/h).
    assert "90 mL of 5 mg/mL holds 450 mg, not the 500 mg prescribed" in out
    assert (
        "runs 49.091 min, not 60 min: 550 mg/h (7.6389 mg/kg/h), not 500 mg/h (6.94 mg/kg/h)"
        in (out)
    )
    assert "a VTBI of 90 mL at 110 mL/h runs 49.091 min and delivers 450 mg, not the 500 mg" in out
    assert "Traceback" not in result.output


def test_a_day_list_row_of_a_fixed_dose_with_pump_entries_is_checked(
    runner: CliRunner, tmp_path: Path
) -> None:
    """One such row stopped the whole day list with a traceback."""
    daylist = tmp_path / "day.csv"
    daylist.write_text(
        "patient_id,weight,protocol,vial,drawn,rate,vtbi\n"
        "A001,72 kg,metronidazole-premix-gravity,500 mg/100 mL,100 mL,100 mL/h,100 mL\n"
        "B002,72 kg,metronidazole-premix-gravity,500 mg/100 mL,100 mL,110 mL/h,100 mL\n"
    )
    result = runner.invoke(
        cli, ["--protocols", str(MORE), "batch", str(daylist), "--date", "2026-11-25"]
    )
    assert result.exit_code == 1, result.output
    rows = result.stdout.splitlines()
    assert rows[1].split(",")[5] == "ok"
    assert ",refused," in rows[2]
    assert "rate: 110 mL/h entered, the sheet says 100 mL/h" in rows[2]


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_the_double_check_on_a_terminal_is_broken_to_its_width_never_inside_a_number(
    width: int,
) -> None:
    """At a terminal the check's long lines were cut by the terminal at its last column
    ("not 40 min: 2" / "7 mg/h"); they are now broken at spaces, a number kept with its unit."""
    from dosecalc.double_check import double_check
    from dosecalc.render import as_check

    entered = {"vial": "50 mg/mL", "drawn": "3.6 mL", "rate": "15.54 mL/h", "vtbi": "103.6 mL"}
    outcome = double_check(
        protocols.load(TEST_PROTOCOLS), Order(weight="72 kg", date="2026-11-25"), entered
    )
    text = as_check.text(outcome, width=width)
    long = [line for line in text.splitlines() if len(line) > width]
    assert all(len(line.split()) == 1 for line in long), long  # only a path longer than a line
    assert not re.search(r"\d[\d,.]*\n *(?:mg|mL|min|kg)\b", text)
    # The same words as the unbroken text, in the same order: nothing lost or added.
    assert text.split() == as_check.text(outcome).split()
    assert "27 mg/h (0.375 mg/kg/h)" in " ".join(text.split())  # 15.54 mL/h x 50 mg/mL


def test_a_match_on_some_values_says_how_many_were_compared(runner: CliRunner) -> None:
    # One value of the four entered and matching read "MATCH: every value entered equals this
    # independent computation", a headline a nurse can take for the whole check.
    result = _check(runner, "--weight", "72 kg", "--vial", "10 mg/mL")
    assert result.exit_code == 0
    flat = " ".join(result.stdout.split())
    assert "MATCH for 1 of 4 values (3 not entered, not compared)" in flat
    full = _check(runner, "--weight", "72 kg", *AS_PRINTED)
    assert "MATCH: every value entered equals this independent computation" in full.stdout


def test_check_help_says_the_operator_is_the_checking_nurse(runner: CliRunner) -> None:
    # The shared options said "Who overrides a soft limit" and "Date on the sheet" on check too.
    text = " ".join(runner.invoke(cli, ["check", "--help"]).stdout.split())
    assert "--operator NAME You, the checking nurse: required" in text
    assert "Who overrides a soft limit" not in text
    assert "--date YYYY-MM-DD Date of the check" in text


def test_a_tiny_entry_never_holds_0_mg(runner: CliRunner) -> None:
    # 1e-21 mL x 10 mg/mL = 1e-20 mg (1e-20 / 72 kg per kg): printed "holds 0 mg (0 mg/kg)",
    # the "printed as 0" failure SAFETY.md names.
    result = _check(runner, "--weight", "72 kg", "--drawn", "0.000000000000000000001 mL")
    assert result.exit_code == 1
    flat = " ".join(result.stdout.split())
    assert "holds 0.00000000000000000001 mg (0.0000000000000000000001389 mg/kg)" in flat
    assert "holds 0 mg" not in flat
    assert "(0 mg/kg)" not in flat
