"""Preparation and delivery rules (issue 11) at their edges: a diluent volume per kg rounded and held
within its bounds, a to-concentration volume and a maximum dose rate taken on the dose as drawn, a
typed duration too short for the maximum rate, whole drops held to max_rounding_change, and the
verifier's own checks on printed figures.

Protocols: tests/data/delivery_protocols.toml. Every expected value is worked out by hand in the
comments.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dosecalc import protocols
from dosecalc.cli import cli
from dosecalc.display import figure
from dosecalc.errors import LimitError
from dosecalc.model import Order, make_sheet
from dosecalc.verify import verify

PROTOCOLS = Path(__file__).parent / "data" / "delivery_protocols.toml"


def sheet_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    result = runner.invoke(cli, ["--protocols", str(PROTOCOLS), "sheet", *args, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.mark.parametrize(
    ("weight", "diluent", "total", "drops"),
    [
        # 3 mL/kg x 10 kg = 30 mL, below diluent_volume_min 50 mL: 50 mL. 150 mg/kg x 10 kg =
        # 1,500 mg / 200 mg/mL = 7.5 mL; 50 + 7.5 = 57.5 mL, printed 58 mL (1 mL step); rate
        # 57.5 mL / 60 min = 57.5 mL/h; x 20 gtt/mL / 60 = 19.17 gtt/min: 19.
        ("10 kg", 50, 58, 19),
        # 3 x 20.15 = 60.45 mL, to the nearest 1 mL: 60. Drug 150 x 20.15 / 200 = 15.1125 mL;
        # total 75.1125 mL -> 75; 75.1125 x 20 / 60 = 25.04 gtt/min: 25.
        ("20.15 kg", 60, 75, 25),
        # 3 x 20.17 = 60.51 mL: 61. Drug 15.1275 mL; total 76.1275 -> 76; x 20 / 60 = 25.38: 25.
        ("20.17 kg", 61, 76, 25),
        # 3 x 40 = 120 mL, above diluent_volume_max 100 mL: 100. Drug 6,000 / 200 = 30 mL;
        # total 130 mL; 130 x 20 / 60 = 43.33: 43.
        ("40 kg", 100, 130, 43),
    ],
)
def test_a_diluent_per_kg_is_rounded_to_the_volume_step_and_held_within_its_bounds(
    runner: CliRunner, weight: str, diluent: int, total: int, drops: int
) -> None:
    data = sheet_json(runner, "--protocol", "nac", "--weight", weight)
    assert data["diluent_volume_ml"] == diluent
    assert data["total_volume_ml"] == total
    assert data["drops_per_min"] == drops
    assert data["drop_factor"] == 20
    assert data["diluent_volume_ml_per_kg"] == 3


def test_a_to_concentration_volume_is_worked_out_on_the_dose_as_drawn(runner: CliRunner) -> None:
    # 14.5 mg/kg x 70 kg = 1,015 mg, printed 1,020 mg (10 mg step, half-up); 1,015 / 100 mg/mL =
    # 10.15 mL, printed 10.2 mL, which holds 1,020 mg. At no more than 5 mg/mL: 1,020 / 5 = 204 mL
    # (1,015 / 5 = 203 mL would make the bag as drawn 1,020 / 203 = 5.02 mg/mL). Diluent
    # 204 - 10.15 = 193.85 -> 194 mL. Concentration 1,015 / 204 = 4.9755 -> 4.98 mg/mL.
    # Duration: 1,020 mg at no more than 10 mg/min = 102 min (not 1,015 / 10 = 101.5 min).
    data = sheet_json(runner, "--protocol", "vanco", "--weight", "70 kg", "--dose", "14.5 mg/kg")
    assert (data["dose"], data["drug_volume_ml"]) == (1020, 10.2)
    assert (data["total_volume_ml"], data["diluent_volume_ml"]) == (204, 194)
    assert data["concentration"] == 4.98
    assert data["final_concentration"] == 5
    assert data["duration_min"] == 102
    # 204 mL / 102 min x 60 = 120 mL/h; flush 20 mL / 120 mL/h x 60 = 10 min.
    assert (data["rate_ml_per_h"], data["flush_volume_ml"], data["flush_minutes"]) == (120, 20, 10)
    assert [w["code"] for w in data["warnings"]] == ["DURATION_LENGTHENED", "CHANGED_FROM_PROTOCOL"]


def test_a_typed_duration_too_short_for_the_maximum_rate_is_refused(runner: CliRunner) -> None:
    # 15 mg/kg x 68 kg = 1,020 mg at no more than 10 mg/min needs 102 min: 90 min is refused.
    args = ["--protocols", str(PROTOCOLS), "sheet", "--protocol", "vanco", "--weight", "68 kg"]
    result = runner.invoke(cli, [*args, "--duration", "90 min", "--format", "json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["errors"][0]
    assert (error["field"], error["code"]) == ("duration", "too_fast")
    assert "needs at least 102 min" in error["message"]
    # 120 min is long enough: used as typed, not lengthened; 204 mL / 120 min x 60 = 102 mL/h.
    fine = runner.invoke(cli, [*args, "--duration", "120 min", "--format", "json"])
    assert fine.exit_code == 0, fine.stderr
    data = json.loads(fine.stdout)
    assert (data["duration_min"], data["rate_ml_per_h"]) == (120, 102)
    assert "DURATION_LENGTHENED" not in [w["code"] for w in data["warnings"]]


def test_whole_drops_more_than_max_rounding_change_off_refuse_the_sheet(runner: CliRunner) -> None:
    # The neat push: 1 mg/kg x 40 kg = 40 mg of 10 mg/mL = 4 mL over 10 min = 24 mL/h. At 10
    # gtt/mL: 24 x 10 / 60 = 4 gtt/min exactly: fine. At 50 kg over 10 min: 5 mL, 30 mL/h, 5 gtt.
    # At 41 kg: 4.1 mL over 10 min = 24.6 mL/h x 10 / 60 = 4.1 gtt/min, printed 4: 2.4% off, fine.
    # At 43 kg: 25.8 mL/h -> 4.3 gtt/min, printed 4: 6.98% off, more than 5%: refused.
    base = ["--protocol", "push", "--duration", "10 min", "--drop-factor", "10 gtt/mL"]
    assert sheet_json(runner, *base, "--weight", "40 kg")["drops_per_min"] == 4
    assert sheet_json(runner, *base, "--weight", "41 kg")["drops_per_min"] == 4
    result = runner.invoke(
        cli, ["--protocols", str(PROTOCOLS), "sheet", *base, "--weight", "43 kg"]
    )
    assert result.exit_code == 1
    assert "drip rate 4.3 gtt/min is printed as 4 gtt/min" in result.stderr


def test_a_neat_dose_runs_what_is_drawn_up(runner: CliRunner) -> None:
    # 1 mg/kg x 72 kg = 72 mg of 10 mg/mL = 7.2 mL, the VTBI; over 5 min: 7.2 x 60 / 5 = 86.4 mL/h.
    data = sheet_json(runner, "--protocol", "push", "--weight", "72 kg")
    assert (data["drug_volume_ml"], data["total_volume_ml"]) == (7.2, 7.2)
    assert data["rate_ml_per_h"] == 86.4
    assert "diluent_volume_ml" not in data
    assert (data["preparation"], data["diluent"]) == ("neat", None)


def _vanco_sheet() -> Any:
    library = protocols.load(PROTOCOLS)
    return make_sheet(library, Order(weight="68 kg", date="2026-11-25", protocol_id="vanco"))


def test_the_verifier_refuses_a_printed_duration_faster_than_the_maximum_rate() -> None:
    # Printed 1,020 mg over a printed 101.9 min is 10.01 mg/min: faster than 10 mg/min.
    sheet = _vanco_sheet()
    shown = dict(sheet.figures.values)
    shown["duration"] = figure(Decimal("101.9"), Decimal("0.1"), "min")
    with pytest.raises(LimitError) as raised:
        verify(sheet.protocol, sheet.result, shown, (), sheet.figures.operands)
    assert "printed_max_dose_rate" in {p.code for p in raised.value.problems}


def test_the_verifier_refuses_a_printed_bag_stronger_than_the_final_concentration() -> None:
    # Printed 1,020 mg in a printed 203 mL is 5.02 mg/mL: stronger than 5 mg/mL.
    sheet = _vanco_sheet()
    shown = dict(sheet.figures.values)
    shown["total_volume"] = figure(Decimal(203), Decimal(1), "mL")
    with pytest.raises(LimitError) as raised:
        verify(sheet.protocol, sheet.result, shown, (), sheet.figures.operands)
    assert "printed_final_concentration" in {p.code for p in raised.value.problems}


def test_the_drip_rate_is_a_printed_line_of_arithmetic(runner: CliRunner) -> None:
    # 20 kg: 75 mL/h x 20 gtt/mL / 60 min/h = 25 gtt/min.
    result = runner.invoke(
        cli, ["--protocols", str(PROTOCOLS), "sheet", "--protocol", "nac", "--weight", "20 kg"]
    )
    assert result.exit_code == 0, result.stderr
    assert "75 mL/h x 20 gtt/mL / 60 min/h = 25 gtt/min" in result.stdout
    assert "Add it to 60 mL 5% glucose (3 mL/kg x 20 kg, to the nearest 1 mL" in result.stdout


def test_the_shipped_example_file_is_valid(runner: CliRunner) -> None:
    example = Path(__file__).parent.parent / "examples" / "protocols-more.toml"
    result = runner.invoke(cli, ["protocols", "check", str(example)])
    assert result.exit_code == 0, result.stderr


# --- continuous infusions ----------------------------------------------------------------------


def test_dopamine_5_mcg_kg_min_for_80_kg_from_400_mg_in_250_ml(runner: CliRunner) -> None:
    # 5 mcg/kg/min x 80 kg = 400 mcg/min = 24,000 mcg/h (300 mcg/kg/h); 400 mg/250 mL =
    # 1.6 mg/mL = 1,600 mcg/mL; 24,000 / 1,600 = 15 mL/h; the bag: 250 mL / 15 mL/h = 16.667 h =
    # 1,000 min. Titration: 2, 5, 10, 20 mcg/kg/min x 80 kg x 60 / 1,600 = 6, 15, 30, 60 mL/h.
    data = sheet_json(runner, "--protocol", "dopamine", "--weight", "80 kg")
    assert (data["rate_ml_per_h"], data["total_volume_ml"]) == (15, 250)
    assert (data["dose_rate"], data["dose_rate_unit"]) == (400, "mcg/min")
    assert (data["dose_rate_per_kg"], data["dose_rate_per_kg_unit"]) == (5, "mcg/kg/min")
    assert (data["dose_rate_per_h"], data["dose_rate_per_kg_per_h"]) == (24000, 300)
    assert (data["concentration"], data["concentration_unit"]) == (1600, "mcg/mL")
    assert data["bag_duration_min"] == 1000
    assert data["stock_label"] == "400 mg/250 mL"
    assert [(t["dose_rate"], t["rate_ml_per_h"]) for t in data["titration"]] == [
        (2, 6),
        (5, 15),
        (10, 30),
        (20, 60),
    ]
    assert "dose" not in data
    assert "duration_min" not in data
    assert data["reverse_check"]["agrees"] is True


def test_heparin_from_a_bag_made_up_on_the_ward_with_a_titration_step(runner: CliRunner) -> None:
    # 25,000 units of 1,000 units/mL = 25 mL, added to 225 mL: 250 mL at 100 units/mL.
    # 18 units/kg/h x 80 kg = 1,440 units/h / 100 units/mL = 14.4 mL/h; 250 / 14.4 h x 60 =
    # 1,041.667 min, printed 1,041.7 min. titration_step 2 units/kg/h from the hard limits 10 to 30:
    # 10, 12, ..., 30 (11 rows), each x 80 / 100 = 0.8 mL/h per unit/kg/h.
    data = sheet_json(runner, "--protocol", "heparin", "--weight", "80 kg")
    assert (data["drug_volume_ml"], data["diluent_volume_ml"], data["total_volume_ml"]) == (
        25,
        225,
        250,
    )
    assert data["drug_amount"] == 25000
    assert data["concentration"] == 100
    assert data["rate_ml_per_h"] == 14.4
    assert data["bag_duration_min"] == 1041.7
    assert (data["dose_rate"], data["dose_rate_unit"]) == (1440, "units/h")
    rows = [(t["dose_rate"], t["rate_ml_per_h"]) for t in data["titration"]]
    assert rows[0] == (10, 8)
    assert rows[4] == (18, 14.4)
    assert rows[-1] == (30, 24)
    assert len(rows) == 11


def test_a_starting_dose_rate_other_than_the_protocols(runner: CliRunner) -> None:
    # 7.5 mcg/kg/min x 80 kg = 600 mcg/min x 60 / 1,600 mcg/mL = 22.5 mL/h.
    data = sheet_json(
        runner, "--protocol", "dopamine", "--weight", "80 kg", "--dose-rate", "7.5 mcg/kg/min"
    )
    assert data["rate_ml_per_h"] == 22.5
    assert data["changed_from_protocol"] == [
        {"field": "dose_rate", "protocol": "5 mcg/kg/min", "used": "7.5 mcg/kg/min"}
    ]
    # 25 mcg/kg/min is above the hard limit of 20: refused.
    base = ["--protocols", str(PROTOCOLS), "sheet", "--protocol", "dopamine", "--weight", "80 kg"]
    result = runner.invoke(cli, [*base, "--dose-rate", "25 mcg/kg/min"])
    assert result.exit_code == 1
    assert "above the hard limit 20 mcg/kg/min" in result.stderr
    # A duration has no meaning for a continuous infusion: refused, naming --dose-rate.
    result = runner.invoke(cli, [*base, "--duration", "40 min"])
    assert result.exit_code == 2
    assert "--dose-rate" in result.stderr


def test_a_titration_row_above_the_rate_hard_limit_is_marked_not_to_run(runner: CliRunner) -> None:
    # 140 kg: 20 mcg/kg/min x 140 x 60 / 1,600 = 105 mL/h, above the rate hard limit 100 mL/h.
    result = runner.invoke(
        cli,
        ["--protocols", str(PROTOCOLS), "sheet", "--protocol", "dopamine", "--weight", "140 kg"],
    )
    assert result.exit_code == 0, result.stderr
    rows = {line.split("mL/h")[0].strip(): line for line in result.stdout.splitlines()}
    assert rows["20 mcg/kg/min    105"].endswith("OUTSIDE THE RATE HARD LIMITS: do not run")
    # 5 mcg/kg/min x 140 x 60 / 1,600 = 26.25 mL/h, printed 26.3 mL/h: the sheet's own rate.
    assert rows[" 5 mcg/kg/min   26.3".strip()].endswith("mL/h   (this sheet)")
    # The notes stand in a column of their own: every rate ends in the same column.
    table = [line for line in result.stdout.splitlines() if re.match(r" *\d+ mcg/kg/min  ", line)]
    assert len(table) == 4
    assert len({line.index("mL/h") for line in table}) == 1


def test_the_double_check_of_a_continuous_infusion(runner: CliRunner) -> None:
    # 150 mL/h x 1,600 mcg/mL = 240,000 mcg/h / 80 kg = 3,000 mcg/kg/h = 50 mcg/kg/min.
    args = ["--protocols", str(PROTOCOLS), "check", "--protocol", "dopamine", "--weight", "80 kg"]
    result = runner.invoke(cli, [*args, "--operator", "RN Kim", "--rate", "150 mL/h"])
    assert result.exit_code == 1
    assert "150 mL/h of 1,600 mcg/mL gives 50 mcg/kg/min, not the 5 mcg/kg/min" in result.stdout
    fine = runner.invoke(cli, [*args, "--operator", "RN Kim", "--rate", "15 mL/h"])
    assert fine.exit_code == 0, fine.stderr


CONTINUOUS = """
format = 1
default = "x"

