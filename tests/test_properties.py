"""Hypothesis properties of the grammar, the engine and the number formatter.

Expected values are built here with plain Decimal or integer arithmetic, never by dosecalc.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dosecalc import protocols
from dosecalc.display import format_number, round_half_up
from dosecalc.dosing import calculate
from dosecalc.errors import InputError
from dosecalc.units import KINDS, Quantity, parse_quantity

TEST_PROTOCOLS = Path(__file__).parent / "data" / "test_protocols.toml"
LIBRARY = protocols.load(TEST_PROTOCOLS)
LB_IN_KG = Decimal("0.45359237")  # exact, by definition

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

protocol_ids = st.sampled_from(sorted(LIBRARY.protocols))
# Weights 0.1 kg to 300 kg in steps of 0.1 kg, written as the text a nurse would type.
tenths = st.integers(min_value=1, max_value=3000)


def kg(tenths_of_kg: int) -> Quantity:
    value = Decimal(tenths_of_kg).scaleb(-1)
    return parse_quantity(f"{value} kg", "weight", "weight")


def text_of(value: Decimal, unit: str) -> str:
    return f"{format(value, 'f')} {unit}"


@PROPERTY
@given(pid=protocol_ids, w=tenths, k=st.integers(min_value=2, max_value=9))
def test_dose_is_exactly_linear_in_weight(pid: str, w: int, k: int) -> None:
    protocol = LIBRARY.protocols[pid]
    one = calculate(protocol, kg(w))
    times_k = calculate(protocol, kg(w * k))
    assert times_k.dose == k * one.dose
    # and it is the protocol's dose per kg times the weight: 0.5 mg/kg, 1 mcg/kg or 0.75 mg/kg.
    per_kg = {"ketamine-iv": Decimal("0.5"), "dex-load": Decimal(1)}.get(pid, Decimal("0.75"))
    assert one.dose == per_kg * Decimal(w).scaleb(-1)


@PROPERTY
@given(pid=protocol_ids, a=tenths, b=tenths)
def test_dose_of_a_sum_of_weights_is_the_sum_of_the_doses(pid: str, a: int, b: int) -> None:
    protocol = LIBRARY.protocols[pid]
    assert calculate(protocol, kg(a + b)).dose == (
        calculate(protocol, kg(a)).dose + calculate(protocol, kg(b)).dose
    )


# Pounds with up to two decimals, 0.01 to 660 lb: kg = lb x 0.45359237 and g = kg x 1000, exactly.
hundredths_of_lb = st.integers(min_value=1, max_value=66000)


@PROPERTY
@given(pid=protocol_ids, h=hundredths_of_lb)
@example(pid="ketamine-iv", h=15400)  # 154 lb = 69.85322498 kg
def test_the_same_weight_in_kg_g_and_lb_gives_the_same_dose(pid: str, h: int) -> None:
    protocol = LIBRARY.protocols[pid]
    lb = Decimal(h).scaleb(-2)
    in_kg = lb * LB_IN_KG
    in_g = in_kg * 1000
    results = [
        calculate(protocol, parse_quantity(text_of(value, unit), "weight", "weight"))
        for value, unit in ((lb, "lb"), (in_kg, "kg"), (in_g, "g"))
    ]
    assert {r.weight_kg for r in results} == {in_kg}
    assert len({r.dose for r in results}) == 1
    assert len({r.rate for r in results}) == 1


# --- the grammar never lets another exception out ---------------------------------------------

FRAGMENTS = [
    *"0123456789.,_ -+*/()#eExX",
    "kg",
    "KG",
    "g",
    "mg",
    "Mg",
    "mcg",
    "ug",
    "\u00b5g",
    "\u03bcg",
    "lb",
    "lbs",
    "mL",
    "L",
    "l",
    "min",
    "h",
    "hr",
    "s",
    "kilos",
    "nan",
    "inf",
    "**",
    "mg/kg",
    "mcg/kg",
    "/kg/h",
    "mL/h",
    "\u0667",
    "\uff17",
    "\U0001d7d5",
    "\x00",
    "\x1b",
    "\u202e",
    "\u00a0",
    "\t",
    "\n",
    "1e309",
]
fragment_text = st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join)
any_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.text(alphabet="0123456789 .,_-+kgmLlbhrsinuc/\u00b5", max_size=40),
    fragment_text,
)


@settings(max_examples=1500, deadline=None)
@given(text=any_text, kind=st.sampled_from(sorted(KINDS)))
@example(text="9**9**9 kg", kind="weight")
@example(text="70 kg + 5 lb", kind="weight")
@example(text="", kind="weight")
@example(text="1" * 33, kind="weight")
@example(text="1MG/M2/DAY", kind="daily_dose_per_m2")  # a unit with a digit (m2)
def test_any_string_parses_to_a_quantity_or_raises_input_error(text: str, kind: str) -> None:
    outcome: Quantity | InputError
    try:
        outcome = parse_quantity(text, "field", kind)
    except InputError as exc:
        outcome = exc
    if isinstance(outcome, InputError):
        assert outcome.problems
        assert all(p.field == "field" and p.message.startswith("field: ") for p in outcome.problems)
        return
    q = outcome
    assert isinstance(q, Quantity)
    assert q.value > 0
    assert q.unit in KINDS[kind].units
    assert len(text) <= 32
    # What was accepted is an ASCII number with nothing repaired: its digits are in the text.
    # (a unit may hold a digit after its first letter: mg/m2)
    assert re.fullmatch(
        r" *(0|[1-9][0-9]*)(\.[0-9]+)? *[A-Za-z\u00b5\u03bc/][A-Za-z0-9\u00b5\u03bc/]* *", text
    )


# --- the one number formatter -----------------------------------------------------------------

finite_decimals = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=-(10**15), max_value=10**15
)
GROUPED = re.compile(r"-?(0|[1-9][0-9]{0,2}(,[0-9]{3})*)(\.[0-9]*[1-9])?")


@PROPERTY
@given(value=finite_decimals)
@example(value=Decimal("36.0"))
@example(value=Decimal("0.50"))
@example(value=Decimal("1E+3"))
@example(value=Decimal("1E-7"))
@example(value=Decimal("-0.00"))
def test_format_number_never_prints_a_trailing_zero_a_leading_dot_or_an_exponent(
    value: Decimal,
) -> None:
    text = format_number(value)
    assert "e" not in text.lower()
    assert not text.startswith(".")
    assert not text.startswith("-.")
    if "." in text:
        assert not text.endswith("0")
        assert not text.endswith(".")
    assert GROUPED.fullmatch(text), text
    assert Decimal(text.replace(",", "")) == value  # nothing lost


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("36"), "36"),
        (Decimal("36.0"), "36"),
        (Decimal("0.5"), "0.5"),
        (Decimal("1000"), "1,000"),
        (Decimal("1234567.50"), "1,234,567.5"),
        (Decimal("1E+2"), "100"),
        (Decimal("0.0001"), "0.0001"),
    ],
)
def test_format_number_follows_the_ismp_examples(value: Decimal, expected: str) -> None:
    assert format_number(value) == expected


# --- rounding half up ----------------------------------------------------------------------------

# Steps in thousandths (0.001 to 10), values in millionths: both are integers at scale 10**6.
step_thousandths = st.sampled_from([1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 10000])


def reference_half_up(value_millionths: int, step_millionths: int) -> int:
    """Integer half-up to a multiple of the step, for a non-negative value: the tie goes up."""
    quotient, remainder = divmod(value_millionths, step_millionths)
    if 2 * remainder >= step_millionths:
        quotient += 1
    return quotient * step_millionths


@PROPERTY
@given(n=st.integers(min_value=0, max_value=10**7), s=step_thousandths)
def test_round_half_up_sends_every_tie_up(n: int, s: int) -> None:
    step = s * 1000  # millionths; always even, so half a step is a whole number of millionths
    tie = n * step + step // 2
    expected = reference_half_up(tie, step)
    assert expected == (n + 1) * step
    got = round_half_up(Decimal(tie).scaleb(-6), Decimal(s).scaleb(-3))
    assert got == Decimal(expected).scaleb(-6)


@PROPERTY
@given(v=st.integers(min_value=0, max_value=10**10), s=step_thousandths)
def test_round_half_up_agrees_with_integer_arithmetic(v: int, s: int) -> None:
    got = round_half_up(Decimal(v).scaleb(-6), Decimal(s).scaleb(-3))
    assert got == Decimal(reference_half_up(v, s * 1000)).scaleb(-6)


@pytest.mark.parametrize(
    ("value", "step", "expected"),
    [
        ("5.25", "0.1", "5.3"),  # f"{5.25:.1f}" prints 5.2
        ("2.675", "0.01", "2.68"),  # f"{2.675:.2f}" prints 2.67
        ("36.25", "0.5", "36.5"),  # the 0.5 mg step of the issue
        ("36.24", "0.5", "36"),
        ("0.05", "0.1", "0.1"),
    ],
)
def test_round_half_up_on_the_worked_ties(value: str, step: str, expected: str) -> None:
    assert round_half_up(Decimal(value), Decimal(step)) == Decimal(expected)


@PROPERTY
@given(
    digits=st.integers(min_value=1, max_value=10**12),
    places=st.integers(min_value=0, max_value=10),
    step=st.sampled_from(["1", "0.1", "0.01", "0.001", "0.5", "0.25", "10", "5"]),
)
@example(digits=1037495, places=4, step="0.1")  # 103.7495 mL: "103.75" would read as 103.8
def test_an_unrounded_value_as_printed_rounds_to_the_printed_value(
    digits: int, places: int, step: str
) -> None:
    """The exact value printed beside a figure ("103.7495 mL, given as 103.7 mL") rounds, half-up
    to the step, to the figure's printed value, and shows at least two more decimals than the
    step (outside worked-example check: "103.75 mL, given as 103.7 mL")."""
    from dosecalc.display import figure

    exact = Decimal(digits).scaleb(-places)
    fig = figure(exact, Decimal(step), "mL")
    shown = Decimal(fig.exact_number.replace(",", ""))  # thousands separators
    # Half-up by hand: the multiple of the step nearest the value shown, a tie going up.
    units = shown / Decimal(step)
    whole = int(units)  # shown > 0: truncation is the floor
    nearest = whole + (1 if units - whole >= Decimal("0.5") else 0)
    assert nearest * Decimal(step) == fig.rounded
    # At least two more decimals than the step: never further from the exact value than half
    # a unit in that place.
    step_places = len(step.partition(".")[2])
    assert abs(shown - exact) <= Decimal(5).scaleb(-(step_places + 3))


def test_a_total_of_103_7495_ml_is_printed_with_its_fourth_decimal() -> None:
    """ketamine-iv, 74.99 kg: 0.5 x 74.99 = 37.495 mg, / 10 mg/mL = 3.7495 mL, + 100 mL =
    103.7495 mL, half-up to 0.1 mL = 103.7 mL."""
    from click.testing import CliRunner

    from dosecalc.cli import cli

    result = CliRunner().invoke(
        cli, ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "74.99 kg", "--date",
              "2026-11-25"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "100 mL + 3.7495 mL = 103.7495 mL, given as 103.7 mL" in result.stdout
