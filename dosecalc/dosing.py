"""The dose engine: (protocol, weight, overrides) -> an immutable, exact result.

Pure functions over Decimal: no click, no rich, no I/O. Every reported figure is rounded once, by
display.py, from its exact value. The engine settles to a step only what a nurse measures or
programs and the rest is worked out from (protocols.settled): the rate as programmed, a container's
volume made to a concentration or per kg, the dose as drawn up; and the duration it lengthens. The
formulas are quantities.py's, checked by pint; working units: kg, the protocol's dose unit (mg or
mcg), mL, min, and mL/h for rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from functools import lru_cache
from typing import NamedTuple

from dosecalc.display import figure, format_quantity, round_half_up
from dosecalc.errors import InputError, LimitError, Problem
from dosecalc.exact import EXACT
from dosecalc.protocols import (
    MAX_CHECKPOINTS,
    Protocol,
    dose_as_drawn,
    fixed_values,
    prescription,
    round_up,
    settled,
)
from dosecalc.quantities import Compiled, Config, Formula, compiled, formulas, limit_carriers
from dosecalc.units import Quantity, label_volume


class Checkpoint(NamedTuple):  # immutable; a NamedTuple: several a row, cheaply
    minute: Decimal
    volume_ml: Decimal
    dose: Decimal


@dataclass(frozen=True)
class Result:
    """Every number on a dose sheet, exact and in working units: `values` holds one entry per
    quantities.QUANTITIES name (result.dose is result.values["dose"])."""

    protocol_id: str
    dose_unit: str
    weight: Quantity  # as entered
    chosen_stock: Quantity  # as listed in the protocol
    values: Mapping[str, Decimal]
    checkpoints: tuple[Checkpoint, ...]
    basis: str = "actual"  # the weight the dose is based on (issue 10)
    height: Quantity | None = None  # as entered
    sex: str | None = None
    config: Config | None = None  # the formulas this sheet ran
    # A continuous infusion's titration table: (dose rate in the prescription's unit, exact rate
    # in mL/h) for each of the protocol's titration dose rates (issue 11).
    titration: tuple[tuple[Decimal, Decimal], ...] = ()
    # For each row of the titration table, the hard limits its exact values are outside (a dose
    # rate per kg inside its own limits can be outside the dose rate's for this patient): () where
    # none is.
    titration_outside: tuple[tuple[str, ...], ...] = ()
    # The duration the protocol or order gave, in min, where a maximum dose rate or minimum
    # duration made the sheet's longer (issue 11); else None.
    lengthened_from: Decimal | None = None
    lengthened_because: str = (
        ""  # the rule that lengthened it: "1,020 mg at no more than 10 mg/min"
    )
    # The most the bag holds as printed (protocols.dose_as_drawn), where a final concentration or a
    # maximum dose rate was worked out from it; else None.
    dose_as_drawn: Decimal | None = None

    @property
    def capped(self) -> bool:
        """True when a cap (dose_max, daily_dose_max) made the dose smaller."""
        uncapped = self.values.get("dose_uncapped")
        return uncapped is not None and self.values["dose"] < uncapped

    def __getattr__(self, name: str) -> Decimal:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None


def choose_stock(protocol: Protocol, stock: Quantity | None) -> Quantity:
    """The protocol's first stock, or the one asked for if (and only if) it is on the list."""
    if stock is None:
        return protocol.stock[0]
    unit = protocol.unit("{d}/mL")
    same = [listed for listed in protocol.stock if listed.to(unit) == stock.to(unit)]
    # A container given with its volume ("800 mg/500 mL") is that container where the list has it
    # (a continuous infusion runs the bag's volume), else any of the same strength.
    bag = label_volume(stock)
    exact = [listed for listed in same if bag is not None and label_volume(listed) == bag]
    runs_bag = protocol.continuous and protocol.preparation == "neat" and protocol.vtbi is None
    if exact or (same and not (runs_bag and bag is not None)):
        return (exact or same)[0]
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
    height: Quantity | None = None,
    sex: str | None = None,
    drop_factor: Quantity | None = None,
) -> Result:
    """Compute the exact dose, preparation and pump settings with the protocol's pint-checked
    formulas (quantities.py). `dose_per_kg` is the prescription in the protocol's own form (per kg,
    per m2, fixed, per day). `height` and `sex` are given exactly when the protocol needs them
    (model.py checks). Raises LimitError where the preparation cannot hold the dose."""
    d = protocol.dose_unit
    chosen = choose_stock(protocol, stock)
    if protocol.continuous:
        return _continuous(protocol, weight, dose_per_kg, chosen, drop_factor)
    rx_name, _, rx_unit = prescription(protocol)
    values: dict[str, Decimal] = {
        **fixed_values(protocol, sex),
        "weight_kg": weight.to("kg"),
        rx_name: (dose_per_kg or protocol.dose).to(rx_unit),
        "duration": (duration or protocol.given_over).to("min"),
        "stock": chosen.to(f"{d}/mL"),
    }
    if height is not None:
        values["height_cm"] = height.to("cm")
    if drop_factor is not None:
        values["drop_factor"] = drop_factor.to("gtt/mL")
    basis = protocol.basis
    if protocol.bmi_trigger is not None and basis != "actual":
        # The BMI decides the basis: computed first, exactly (never the printed, rounded BMI).
        bmi = compiled(protocol.config())["bmi"].value(values)
        if bmi < protocol.bmi_trigger.to("kg/m2"):
            basis = "actual"
    config = protocol.config(basis, drops="drop_factor" in values)
    checked = compiled(config)
    lengthened: tuple[Decimal | None, str] | None = None
    with localcontext(EXACT):
        for formula in formulas(config):
            if "duration" in formula.operands and lengthened is None:
                lengthened = _settle_duration(protocol, values, checked, duration is not None)
            values[formula.target] = settled(protocol, checked[formula.target], values)
    _keep_reported(values, formulas(config))
    minutes = values["duration"]
    assert protocol.checkpoint_every is not None  # a dose given over a duration has them
    every = protocol.checkpoint_every.to("min")
    if minutes > every * MAX_CHECKPOINTS:
        # Beyond any duration the protocol's hard limit allows (the loader keeps that within
        # MAX_CHECKPOINTS checkpoints): refuse before listing millions of checkpoints.
        hard = protocol.limits["duration"].hard
        reason = (
            f"above the hard limit {format_quantity(hard.high, 'min')} (range "
            f"{format_quantity(hard.low, 'min')} to {format_quantity(hard.high, 'min')})"
            if hard is not None
            else f"above the hard limit of protocol {protocol.id} (more than {MAX_CHECKPOINTS} "
            "checkpoints)"
        )
        shown = (duration or protocol.given_over).text.strip()
        raise LimitError(Problem("duration", "hard_limit", f"duration '{shown}' is {reason}"))
    checkpoints = _checkpoints(every, values, checked, protocol.steps)
    ruled = protocol.final_concentration is not None or protocol.max_dose_rate is not None
    return Result(
        protocol_id=protocol.id,
        dose_unit=d,
        weight=weight,
        chosen_stock=chosen,
        values=values,
        checkpoints=checkpoints,
        basis=basis,
        height=height,
        sex=sex,
        config=config,
        lengthened_from=lengthened[0] if lengthened else None,
        lengthened_because=lengthened[1] if lengthened else "",
        dose_as_drawn=dose_as_drawn(protocol, values) if ruled else None,
    )


