"""The strict quantity grammar, and the one pint registry behind it.

Every quantity typed by a person or read from a file passes `parse_quantity` first: an allowlisted
grammar (plain ASCII decimal, a unit from a short clinical list). Only text that passed is handed to
pint, which checks the dimension and supplies exact conversion factors at run time (the registry is
built once per process and its answers cached per unit pair), so per-row arithmetic stays in `Decimal`.
"""

from __future__ import annotations

import re
from decimal import Decimal, localcontext
from functools import cache, lru_cache
from typing import Any, NamedTuple

from dosecalc.errors import InputError, Problem
from dosecalc.exact import EXACT
from dosecalc.sanitize import echo

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
    "day": "day",
    # "U" and "IU" are on the ISMP list of error-prone abbreviations (U read as 0 or 4): "units" only.
    "units": "units",
    "mmol": "mmol",
    "meq": "mEq",
    "cm": "cm",
    "m": "m",
    "in": "in",
    "m2": "m2",
    "gtt": "gtt",
}
# Every unit a quantity can be printed in (the renderers keep a number and its unit together).
UNIT_WORDS = frozenset(_TOKENS.values())


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
    "dose_rate": Kind(
        "a dose rate", ("mg/h", "mcg/h", "g/h", "mg/min", "mcg/min", "g/min"), "mg/h", "54 mg/h"
    ),
    "dose_rate_per_kg": Kind(
        "a dose rate per kg",
        ("mg/kg/h", "mcg/kg/h", "mg/kg/min", "mcg/kg/min"),
        "mg/kg/h",
        "0.75 mg/kg/h",
    ),
    "height": Kind("a height", ("cm", "m", "in"), "cm", "170 cm"),
    # Preparation and delivery (issue 11): a diluent volume per kg, a giving set's drop factor and
    # a gravity drip rate.
    "volume_per_kg": Kind("a volume per kg", ("mL/kg",), "mL/kg", "3 mL/kg"),
    "drop_factor": Kind("a drop factor", ("gtt/mL",), "gtt/mL", "20 gtt/mL"),
    "drip_rate": Kind("a drip rate", ("gtt/min",), "gtt/min", "31 gtt/min"),
    "bmi": Kind("a body mass index", ("kg/m2",), "kg/m2", "30 kg/m2"),
    "bsa": Kind("a body surface area", ("m2",), "m2", "1.8 m2"),
    "dose_per_m2": Kind("a dose per m2", ("mg/m2", "mcg/m2"), "mg/m2", "1.5 mg/m2"),
    "daily_dose": Kind("a dose per day", ("mg/day", "mcg/day", "g/day"), "mg/day", "4 g/day"),
    "daily_dose_per_kg": Kind(
        "a dose per kg per day", ("mg/kg/day", "mcg/kg/day"), "mg/kg/day", "45 mg/kg/day"
    ),
    "daily_dose_per_m2": Kind(
        "a dose per m2 per day", ("mg/m2/day", "mcg/m2/day"), "mg/m2/day", "300 mg/m2/day"
    ),
}
# Drug amounts that are not masses: each family is its own pint dimension. A kind whose units
# carry the drug's amount (mg/kg, mg/mL, ...) has a variant per family, named "kind@family"
# ("dose_per_kg@units": units/kg), so a units protocol parses its steps, limits and stock as units
# and refuses mg (and a mEq protocol refuses mmol).
FAMILIES: dict[str, str] = {"mg": "mass", "mcg": "mass", "g": "mass"}
for _family, _example in (("units", "5000"), ("mmol", "20"), ("mEq", "20")):
    FAMILIES[_family] = _family
    for _name, _kind in list(KINDS.items()):
        if "@" in _name or _kind.reference.split("/")[0] != "mg":
            continue
        _units = tuple(
            dict.fromkeys(_family + u[u.index("/") :] if "/" in u else _family for u in _kind.units)
        )
        KINDS[f"{_name}@{_family}"] = Kind(
            f"{_kind.name} in {_family}", _units, _units[0], f"{_example} {_units[0]}"
        )


