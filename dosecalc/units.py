"""The strict quantity grammar, and the one pint registry behind it.

Every quantity typed by a person or read from a file passes `parse_quantity` first: an allowlisted
grammar (plain ASCII decimal, a unit from a short clinical list). Only text that passed is handed to
pint, which checks the dimension and supplies exact conversion factors. pint is imported lazily and
asked once per distinct unit (results are cached), so arithmetic stays in `Decimal`.
"""

from __future__ import annotations

import re
from decimal import Decimal, localcontext
from functools import cache, lru_cache
from typing import Any, NamedTuple

from dosecalc.errors import InputError, Problem
from dosecalc.exact import EXACT
from dosecalc.sanitize import terminal

MAX_QUANTITY_CHARS = 32

# Lower-cased spelling accepted -> canonical spelling (the one printed, and the one in units.txt).
_TOKENS: dict[str, str] = {
    "kg": "kg",
    "g": "g",
    "mg": "mg",
    "mcg": "mcg",
    "ug": "mcg",
    "\u00b5g": "mcg",  # micro sign
    "\u03bcg": "mcg",  # Greek small letter mu
    "lb": "lb",
    "lbs": "lb",
    "ml": "mL",
    "l": "L",
    "min": "min",
    "h": "h",
    "hr": "h",
    "s": "s",
}


class Kind(NamedTuple):
    """What a field holds: the canonical units it accepts and a reference unit for pint's check."""

    name: str  # as said in messages: "a weight"
    units: tuple[str, ...]
    reference: str
    example: str


KINDS: dict[str, Kind] = {
    "weight": Kind("a weight", ("kg", "g", "lb"), "kg", "72 kg"),
    "dose_per_kg": Kind("a dose per kg", ("mg/kg", "mcg/kg"), "mg/kg", "0.5 mg/kg"),
    "dose": Kind("a dose", ("mg", "mcg", "g"), "mg", "36 mg"),
    "volume": Kind("a volume", ("mL", "L"), "mL", "100 mL"),
    "duration": Kind("a duration", ("min", "h", "s"), "min", "40 min"),
    "concentration": Kind("a concentration", ("mg/mL", "mcg/mL"), "mg/mL", "10 mg/mL"),
    "rate": Kind("a rate", ("mL/h", "mL/min"), "mL/h", "150 mL/h"),
    "dose_rate": Kind("a dose rate", ("mg/h", "mcg/h", "mg/min", "mcg/min"), "mg/h", "54 mg/h"),
    "dose_rate_per_kg": Kind(
        "a dose rate per kg",
        ("mg/kg/h", "mcg/kg/h", "mg/kg/min", "mcg/kg/min"),
        "mg/kg/h",
        "0.75 mg/kg/h",
    ),
}

_NUMBER = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_SHAPE = re.compile(
    r" *(?P<number>[0-9][0-9.,_]*|[.,][0-9][0-9.,_]*)? *(?P<unit>[^ 0-9.,_][^ ]*)? *"
)
_UNIT_CHARS = re.compile(r"[A-Za-z\u00b5\u03bc]+(?:/[A-Za-z\u00b5\u03bc]+)*")


class Quantity(NamedTuple):
    """A value that passed the grammar: exact decimal, canonical unit, and the text as typed."""

    value: Decimal
    unit: str
    text: str

    def to(self, unit: str) -> Decimal:
        """The value in `unit`: times an exact factor, or divided by one (s to min: / 60), always
        in the 60-digit context, so 7200 s is exactly 120 min whatever context the caller has."""
        multiply, divide = factor(self.unit, unit)
        return EXACT.divide(EXACT.multiply(self.value, multiply), divide)


# The old name, kept so that model.py and the protocols checker (changed by other work) need no
# edit: the policy itself is sanitize.terminal.
safe_echo = terminal


