"""Worked examples, each computed by hand in the comments: the engine and the rounding must agree.

Expected numbers are written as literal strings; none is computed by calling dosecalc.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from dosecalc.errors import LimitError
from dosecalc.model import Order, Sheet, make_sheet
from dosecalc.protocols import Library

DATE = "2026-11-21"


def sheet_for(library: Library, weight: str, **kwargs: str) -> Sheet:
    return make_sheet(library, Order(weight=weight, date=DATE, **kwargs))


def numbers(sheet: Sheet) -> dict[str, str]:
    f = sheet.figures
    return {
        "weight_kg": f.weight_kg.text,
        "dose": f.dose.text,
        "drug_volume": f.drug_volume.text,
        "diluent": f.diluent_volume.text,
        "total": f.total_volume.text,
        "concentration": f.concentration.text,
        "rate": f.rate.text,
        "dose_rate": f.dose_rate.text,
        "dose_rate_per_kg": f.dose_rate_per_kg.text,
        "duration": f.duration.text,
    }


def test_72_kg_ketamine_gives_36_mg_in_103_6_ml_at_155_4_ml_per_h(library: Library) -> None:
    # 0.5 mg/kg x 72 kg = 36 mg; 36 mg / 10 mg/mL = 3.6 mL; 100 mL + 3.6 mL = 103.6 mL;
    # 36 / 103.6 = 0.347490... -> 0.347 mg/mL (step 0.001 mg/mL: issue 9's rounding-step rule);
    # 103.6 mL / 40 min x 60 = 155.4 mL/h;
    # 36 mg / 40 min x 60 = 54 mg/h; 54 / 72 = 0.75 mg/kg/h.
    sheet = sheet_for(library, "72 kg")
    assert numbers(sheet) == {
        "weight_kg": "72 kg",
        "dose": "36 mg",
        "drug_volume": "3.6 mL",
        "diluent": "100 mL",
        "total": "103.6 mL",
        "concentration": "0.347 mg/mL",
        "rate": "155.4 mL/h",
        "dose_rate": "54 mg/h",
        "dose_rate_per_kg": "0.75 mg/kg/h",
        "duration": "40 min",
    }
    assert sheet.warnings == ()
    assert sheet.overrides == ()


def test_checkpoints_are_every_10_min_with_cumulative_volume_and_dose(library: Library) -> None:
    # 103.6 mL over 40 min: 25.9 mL per 10 min; 36 mg over 40 min: 9 mg per 10 min.
    sheet = sheet_for(library, "72 kg")
    rows = [(c.minute.text, c.volume.text, c.dose.text) for c in sheet.figures.checkpoints]
    assert rows == [
        ("10 min", "25.9 mL", "9 mg"),
        ("20 min", "51.8 mL", "18 mg"),
        ("30 min", "77.7 mL", "27 mg"),
        ("40 min", "103.6 mL", "36 mg"),
    ]


def test_weight_in_lb_is_converted_exactly_and_flagged(library: Library) -> None:
    # 154 lb x 0.45359237 = 69.85322498 kg -> 69.9 kg; dose 0.5 x 69.85322498 = 34.92661249 mg
    # -> 34.9 mg; drug volume 3.492661249 mL -> 3.49 mL; total 103.492661249 mL -> 103.5 mL;
    # rate 103.492661249 x 60 / 40 = 155.2389918735 -> 155.2 mL/h.
    sheet = sheet_for(library, "154 lb")
    assert sheet.result.weight_kg == Decimal("69.85322498")
    got = numbers(sheet)
    assert got["weight_kg"] == "69.9 kg"
    assert got["dose"] == "34.9 mg"
    assert got["drug_volume"] == "3.49 mL"
    assert got["total"] == "103.5 mL"
    assert got["rate"] == "155.2 mL/h"
    assert [w.code for w in sheet.warnings] == ["WEIGHT_IN_LB"]
    # The unrounded values are shown beside the rounded ones for a pencil check.
    assert sheet.figures.weight_kg.exact_text == "69.853 kg"
    assert sheet.figures.dose.exact_text == "34.927 mg"


def test_weight_in_grams_gives_the_same_dose_as_in_kg(library: Library) -> None:
    # 72000 g = 72 kg -> 36 mg, as in the first example.
    assert numbers(sheet_for(library, "72000 g"))["dose"] == "36 mg"


def test_the_stronger_stock_gives_a_smaller_drug_volume(library: Library) -> None:
    # 36 mg / 50 mg/mL = 0.72 mL; total 100.72 mL -> 100.7 mL; rate 100.72 x 1.5 = 151.08
    # -> 151.1 mL/h; concentration 36 / 100.72 = 0.35742... -> 0.357 mg/mL.
    got = numbers(sheet_for(library, "72 kg", stock="50 mg/mL"))
    assert got["drug_volume"] == "0.72 mL"
    assert got["total"] == "100.7 mL"
    assert got["rate"] == "151.1 mL/h"
    assert got["concentration"] == "0.357 mg/mL"


def test_a_mcg_per_kg_protocol_reports_doses_in_mcg(library: Library) -> None:
    # dex-load: 1 mcg/kg x 70 kg = 70 mcg; 70 mcg / 100 mcg/mL = 0.7 mL; made up to 50 mL:
    # diluent 50 - 0.7 = 49.3 mL; concentration 70 / 50 = 1.4 mcg/mL; rate 50 mL / 10 min x 60
    # = 300 mL/h; dose rate 70 x 6 = 420 mcg/h; 420 / 70 = 6 mcg/kg/h.
    sheet = sheet_for(library, "70 kg", protocol_id="dex-load")
    assert numbers(sheet) == {
        "weight_kg": "70 kg",
        "dose": "70 mcg",
        "drug_volume": "0.7 mL",
        "diluent": "49.3 mL",
        "total": "50 mL",
        "concentration": "1.4 mcg/mL",
        "rate": "300 mL/h",
        "dose_rate": "420 mcg/h",
        "dose_rate_per_kg": "6 mcg/kg/h",
        "duration": "10 min",
    }
    # Checkpoints every 5 min: 25 mL and 35 mcg at 5 min, 50 mL and 70 mcg at the end.
    rows = [(c.minute.text, c.volume.text, c.dose.text) for c in sheet.figures.checkpoints]
    assert rows == [("5 min", "25 mL", "35 mcg"), ("10 min", "50 mL", "70 mcg")]


def test_the_shipped_make_up_to_syringe_protocol(shipped: Library) -> None:
    # 0.5 mg/kg x 72 kg = 36 mg = 3.6 mL of 10 mg/mL; made up to 50 mL: add 46.4 mL;
    # 36 / 50 = 0.72 mg/mL; 50 mL / 40 min x 60 = 75 mL/h.
    got = numbers(sheet_for(shipped, "72 kg", protocol_id="ketamine-iv-syringe"))
    assert got["dose"] == "36 mg"
    assert got["drug_volume"] == "3.6 mL"
    assert got["diluent"] == "46.4 mL"
    assert got["total"] == "50 mL"
    assert got["concentration"] == "0.72 mg/mL"
    assert got["rate"] == "75 mL/h"


def test_a_rounding_tie_rounds_half_up_not_to_even(library: Library) -> None:
    # ketamine-undiluted rounds doses to 0.5 mg. 0.5 mg/kg x 72.5 kg = 36.25 mg: a tie -> 36.5 mg
    # (half-even would give 36). Drug volume 36.25 / 10 = 3.625 mL: a tie at 0.01 -> 3.63 mL.
    # Total 3.625 + 0.1 = 3.725 mL -> 3.7 mL; rate 3.725 x 1.5 = 5.5875 -> 5.6 mL/h.
    got = numbers(sheet_for(library, "72.5 kg", protocol_id="ketamine-undiluted", dose="0.5 mg/kg"))
    assert got["dose"] == "36.5 mg"
    assert got["drug_volume"] == "3.63 mL"
    assert got["total"] == "3.7 mL"
    assert got["rate"] == "5.6 mL/h"


def test_a_rate_tie_of_5_25_ml_per_h_is_given_as_5_3(library: Library) -> None:
    # 0.5 mg/kg x 68 kg = 34 mg = 3.4 mL; + 0.1 mL = 3.5 mL; 3.5 x 60 / 40 = 5.25 mL/h -> 5.3
    # (a binary float prints f"{5.25:.1f}" as 5.2). At 5.3 mL/h, 3.5 mL runs 39.6 min: within
    # a minute of 40, so no rate-rounding warning.
    sheet = sheet_for(library, "68 kg", protocol_id="ketamine-undiluted", dose="0.5 mg/kg")
    assert sheet.figures.rate.text == "5.3 mL/h"
    assert sheet.figures.rate.exact_text == "5.25 mL/h"
    assert "ROUNDED_RATE" not in [w.code for w in sheet.warnings]


def test_a_longer_duration_lowers_the_rate_and_adds_checkpoints(library: Library) -> None:
    # 103.6 mL over 60 min = 103.6 mL/h; 36 mg / 1 h = 36 mg/h; 36 / 72 = 0.5 mg/kg/h.
    # 60 min is the soft maximum (inclusive): no override needed. Checkpoints 10..60: six.
    sheet = sheet_for(library, "72 kg", duration="1 h")
    got = numbers(sheet)
    assert (got["rate"], got["dose_rate"], got["duration"]) == ("103.6 mL/h", "36 mg/h", "60 min")
    assert got["dose_rate_per_kg"] == "0.5 mg/kg/h"
    assert [c.minute.text for c in sheet.figures.checkpoints] == [
        "10 min",
        "20 min",
        "30 min",
        "40 min",
        "50 min",
        "60 min",
    ]


def test_150_kg_sits_on_the_soft_weight_and_dose_limits_inclusive(library: Library) -> None:
    # 150 kg is the soft maximum; 0.5 x 150 = 75 mg is the soft dose maximum: both inclusive.
    sheet = sheet_for(library, "150 kg")
    assert sheet.figures.dose.text == "75 mg"
    assert sheet.overrides == ()


def test_just_past_the_soft_limit_needs_an_override(library: Library) -> None:
    # 150.1 kg > 150 kg soft max; 0.5 x 150.1 = 75.05 mg > 75 mg soft max.
    with pytest.raises(LimitError) as caught:
        sheet_for(library, "150.1 kg")
    assert [p.field for p in caught.value.problems] == ["weight", "dose"]
    assert all(p.code == "soft_limit" for p in caught.value.problems)


def test_an_override_with_reason_and_operator_is_recorded(library: Library) -> None:
    # 154 kg: weight > 150 kg soft; 0.5 x 154 = 77 mg > 75 mg soft.
    sheet = sheet_for(library, "154 kg", override_reason="Weighed today", operator="RN Lee")
    assert [(o.limit, o.value, o.reason, o.operator) for o in sheet.overrides] == [
        ("weight", "154 kg", "Weighed today", "RN Lee"),
        ("dose", "77 mg", "Weighed today", "RN Lee"),
    ]
    assert sheet.figures.dose.text == "77 mg"


def test_the_hard_weight_limit_is_inclusive_and_never_overridable(library: Library) -> None:
    # 300 kg is the hard maximum: allowed with an override of the soft limits it breaches
    # (weight > 150 kg; 0.5 x 300 = 150 mg > 75 mg). 300.1 kg is refused even with a reason.
    sheet = sheet_for(library, "300 kg", override_reason="bariatric", operator="RN Lee")
    assert sheet.figures.dose.text == "150 mg"
    with pytest.raises(LimitError) as caught:
        sheet_for(library, "300.1 kg", override_reason="bariatric", operator="RN Lee")
    assert caught.value.problems[0].code == "hard_limit"
    assert caught.value.problems[0].field == "weight"


def test_the_lowest_hard_weight_is_allowed_and_just_below_is_refused(library: Library) -> None:
    # 20 kg hard minimum (below the 40 kg soft minimum: needs an override); 0.5 x 20 = 10 mg is
    # exactly the soft dose minimum. 19.9 kg is below the hard minimum.
    sheet = sheet_for(library, "20 kg", override_reason="small adult", operator="RN Lee")
    assert sheet.figures.dose.text == "10 mg"
    assert [o.limit for o in sheet.overrides] == ["weight"]
    with pytest.raises(LimitError):
        sheet_for(library, "19.9 kg", override_reason="small adult", operator="RN Lee")


def test_the_reverse_check_reproduces_the_dose(library: Library) -> None:
    # 155.4 mL/h x 40/60 h = 103.6 mL; 103.6 mL x 36/103.6 mg/mL = 36 mg; 36 / 72 = 0.5 mg/kg.
    sheet = sheet_for(library, "72 kg")
    assert sheet.reverse.volume.text == "103.6 mL"
    assert sheet.reverse.dose.text == "36 mg"
    assert sheet.reverse.dose_per_kg.text == "0.5 mg/kg"


def test_a_vtbi_rounded_up_past_a_small_syringe_is_not_said_to_give_more(library: Library) -> None:
    # ketamine-undiluted, 0.5 mg/kg x 69 kg = 34.5 mg = 3.45 mL; total 3.55 mL -> VTBI 3.6 mL
    # (tie, half-up). 3.6 mL x (34.5 / 3.55) mg/mL = 34.986 mg was said to be delivered; the
    # syringe holds 3.55 mL and 34.5 mg, and the pump empties it: the dose, not more.
    sheet = sheet_for(library, "69 kg", protocol_id="ketamine-undiluted", dose="0.5 mg/kg")
    assert sheet.figures.total_volume.text == "3.6 mL"
    codes = [w.code for w in sheet.warnings]
    assert "ROUNDED_VTBI" not in codes
