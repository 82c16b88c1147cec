"""Day-list columns for the bedside (issue 13): vitals for the pre-infusion gate, and what was drawn
up and programmed, compared with the printed figures as `dosecalc check` does."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dosecalc.cli import cli

SHIPPED = Path(__file__).resolve().parent.parent / "protocols.toml"


def run(runner: CliRunner, tmp_path: Path, rows: str) -> tuple[int, list[str]]:
    day = tmp_path / "day.csv"
    day.write_text(rows, encoding="utf-8")
    result = runner.invoke(
        cli, ["--protocols", str(SHIPPED), "batch", str(day), "--date", "2026-11-25"]
    )
    return result.exit_code, result.stdout.splitlines()


def test_what_was_programmed_is_compared_with_the_printed_figures(
    runner: CliRunner, tmp_path: Path
) -> None:
    # 72 kg x 0.5 mg/kg = 36 mg in 103.6 mL over 40 min: 155.4 mL/h. 15.54 mL/h (a slipped
    # decimal) runs the 103.6 mL in 400 min: in 40 min it gives 3.6 mg.
    code, lines = run(
        runner,
        tmp_path,
        "patient_id,weight,vial,drawn,rate,vtbi\n"
        "A1,72 kg,10 mg/mL,3.6 mL,155.4 mL/h,103.6 mL\n"
        "A2,72 kg,,,15.54 mL/h,103.6 mL\n"
        "A3,72 kg,50 mg/mL,3.6 mL,,\n",
    )
    assert code == 1
    assert ",A1,,2026-11-25,ketamine-iv,ok," in lines[1]
    assert ",refused," in lines[2]
    assert "rate: 15.54 mL/h entered, the sheet says 155.4 mL/h" in lines[2]
    assert "in the prescribed 40 min it delivers 3.6 mg" in lines[2]
    # 3.6 mL of 50 mg/mL is 180 mg, five times the dose
    assert "vial: 50 mg/mL entered, the sheet says 10 mg/mL" in lines[3]


def test_vitals_in_a_day_list_pass_the_gate_or_refuse_the_row(
    runner: CliRunner, tmp_path: Path
) -> None:
    # The shipped gate: hard systolic 80 to 180 mmHg; soft 90 to 140.
    code, lines = run(
        runner,
        tmp_path,
        "patient_id,weight,bp,hr,spo2\nB1,72 kg,128/82,76,98\nB2,72 kg,190/100,76,98\n",
    )
    assert code == 1
    assert ",B1,,2026-11-25,ketamine-iv,ok," in lines[1]
    assert "systolic 190 mmHg is above the hard limit 180 mmHg" in lines[2]


def test_a_bad_programmed_cell_makes_the_line_invalid(runner: CliRunner, tmp_path: Path) -> None:
    code, lines = run(runner, tmp_path, "patient_id,weight,rate\nC1,72 kg,155,4 mL/h\n")
    assert code == 1
    assert ",invalid," in lines[1]