def family_kind(kind: str, amount_unit: str) -> str:
    """The kind for a protocol dosing in `amount_unit` (mg: the kind itself; units: kind@units)."""
    family = FAMILIES.get(amount_unit, "mass")
    if family == "mass" or f"{kind}@{family}" not in KINDS:
        return kind
    return f"{kind}@{family}"


_NUMBER = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_SHAPE = re.compile(
    r" *(?P<number>[0-9][0-9.,_]*|[.,][0-9][0-9.,_]*)? *(?P<unit>[^ 0-9.,_][^ ]*)? *"
)
# Letters, and a 2 only at the end of a token ("m2", "kg/m2").
_UNIT_CHARS = re.compile(r"[A-Za-z\u00b5\u03bc]+2?(?:/[A-Za-z\u00b5\u03bc]+2?)*")


class Quantity(NamedTuple):
    """A value that passed the grammar: exact decimal, canonical unit, the text as typed, and the
    kind of field it was typed in (a weight's 'g' is a body gram, a dose's a drug gram)."""

    value: Decimal
    unit: str
    text: str
    kind: str = ""

    def to(self, unit: str) -> Decimal:
        """The value in `unit`: times pint's exact factor, or divided by one (s to min: / 60), always
        in the 60-digit context, so 7200 s is exactly 120 min whatever context the caller has."""
        multiply, divide = factor(self.unit, unit, self.kind)
        return EXACT.divide(EXACT.multiply(self.value, multiply), divide)


def _refuse(field: str, text: str, code: str, why: str, kind: Kind | None = None) -> InputError:
    accepted = ""
    if kind is not None:
        accepted = (
            f" Accepted: a plain number (digits and an optional decimal point) and one of "
            f"{', '.join(kind.units)}, for example {kind.example}."
        )
    return InputError(Problem(field, code, f"{field}: '{echo(text)}' {why}.{accepted}"))


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


_WORD = re.compile(r"[^\W\d_]+")  # a run of letters: in text that passed the grammar, a unit


def canonical_spelling(text: str) -> str:
    """Text that passed the grammar with each unit spelled canonically, as a sheet prints units
    ('10000 µg/mL' -> '10000 mcg/mL', '50 MG/ML' -> '50 mg/mL'; SAFETY: mcg, never µg)."""
    return _WORD.sub(lambda m: _TOKENS.get(m.group().lower(), m.group()), text.strip())


def unit_of(text: object) -> str | None:
    """The canonical unit of a quantity's text ('0.5mg/kg' -> 'mg/kg'), or None: to choose the kind
    to parse it as (a protocol's dose may be per kg, per m2, fixed or per day)."""
    shape = _SHAPE.fullmatch(text) if isinstance(text, str) else None
    return canonical_unit(shape["unit"]) if shape is not None and shape["unit"] else None


def parse_quantity(text: str, field: str, kind_name: str) -> Quantity:
    """Parse `text` as a quantity of the given kind, or raise InputError naming `field`."""
    if not isinstance(text, str):
        kind = KINDS["concentration" if kind_name == STRENGTH else kind_name]
        raise _refuse(field, str(text), "not_text", "is not text", kind)
    if kind_name == STRENGTH:
        return _parse_strength(text, field)
    return _parse_text(text, field, kind_name)