def _refuse(field: str, text: str, code: str, why: str, kind: Kind | None = None) -> InputError:
    accepted = ""
    if kind is not None:
        accepted = (
            f" Accepted: a plain number (digits and an optional decimal point) and one of "
            f"{', '.join(kind.units)}, for example {kind.example}."
        )
    return InputError(Problem(field, code, f"{field}: '{terminal(text)}' {why}.{accepted}"))


def parse_number(text: str, field: str, whole: str | None = None) -> Decimal:
    """A plain ASCII decimal (no sign, exponent, separators or other digits), as an exact Decimal.

    `whole` is the full text typed (number and unit), repeated in the message.
    """
    shown = text if whole is None else whole
    if len(text) > MAX_QUANTITY_CHARS:
        raise _refuse(field, shown, "too_long", f"is longer than {MAX_QUANTITY_CHARS} characters")
    stripped = text.strip(" ")
    if not _NUMBER.fullmatch(stripped):
        raise _refuse(
            field,
            shown,
            "bad_number",
            "is not a plain number: write digits with an optional decimal point and a leading "
            "zero (0.5), no sign, exponent, comma, underscore or spaces",
        )
    return Decimal(stripped)


@cache
def canonical_unit(unit_text: str) -> str | None:
    """The canonical spelling of an allowlisted unit ('MG/KG' -> 'mg/kg'), or None."""
    if not _UNIT_CHARS.fullmatch(unit_text):
        return None
    parts = []
    for token in unit_text.split("/"):
        canon = _TOKENS.get(token.lower())
        if canon is None:
            return None
        parts.append(canon)
    return "/".join(parts)


def parse_quantity(text: str, field: str, kind_name: str) -> Quantity:
    """Parse `text` as a quantity of the given kind, or raise InputError naming `field`."""
    if not isinstance(text, str):
        raise _refuse(field, str(text), "not_text", "is not text", KINDS[kind_name])
    return _parse_text(text, field, kind_name)


@lru_cache(maxsize=4096)  # a day list repeats its weights: parse each distinct text once
def _parse_text(text: str, field: str, kind_name: str) -> Quantity:
    kind = KINDS[kind_name]
    if len(text) > MAX_QUANTITY_CHARS:
        raise _refuse(
            field, text, "too_long", f"is longer than {MAX_QUANTITY_CHARS} characters", kind
        )
    if text.strip(" ") == "":
        raise _refuse(field, text, "empty", "is empty", kind)
    shape = _SHAPE.fullmatch(text)
    if shape is None:
        if text.lstrip(" ")[:1] in ("-", "+"):
            why = "has a sign: only a positive number is accepted"
        elif any(not ch.isascii() for ch in text if ch.isdigit()):
            why = "uses digits other than ASCII 0-9"
        else:
            why = "is not a number followed by a unit"
        raise _refuse(field, text, "bad_quantity", why, kind)
    number_text, unit_text = shape.group("number"), shape.group("unit")
    if number_text is None:
        raise _refuse(field, text, "no_number", "has no number in front of the unit", kind)
    if "," in number_text:
        raise _refuse(
            field,
            text,
            "decimal_comma",
            "contains a comma: decimal commas and thousands separators are not accepted "
            "(write 70.5, not 70,5; 1000, not 1,000)",
            kind,
        )
    value = parse_number(number_text, field, text)
    if unit_text is None:
        raise _refuse(
            field,
            text,
            "no_unit",
            f"has no unit: {kind.name[2:]} needs a unit, for example {kind.example}",
            kind,
        )
    unit = canonical_unit(unit_text)
    if unit is None:
        why = f"has a unit '{terminal(unit_text)}' that is not on dosecalc's list"
        raise _refuse(field, text, "unknown_unit", why, kind)
    if not same_dimension(unit, kind.reference):
        raise _refuse(field, text, "wrong_dimension", f"is {describe(unit)}, not {kind.name}", kind)
    if unit not in kind.units:
        raise _refuse(field, text, "unit_not_allowed", f"uses {unit}, not accepted here", kind)
    if value == 0:
        raise _refuse(field, text, "zero", "is zero: it must be greater than zero", kind)
    return Quantity(value, unit, text)