def _continuous(
    protocol: Protocol,
    weight: Quantity,
    dose_rate: Quantity | None,
    chosen: Quantity,
    drop_factor: Quantity | None,
) -> Result:
    """A continuous infusion (issue 11): the patient's dose rate, the container, the pump rate and
    how long the container lasts, and the rate for each dose rate of the titration table."""
    rx_name, _, rx_unit = prescription(protocol)
    values: dict[str, Decimal] = {
        **fixed_values(protocol, None, chosen),
        "weight_kg": weight.to("kg"),
        rx_name: (dose_rate or protocol.dose).to(rx_unit),
        "stock": chosen.to(protocol.unit("{d}/mL")),
    }
    if drop_factor is not None:
        values["drop_factor"] = drop_factor.to("gtt/mL")
    # A drop factor given for this sheet adds drops; else the protocol's own decides.
    config = protocol.config(drops=True if drop_factor is not None else None)
    checked = compiled(config)
    steps = formulas(config)

    def run(start: dict[str, Decimal]) -> dict[str, Decimal]:
        found = dict(start)
        with localcontext(EXACT):
            for formula in steps:
                found[formula.target] = settled(protocol, checked[formula.target], found)
        return found

    values = run(values)
    rows = [run({**values, rx_name: t.to(rx_unit)}) for t in protocol.titration]
    titration = tuple(
        (t.to(rx_unit), row["rate"]) for t, row in zip(protocol.titration, rows, strict=True)
    )
    titration_outside = tuple(_outside_hard(protocol, row) for row in rows)
    _keep_reported(values, steps)
    return Result(
        protocol_id=protocol.id,
        dose_unit=protocol.dose_unit,
        weight=weight,
        chosen_stock=chosen,
        values=values,
        checkpoints=(),
        config=config,
        titration=titration,
        titration_outside=titration_outside,
    )


