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
from itertools import product
from typing import NamedTuple

from dosecalc import checkcode, vitals
from dosecalc.display import (
    Figure,
    decimals,
    figure,
    format_number,
    format_quantity,
    round_half_up,
)
from dosecalc.dosing import Result, calculate
from dosecalc.errors import InputError, LimitError, Problem, arithmetic_error
from dosecalc.limits import (
    Breach,
    Notice,
    breach,
    check,
    check_printed,
    hard_first,
    rounding_notices,
)
from dosecalc.protocols import DROP_FACTORS, Bounds, Library, Limit, Protocol, prescription
from dosecalc.quantities import (
    CONSTANTS,
    DISPLAY_UNITS,
    OPERANDS,
    OPTIONAL_STEPS,
    QUANTITIES,
    compiled,
    limit_carriers,
)
from dosecalc.sanitize import echo, has_unsafe, unreadable
from dosecalc.sanitize import text as clean
from dosecalc.units import STRENGTH, Quantity, parse_quantity
from dosecalc.verify import RateCheck, Reverse, verify, verify_continuous

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
    # Pre-infusion vitals as typed (vitals.py): "128/82", "76", "98%".
    bp: str | None = None
    hr: str | None = None
    spo2: str | None = None
    height: str | None = None  # "170 cm", "1.7 m", "67 in": only where the protocol needs it
    sex: str | None = None  # "female" or "male": only where the protocol needs it
    drop_factor: str | None = None  # "15 gtt/mL": a gravity giving set (issue 11)
    dose_rate: str | None = None  # "7.5 mcg/kg/min": a continuous infusion's starting rate


SEXES = ("female", "male")


@dataclass(frozen=True)
class Override:
    limit: str
    value: str
    reason: str
    operator: str


class Checkpoint(NamedTuple):  # immutable; a NamedTuple: several a row, cheaply
    minute: Figure
    volume: Figure
    dose: Figure


@dataclass(frozen=True)
class Figures:
    """Every number a sheet shows, each rounded once to its protocol step: one Figure per
    quantities.QUANTITIES name (figures.dose is figures.values["dose"]), and the checkpoints."""

    values: Mapping[str, Figure]
    checkpoints: tuple[Checkpoint, ...]
    # A continuous infusion's titration table: (dose rate as prescribed, rate in mL/h) per row.
    titration: tuple[tuple[Figure, Figure], ...] = ()
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
class Reading:
    """One pre-infusion vital on the sheet: its label, the value (or "not given"), the verdict."""

    name: str
    label: str
    value: str
    verdict: str


@dataclass(frozen=True)
class Gate:
    """The pre-infusion gate as checked: each reading, the overall verdict and the checklist."""

    readings: tuple[Reading, ...]
    verdict: str
    checklist: tuple[str, ...]


@dataclass(frozen=True)
class Sheet:
    library: Library
    protocol: Protocol
    order: Order
    result: Result
    figures: Figures
    warnings: tuple[Notice, ...]
    overrides: tuple[Override, ...]
    reverse: Reverse | RateCheck
    changes: tuple[Change, ...] = ()
    # None when the protocol has no preinfusion table and no vitals were given (nothing to show).
    gate: Gate | None = None

    @property
    def check_code(self) -> str:
        """The check code of the printed prescription (checkcode.py): 'XXXX-XXXX'."""
        p = self.protocol
        return checkcode.code(p.id, p.version, self.library.sha256, self.figures.values)


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
                f"{field}: '{echo(value)}' is not accepted. Accepted: 1 to 64 ASCII letters, "
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
                f"{field}: '{echo(value)}' is not a date. Accepted: YYYY-MM-DD, "
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
                f"{field}: '{echo(value)}' is longer than {limit} characters. "
                f"Accepted: plain text of at most {limit} characters.",
            )
        )
    if has_unsafe(value):
        raise InputError(
            Problem(
                field,
                "control_character",
                f"{field}: '{echo(value)}' contains a control or escape character. "
                "Accepted: plain text.",
            )
        )
    why = unreadable(value)
    if why is not None:  # an invisible reason or operator would pass a soft limit unsigned
        raise InputError(
            Problem(field, "unreadable", f"{field}: '{echo(value)}' {why}. Accepted: plain text.")
        )
    return value


def _optional(text: str | None, field: str, kind: str) -> Quantity | None:
    return None if text is None else parse_quantity(text, field, kind)