# --- pint, behind a table -----------------------------------------------------------------------
# pint's answers for every allowlisted unit (dimension, and the factor between any two units of a
# kind) are generated from units.txt by scripts/gen_unit_table.py into unit_table.py, and checked
# against a live registry by tests/test_unit_table.py. dosecalc reads the table, so a sheet, a batch
# or `protocols list` never pays pint's 0.2 s import; anything not in the table asks pint itself.


@cache
def registry() -> Any:
    """The one pint registry, built from units.txt only, with exact Decimal magnitudes."""
    from importlib import resources

    import pint

    definitions = resources.files("dosecalc").joinpath("units.txt")
    with resources.as_file(definitions) as path:
        return pint.UnitRegistry(str(path), non_int_type=Decimal, cache_folder=None)


def pint_dimensionality(unit: str) -> str:
    return str(registry().parse_units(unit).dimensionality)


def pint_factor(from_unit: str, to_unit: str) -> Decimal:
    magnitude = registry().Quantity(Decimal(1), from_unit).to(to_unit).magnitude
    return magnitude if isinstance(magnitude, Decimal) else Decimal(magnitude)


def exact_ratio(from_unit: str, to_unit: str) -> tuple[str, str]:
    """pint's factor as (multiply, divide): s to min is (1, 60), not a rounded 0.0166...67.

    Asked at 100 digits: a factor that is an exact decimal comes back short (0.45359237, 60); one
    that is not (1/60) fills every digit, and the other direction is then the exact one.
    """
    with localcontext() as context:
        context.prec = 100
        forward = pint_factor(from_unit, to_unit).normalize()
        if len(forward.as_tuple().digits) < 50:
            return format(forward, "f"), "1"
        backward = pint_factor(to_unit, from_unit).normalize()
    if len(backward.as_tuple().digits) >= 50:
        raise ValueError(f"no exact decimal ratio between {from_unit} and {to_unit}")
    return "1", format(backward, "f")


def pint_table() -> tuple[dict[str, str], dict[tuple[str, str], tuple[str, str]]]:
    """pint's dimension of every allowlisted unit, and the ratio between every two of a kind."""
    units = sorted({u for kind in KINDS.values() for u in kind.units})
    dimensions = {u: pint_dimensionality(u) for u in units}
    factors = {
        (a, b): exact_ratio(a, b)
        for kind in KINDS.values()
        for a in kind.units
        for b in kind.units
        if a != b
    }
    return dimensions, factors


@cache
def _dimensionality(unit: str) -> str:
    from dosecalc.unit_table import DIMENSIONS

    found = DIMENSIONS.get(unit)
    return found if found is not None else pint_dimensionality(unit)


def same_dimension(unit: str, other: str) -> bool:
    """True when pint says the two canonical units measure the same thing."""
    return _dimensionality(unit) == _dimensionality(other)


def describe(unit: str) -> str:
    """'a volume' for mL: the first kind listing the unit, else the first with the same dimension."""
    for kind in KINDS.values():
        if unit in kind.units:
            return kind.name
    for kind in KINDS.values():
        if same_dimension(unit, kind.reference):
            return kind.name
    return f"in {unit}"


@cache
def factor(from_unit: str, to_unit: str) -> tuple[Decimal, Decimal]:
    """(multiply, divide) taking a value in `from_unit` to `to_unit` (canonical, same dimension)."""
    if from_unit == to_unit:
        return Decimal(1), Decimal(1)
    from dosecalc.unit_table import FACTORS

    multiply, divide = FACTORS.get((from_unit, to_unit)) or exact_ratio(from_unit, to_unit)
    return Decimal(multiply), Decimal(divide)