[protocols.x]
name = "x"
drug = "dopamine"
indication = "x"
version = "1"
dose_rate = "5 mcg/kg/min"
stock = ["400 mg/250 mL"]
preparation = "neat"
advisory = "x"
monitoring = ["x"]
[protocols.x.round]
weight = "0.1 kg"
volume = "1 mL"
rate = "0.1 mL/h"
concentration = "1 mcg/mL"
dose_rate = "1 mcg/h"
dose_rate_per_kg = "0.1 mcg/kg/h"
[protocols.x.limits]
weight = { hard = ["30 kg", "200 kg"] }
dose_rate_per_kg = { hard = ["1 mcg/kg/min", "20 mcg/kg/min"] }
rate = { hard = ["1 mL/h", "999 mL/h"] }
"""


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        # A titration entry outside the hard limits of the dose rate (1 to 20 mcg/kg/min).
        ('preparation = "neat"', 'preparation = "neat"\ntitration = ["25 mcg/kg/min"]',
         "titration_outside_limits"),
        # A per-mL stock run neat gives no container volume: vtbi is required.
        ('stock = ["400 mg/250 mL"]', 'stock = ["1.6 mg/mL"]', "missing"),
        # A dose and a dose rate: a continuous infusion has no dose.
        ('preparation = "neat"', 'preparation = "neat"\ndose = "1 mg/kg"', "not_for_continuous"),
        # A bag made up on the ward needs the drug amount.
        ('preparation = "neat"', 'preparation = "add"\ndiluent = "x"\ndiluent_volume = "250 mL"', "missing"),
        # A VTBI larger than the premixed bag.
        ('preparation = "neat"', 'preparation = "neat"\nvtbi = "300 mL"', "vtbi_above_container"),
        # The rate hard limit is required.
        ('rate = { hard = ["1 mL/h", "999 mL/h"] }', "", "missing"),
    ],
)  # fmt: skip
def test_a_continuous_protocol_that_cannot_be_safe_is_refused(
    tmp_path: Path, old: str, new: str, code: str
) -> None:
    assert old in CONTINUOUS
    path = tmp_path / "p.toml"
    path.write_text(CONTINUOUS.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(protocols.ProtocolFileError) as raised:
        protocols.load(path)
    assert code in {p.code for p in raised.value.problems}


def test_the_continuous_example_itself_loads(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(CONTINUOUS, encoding="utf-8")
    assert protocols.load(path).protocols["x"].continuous == "min"


# --- found by the issue 11 attack ----------------------------------------------------------------

DATA = Path(__file__).parent / "data"


def test_the_bag_lasts_as_long_as_the_programmed_rate_runs_it(runner: CliRunner) -> None:
    # 2 mcg/kg/min x 70 kg = 140 mcg/min x 60 / 1,600 mcg/mL = 5.25 mL/h, programmed 5.5 mL/h
    # (0.5 mL/h step, half-up). The bag: 250 mL / 5.5 mL/h x 60 = 2,727.27 min, printed 2,727 min
    # (45 h 27 min); not 250 / 5.25 x 60 = 2,857 min, which would run the bag dry 2 h early.
    args = ["--protocols", str(DATA / "attack11_bag_lasts.toml"), "sheet", "--weight", "70 kg"]
    result = runner.invoke(cli, [*args, "--dose-rate", "2 mcg/kg/min", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["rate_ml_per_h"], data["bag_duration_min"]) == (5.5, 2727)
    text = runner.invoke(cli, [*args, "--dose-rate", "2 mcg/kg/min"]).stdout
    assert "250 mL / 5.5 mL/h x 60 min/h = 2,727.27 min, given as 2,727 min" in text
    assert "45 h 27 min" in text


def test_the_flush_runs_at_the_programmed_rate(runner: CliRunner) -> None:
    # Vancomycin 15 mg/kg x 68 kg = 1,020 mg in 204 mL over 200 min: 204 / 200 x 60 = 61.2 mL/h,
    # programmed 61 mL/h (1 mL/h step); the flush 20 mL / 61 mL/h x 60 = 19.67 min: 19.7 min.
    data = sheet_json(runner, "--protocol", "vanco", "--weight", "68 kg", "--duration", "200 min")
    assert (data["rate_ml_per_h"], data["flush_minutes"]) == (61, 19.7)


def test_the_programmed_rate_keeps_to_the_maximum_dose_rate(runner: CliRunner) -> None:
    # 15 mg/kg x 88 kg = 1,320 mg at 8 mg/mL = 165 mL; at no more than 11 mg/min: 120 min, where
    # 165 mL / 120 min x 60 = 82.5 mL/h would be programmed 85 mL/h (5 mL/h step, half-up):
    # 85 x 8 = 680 mg/h = 11.33 mg/min, too fast. The duration is lengthened in 0.1 min steps until
    # the programmed rate keeps to it: at 120.1 min, 165 / 120.1 x 60 = 82.43 mL/h -> 80 mL/h,
    # 80 x 8 = 640 mg/h = 10.67 mg/min.
    args = ["--protocols", str(DATA / "attack11_max_rate.toml"), "sheet", "--weight", "88 kg"]
    result = runner.invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["duration_min"], data["rate_ml_per_h"]) == (120.1, 80)
    # A typed 120 min is refused: its programmed rate runs faster than 11 mg/min.
    typed = runner.invoke(cli, [*args, "--duration", "120 min"])
    assert typed.exit_code == 1
    assert (
        "too_fast"
        in runner.invoke(cli, [*args, "--duration", "120 min", "--format", "json"]).stdout
    )


def test_the_double_check_takes_the_dose_rate_the_sheet_used(runner: CliRunner) -> None:
    # The sheet at 2 mcg/kg/min programs 5.5 mL/h (above); the double check with the same rate
    # matches it, and without it compares with the protocol's 5 mcg/kg/min (13.1 mL/h -> 13 mL/h).
    args = ["--protocols", str(DATA / "attack11_bag_lasts.toml"), "check", "--weight", "70 kg",
            "--rate", "5.5 mL/h", "--operator", "RN Kim"]  # fmt: skip
    assert runner.invoke(cli, [*args, "--dose-rate", "2 mcg/kg/min"]).exit_code == 0
    assert runner.invoke(cli, args).exit_code == 1


def test_a_titration_row_outside_the_rate_limits_is_flagged_in_json(runner: CliRunner) -> None:
    # 140 kg: 20 mcg/kg/min -> 105 mL/h, above the rate hard limit 100 mL/h (see above).
    data = sheet_json(runner, "--protocol", "dopamine", "--weight", "140 kg")
    flags = [(t["dose_rate"], t["within_rate_hard_limits"]) for t in data["titration"]]
    assert flags == [(2, True), (5, True), (10, True), (20, False)]


def test_a_bag_made_on_the_ward_gives_its_drug_amount_with_its_unit(runner: CliRunner) -> None:
    data = sheet_json(runner, "--protocol", "heparin", "--weight", "80 kg")
    assert (data["drug_amount"], data["drug_amount_unit"]) == (25000, "units")


def test_a_pump_only_continuous_infusion_refuses_a_drop_factor(runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        ["--protocols", str(PROTOCOLS), "sheet", "--protocol", "dopamine", "--weight", "80 kg",
         "--drop-factor", "20 gtt/mL"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "names no giving set" in result.stderr


@pytest.mark.parametrize(
    "titration",
    [
        '["5 mcg/kg/min", "5 mcg/kg/min"]',  # twice
        '["5 mcg/kg/min", "2 mcg/kg/min"]',  # falling
        '["0.3 mg/kg/h", "5 mcg/kg/min"]',  # 0.3 mg/kg/h is 5 mcg/kg/min: the same rate twice
    ],
)
def test_a_titration_list_not_rising_is_refused(tmp_path: Path, titration: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        CONTINUOUS.replace(
            'preparation = "neat"', f'preparation = "neat"\ntitration = {titration}'
        ),
        encoding="utf-8",
    )
    with pytest.raises(protocols.ProtocolFileError) as raised:
        protocols.load(path)
    assert "titration_order" in {p.code for p in raised.value.problems}


def test_the_same_strength_in_another_bag_is_another_container(
    runner: CliRunner, tmp_path: Path
) -> None:
    # 400 mg/250 mL and 800 mg/500 mL are both 1.6 mg/mL, in bags of 250 and 500 mL: a
    # continuous infusion runs the bag it hangs. 5 mcg/kg/min x 80 kg x 60 / 1,600 = 15 mL/h; the
    # 500 mL bag lasts 500 / 15 x 60 = 2,000 min.
    path = tmp_path / "p.toml"
    path.write_text(
        CONTINUOUS.replace(
            'stock = ["400 mg/250 mL"]', 'stock = ["400 mg/250 mL", "800 mg/500 mL"]'
        ),
        encoding="utf-8",
    )
    base = ["--protocols", str(path), "sheet", "--weight", "80 kg", "--format", "json"]
    big = json.loads(runner.invoke(cli, [*base, "--stock", "800 mg/500 mL"]).stdout)
    assert (big["stock_label"], big["total_volume_ml"], big["bag_duration_min"]) == (
        "800 mg/500 mL",
        500,
        2000,
    )
    # A bag of that strength the list does not have (1,600 mg in 1,000 mL) is refused, not
    # taken as the 250 mL bag.
    other = runner.invoke(cli, [*base, "--stock", "1600 mg/1000 mL"])
    assert other.exit_code == 2


def test_a_titration_row_above_the_dose_rate_hard_limit_for_this_patient_is_marked_not_to_run(
    runner: CliRunner, tmp_path: Path
) -> None:
    # Per kg every row is inside 1 to 20 mcg/kg/min; the protocol also caps the dose rate itself
    # at 1,000 mcg/min. At 80 kg: 10 mcg/kg/min x 80 kg = 800 mcg/min (inside), 15 x 80 = 1,200
    # mcg/min (outside); 1,600 mcg/mL: 800 x 60 / 1,600 = 30 mL/h, 1,200 x 60 / 1,600 = 45 mL/h.
    titration = 'titration = ["5 mcg/kg/min", "10 mcg/kg/min", "15 mcg/kg/min"]'
    cap = 'dose_rate = { hard = ["50 mcg/min", "1000 mcg/min"] }'
    text = CONTINUOUS.replace('preparation = "neat"', f'preparation = "neat"\n{titration}')
    text = text.replace("[protocols.x.limits]", f"[protocols.x.limits]\n{cap}")
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    args = ["--protocols", str(path), "sheet", "--weight", "80 kg", "--date", "2026-11-26"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    assert "30 mL/h OUTSIDE" not in result.stdout
    assert "45 mL/h   OUTSIDE THE HARD LIMITS (dose rate): do not run" in result.stdout
    data = json.loads(runner.invoke(cli, [*args, "--format", "json"]).stdout)
    flags = [
        (t["rate_ml_per_h"], t["within_rate_hard_limits"], t["within_hard_limits"])
        for t in data["titration"]
    ]
    assert flags == [(15, True, True), (30, True, True), (45, True, False)]


def test_the_double_check_compares_a_vial_in_units_the_heparin_mix_up(runner: CliRunner) -> None:
    # Heparin 25,000 units from 1,000 units/mL vials (25 mL) + 225 mL = 250 mL, 100 units/mL.
    # 80 kg x 18 units/kg/h = 1,440 units/h / 100 units/mL = 14.4 mL/h. The check refused every
    # vial in units ("is a concentration in units, not a concentration"), so the classic heparin
    # strength error could not be checked at all.
    args = ["--protocols", str(PROTOCOLS), "check", "--protocol", "heparin", "--weight", "80 kg"]
    args += ["--operator", "RN Kim", "--drawn", "25 mL", "--rate", "14.4 mL/h"]
    same = runner.invoke(cli, [*args, "--vial", "1000 units/mL"])
    assert same.exit_code == 0, same.output
    assert "Vial strength    1000 units/mL: matches" in same.stdout
    # A 5,000 units/mL vial: 25 mL holds 125,000 units, 500 units/mL; 14.4 mL/h x 500 = 7,200
    # units/h / 80 kg = 90 units/kg/h, five times the prescription.
    wrong = runner.invoke(cli, [*args, "--vial", "5000 units/mL"])
    assert wrong.exit_code == 1
    flat = " ".join(wrong.stdout.split())  # broken at 80 columns, piped
    assert "14.4 mL/h of 500 units/mL gives 90 units/kg/h, not the 18 units/kg/h" in flat
    # A vial in mg on a units protocol is refused as input, naming what is accepted.
    mass = runner.invoke(cli, [*args, "--vial", "1000 mg/mL"])
    assert mass.exit_code == 2
    assert "one of units/mL" in mass.stderr


def test_the_json_reverse_check_gives_the_numbers_the_sheet_prints_with_their_units(
    runner: CliRunner,
) -> None:
    # 70 kg x 5 mcg/kg/min x 60 min/h / 1,600 mcg/mL = 13.125 mL/h, printed 13.1 mL/h. From the
    # printed rate: 13.1 x 1,600 = 20,960 mcg/h; / 70 kg = 299.428571... mcg/kg/h (printed
    # 299.429); / 60 = 4.990476... mcg/kg/min (printed 4.99). The JSON gave 2.99 per hour beside
    # 0.05 per minute, rounded and with no unit.
    args = ["--protocols", str(PROTOCOLS), "sheet", "--protocol", "dopamine", "--weight", "70 kg"]
    data = json.loads(runner.invoke(cli, [*args, "--format", "json"]).stdout, parse_float=Decimal)
    assert data["reverse_check"] == {
        "dose_rate": 20960,
        "dose_rate_unit": "mcg/h",
        "dose_rate_per_kg": Decimal("299.429"),
        "dose_rate_per_kg_unit": "mcg/kg/h",
        "prescribed": Decimal("4.99"),
        "prescribed_unit": "mcg/kg/min",
        "agrees": True,
    }
    text = " ".join(runner.invoke(cli, args).stdout.split())
    assert "= 20,960 mcg/h; / 70 kg = 299.429 mcg/kg/h = 4.99 mcg/kg/min" in text


def test_a_dosing_weight_on_a_continuous_infusion_is_refused_saying_why(tmp_path: Path) -> None:
    # "has no dose, duration or checkpoints" did not say why heparin on adjusted weight is refused.
    basis = '[protocols.x.dosing_weight]\nbasis = "adjusted"\nuse_when_bmi_at_least = "30 kg/m2"\n'
    path = tmp_path / "p.toml"
    path.write_text(CONTINUOUS + basis, encoding="utf-8")
    with pytest.raises(protocols.ProtocolFileError) as raised:
        protocols.load(path)
    found = {p.field: p for p in raised.value.problems}
    problem = found["protocols.x.dosing_weight"]
    assert problem.code == "not_for_continuous"
    assert "dosed per kg of actual weight" in problem.message
    assert problem.message.endswith("leave dosing_weight out")


def test_the_lengthened_duration_names_the_amount_it_was_worked_out_from() -> None:
    # The example file's vancomycin (50 mg/mL, dose step 10 mg, drug volume step 0.1 mL) at
    # 72.3 kg: 15 mg/kg x 72.3 kg = 1,084.5 mg, printed "given as 1,080 mg"; 1,084.5 / 50 =
    # 21.69 mL, drawn up as 21.7 mL, which holds 21.7 x 50 = 1,085 mg. The maximum rate applies
    # to the most the bag can hold, 1,085 mg: 1,085 / 10 mg/min = 108.5 min. The reason must
    # name 1,085 mg, an amount the sheet prints ("(1,085 mg)"), not 1,085 rounded again to the
    # 10 mg step (1,090 mg, printed nowhere else).
    examples = Path(__file__).parent.parent / "examples" / "protocols-more.toml"
    args = ["--protocols", str(examples), "sheet", "--protocol", "vancomycin-5mg-per-ml"]
    args += ["--weight", "72.3 kg"]
    result = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["dose"], data["drug_volume_ml"], data["duration_min"]) == (1080, 21.7, 108.5)
    (lengthened,) = [w["message"] for w in data["warnings"] if w["code"] == "DURATION_LENGTHENED"]
    assert "1,085 mg at no more than 10 mg/min needs at least 108.5 min" in lengthened
    assert "1,090" not in result.stdout + result.stderr
    # The bag's volume is worked out from the same 1,085 mg: 1,085 / 5 mg/mL = 217 mL (1,080 /
    # 5 would be 216 mL), and the preparation step says so.
    text = CliRunner().invoke(cli, [*args, "--format", "text"])
    assert text.exit_code == 0, text.stderr
    flat = " ".join(text.stdout.split())
    assert "(1,085 mg at no more than 5 mg/mL: 217 mL, rounded up to the 1 mL step)" in flat


EXAMPLES = Path(__file__).parent.parent / "examples" / "protocols-more.toml"


def test_a_dose_rate_typed_per_hour_for_per_minute_is_refused_by_its_limits(
    runner: CliRunner,
) -> None:
    # Dopamine 1,600 mcg/mL is prescribed per minute; "0.5 mcg/kg/h" is 0.5 / 60 = 0.008333
    # mcg/kg/min, and at 80 kg 0.5 x 80 = 40 mcg/h / 1,600 mcg/mL = 0.025 mL/h, which rounds to
    # 0 mL/h: the bag would never empty. It was refused as "cannot be calculated exactly
    # (DivisionByZero)", exit 2; the limits name the slip, exit 1.
    args = ["--protocols", str(EXAMPLES), "sheet", "--protocol", "dopamine-premix-1600"]
    result = runner.invoke(cli, [*args, "--weight", "80 kg", "--dose-rate", "0.5 mcg/kg/h"])
    assert result.exit_code == 1, result.output
    assert "DivisionByZero" not in result.stderr
    assert "dose rate per kg 0.008333 mcg/kg/min is below the hard limit 2 mcg/kg/min" in (
        result.stderr
    )
    assert "rate 0.025 mL/h is below the hard limit 1 mL/h" in result.stderr


NOREPINEPHRINE = """format = 1
default = "norepinephrine"