def make_sheet(
    library: Library, order: Order, confirm: Confirm | None = None, *, gate: bool = True
) -> Sheet:
    """Validate, calculate, check limits, round. Raises InputError or LimitError (an arithmetic
    failure of the engine, a number far outside any limit, is invalid input: never a traceback).

    `gate=False` leaves out the pre-infusion gate (the double check recomputes the prescription
    only; vitals are the first nurse's to take)."""
    try:
        return _make_sheet(library, order, confirm, gate)
    except ArithmeticError as exc:  # decimal.InvalidOperation, Overflow
        raise arithmetic_error(exc) from None


def _make_sheet(library: Library, order: Order, confirm: Confirm | None, gate: bool) -> Sheet:
    check_date(order.date)
    check_patient_id(order.patient_id)
    check_text(order.name, "name", TEXT_LIMITS["name"])
    check_text(order.operator, "operator", TEXT_LIMITS["operator"])
    check_text(order.override_reason, "override", TEXT_LIMITS["override"])
    protocol = library.get(order.protocol_id)

    problems: list[Problem] = []
    parsed: dict[str, Quantity | None] = {}
    rx_kind = protocol.kind(OPERANDS[prescription(protocol)[0]][0])
    problems += _continuous_inputs(protocol, order)
    for name, text, kind in (
        ("weight", order.weight, "weight"),
        (
            _rx_key(protocol),
            order.dose_rate if protocol.continuous else order.dose,
            rx_kind,
        ),
        ("duration", order.duration, "duration"),
        ("stock", order.stock, stock_kind(protocol)),
        ("height", order.height, "height"),
        ("drop_factor", order.drop_factor, "drop_factor"),
    ):
        try:
            parsed[name] = _optional(text, name, kind)
        except InputError as exc:
            problems.extend(exc.problems)
    duration = parsed.get("duration")
    if duration is not None and not protocol.continuous:
        problems += _off_step(protocol, duration)
    drops = parsed.get("drop_factor")
    if drops is not None and drops.value not in DROP_FACTORS:
        problems.append(
            Problem(
                "drop_factor",
                "unknown_drop_factor",
                f"drop_factor: '{echo(drops.text)}' is not a giving set's drop factor. "
                f"Accepted: {', '.join(f'{n} gtt/mL' for n in DROP_FACTORS)}.",
            )
        )
    readings = None
    if gate:
        try:
            readings = vitals.read(order.bp, order.hr, order.spo2)
        except InputError as exc:
            problems.extend(exc.problems)
    problems += _basis_inputs(protocol, order)
    if (order.dose or order.dose_rate) is not None and not problems:
        problems += _override_allowed(protocol, parsed[_rx_key(protocol)])
    if problems:
        raise InputError(problems)
    weight = parsed["weight"]
    assert weight is not None
    _height_within_hard_limits(protocol, weight, parsed["height"])
    result, breaches, figures, notices, reverse = _calculated(
        protocol,
        weight,
        parsed[_rx_key(protocol)],
        parsed["duration"],
        parsed["stock"],
        parsed["height"],
        order.sex,
        parsed["drop_factor"],
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
    if result.lengthened_from is not None:
        warnings.append(
            Notice(
                "DURATION_LENGTHENED",
                f"duration {figures.duration.text if figures else ''} instead of the "
                f"protocol's {format_quantity(result.lengthened_from, 'min')}: "
                f"{result.lengthened_because} (protocol {protocol.id})",
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
    gate_breaches, missing = (
        _gate_breaches(protocol, readings) if readings is not None else ([], [])
    )
    if missing:  # refused with every hard breach too, so one pass fixes everything
        hard = [b for b in [*breaches, *gate_breaches] if b.level == "hard"]
        raise LimitError([*(Problem(b.limit, "hard_limit", b.message) for b in hard), *missing])
    overrides = _apply_limits([*breaches, *gate_breaches], order, confirm, warnings)
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
        _gate(protocol, readings, overrides) if readings is not None else None,
    )


def _height_within_hard_limits(
    protocol: Protocol, weight: Quantity, height: Quantity | None
) -> None:
    """A height outside its hard limits is refused before any dose is computed: far outside them
    Devine's ideal body weight is at or below zero, and every figure derived from the height (dose,
    volume, concentration) would be nonsense, negative in a message. Only the inputs are named:
    the height, and the weight too when it is also outside its hard limits."""
    limit = protocol.limits.get("height")
    if height is None or limit is None or limit.hard is None:
        return
    if limit.hard.contains(height.to(limit.unit)):
        return
    found = hard_first(
        breach(name, bounds, quantity.to(bounds.unit))
        for name, quantity in (("weight", weight), ("height", height))
        if (bounds := protocol.limits.get(name)) is not None
    )
    raise LimitError(
        [Problem(b.limit, "hard_limit", b.message) for b in found if b.level == "hard"]
    )


def _rx_key(protocol: Protocol) -> str:
    """The order field that changes the prescription: the dose, or a continuous infusion's rate."""
    return "dose_rate" if protocol.continuous else "dose"


def _continuous_inputs(protocol: Protocol, order: Order) -> list[Problem]:
    """A continuous infusion takes a dose rate, not a dose and duration; a dose the other way
    round (issue 11)."""
    pid = protocol.id
    if protocol.continuous:
        problems = [
            Problem(
                field,
                "not_used",
                f"{field}: protocol {pid} is a continuous infusion at {protocol.dose.text}: it has "
                'no dose or duration (to change the rate, give --dose-rate "..."; day list: the '
                "dose_rate column)",
            )
            for field, value in (("dose", order.dose), ("duration", order.duration))
            if value is not None
        ]
        if order.drop_factor is not None and protocol.drop_factor is None:
            problems.append(
                Problem(
                    "drop_factor",
                    "not_used",
                    f"drop_factor: protocol {pid} is a continuous infusion run by a pump: it names "
                    "no giving set for a gravity drip",
                )
            )
        return problems
    if order.dose_rate is not None:
        return [
            Problem(
                "dose_rate",
                "not_used",
                f"dose_rate: protocol {pid} gives a dose over a duration, not a continuous "
                "infusion: give a dose and duration instead (--dose, --duration; day list: the "
                "dose and duration columns)",
            )
        ]
    return []


def _off_step(protocol: Protocol, duration: Quantity) -> list[Problem]:
    """A duration the sheet cannot print as it runs is refused, never rounded: the pump's rate is
    worked out from the duration given, so a printed duration that differs would not match it."""
    step = protocol.steps["duration"]
    minutes = duration.to("min")
    printed = round_half_up(minutes, step)
    hard = protocol.limits["duration"].hard
    if printed == minutes or (hard is not None and not hard.contains(minutes)):
        return []  # on the step, or refused by its hard limit (the clearer reason)
    shown = figure(minutes, step, "min")
    return [
        Problem(
            "duration",
            "off_step",
            f"duration: '{echo(duration.text)}' is {shown.exact_text}, which the sheet "
            f"would print as {shown.text}. Accepted: a whole number of {format_number(step)} min "
            f"steps (protocol {protocol.id}), for example {protocol.given_over.text}.",
        )
    ]


def _gate_breaches(
    protocol: Protocol, readings: vitals.Readings
) -> tuple[list[Breach], list[Problem]]:
    """Each vital outside the protocol's pre-infusion limits (hard first), and, when the protocol
    requires vitals, a refusal naming those not given (before any override is considered)."""
    gate = protocol.preinfusion
    if gate is None:
        return [], []
    missing_problems: list[Problem] = []
    missing = [
        (_VITAL_OPTION[name], vitals.VITALS[name].label)
        for name in gate.limits
        if readings.values[name] is None
    ]
    if gate.required and missing:
        options = ", ".join(dict.fromkeys(f"--{field}" for field, _ in missing))
        missing_problems.append(
            Problem(
                "preinfusion",
                "vitals_required",
                f"preinfusion: protocol {protocol.id} requires vitals before the infusion; "
                f"not given: {', '.join(label for _, label in missing)}. Take them and give "
                f"{options} (for example --bp 128/82 --hr 76 --spo2 98)",
            )
        )
    found = hard_first(
        breach(name, limit, Decimal(value))
        for name, limit in gate.limits.items()
        if (value := readings.values[name]) is not None
    )
    return found, missing_problems


# The option (and day-list column) each vital is typed in.
_VITAL_OPTION = {"systolic": "bp", "diastolic": "bp", "heart_rate": "hr", "spo2": "spo2"}


def _gate(
    protocol: Protocol, readings: vitals.Readings, overrides: Sequence[Override]
) -> Gate | None:
    """What the sheet shows of the gate; None when there is no gate and no vitals were given."""
    if protocol.preinfusion is None and not readings.given():
        return None
    return _gate_shown(protocol, tuple(readings.values.items()), tuple(overrides))


@lru_cache(maxsize=256)  # a day list without vitals: the same Gate on every row of a protocol
def _gate_shown(
    protocol: Protocol,
    readings: tuple[tuple[str, int | None], ...],
    overrides: tuple[Override, ...],
) -> Gate:
    gate = protocol.preinfusion
    values = dict(readings)
    limits = gate.limits if gate is not None else {}
    overridden = {o.limit: o for o in overrides}
    shown: list[Reading] = []
    for name, vital in vitals.VITALS.items():
        value = values[name]
        limit = limits.get(name)
        if value is None:
            if limit is None:
                continue
            shown.append(Reading(name, vital.label, "not given", "NOT CHECKED"))
            continue
        text = f"{value} {vital.unit}" if vital.unit != "%" else f"{value}%"
        if limit is None:
            verdict = "no limit in this protocol"
        elif name in overridden:
            o = overridden[name]
            verdict = f"OUTSIDE SOFT LIMITS, overridden by {clean(o.operator)}: {clean(o.reason)}"
        else:
            verdict = f"within limits ({_range(limit)})"
        shown.append(Reading(name, vital.label, text, verdict))
    not_checked = [r.label for r in shown if r.verdict == "NOT CHECKED"]
    if gate is None:
        verdict = "no pre-infusion limits in this protocol: values recorded only"
    elif not_checked:
        verdict = "INCOMPLETE: not checked: " + ", ".join(not_checked)
        if any(r.name in overridden for r in shown):
            verdict += "; the others passed with override"
    elif any(r.name in overridden for r in shown):
        verdict = "PASSED WITH OVERRIDE"
    else:
        verdict = "PASSED: every value given is within the protocol's limits"
    return Gate(tuple(shown), verdict, gate.checklist if gate is not None else ())


def _range(limit: Limit) -> str:
    bounds = limit.soft or limit.hard
    assert bounds is not None
    return (
        f"{format_quantity(bounds.low, limit.unit)} to {format_quantity(bounds.high, limit.unit)}"
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
                f"sex: '{echo(order.sex)}' is not accepted. Accepted: female, male.",
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


def stock_kind(protocol: Protocol) -> str:
    """A drug dosed by mass takes strengths as labelled (250 mg/5 mL, 20%); units, mmol and mEq
    strengths are per mL (1,000 units/mL)."""
    kind = protocol.kind("concentration")
    return STRENGTH if kind == "concentration" else kind


def _changes(
    protocol: Protocol, result: Result, typed: Mapping[str, Quantity | None]
) -> tuple[Change, ...]:
    """Every input that differs from the protocol's default, with both values as text (as typed,
    and converted where the unit differs: "1 h = 60 min")."""
    rx_name, _, rx_unit = prescription(protocol)
    found = []
    for field, key, default, unit in (
        (rx_name, "dose", protocol.dose, rx_unit),
        *([] if protocol.continuous else [("duration", "duration", protocol.given_over, "min")]),
    ):
        if key == "duration" and typed.get(key) is None and result.lengthened_from is not None:
            continue  # lengthened by the protocol's own rule: DURATION_LENGTHENED says so
        used = result.values[field]
        if used != default.to(unit):
            text = format_quantity(used, unit)
            entered = typed.get(_rx_key(protocol) if key == "dose" else key)
            if entered is not None and entered.text.strip() != text:
                text = f"{clean(entered.text.strip())} = {text}"
            found.append(
                Change(
                    "dose_rate" if protocol.continuous and key == "dose" else field,
                    default.text,
                    text,
                )
            )
    if result.chosen_stock != protocol.stock[0]:
        found.append(Change("stock", protocol.stock[0].text, result.chosen_stock.text))
    drops = typed.get("drop_factor")
    said = protocol.drop_factor
    if drops is not None and said is not None and drops.to("gtt/mL") != said.to("gtt/mL"):
        # A giving set other than the protocol's (a protocol without one takes any on the list).
        found.append(Change("drop_factor", said.text, clean(drops.text.strip())))
    return tuple(found)


@lru_cache(maxsize=2048)
def _calculated(
    protocol: Protocol,
    weight: Quantity,
    dose: Quantity | None,
    duration: Quantity | None,
    stock: Quantity | None,
    height: Quantity | None = None,
    sex: str | None = None,
    drop_factor: Quantity | None = None,
) -> tuple[
    Result, tuple[Breach, ...], Figures | None, tuple[Notice, ...], Reverse | RateCheck | None
]:
    """The part of a sheet that depends only on the protocol and the quantities: a pure function,
    so a day list with many rows of the same weight computes and rounds it once (bounded cache).
    The printed figures are verified here (verify.py); a failure raises LimitError."""
    result = calculate(protocol, weight, dose, duration, stock, height, sex, drop_factor)
    carriers = limit_carriers(result.values)
    breaches = tuple(check(protocol, result, carriers))
    if any(b.level == "hard" for b in breaches):
        return result, breaches, None, (), None
    figures = _figures(protocol, result)
    breaches += tuple(check_printed(protocol, carriers, figures.values, breaches))
    if protocol.continuous:
        rate_check = verify_continuous(
            protocol, result, figures.values, figures.titration, figures.operands
        )
        return result, breaches, figures, (), rate_check
    reverse = verify(protocol, result, figures.values, figures.checkpoints, figures.operands)
    notices = rounding_notices(
        compiled(result.config or protocol.config(result.basis)),
        result,
        figures.dose,
        figures.drug_volume,
        figures.total_volume,
        figures.rate,
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


@lru_cache(maxsize=1024)  # mostly the protocol's own numbers, the same on every row
def _exact(value: Decimal, unit: str, finest: int = 0) -> Figure:
    """A figure for an input value shown as given (its own decimals, at least `finest`)."""
    places = max(decimals(value), finest)
    return figure(value, Decimal(1).scaleb(-places), unit)


def _figures(protocol: Protocol, r: Result) -> Figures:
    """Each quantity rounded once to its step; inputs without a step shown as given."""
    s = protocol.steps
    d = r.dose_unit
    reported, given = _figure_plan(protocol, d, tuple(r.values))
    values = r.values
    figs = {
        name: _exact(values[name], unit) if step is None else figure(values[name], step, unit)
        for name, unit, step in reported
    }
    operands = {name: _exact(values[name], unit) for name, unit in given}
    rx_unit = figs[prescription(protocol)[0]].unit if r.titration else ""
    return Figures(
        operands=operands,
        values=figs,
        titration=tuple(
            (_exact(dose_rate, rx_unit), figure(rate, s["rate"], "mL/h"))
            for dose_rate, rate in r.titration
        ),
        checkpoints=tuple(
            Checkpoint(
                _minute(c.minute, s["duration"]),
                figure(c.volume_ml, s["volume"], "mL"),
                figure(c.dose, s["dose"], d),
            )
            for c in r.checkpoints
        ),
    )


@lru_cache(maxsize=1024)
def _minute(minute: Decimal, step: Decimal) -> Figure:
    """A checkpoint's minute (the same few on every row of a protocol)."""
    return figure(minute, step, "min")


@lru_cache(maxsize=256)
def _figure_plan(
    protocol: Protocol, dose_unit: str, names: tuple[str, ...]
) -> tuple[tuple[tuple[str, str, Decimal | None], ...], tuple[tuple[str, str], ...]]:
    """How a result holding `names` is shown, the same for every row of a configuration: the
    reported quantities in table order as (name, unit, step; None: shown as given), and the other
    operands as (name, unit), shown as given."""
    s = protocol.steps
    reported = []
    for spec in QUANTITIES:
        if spec.name not in names:
            continue
        unit = spec.unit.format(d=dose_unit)
        unit = DISPLAY_UNITS.get(unit, unit)
        step = None if spec.step is None else s.get(spec.step) or OPTIONAL_STEPS[spec.step]
        reported.append((spec.name, unit, step))
    shown = {name for name, _, _ in reported}
    given = []
    for name in names:
        if name in shown:
            continue
        constant = CONSTANTS.get(name)
        if constant is not None:
            given.append((name, constant.shown.partition(" ")[2]))
            continue
        unit = OPERANDS[name][1].format(d=dose_unit) if name in OPERANDS else ""
        given.append((name, DISPLAY_UNITS.get(unit, unit)))
    return tuple(reported), tuple(given)


# Each dosing basis as a sheet names it (dosing_basis, and the summary's dose).
BASIS_NAMES = {
    "actual": "actual weight",
    "ideal": "ideal body weight",
    "adjusted": "adjusted body weight",
    "max": "maximum dosing weight",
}


def dosing_basis(sheet: Sheet) -> tuple[str, str]:
    """Which weight the dose is based on, and why, as printed: ("ideal", "BMI 34.8 kg/m2 >= 30
    kg/m2: ideal body weight"). The code is actual, ideal, adjusted, or max (the protocol's cap on
    the dosing weight); the reason uses the figures as printed (an exact BMI where rounding hid
    which side of the trigger it is on)."""
    p, r, f = sheet.protocol, sheet.result, sheet.figures
    v = r.values
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
                f"{BASIS_NAMES[code]} {f.of(f'{code}_weight_kg').text} is above the actual weight "
                f"{f.weight_kg.text}"
            )
            code = "actual"
    cap = v.get("dosing_weight_max")
    if cap is not None and v["dosing_weight_kg"] == cap and cap < v[_weight_of(code)]:
        reasons.append(
            f"{BASIS_NAMES[code]} {f.of(_weight_of(code)).text} capped at the protocol's maximum "
            f"{f.of('dosing_weight_max').text}"
        )
        return "max", "; ".join(reasons) + f": {BASIS_NAMES['max']}"
    why = ": ".join(["; ".join(reasons), BASIS_NAMES[code]] if reasons else [BASIS_NAMES[code]])
    if p.per != "kg":  # the weight is shown for the dose rate per kg, not to dose on
        why += "; the dose is per m2" if p.per == "m2" else "; the dose is fixed"
    return code, why


def _weight_of(code: str) -> str:
    return "weight_kg" if code == "actual" else f"{code}_weight_kg"


def titration_outside(sheet: Sheet) -> list[tuple[str, ...]]:
    """For each titration row, the hard limits it is outside, for this patient: the printed rate
    against the rate's, and the row's exact values against every one (a dose rate per kg inside
    its own limits can be outside the dose rate's at this weight)."""
    hard = sheet.protocol.limits["rate"].hard
    found = []
    for (_, rate), names in zip(
        sheet.figures.titration, sheet.result.titration_outside, strict=True
    ):
        printed = () if hard is None or hard.contains(rate.rounded) else ("rate",)
        found.append(printed + tuple(n for n in names if n not in printed))
    return found


TRIAL_WEIGHTS = 5


def trial_refusals(library: Library, protocol: Protocol, date: str) -> list[str]:
    """Why no sheet can be made from `protocol`, tried at five weights across its soft weight
    limits and five across its hard ones, with a middle height and each sex where it needs them:
    each try's first refusal, or [] when at least one sheet is made (a soft limit counts as made:
    an override passes it). A protocol the loader accepts can still refuse every patient: a fixed
    bag whose rate is above the rate limit, a concentration no bag meets, a maximum dose rate that
    needs longer than the duration's limit allows."""
    limit = protocol.limits.get("weight")
    ranges = [b for b in (limit.soft, limit.hard) if b is not None] if limit is not None else []
    step = protocol.steps.get("weight", Decimal("0.1"))
    weights: list[Decimal] = []
    for bounds in ranges or [Bounds(Decimal(40), Decimal(120))]:
        for i in range(TRIAL_WEIGHTS):
            share = bounds.low + (bounds.high - bounds.low) * i / (TRIAL_WEIGHTS - 1)
            weight = round_half_up(share, step)
            if weight not in weights:
                weights.append(weight)
    height = None
    if protocol.needs_height:
        tall = protocol.limits.get("height")
        span = (tall.soft or tall.hard) if tall is not None else None
        middle = (span.low + span.high) / 2 if span is not None else Decimal(170)
        height = f"{format_number(round_half_up(middle, Decimal(1)), grouping=False)} cm"
    refusals = []
    for weight, sex in product(weights, SEXES if protocol.needs_sex else (None,)):
        text = f"{format_number(weight, grouping=False)} kg"
        order = Order(text, date, protocol.id, height=height, sex=sex)
        try:
            make_sheet(library, order, gate=False)
            return []
        except LimitError as exc:
            hard = [p for p in exc.problems if p.code != "soft_limit"]
            if not hard:
                return []
            refusals.append(f"at {text}: {hard[0].message}")
        except InputError as exc:
            refusals.append(f"at {text}: {exc.problems[0].message}")
    return refusals
