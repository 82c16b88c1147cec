"""From an order (the text a nurse typed, or a day-list row) to the one Sheet every renderer reads.

Parses and validates every field, runs the engine, applies the limits and overrides, and rounds every
reported number once (display.figure). Used by `dosecalc sheet` and `dosecalc batch` alike.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal
from functools import lru_cache

from dosecalc.display import Figure, clean, decimals, figure, format_quantity, has_unsafe
from dosecalc.dosing import Result, calculate
from dosecalc.errors import InputError, LimitError, Problem
from dosecalc.limits import Breach, Notice, check, rounding_notices
from dosecalc.protocols import Library, Protocol, prescription
from dosecalc.quantities import CONSTANTS, DISPLAY_UNITS, OPERANDS, QUANTITIES
from dosecalc.units import Quantity, parse_quantity, safe_echo
from dosecalc.verify import Reverse, verify

PATIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TEXT_LIMITS = {"name": 100, "operator": 64, "override": 300}


@dataclass(frozen=True)
class Order:
    """What was asked for, as typed. Only `weight` is required."""

    weight: str
    date: str
    protocol_id: str | None = None
    patient_id: str | None = None
    name: str | None = None
    dose: str | None = None
    duration: str | None = None
    stock: str | None = None
    override_reason: str | None = None
    operator: str | None = None
    height: str | None = None  # "170 cm", "1.7 m", "67 in": only where the protocol needs it
    sex: str | None = None  # "female" or "male": only where the protocol needs it


SEXES = ("female", "male")


@dataclass(frozen=True)
class Override:
    limit: str
    value: str
    reason: str
    operator: str


@dataclass(frozen=True)
class Checkpoint:
    minute: Figure
    volume: Figure
    dose: Figure


@dataclass(frozen=True)
class Figures:
    """Every number a sheet shows, each rounded once to its protocol step: one Figure per
    quantities.QUANTITIES name (figures.dose is figures.values["dose"]), and the checkpoints."""

    values: Mapping[str, Figure]
    checkpoints: tuple[Checkpoint, ...]
    # Operands printed inside arithmetic that are not reported quantities (published constants,
    # the protocol's caps and factors), shown as given.
    operands: Mapping[str, Figure] = dataclass_field(default_factory=dict)

    def of(self, name: str) -> Figure:
        """The figure of a quantity or of an operand."""
        found = self.values.get(name)
        return self.operands[name] if found is None else found

    def __getattr__(self, name: str) -> Figure:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True)
class Change:
    """An input that differs from the protocol's default: field, the protocol's value, the used."""

    field: str
    protocol: str
    used: str


@dataclass(frozen=True)
class Sheet:
    library: Library
    protocol: Protocol
    order: Order
    result: Result
    figures: Figures
    warnings: tuple[Notice, ...]
    overrides: tuple[Override, ...]
    reverse: Reverse
    changes: tuple[Change, ...] = ()

    @property
    def weight_in_lb(self) -> bool:
        return self.result.weight.unit == "lb"


# (breaches) -> (reason, operator) when a person at a terminal confirms, or None when they decline.
Confirm = Callable[[Sequence[Breach]], tuple[str, str] | None]


def check_patient_id(value: str | None, field: str = "patient_id") -> str | None:
    if value is None:
        return None
    if not PATIENT_ID.fullmatch(value):
        raise InputError(
            Problem(
                field,
                "bad_patient_id",
                f"{field}: '{safe_echo(value)}' is not accepted. Accepted: 1 to 64 ASCII letters, "
                "digits, '-' or '_'.",
            )
        )
    return value


@lru_cache(maxsize=256)
def check_date(value: str, field: str = "date") -> str:
    try:
        if not DATE.fullmatch(value):
            raise ValueError
        dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(
            Problem(
                field,
                "bad_date",
                f"{field}: '{safe_echo(value)}' is not a date. Accepted: YYYY-MM-DD, "
                "for example 2026-11-21.",
            )
        ) from None
    return value


def check_text(value: str | None, field: str, limit: int) -> str | None:
    """Free text (name, operator, reason): refused if it holds control or format characters."""
    if value is None:
        return None
    if not value.strip():
        raise InputError(Problem(field, "empty", f"{field}: is empty. Accepted: plain text."))
    if len(value) > limit:
        raise InputError(
            Problem(
                field,
                "too_long",
                f"{field}: '{safe_echo(value)}' is longer than {limit} characters. "
                f"Accepted: plain text of at most {limit} characters.",
            )
        )
    if has_unsafe(value):
        raise InputError(
            Problem(
                field,
                "control_character",
                f"{field}: '{safe_echo(value)}' contains a control or escape character. "
                "Accepted: plain text.",
            )
        )
    return value


def _optional(text: str | None, field: str, kind: str) -> Quantity | None:
    return None if text is None else parse_quantity(text, field, kind)


def make_sheet(library: Library, order: Order, confirm: Confirm | None = None) -> Sheet:
    """Validate, calculate, check limits, round. Raises InputError or LimitError."""
    check_date(order.date)
    check_patient_id(order.patient_id)
    check_text(order.name, "name", TEXT_LIMITS["name"])
    check_text(order.operator, "operator", TEXT_LIMITS["operator"])
    check_text(order.override_reason, "override", TEXT_LIMITS["override"])
    protocol = library.get(order.protocol_id)

    problems: list[Problem] = []
    parsed: dict[str, Quantity | None] = {}
    rx_kind = protocol.kind(OPERANDS[prescription(protocol)[0]][0])
    for name, text, kind in (
        ("weight", order.weight, "weight"),
        ("dose", order.dose, rx_kind),
        ("duration", order.duration, "duration"),
        ("stock", order.stock, protocol.kind("concentration")),
        ("height", order.height, "height"),
    ):
        try:
            parsed[name] = _optional(text, name, kind)
        except InputError as exc:
            problems.extend(exc.problems)
    problems += _basis_inputs(protocol, order)
    if order.dose is not None and not problems:
        problems += _override_allowed(protocol, parsed["dose"])
    if problems:
        raise InputError(problems)
    weight = parsed["weight"]
    assert weight is not None
    result, breaches, figures, notices, reverse = _calculated(
        protocol,
        weight,
        parsed["dose"],
        parsed["duration"],
        parsed["stock"],
        parsed["height"],
        order.sex,
    )
    changes = _changes(protocol, result, parsed)

    warnings: list[Notice] = []
    if weight.unit == "lb":
        warnings.append(
            Notice(
                "WEIGHT_IN_LB",
                f"weight entered in lb ({weight.text.strip()}): converted at 0.45359237 kg/lb; "
                "kg is the standard, check the patient's weight in kg",
            )
        )
    if changes:
        warnings.append(
            Notice(
                "CHANGED_FROM_PROTOCOL",
                "; ".join(
                    f"{c.field.replace('_', ' ')} {c.used} used, the protocol says {c.protocol}"
                    for c in changes
                ),
            )
        )
    overrides = _apply_limits(list(breaches), order, confirm, warnings)
    # Only a hard breach leaves these out, and it raised above.
    assert figures is not None
    assert reverse is not None
    warnings.extend(notices)
    return Sheet(
        library,
        protocol,
        order,
        result,
        figures,
        tuple(warnings),
        tuple(overrides),
        reverse,
        changes,
    )


def _basis_inputs(protocol: Protocol, order: Order) -> list[Problem]:
    """Height and sex: required exactly when the protocol needs them, refused when it does not."""
    from dosecalc.protocols import height_reason

    problems = []
    pid = protocol.id
    if protocol.needs_height and order.height is None:
        problems.append(
            Problem(
                "height",
                "missing",
                f"height: protocol {pid} needs the patient's height{height_reason(protocol)}: "
                'give it with its unit, for example --height "170 cm" (day list: the height '
                "column)",
            )
        )
    elif not protocol.needs_height and order.height is not None:
        problems.append(
            Problem(
                "height",
                "not_used",
                f"height: protocol {pid} does not use the patient's height (it doses on "
                f"{_basis_text(protocol)}): leave it out",
            )
        )
    if order.sex is not None and order.sex not in SEXES:
        problems.append(
            Problem(
                "sex",
                "bad_sex",
                f"sex: '{safe_echo(order.sex)}' is not accepted. Accepted: female, male.",
            )
        )
    elif protocol.needs_sex and order.sex is None:
        problems.append(
            Problem(
                "sex",
                "missing",
                f"sex: protocol {pid} needs the patient's sex (the {protocol.basis} body weight "
                "is computed by Devine's formula, which differs for men and women): --sex "
                "female or --sex male (day list: the sex column)",
            )
        )
    elif not protocol.needs_sex and order.sex is not None:
        problems.append(
            Problem(
                "sex",
                "not_used",
                f"sex: protocol {pid} does not use the patient's sex (it doses on "
                f"{_basis_text(protocol)}): leave it out",
            )
        )
    return problems


def _basis_text(protocol: Protocol) -> str:
    if protocol.per == "m2":
        return "body surface area"
    if protocol.per == "":
        return "a fixed dose"
    return f"{protocol.basis} body weight" if protocol.basis != "actual" else "actual body weight"


def _override_allowed(protocol: Protocol, dose: Quantity | None) -> list[Problem]:
    """A prescription other than the protocol's needs a hard limit on it (the rounding-step rule
    and the printed-figure checks are proven only inside hard limits)."""
    _, limit_name, unit = prescription(protocol)
    limit = protocol.limits.get(limit_name)
    if dose is None or dose.to(unit) == protocol.dose.to(unit):
        return []
    if limit is not None and limit.hard is not None:
        return []
    return [
        Problem(
            "dose",
            "override_not_allowed",
            f"dose: protocol {protocol.id} has no hard limit on {limit_name.replace('_', ' ')}, "
            f"so its dose {protocol.dose.text} cannot be changed here",
        )
    ]


def _changes(
    protocol: Protocol, result: Result, typed: Mapping[str, Quantity | None]
) -> tuple[Change, ...]:
    """Every input that differs from the protocol's default, with both values as text (as typed,
    and converted where the unit differs: "1 h = 60 min")."""
    rx_name, _, rx_unit = prescription(protocol)
    found = []
    for field, key, default, unit in (
        (rx_name, "dose", protocol.dose, rx_unit),
        ("duration", "duration", protocol.duration, "min"),
    ):
        used = result.values[field]
        if used != default.to(unit):
            text = _with(used, unit)
            entered = typed.get(key)
            if entered is not None and entered.text.strip() != text:
                text = f"{clean(entered.text.strip())} = {text}"
            found.append(Change(field, default.text, text))
    if result.chosen_stock != protocol.stock[0]:
        found.append(Change("stock", protocol.stock[0].text, result.chosen_stock.text))
    return tuple(found)


def _with(value: Decimal, unit: str) -> str:
    return format_quantity(value, unit)


@lru_cache(maxsize=2048)
def _calculated(
    protocol: Protocol,
    weight: Quantity,
    dose: Quantity | None,
    duration: Quantity | None,
    stock: Quantity | None,
    height: Quantity | None = None,
    sex: str | None = None,
) -> tuple[Result, tuple[Breach, ...], Figures | None, tuple[Notice, ...], Reverse | None]:
    """The part of a sheet that depends only on the protocol and the quantities: a pure function,
    so a day list with many rows of the same weight computes and rounds it once (bounded cache).
    The printed figures are verified here (verify.py); a failure raises LimitError."""
    result = calculate(protocol, weight, dose, duration, stock, height, sex)
    breaches = tuple(check(protocol, result))
    if any(b.level == "hard" for b in breaches):
        return result, breaches, None, (), None
    figures = _figures(protocol, result)
    reverse = verify(protocol, result, figures.values, figures.operands)
    notices = rounding_notices(
        result, figures.dose, figures.drug_volume, figures.total_volume, figures.rate
    )
    return result, breaches, figures, tuple(notices), reverse


def _apply_limits(
    breaches: list[Breach], order: Order, confirm: Confirm | None, warnings: list[Notice]
) -> list[Override]:
    hard = [b for b in breaches if b.level == "hard"]
    soft = [b for b in breaches if b.level == "soft"]
    if hard:
        raise LimitError([Problem(b.limit, f"{b.level}_limit", b.message) for b in breaches])
    reason, operator = order.override_reason, order.operator
    if not soft:
        if reason is not None:
            warnings.append(
                Notice(
                    "OVERRIDE_NOT_NEEDED",
                    "an override reason was given but no soft limit was breached; check the "
                    "inputs are the ones intended",
                )
            )
        return []
    if reason is None and confirm is not None:
        answer = confirm(soft)
        if answer is None:
            raise LimitError(
                [
                    Problem(b.limit, "soft_limit_declined", b.message + "; not confirmed")
                    for b in soft
                ]
            )
        reason, operator = answer
        check_text(reason, "override", TEXT_LIMITS["override"])
        check_text(operator, "operator", TEXT_LIMITS["operator"])
    if reason is None:
        raise LimitError(
            [
                Problem(
                    b.limit,
                    "soft_limit",
                    b.message + '; to proceed, give a reason with --override "REASON" '
                    "(day list: the override_reason column) and an operator",
                )
                for b in soft
            ]
        )
    if operator is None:
        raise InputError(
            Problem(
                "operator",
                "operator_required",
                "operator: an override needs the operator's name: --operator NAME or "
                "DOSECALC_OPERATOR (day list: the operator column)",
            )
        )
    for b in soft:
        warnings.append(
            Notice("SOFT_LIMIT_OVERRIDDEN", f"{b.message}; overridden by {operator}: {reason}")
        )
    return [Override(b.limit, b.value_text, reason, operator) for b in soft]


def _exact(value: Decimal, unit: str, finest: int = 0) -> Figure:
    """A figure for an input value shown as given (its own decimals, at least `finest`)."""
    places = max(decimals(value), finest)
    return figure(value, Decimal(1).scaleb(-places), unit)


def _figures(protocol: Protocol, r: Result) -> Figures:
    """Each quantity rounded once to its step; inputs without a step shown as given."""
    s = protocol.steps
    d = r.dose_unit
    values = {}
    for spec in QUANTITIES:
        if spec.name not in r.values:
            continue
        unit = spec.unit.format(d=d)
        unit = DISPLAY_UNITS.get(unit, unit)
        value = r.values[spec.name]
        values[spec.name] = (
            _exact(value, unit) if spec.step is None else figure(value, s[spec.step], unit)
        )
    operands = {}
    for name, value in r.values.items():
        if name in values:
            continue
        constant = CONSTANTS.get(name)
        if constant is not None:
            unit = constant.shown.partition(" ")[2]
            operands[name] = _exact(value, unit)
            continue
        unit = OPERANDS[name][1].format(d=d) if name in OPERANDS else ""
        operands[name] = _exact(value, DISPLAY_UNITS.get(unit, unit))
    return Figures(
        operands=operands,
        values=values,
        checkpoints=tuple(
            Checkpoint(
                figure(c.minute, s["duration"], "min"),
                figure(c.volume_ml, s["volume"], "mL"),
                figure(c.dose, s["dose"], d),
            )
            for c in r.checkpoints
        ),
    )


def dosing_basis(sheet: Sheet) -> tuple[str, str]:
    """Which weight the dose is based on, and why, as printed: ("ideal", "BMI 34.8 kg/m2 >= 30
    kg/m2: ideal body weight"). The code is actual, ideal, adjusted, or max (the protocol's cap on
    the dosing weight); the reason uses the figures as printed (an exact BMI where rounding hid
    which side of the trigger it is on)."""
    p, r, f = sheet.protocol, sheet.result, sheet.figures
    v = r.values
    names = {
        "actual": "actual weight",
        "ideal": "ideal body weight",
        "adjusted": "adjusted body weight",
    }
    reasons = []
    if p.bmi_trigger is not None:
        bmi = f.bmi
        trigger = p.bmi_trigger.to("kg/m2")
        side = ">=" if v["bmi"] >= trigger else "<"
        bmi_text = (
            bmi.text if bmi.number != format_quantity(trigger, "").strip() else bmi.exact_text
        )
        reasons.append(f"BMI {bmi_text} {side} {p.bmi_trigger.text.strip()}")
    code = r.basis
    if code != "actual":
        chosen = v[f"{code}_weight_kg"]
        if chosen > v["weight_kg"]:
            reasons.append(
                f"{names[code]} {f.of(f'{code}_weight_kg').text} is above the actual weight "
                f"{f.weight_kg.text}"
            )
            code = "actual"
    cap = v.get("dosing_weight_max")
    if cap is not None and v["dosing_weight_kg"] == cap and cap < v[_weight_of(code)]:
        reasons.append(
            f"{names[code]} {f.of(_weight_of(code)).text} capped at the protocol's maximum "
            f"{f.of('dosing_weight_max').text}"
        )
        return "max", "; ".join(reasons) + ": maximum dosing weight"
    why = ": ".join(["; ".join(reasons), names[code]] if reasons else [names[code]])
    if p.per != "kg":  # the weight is shown for the dose rate per kg, not to dose on
        why += "; the dose is per m2" if p.per == "m2" else "; the dose is fixed"
    return code, why


def _weight_of(code: str) -> str:
    return "weight_kg" if code == "actual" else f"{code}_weight_kg"
