"""From an order (the text a nurse typed, or a day-list row) to the one Sheet every renderer reads.

Parses and validates every field, runs the engine, applies the limits and overrides, and rounds every
reported number once (display.figure). Used by `dosecalc sheet` and `dosecalc batch` alike.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from dosecalc.display import Figure, decimals, figure, has_unsafe
from dosecalc.dosing import Result, calculate
from dosecalc.errors import InputError, LimitError, Problem
from dosecalc.limits import Breach, Notice, check, rounding_notices
from dosecalc.protocols import Library, Protocol
from dosecalc.units import Quantity, parse_quantity, safe_echo

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
    """Every number a sheet shows, each rounded once to its protocol step."""

    weight_kg: Figure
    dosing_weight_kg: Figure
    dose_per_kg: Figure
    dose: Figure
    stock: Figure
    drug_volume: Figure
    diluent_volume: Figure
    total_volume: Figure
    concentration: Figure
    duration: Figure
    rate: Figure
    dose_rate: Figure
    dose_rate_per_kg: Figure
    checkpoints: tuple[Checkpoint, ...]
    reverse_volume: Figure
    reverse_dose: Figure
    reverse_dose_per_kg: Figure


@dataclass(frozen=True)
class Sheet:
    library: Library
    protocol: Protocol
    order: Order
    result: Result
    figures: Figures
    warnings: tuple[Notice, ...]
    overrides: tuple[Override, ...]

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
    for field, text, kind in (
        ("weight", order.weight, "weight"),
        ("dose", order.dose, "dose_per_kg"),
        ("duration", order.duration, "duration"),
        ("stock", order.stock, "concentration"),
    ):
        try:
            parsed[field] = _optional(text, field, kind)
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    weight = parsed["weight"]
    assert weight is not None
    result, breaches, figures, notices = _calculated(
        protocol, weight, parsed["dose"], parsed["duration"], parsed["stock"]
    )

    warnings: list[Notice] = []
    if weight.unit == "lb":
        warnings.append(
            Notice(
                "WEIGHT_IN_LB",
                f"weight entered in lb ({weight.text.strip()}): converted at 0.45359237 kg/lb; "
                "kg is the standard, check the patient's weight in kg",
            )
        )
    overrides = _apply_limits(list(breaches), order, confirm, warnings)
    assert figures is not None  # only a hard breach leaves them out, and it raised above
    warnings.extend(notices)
    return Sheet(library, protocol, order, result, figures, tuple(warnings), tuple(overrides))


@lru_cache(maxsize=2048)
def _calculated(
    protocol: Protocol,
    weight: Quantity,
    dose: Quantity | None,
    duration: Quantity | None,
    stock: Quantity | None,
) -> tuple[Result, tuple[Breach, ...], Figures | None, tuple[Notice, ...]]:
    """The part of a sheet that depends only on the protocol and the quantities: a pure function,
    so a day list with many rows of the same weight computes and rounds it once (bounded cache)."""
    result = calculate(protocol, weight, dose, duration, stock)
    breaches = tuple(check(protocol, result))
    if any(b.level == "hard" for b in breaches):
        return result, breaches, None, ()
    figures = _figures(protocol, result)
    notices = rounding_notices(
        result, figures.dose, figures.drug_volume, figures.total_volume, figures.rate
    )
    return result, breaches, figures, tuple(notices)


def _apply_limits(
    breaches: list[Breach], order: Order, confirm: Confirm | None, warnings: list[Notice]
) -> list[Override]:
    hard = [b for b in breaches if b.level == "hard"]
    soft = [b for b in breaches if b.level == "soft"]
    if hard:
        raise LimitError([Problem(b.limit, "hard_limit", b.message) for b in breaches])
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
    s = protocol.steps
    d = r.dose_unit

    def fig(value: Decimal, step: str, unit: str) -> Figure:
        return figure(value, s[step], unit)

    dose_per_kg = _exact(r.dose_per_kg, f"{d}/kg")
    return Figures(
        weight_kg=fig(r.weight_kg, "weight", "kg"),
        dosing_weight_kg=fig(r.dosing_weight_kg, "weight", "kg"),
        dose_per_kg=dose_per_kg,
        dose=fig(r.dose, "dose", d),
        stock=_exact(r.stock_per_ml, f"{d}/mL"),
        drug_volume=fig(r.drug_volume_ml, "drug_volume", "mL"),
        diluent_volume=fig(r.diluent_volume_ml, "volume", "mL"),
        total_volume=fig(r.total_volume_ml, "volume", "mL"),
        concentration=fig(r.concentration, "concentration", f"{d}/mL"),
        duration=fig(r.duration_min, "duration", "min"),
        rate=fig(r.rate_ml_per_h, "rate", "mL/h"),
        dose_rate=fig(r.dose_rate_per_h, "dose_rate", f"{d}/h"),
        dose_rate_per_kg=fig(r.dose_rate_per_kg_per_h, "dose_rate_per_kg", f"{d}/kg/h"),
        checkpoints=tuple(
            Checkpoint(
                fig(c.minute, "duration", "min"),
                fig(c.volume_ml, "volume", "mL"),
                fig(c.dose, "dose", d),
            )
            for c in r.checkpoints
        ),
        reverse_volume=fig(r.reverse.volume_ml, "volume", "mL"),
        reverse_dose=fig(r.reverse.dose, "dose", d),
        reverse_dose_per_kg=figure(r.reverse.dose_per_kg, dose_per_kg.step, f"{d}/kg"),
    )