def _outside_hard(protocol: Protocol, values: Mapping[str, Decimal]) -> tuple[str, ...]:
    """The names of the hard limits `values` (exact, working units) are outside, in limit order."""
    carriers = limit_carriers(values)
    outside = []
    for name, limit in protocol.limits.items():
        carrier = carriers.get(name)
        if (
            carrier is not None
            and limit.hard is not None
            and not limit.hard.contains(values[carrier])
        ):
            outside.append(name)
    return tuple(outside)


# Operands a calculation works with but a sheet does not report.
_WORKING_ONLY = ("container_volume", "minimum_duration")


def _keep_reported(values: dict[str, Decimal], steps: tuple[Formula, ...]) -> None:
    """Drop what the sheet's formulas do not use and the working-only operands; refuse a bag whose
    drug volume overflows its final volume (make-up-to)."""
    used = _used(steps)
    for name in [n for n in values if n not in used or n in _WORKING_ONLY]:
        del values[name]
    if values.get("diluent_volume", 0) < 0:
        raise LimitError(
            Problem(
                "drug_volume",
                "make_up_overflow",
                f"drug volume {format_quantity(values['drug_volume'], 'mL')} is more than the "
                f"final volume {format_quantity(values['total_volume'], 'mL')} of a make-up-to "
                "preparation",
            )
        )


@lru_cache(maxsize=128)
def _used(steps: tuple[Formula, ...]) -> frozenset[str]:
    """Every name the formulas of a configuration compute or read."""
    return frozenset(name for f in steps for name in (f.target, *f.operands))


