"""The dose engine: (protocol, weight, overrides) -> an immutable, exact result.

Pure functions over Decimal: no click, no rich, no I/O, no rounding (display.py rounds, once).
Working units: kg, the protocol's dose unit (mg or mcg), mL, min, and mL/h for rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from dosecalc.display import format_quantity
from dosecalc.errors import InputError, LimitError, Problem
from dosecalc.exact import EXACT
from dosecalc.protocols import MAX_CHECKPOINTS, Protocol
from dosecalc.units import Quantity

# The reverse check recomputes through rate and concentration; at 60 digits the only difference
# allowed is the last-digit rounding of the quotients.
REVERSE_CHECK_TOLERANCE = Decimal("1e-40")


@dataclass(frozen=True)
class Checkpoint:
    minute: Decimal
    volume_ml: Decimal
    dose: Decimal


@dataclass(frozen=True)
class ReverseCheck:
    """Rate x duration -> volume; x concentration -> dose; / dosing weight -> dose per kg."""

    volume_ml: Decimal
    dose: Decimal
    dose_per_kg: Decimal


@dataclass(frozen=True)
class Result:
    """Every number on a dose sheet, exact and in working units."""

    protocol_id: str
    dose_unit: str
    weight: Quantity  # as entered
    weight_kg: Decimal
    dosing_weight_kg: Decimal
    dose_per_kg: Decimal  # dose unit per kg
    dose: Decimal
    stock: Quantity  # as listed in the protocol
    stock_per_ml: Decimal  # dose unit per mL
    drug_volume_ml: Decimal
    diluent_volume_ml: Decimal  # what is added (add: the bag; make-up-to: total - drug volume)
    total_volume_ml: Decimal
    concentration: Decimal  # dose unit per mL
    duration_min: Decimal
    rate_ml_per_h: Decimal
    dose_rate_per_h: Decimal
    dose_rate_per_kg_per_h: Decimal
    checkpoints: tuple[Checkpoint, ...]
    reverse: ReverseCheck


def choose_stock(protocol: Protocol, stock: Quantity | None) -> Quantity:
    """The protocol's first stock, or the one asked for if (and only if) it is on the list."""
    if stock is None:
        return protocol.stock[0]
    unit = protocol.unit("{d}/mL")
    for listed in protocol.stock:
        if listed.to(unit) == stock.to(unit):
            return listed
    allowed = ", ".join(s.text for s in protocol.stock)
    raise InputError(
        Problem(
            "stock",
            "stock_not_listed",
            f"stock: '{stock.text}' is not a strength protocol {protocol.id} allows. "
            f"Accepted: {allowed}.",
        )
    )


def calculate(
    protocol: Protocol,
    weight: Quantity,
    dose_per_kg: Quantity | None = None,
    duration: Quantity | None = None,
    stock: Quantity | None = None,
) -> Result:
    """Compute the exact dose, preparation and pump settings. Raises LimitError if inconsistent."""
    d = protocol.dose_unit
    chosen = choose_stock(protocol, stock)
    with localcontext(EXACT):
        weight_kg = weight.to("kg")
        dosing_weight_kg = weight_kg  # actual weight; later protocols may choose ideal/adjusted
        dpk = (dose_per_kg or protocol.dose_per_kg).to(f"{d}/kg")
        minutes = (duration or protocol.duration).to("min")
        stock_per_ml = chosen.to(f"{d}/mL")

        dose = dpk * dosing_weight_kg
        drug_volume = dose / stock_per_ml
        final_volume = protocol.diluent_volume.to("mL")
        if protocol.preparation == "add":
            diluent = final_volume
            total = diluent + drug_volume
        else:
            total = final_volume
            diluent = total - drug_volume
            if diluent < 0:
                raise LimitError(
                    Problem(
                        "drug_volume",
                        "make_up_overflow",
                        f"drug volume {format_quantity(drug_volume, 'mL')} is more than the "
                        f"final volume {format_quantity(final_volume, 'mL')} of a make-up-to "
                        "preparation",
                    )
                )
        concentration = dose / total
        rate = total * 60 / minutes
        dose_rate = dose * 60 / minutes
        dose_rate_per_kg = dose_rate / dosing_weight_kg
        every = protocol.checkpoint_every.to("min")
        if minutes > every * MAX_CHECKPOINTS:
            # Beyond any duration the protocol's hard limit allows (the loader keeps that within
            # MAX_CHECKPOINTS checkpoints): refuse before listing millions of checkpoints.
            raise LimitError(
                Problem(
                    "duration",
                    "hard_limit",
                    f"duration '{(duration or protocol.duration).text.strip()}' is above the "
                    f"hard limit of protocol {protocol.id} (more than {MAX_CHECKPOINTS} "
                    "checkpoints)",
                )
            )
        checkpoints = _checkpoints(every, minutes, total, dose)

        volume_back = rate * minutes / 60
        dose_back = volume_back * concentration
        reverse = ReverseCheck(volume_back, dose_back, dose_back / dosing_weight_kg)
        _verify(reverse, total, dose, dpk)

    return Result(
        protocol_id=protocol.id,
        dose_unit=d,
        weight=weight,
        weight_kg=weight_kg,
        dosing_weight_kg=dosing_weight_kg,
        dose_per_kg=dpk,
        dose=dose,
        stock=chosen,
        stock_per_ml=stock_per_ml,
        drug_volume_ml=drug_volume,
        diluent_volume_ml=diluent,
        total_volume_ml=total,
        concentration=concentration,
        duration_min=minutes,
        rate_ml_per_h=rate,
        dose_rate_per_h=dose_rate,
        dose_rate_per_kg_per_h=dose_rate_per_kg,
        checkpoints=checkpoints,
        reverse=reverse,
    )


def _checkpoints(
    every: Decimal, minutes: Decimal, total: Decimal, dose: Decimal
) -> tuple[Checkpoint, ...]:
    """At every multiple of `every` after the start, and at the end (cumulative volume and dose)."""
    times = []
    t = every
    while t < minutes:
        times.append(t)
        t += every
    times.append(minutes)
    return tuple(Checkpoint(t, total * t / minutes, dose * t / minutes) for t in times)


def _verify(reverse: ReverseCheck, total: Decimal, dose: Decimal, dpk: Decimal) -> None:
    """The reverse check must reproduce the forward numbers; a mismatch is a bug: refuse."""
    for name, back, forward in (
        ("volume", reverse.volume_ml, total),
        ("dose", reverse.dose, dose),
        ("dose_per_kg", reverse.dose_per_kg, dpk),
    ):
        if abs(back - forward) > REVERSE_CHECK_TOLERANCE * forward:
            raise LimitError(
                Problem(
                    "reverse_check",
                    "reverse_check_failed",
                    f"internal check failed: the {name} recomputed from the pump rate does not "
                    "match; no sheet is produced (please report this)",
                )
            )
