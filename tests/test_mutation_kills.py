"""Tests added to kill mutants that survived the mutation run (docs/safety/mutation.md).

Each pins a control the other tests reached only loosely: the warnings that rounding what is drawn
up or programmed changes what the patient receives (at their exact boundaries), the reverse check
and the make-up-to overflow refusal when the engine is called without the loader's protection, the
limit values the engine exposes, and the formatter's edge cases. Expected values are worked out by
hand in the comments.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal, localcontext
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import TEST_PROTOCOLS

from dosecalc.cli import cli
from dosecalc.display import decimals, figure, format_number
from dosecalc.dosing import calculate
from dosecalc.errors import InputError, LimitError
from dosecalc.exact import EXACT
from dosecalc.limits import Notice, limited_values, rounding_notices
from dosecalc.protocols import Library
from dosecalc.quantities import compiled
from dosecalc.sanitize import text as clean
from dosecalc.units import Quantity, parse_quantity

D = Decimal


def q(text: str, kind: str) -> Quantity:
    return parse_quantity(text, "test", kind)


# The pint-checked formulas rounding_notices works with (the same for every preparation).
CHECKED = compiled("add", "mg")


def result(stock: str, dose: str, concentration: Decimal | str, duration: str = "40") -> Any:
    """The parts of an engine result that rounding_notices reads."""
    return SimpleNamespace(
        stock=D(stock),
        dose=D(dose),
        concentration=D(concentration),
        duration=D(duration),
    )


# --- rounding what is drawn up or programmed ----------------------------------------------------


def test_a_drug_volume_rounded_away_from_the_dose_is_flagged_with_both_doses() -> None:
    # 36.27 mg at 10 mg/mL is 3.627 mL; with a 1 mL step the syringe holds 4 mL = 40 mg.
    notices = rounding_notices(
        CHECKED,
        result("10", "36.27", "0.35"),
        figure(D("36.27"), D("0.1"), "mg"),  # given as 36.3 mg
        figure(D("3.627"), D("1"), "mL"),  # given as 4 mL
        figure(D("103.6"), D("0.1"), "mL"),  # 103.6 x 0.35 = 36.26 mg: within 0.05 mg
        figure(D("155.4"), D("0.1"), "mL/h"),  # 103.6 mL at 155.4 mL/h = 40 min exactly
    )
    assert notices == [
        Notice("ROUNDED_DRUG_VOLUME", "4 mL drawn up holds 40 mg, not the 36.3 mg prescribed")
    ]


def test_a_rounding_difference_of_exactly_half_a_dose_step_is_not_flagged() -> None:
    # 36.05 mg; 3.605 mL given as 3.61 mL holds 36.1 mg: 0.05 mg away, exactly half the 0.1 mg
    # step, so not more than the dose's own rounding. VTBI 103 mL x 0.35 = 36.05 mg; 103 mL at
    # 154.5 mL/h = 40 min.
    notices = rounding_notices(
        CHECKED,
        result("10", "36.05", "0.35"),
        figure(D("36.05"), D("0.1"), "mg"),
        figure(D("3.605"), D("0.01"), "mL"),
        figure(D("103"), D("0.1"), "mL"),
        figure(D("154.5"), D("0.1"), "mL/h"),
    )
    assert notices == []


def test_a_rounded_vtbi_that_delivers_another_dose_is_flagged() -> None:
    # VTBI 103.6 mL with a 10 mL step is given as 100 mL: 100 x 0.35 = 35 mg, 1 mg short.
    notices = rounding_notices(
        CHECKED,
        result("10", "36", "0.35"),
        figure(D("36"), D("0.1"), "mg"),
        figure(D("3.6"), D("0.01"), "mL"),
        figure(D("103.6"), D("10"), "mL"),
        figure(D("150"), D("0.1"), "mL/h"),  # 100 mL at 150 mL/h = 40 min
    )
    assert notices == [
        Notice("ROUNDED_VTBI", "a VTBI of 100 mL delivers 35 mg, not the 36 mg prescribed")
    ]


def test_a_vtbi_rounded_up_past_the_bag_delivers_the_bag_not_more() -> None:
    # VTBI 103.6 mL with a 5 mL step is given as 105 mL, but the bag holds 103.6 mL (36 mg): the
    # pump runs it dry, and 105 x 0.35 = 36.75 mg is never given. No warning of another dose.
    notices = rounding_notices(
        CHECKED,
        result("10", "36", "0.35"),
        figure(D("36"), D("0.1"), "mg"),
        figure(D("3.6"), D("0.01"), "mL"),
        figure(D("103.6"), D("5"), "mL"),
        figure(D("157.5"), D("0.1"), "mL/h"),  # 105 mL at 157.5 mL/h = 40 min
    )
    assert notices == []


def test_a_vtbi_exactly_half_a_dose_step_away_is_not_flagged() -> None:
    # 103 mL x 0.35 mg/mL = 36.05 mg for 36 mg prescribed: exactly 0.05 mg.
    notices = rounding_notices(
        CHECKED,
        result("10", "36", "0.35"),
        figure(D("36"), D("0.1"), "mg"),
        figure(D("3.6"), D("0.01"), "mL"),
        figure(D("103"), D("0.1"), "mL"),
        figure(D("154.5"), D("0.1"), "mL/h"),
    )
    assert notices == []


def test_the_vtbi_check_keeps_all_sixty_digits_of_a_repeating_concentration() -> None:
    # 1 mg in 3 mL: 0.333... mg/mL to 60 digits. 3 mL x that = 0.999...9 (60 nines), which is
    # more than 0.05 mg away from a 1.05 mg dose. Rounded to 28 digits it would be 1.000, exactly
    # 0.05 mg away, and the warning would be lost.
    with localcontext(EXACT):
        third = D(1) / D(3)
    notices = rounding_notices(
        CHECKED,
        result("10", "1.05", third, duration="60"),
        figure(D("1.05"), D("0.1"), "mg"),
        figure(D("0.105"), D("0.001"), "mL"),  # 0.105 mL x 10 mg/mL = 1.05 mg exactly
        figure(D("3"), D("0.1"), "mL"),
        figure(D("3"), D("0.1"), "mL/h"),  # 3 mL at 3 mL/h = 60 min
    )
    assert [n.code for n in notices] == ["ROUNDED_VTBI"]


def test_a_rounded_rate_that_changes_the_duration_by_more_than_a_minute_is_flagged() -> None:
    # 155.4 mL/h with a 10 mL/h step is given as 160 mL/h: 103.6 mL x 60 / 160 = 38.85 min.
    with localcontext(EXACT):
        concentration = D(36) / D("103.6")
    notices = rounding_notices(
        CHECKED,
        result("10", "36", concentration),
        figure(D("36"), D("0.1"), "mg"),
        figure(D("3.6"), D("0.01"), "mL"),
        figure(D("103.6"), D("0.1"), "mL"),
        figure(D("155.4"), D("10"), "mL/h"),
    )
    assert notices == [
        Notice("ROUNDED_RATE", "at 160 mL/h the VTBI of 103.6 mL runs 38.9 min, not 40 min")
    ]


def test_a_rounded_rate_exactly_one_minute_off_is_not_flagged() -> None:
    # 41 mL at 60 mL/h runs 41 min for a 40 min infusion: exactly one minute, not more.
    notices = rounding_notices(
        CHECKED,
        result("10", "41", "1"),
        figure(D("41"), D("0.1"), "mg"),
        figure(D("4.1"), D("0.01"), "mL"),
        figure(D("41"), D("0.1"), "mL"),
        figure(D("60"), D("0.1"), "mL/h"),
    )
    assert notices == []


# --- the engine's own refusals, reached without the loader's protection -------------------------


def _dex(library: Library, final_volume: str) -> Any:
    protocol = library.get("dex-load")  # 1 mcg/kg, 100 mcg/mL, made up to 50 mL
    return dataclasses.replace(protocol, diluent_volume=q(final_volume, "volume"))


def test_a_make_up_to_drug_volume_above_the_final_volume_is_refused(library: Library) -> None:
    # 70 kg x 1 mcg/kg = 70 mcg; at 100 mcg/mL that is 0.7 mL, more than a 0.5 mL final volume.
    with pytest.raises(LimitError) as raised:
        calculate(_dex(library, "0.5 mL"), q("70 kg", "weight"))
    (problem,) = raised.value.problems
    assert (problem.field, problem.code) == ("drug_volume", "make_up_overflow")
    assert problem.message == (
        "drug volume 0.7 mL is more than the final volume 0.5 mL of a make-up-to preparation"
    )


def test_a_make_up_to_drug_volume_filling_the_final_volume_exactly_is_calculated(
    library: Library,
) -> None:
    # 0.7 mL of drug made up to 0.7 mL: no diluent, 100 mcg/mL; made up to 1 mL: 0.3 mL diluent.
    exact = calculate(_dex(library, "0.7 mL"), q("70 kg", "weight"))
    assert (exact.diluent_volume, exact.concentration) == (D(0), D(100))
    small = calculate(_dex(library, "1 mL"), q("70 kg", "weight"))
    assert small.diluent_volume == D("0.3")


def test_the_result_names_its_protocol_and_the_listed_stock(library: Library) -> None:
    protocol = library.get("ketamine-iv")
    chosen = calculate(protocol, q("72 kg", "weight"), stock=q("50000 mcg/mL", "concentration"))
    assert chosen.protocol_id == "ketamine-iv"
    assert chosen.chosen_stock.text == "50 mg/mL"  # as listed in the protocol, not as typed
    assert chosen.stock == D(50)


def test_a_stock_not_on_the_list_is_refused_with_its_code(runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "72 kg", "--stock",
         "20 mg/mL", "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 2
    (error,) = json.loads(result.stdout)["errors"]
    assert (error["field"], error["code"]) == ("stock", "stock_not_listed")


def test_limited_values_include_total_volume_and_dose_rates(library: Library) -> None:
    # 72 kg: 36 mg in 103.6 mL over 40 min: 54 mg/h, 0.75 mg/kg/h.
    values = limited_values(calculate(library.get("ketamine-iv"), q("72 kg", "weight")))
    assert values["total_volume"] == D("103.6")
    assert values["dose_rate"] == D(54)
    assert values["dose_rate_per_kg"] == D("0.75")


# --- grammar and formatter edges -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "says"),
    [
        ("70 g/mL", "weight", "is a concentration, not a weight"),  # g/mL: no kind lists it
        ("70 lb/kg", "weight", "is in lb/kg, not a weight"),  # mass per mass
        ("5 L/h", "dose", "is a rate, not a dose"),
    ],
)
def test_a_unit_no_kind_lists_is_described_by_its_dimension(
    text: str, kind: str, says: str
) -> None:
    with pytest.raises(InputError) as raised:
        parse_quantity(text, "field", kind)
    assert says in raised.value.problems[0].message


def test_clean_drops_newlines_unless_asked_and_always_drops_escapes() -> None:
    assert clean("a\nb\x1bc") == "abc"
    assert clean("a\nb\x1bc", keep_newlines=True) == "a\nbc"
    assert clean("\x1b\n", keep_newlines=True) == "\n"


def test_decimals_of_whole_steps_is_zero() -> None:
    assert [decimals(D(s)) for s in ("1", "5", "10", "0.5", "0.01")] == [0, 0, 0, 1, 2]


def test_negative_zero_is_printed_as_zero() -> None:
    assert format_number(D("-0")) == "0"
    assert format_number(D("-0.00")) == "0"
    assert format_number(D("-0.00"), grouping=False) == "0"


def test_a_huge_weight_with_a_repeating_rate_is_refused_with_the_rate_cut_to_six_decimals(
    runner: CliRunner,
) -> None:
    # 28 digits of weight over 7 min: a rate of 28 integer digits and a repeating fraction. Its
    # message rounds it at 60 digits (at Python's default 28 it would raise InvalidOperation, and
    # before the fix its decimals were miscounted at 28 digits and all 32 were printed).
    result = runner.invoke(
        cli,
        ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight",
         "9999999999999999999999999999 kg", "--duration", "7 min"],
    )  # fmt: skip
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 1
    # (100 mL + 0.5 mg/kg x 9999999999999999999999999999 kg / 10 mg/mL) x 60 / 7 min
    # = 30000000000000000000000005997 / 7 = 4285714285714285714285715142 + 3/7: cut to six decimals.
    assert (
        "rate 4,285,714,285,714,285,714,285,715,142.428571 mL/h is above the hard limit 999 mL/h"
    ) in result.stderr
    assert result.stdout == ""