def _settle_duration(
    protocol: Protocol, values: dict[str, Decimal], checked: Mapping[str, Compiled], typed: bool
) -> tuple[Decimal | None, str]:
    """Lengthen the duration to the shortest the protocol allows for this dose: min_duration, and
    the dose as drawn at max_dose_rate (rounded up to the duration step, then as far as the rate
    as programmed needs). A typed duration that is too short is refused (too_fast); the protocol's
    own is lengthened. Returns the duration it was lengthened from (None: unchanged) and why."""
    minutes = values["duration"]
    step = protocol.steps["duration"]
    shortest = Decimal(0)
    why = ""
    if protocol.min_duration is not None:
        shortest = protocol.min_duration.to("min")
        why = f"min_duration {protocol.min_duration.text.strip()}"
    fastest = protocol.max_dose_rate
    if fastest is not None:
        dose = dose_as_drawn(protocol, values)
        # The amount the rule is worked out from, as the sheet prints it (the drawn-up amount
        # "(1,085 mg)", or the dose): never rounded again to the dose step, which named a third
        # amount (1,090 mg) beside "given as 1,080 mg" and "(1,085 mg)".
        amount = figure(dose, protocol.steps["dose"], protocol.dose_unit).exact_text
        rule = f"{amount} at no more than {fastest.text.strip()}"
        need = round_up(checked["minimum_duration"].value({**values, "dose": dose}), step)
        if need > shortest:
            shortest, why = need, rule
        programmable = _programmable(protocol, values, checked, shortest)
        if programmable > shortest:
            shortest, why = programmable, f"{rule} at the rate as programmed"
    if minutes >= shortest:
        return None, ""
    if typed:
        raise LimitError(
            Problem(
                "duration",
                "too_fast",
                f"duration: {format_quantity(minutes, 'min')} is too short: {why} needs at least "
                f"{format_quantity(shortest, 'min')} (protocol {protocol.id})",
            )
        )
    values["duration"] = shortest
    return minutes, f"{why} needs at least {format_quantity(shortest, 'min')}"


def _programmable(
    protocol: Protocol,
    values: Mapping[str, Decimal],
    checked: Mapping[str, Compiled],
    start: Decimal,
) -> Decimal:
    """The shortest duration from `start` up, in duration steps, whose rate as programmed (rounded
    to the rate step) runs the bag as drawn no faster than max_dose_rate: the pump runs the printed
    rate, and rounding it up can push the dose rate over the maximum."""
    assert protocol.max_dose_rate is not None
    steps = protocol.steps
    fastest = protocol.max_dose_rate.to(protocol.unit("{d}/h"))
    total = values["total_volume"]
    strongest = max(
        EXACT.divide(dose_as_drawn(protocol, values), total),
        EXACT.divide(
            round_half_up(values["dose"], steps["dose"]), round_half_up(total, steps["volume"])
        ),
        round_half_up(values["concentration"], steps["concentration"]),
    )
    minutes = start
    for _ in range(MAX_LENGTHENING_STEPS):
        rate = checked["rate"].value({**values, "duration": minutes})
        programmed = round_half_up(rate, steps["rate"])
        pump = checked["pump_dose_rate"].value({"rate": programmed, "concentration": strongest})
        if pump <= fastest:
            return minutes
        minutes += steps["duration"]
    return minutes  # past any hard limit by now: the duration limit refuses the sheet


# How far past the dose / max_dose_rate the programmed rate may push the duration, in steps.
MAX_LENGTHENING_STEPS = 10_000


def _checkpoints(
    every: Decimal,
    values: Mapping[str, Decimal],
    checked: Mapping[str, Compiled],
    steps: Mapping[str, Decimal],
) -> tuple[Checkpoint, ...]:
    """At every multiple of `every` after the start, and at the end: the volume the pump shows as
    infused at the rate programmed (the printed rate; the sheet tells the nurse to compare the
    two), never more than the VTBI programmed, and the dose in that volume."""
    minutes = values["duration"]
    times = []
    t = every
    while t < minutes:
        times.append(t)
        t += every
    times.append(minutes)
    volume, dose = checked["checkpoint_volume"], checked["checkpoint_dose"]
    at = {name: values[name] for name in dose.formula.operands if name in values}
    rate = {"rate": round_half_up(values["rate"], steps["rate"])}
    vtbi = round_half_up(values["total_volume"], steps["volume"])
    points = []
    with localcontext(EXACT):
        for t in times:
            rate["elapsed"] = t
            shown = min(volume.within(rate), vtbi)
            # The dose in it: never more than the bag holds (a VTBI rounded up past it).
            at["checkpoint_volume"] = min(shown, values["total_volume"])
            points.append(Checkpoint(t, shown, dose.within(at)))
    return tuple(points)