[protocols.norepinephrine]
name = "Norepinephrine 4 mg in 250 mL (16 mcg/mL), start 8 mcg/min"
drug = "norepinephrine"
indication = "Hypotension"
version = "t1"
dose_rate = "8 mcg/min"
stock = ["1 mg/mL"]
preparation = "make-up-to"
drug_amount = "4 mg"
diluent = "5% dextrose"
diluent_volume = "250 mL"
advisory = "Central line preferred."
monitoring = ["Arterial blood pressure continuously"]
monitoring_grid = ["MAP (mmHg)"]

[protocols.norepinephrine.round]
weight = "0.1 kg"
drug_volume = "0.1 mL"
volume = "1 mL"
rate = "0.1 mL/h"
concentration = "0.1 mcg/mL"
dose_rate = "1 mcg/h"
dose_rate_per_kg = "0.01 mcg/kg/h"
dose_rate_per_min = "0.01 mcg/min"

[protocols.norepinephrine.limits]
weight = { hard = ["30 kg", "250 kg"] }
dose_rate = { soft = ["2 mcg/min", "20 mcg/min"], hard = ["0.5 mcg/min", "30 mcg/min"] }
rate = { hard = ["1 mL/h", "200 mL/h"] }
"""


def test_a_dose_rate_prescribed_per_minute_not_per_kg_is_shown_as_prescribed(
    runner: CliRunner, tmp_path: Path
) -> None:
    # 8 mcg/min of 4 mg in 250 mL (16 mcg/mL): 8 x 60 / 16 = 30 mL/h. Beside it the sheet showed
    # "(6.86 mcg/kg/h)" at 70 kg (8 x 60 / 70), per hour beside a per-minute prescription: read
    # as 6.86 mcg/kg/min it is 60 times the dose.
    path = tmp_path / "p.toml"
    path.write_text(NOREPINEPHRINE, encoding="utf-8")
    result = runner.invoke(cli, ["--protocols", str(path), "sheet", "--weight", "70 kg"])
    assert result.exit_code == 0, result.output
    assert "Dose rate: 8 mcg/min\n" in result.stdout
    assert "30 mL/h" in result.stdout
    assert "mcg/kg/h" not in result.stdout.split("REVERSE CHECK")[0]


def test_a_vtbi_rounded_up_past_the_bag_is_not_said_to_deliver_more_than_the_bag(
    runner: CliRunner,
) -> None:
    # Acetylcysteine (example file) at 12.5 kg: 150 mg/kg x 12.5 kg = 1,875 mg; 1,875 / 200 mg/mL
    # = 9.375 mL, drawn up as 9.38 mL (1,876 mg); the bag 37.5 + 9.375 = 46.875 mL, VTBI 46.9 mL.
    # The pump runs the bag dry: it delivers the bag, never 46.9 x 40 mg/mL = 1,876 mg of a
    # 1,875 mg dose ("a VTBI of 46.9 mL delivers 1,876 mg", while the last checkpoint said
    # 1,875 mg). The drawn-up volume's warning stands.
    args = ["--protocols", str(EXAMPLES), "sheet", "--protocol", "acetylcysteine-bag1-5-20kg"]
    result = runner.invoke(cli, [*args, "--weight", "12.5 kg", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["drug_volume_ml"], data["total_volume_ml"]) == (9.38, 46.9)
    assert [w["code"] for w in data["warnings"]] == ["ROUNDED_DRUG_VOLUME"]
    assert data["checkpoints"][-1]["dose"] == 1875


def test_a_diluent_that_does_not_add_up_to_the_final_volume_is_about_its_figure(
    runner: CliRunner,
) -> None:
    # Vancomycin (example file) at 68 kg: 1,020 mg = 20.4 mL, made up to 204 mL; the diluent
    # 204 - 20.4 = 183.6 mL prints on the 1 mL step as 184 mL, and 20.4 + 184 = 204.4 mL, not
    # 204. The nurse fills to 204 mL: the diluent is "about 184 mL". Four checks flagged "Add
    # 184 mL ... to make up to 204 mL" as not adding up.
    args = ["--protocols", str(EXAMPLES), "sheet", "--protocol", "vancomycin-5mg-per-ml"]
    text = " ".join(runner.invoke(cli, [*args, "--weight", "68 kg"]).stdout.split())
    assert "Make up to 204 mL with about 184 mL of 0.9% sodium chloride" in text
    # The shipped syringe at 72 kg: 3.6 mL + 46.4 mL = 50 mL exactly: no "about".
    shipped = ["sheet", "--protocol", "ketamine-iv-syringe", "--weight", "72 kg"]
    text = " ".join(runner.invoke(cli, shipped).stdout.split())
    assert "Make up to 50 mL with 46.4 mL of 0.9% sodium chloride." in text


def test_an_amount_of_1000_mcg_or_more_is_written_in_mg(runner: CliRunner, tmp_path: Path) -> None:
    # 4 mg of 1 mg/mL made up to 250 mL was printed "norepinephrine 4,000 mcg in 250 mL" and
    # "(4,000 mcg)" (the protocol's dose unit): ISMP lists large mcg amounts as error-prone, and
    # the vial says mg. 4,000 mcg / 1,000 = 4 mg.
    path = tmp_path / "p.toml"
    path.write_text(NOREPINEPHRINE, encoding="utf-8")
    result = runner.invoke(cli, ["--protocols", str(path), "sheet", "--weight", "70 kg"])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stdout.split())
    assert "continuous infusion, norepinephrine 4 mg in 250 mL (16 mcg/mL)" in flat
    assert "1. Draw up 4 mL of norepinephrine 1 mg/mL (1,000 mcg/mL) (4 mg)." in flat
    assert "4,000 mcg" not in flat.split("CALCULATION")[0]