# --- strengths as labelled ----------------------------------------------------------------------
# A vial's or bag's strength as printed on it: "50 mg/mL", "250 mg/5 mL", "400 mg/250 mL" (a
# premixed bag), or "20%" (w/v: 20 g in 100 mL). The Quantity keeps the label as its text and the
# strength per mL as its value; ratio strengths ("1:1000") are refused (ISMP: write mg/mL).
STRENGTH = "strength"
_PER_VOLUME = re.compile(
    r" *(?P<amount>[0-9][0-9.]*) *(?P<mass>[A-Za-z\u00b5\u03bc]+) */ *(?P<volume>[0-9][0-9.]*) *"
    r"(?P<vunit>[A-Za-z]+) *"
)
_PERCENT = re.compile(r" *(?P<percent>[0-9][0-9.]*) *% *")
_RATIO = re.compile(r" *(?P<part>[0-9][0-9.,]*) *: *(?P<whole>[0-9][0-9.,]*) *")
_STRENGTH_HELP = (
    " Accepted: a strength per mL, for example 10 mg/mL; as on the vial, 250 mg/5 mL; or a"
    " percentage w/v, 20%."
)


@lru_cache(maxsize=256)
def _parse_strength(text: str, field: str) -> Quantity:
    if len(text) > MAX_QUANTITY_CHARS:
        raise _refuse(field, text, "too_long", f"is longer than {MAX_QUANTITY_CHARS} characters")
    if text.lstrip(" ")[:1] in ("-", "+"):
        raise _refuse(field, text, "bad_quantity", "has a sign: only a positive number is accepted")
    ratio = _RATIO.fullmatch(text)
    if ratio is not None:
        hint = ""
        try:
            part = parse_number(ratio["part"], field, text)
            whole = parse_number(ratio["whole"], field, text)
            with localcontext(EXACT):
                per_ml = part * 1000 / whole  # 1 g in 1000 mL is 1 mg/mL
            if len(per_ml.normalize(EXACT).as_tuple().digits) < 20:
                hint = f": {text.strip()} is {format(per_ml.normalize(EXACT), 'f')} mg/mL"
        except InputError:
            pass
        raise InputError(
            Problem(
                field,
                "ratio_strength",
                f"{field}: '{echo(text)}' is a ratio strength, which is not accepted (ISMP: "
                f"ratio expressions are misread){hint}; write the strength in mg/mL.",
            )
        )
    percent = _PERCENT.fullmatch(text)
    if percent is not None:
        value = parse_number(percent["percent"], field, text)
        if value == 0:
            raise _refuse(field, text, "zero", "is zero: it must be greater than zero")
        if value > 100:
            raise _refuse(field, text, "over_100_percent", "is more than 100% w/v")
        with localcontext(EXACT):
            return Quantity(value / 100, "g/mL", text, "concentration")
    shaped = _PER_VOLUME.fullmatch(text)
    if shaped is None or shaped["volume"] is None:
        try:
            return _parse_text(text, field, "concentration")
        except InputError as exc:
            problem = exc.problems[0]
            raise InputError(
                Problem(
                    field, problem.code, problem.message.split(" Accepted:")[0] + _STRENGTH_HELP
                )
            ) from None
    mass, volume_unit = canonical_unit(shaped["mass"]), canonical_unit(shaped["vunit"])
    if mass not in ("mg", "mcg", "g") or volume_unit not in ("mL", "L"):
        raise _refuse(
            field, text, "unknown_unit", "is not an amount per volume." + _STRENGTH_HELP[:-1]
        )
    amount = parse_number(shaped["amount"], field, text)
    volume = parse_number(shaped["volume"], field, text)
    if amount == 0 or volume == 0:
        raise _refuse(field, text, "zero", "has a zero amount or volume." + _STRENGTH_HELP[:-1])
    with localcontext(EXACT):
        value = amount / volume
    if len(value.normalize(EXACT).as_tuple().digits) >= 40:
        raise _refuse(field, text, "not_exact", "has no exact strength per mL: give it in mg/mL")
    return Quantity(value, f"{mass}/{volume_unit}", text, "concentration")


def label_volume(strength: Quantity) -> Decimal | None:
    """The container's volume in mL where a strength is labelled with one ("400 mg/250 mL": 250),
    else None ("1.6 mg/mL", "20%"). The label passed _parse_strength, so it is well formed."""
    shaped = _PER_VOLUME.fullmatch(strength.text)
    if shaped is None:
        return None
    volume = Quantity(
        Decimal(shaped["volume"]), canonical_unit(shaped["vunit"]) or "", "", "volume"
    )
    ml = volume.to("mL")
    return None if ml == 1 else ml  # "1 mg/1 mL" is a strength per mL, not a container


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
        why = f"has a unit '{echo(unit_text)}' that is not on dosecalc's list"
        raise _refuse(field, text, "unknown_unit", why, kind)
    if not same_dimension(unit, kind.reference, kind_name):
        raise _refuse(field, text, "wrong_dimension", f"is {describe(unit)}, not {kind.name}", kind)
    if unit not in kind.units:
        raise _refuse(field, text, "unit_not_allowed", f"uses {unit}, not accepted here", kind)
    if value == 0:
        raise _refuse(field, text, "zero", "is zero: it must be greater than zero", kind)
    return Quantity(value, unit, text, kind_name)


# --- pint, at run time ---------------------------------------------------------------------------
# Every dimension and every conversion factor comes from one pint registry built from units.txt, once
# per process (about 20 ms after pint's import); answers are cached per unit pair. The per-row
# arithmetic stays in exact Decimal, multiplied by the factors pint gave.


@cache
def registry() -> Any:
    """The one pint registry, built from units.txt only, with exact Decimal magnitudes."""
    import os

    import pint

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "units.txt")
    return pint.UnitRegistry(path, non_int_type=Decimal, cache_folder=None)


def pint_unit(unit: str, kind: str = "") -> str:
    """The pint spelling of a canonical unit: 'g' typed as a patient's weight is the body gram."""
    return "gbw" if kind == "weight" and unit == "g" else unit


@cache
def dimensionality(unit: str, kind: str = "") -> str:
    """pint's dimension of a canonical unit, as text: 'mg/kg' is '[mass] / [body_mass]'."""
    return str(registry().parse_units(pint_unit(unit, kind)).dimensionality)


def ratio(source: Any, target: Any) -> tuple[Decimal, Decimal]:
    """pint's factor between two unit expressions as (multiply, divide): s to min is (1, 60), not a
    rounded 0.0166...67. Asked at 100 digits: a factor that is an exact decimal comes back short
    (0.45359237, 60); one that is not (1/60) fills every digit, and the other way round is exact."""
    reg = registry()
    with localcontext() as context:
        context.prec = 100
        forward = Decimal(reg.Quantity(Decimal(1), source).to(target).magnitude).normalize()
        if len(forward.as_tuple().digits) < 50:
            return +forward, Decimal(1)
        backward = Decimal(reg.Quantity(Decimal(1), target).to(source).magnitude).normalize()
        if len(backward.as_tuple().digits) >= 50:
            raise ValueError(f"no exact decimal ratio between {source} and {target}")
        return Decimal(1), +backward


@cache
def factor(from_unit: str, to_unit: str, kind: str = "") -> tuple[Decimal, Decimal]:
    """(multiply, divide) taking a value in `from_unit` to `to_unit` (canonical, same dimension),
    from the pint registry; raises pint's DimensionalityError across dimensions."""
    if from_unit == to_unit:
        return Decimal(1), Decimal(1)
    return ratio(pint_unit(from_unit, kind), pint_unit(to_unit, kind))


def same_dimension(unit: str, other: str, kind: str = "") -> bool:
    """True when pint says the two canonical units measure the same thing."""
    return dimensionality(unit, kind) == dimensionality(other, kind)


def describe(unit: str) -> str:
    """'a volume' for mL: the first kind listing the unit, else the first with the same dimension."""
    for kind in KINDS.values():
        if unit in kind.units:
            return kind.name
    for name, kind in KINDS.items():
        if same_dimension(unit, kind.reference) or same_dimension(unit, kind.reference, name):
            return kind.name
    return f"in {unit}"
