"""The printed-figure verifier: what the nurse reads is what is checked.

After rounding, every figure is checked exactly as printed, the way a second nurse with a calculator
would: what is drawn up and what the pump delivers against the prescribed dose, rate x duration
against the VTBI, every printed value against its hard limit, every printed line of arithmetic, and
the reverse check (rate x duration -> volume -> dose -> dose per kg) from the printed numbers. Any
failure refuses the sheet (LimitError, exit 1), one Problem per failed check naming the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from functools import lru_cache
from typing import Any

from dosecalc.display import Figure, figure, format_percent, format_quantity, text_apart
from dosecalc.dosing import Result
from dosecalc.errors import LimitError, Problem
from dosecalc.exact import EXACT
from dosecalc.protocols import FILLED_TO_MARK, Protocol
from dosecalc.quantities import (
    BY_NAME,
    Compiled,
    Config,
    Interval,
    compiled,
    formulas,
    limit_carriers,
)
from dosecalc.units import Quantity


@dataclass(frozen=True)
class Reverse:
    """The reverse check, computed from the printed figures."""

    volume: Figure  # printed rate x printed duration
    drawn_dose: Figure  # printed drug volume x stock: what is in the bag
    dose: Figure  # volume x drawn dose / printed VTBI
    # / printed dosing weight: only for an uncapped dose per kg (else the check ends at the dose)
    dose_per_kg: Figure | None
    agrees: bool


@dataclass(frozen=True)
class RateCheck:
    """A continuous infusion's reverse check, from the printed figures: the printed rate x the
    printed concentration is the dose rate the pump gives; / the printed dosing weight, per kg; in
    the prescription's unit, against what was prescribed."""

    dose_rate: Figure  # dose unit per h
    dose_rate_per_kg: Figure | None  # dose unit per kg per h; None for a rate not per kg
    prescribed_unit: Figure  # the same, in the prescription's unit (per kg or not)
    agrees: bool


def printed_lines(
    protocol: Protocol, basis: str | None = None, config: Config | None = None
) -> list[Compiled]:
    """The forward formulas a sheet prints as arithmetic ("Dose  0.5 mg/kg x 72 kg = 36 mg"), for
    a sheet dosing on `basis` (the protocol's own by default), or running `config`
    (Result.config: with a drop factor given for the sheet)."""
    config = config or protocol.config(basis)
    checked = compiled(config)
    return [checked[f.target] for f in formulas(config) if f.shown]


def verify(
    protocol: Protocol,
    result: Result,
    figures: Mapping[str, Figure],
    checkpoints: Sequence[Any] = (),
    operands: Mapping[str, Figure] | None = None,
) -> Reverse:
    """Check the printed figures; return the reverse check, or raise LimitError. `checkpoints` are
    the printed checkpoint rows (minute, volume, dose figures): none may read 0 for a real amount.
    `operands`: the printed operands that are not reported quantities (constants, caps)."""
    config = result.config or protocol.config(result.basis)
    checked = compiled(config)
    operands = operands or {}
    problems: list[Problem] = []
    limit = protocol.max_rounding_change
    allowed = format_percent(limit)
    printed = {name: fig.rounded for name, fig in figures.items()}
    # In a make-up-to preparation the diluent is whatever fills the syringe or bag to its mark: it
    # is not held to max_rounding_change (a few hundredths of a mL can be 10% of it), but the
    # preparation must still add up (_preparation).
    held = {
        name: fig
        for name, fig in figures.items()
        if not (name == "diluent_volume" and protocol.preparation in FILLED_TO_MARK)
    }
    with localcontext(EXACT):
        for name, fig in _printed_zero(held, checkpoints):
            problems.append(
                Problem(name, "printed_zero", f"{_label(name)} {fig.exact_text} is printed as 0")
            )
        if problems:  # nothing below can divide by a printed zero
            raise LimitError(problems)

        problems += _preparation(protocol, figures)
        for name, fig in held.items():
            # A figure rounding did not change moved by nothing (the common case, checked first).
            if fig.rounded != fig.exact and abs(fig.rounded - fig.exact) > limit * abs(fig.exact):
                problems.append(
                    Problem(
                        name,
                        "printed_rounding",
                        f"{_label(name)} {fig.exact_text} is printed as {fig.text}, a change of "
                        f"more than max_rounding_change {allowed}",
                    )
                )

        dose = result.values["dose"]
        dose_fig = figures["dose"]
        drawn = checked["drawn_dose"].within({**printed, "stock": result.values["stock"]})
        delivered = checked["delivered_dose"].within(printed)
        for code, value in (("printed_drawn_dose", drawn), ("printed_delivered_dose", delivered)):
            if abs(value - dose) > limit * dose:
                what = (
                    f"{figures['drug_volume'].text} drawn up of {figures['stock'].text} holds"
                    if code == "printed_drawn_dose"
                    else f"a VTBI of {figures['total_volume'].text} at "
                    f"{figures['concentration'].text} delivers"
                )
                problems.append(
                    Problem(
                        "dose",
                        code,
                        f"{what} {_shown(value, dose_fig)}, not the {dose_fig.exact_text} "
                        f"prescribed (more than max_rounding_change {allowed} apart)",
                    )
                )

        rate, minutes, vtbi = figures["rate"], figures["duration"], figures["total_volume"]
        volume = checked["reverse_volume"].within(printed)
        one_step = (
            checked["reverse_volume"].within({**printed, "rate": protocol.steps["rate"]})
            + vtbi.step / 2
        )
        if abs(volume - vtbi.rounded) > one_step:
            problems.append(
                Problem(
                    "rate",
                    "printed_rate_vtbi",
                    f"{rate.text} for {minutes.text} runs {_shown(volume, vtbi)}, not the VTBI "
                    f"{vtbi.text} (more than one rate step of {_step(protocol, 'rate')} explains)",
                )
            )

        problems += _delivery(protocol, figures)
        problems += _hard_limits(protocol, figures, drawn)
        problems += _arithmetic(protocol, {**operands, **figures}, result.basis, config)

        reverse_dose = checked["reverse_dose"].within(
            {**printed, "reverse_volume": volume, "drawn_dose": drawn}
        )
        agrees = abs(reverse_dose - dose) <= limit * dose
        # The last leg, back to the dose per kg, where the dose is the dose per kg x the dosing
        # weight (not per m2, fixed, divided over a day, or capped).
        per_kg = config.per == "kg" and not config.per_day and not result.capped
        reverse_dpk = None
        if per_kg:
            reverse_dpk = checked["reverse_dose_per_kg"].within(
                {**printed, "reverse_dose": reverse_dose}
            )
            dpk = result.values["dose_per_kg"]
            agrees = agrees and abs(reverse_dpk - dpk) <= limit * dpk
        if not agrees:
            if reverse_dpk is not None:
                per = f" ({_shown(reverse_dpk, figures['dose_per_kg'])})"
                prescribed = f" ({figures['dose_per_kg'].text})"
            else:
                per = prescribed = ""
            problems.append(
                Problem(
                    "reverse_check",
                    "reverse_check_failed",
                    f"reverse check: the printed rate and duration deliver "
                    f"{_shown(reverse_dose, dose_fig)}{per}, not the {dose_fig.exact_text}"
                    f"{prescribed} prescribed",
                )
            )
    if problems:
        raise LimitError(problems)
    dpk_fig = figures.get("dose_per_kg")
    return Reverse(
        volume=figure(volume, vtbi.step, vtbi.unit),
        drawn_dose=figure(drawn, dose_fig.step, dose_fig.unit),
        dose=figure(reverse_dose, dose_fig.step, dose_fig.unit),
        dose_per_kg=(
            None
            if reverse_dpk is None or dpk_fig is None
            else figure(reverse_dpk, dpk_fig.step, dpk_fig.unit)
        ),
        agrees=agrees,
    )


def _printed_zero(
    held: Mapping[str, Figure], checkpoints: Sequence[Any]
) -> list[tuple[str, Figure]]:
    """(name, figure) of every figure and checkpoint row that prints 0 for an amount that is not."""
    found = [(name, fig) for name, fig in held.items() if fig.rounded == 0 and fig.exact != 0]
    for c in checkpoints:
        for kind, fig in (("volume", c.volume), ("dose", c.dose)):
            if fig.rounded == 0 and fig.exact != 0:
                found.append((f"checkpoint at {c.minute.text}: {kind}", fig))
    return found


def _preparation(protocol: Protocol, figures: Mapping[str, Figure]) -> list[Problem]:
    """The preparation steps add up as printed: what is drawn up fits in the total volume, and a
    make-up-to's drug volume plus diluent is its final volume (within their printed steps)."""
    drug, total = figures["drug_volume"], figures["total_volume"]
    problems = []
    if drug.rounded > total.rounded:
        problems.append(
            Problem(
                "drug_volume",
                "printed_preparation",
                f"{drug.text} drawn up is more than the total volume {total.text}",
            )
        )
    elif protocol.preparation == "neat" and drug.rounded != total.rounded:
        problems.append(
            Problem(
                "total_volume",
                "printed_preparation",
                f"a neat dose runs what is drawn up, but {drug.text} drawn up is not the VTBI "
                f"{total.text}",
            )
        )
    elif protocol.preparation in FILLED_TO_MARK:
        diluent = figures["diluent_volume"]
        slack = (drug.step + diluent.step + total.step) / 2
        if abs(drug.rounded + diluent.rounded - total.rounded) > slack:
            problems.append(
                Problem(
                    "diluent_volume",
                    "printed_preparation",
                    f"{drug.text} drawn up and {diluent.text} added do not make {total.text}",
                )
            )
    return problems


def _delivery(protocol: Protocol, figures: Mapping[str, Figure]) -> list[Problem]:
    """Preparation and delivery limits on the printed figures (issue 11): the printed dose in the
    printed final volume is no stronger than a to-concentration target, and the printed dose over
    the printed duration runs no faster than max_dose_rate."""
    problems = []
    dose, total, minutes = figures["dose"], figures["total_volume"], figures["duration"]
    target = protocol.final_concentration
    if target is not None:
        strongest = target.to(protocol.unit("{d}/mL"))
        if dose.rounded > strongest * total.rounded:
            problems.append(
                Problem(
                    "concentration",
                    "printed_final_concentration",
                    f"{dose.text} in {total.text} is stronger than the final concentration "
                    f"{target.text.strip()}",
                )
            )
    fastest = protocol.max_dose_rate
    if fastest is not None:
        per_minute = fastest.to(protocol.unit("{d}/min"))
        if dose.rounded > per_minute * minutes.rounded:
            problems.append(
                Problem(
                    "duration",
                    "printed_max_dose_rate",
                    f"{dose.text} over {minutes.text} runs faster than max_dose_rate "
                    f"{fastest.text.strip()}",
                )
            )
        # The pump runs the printed rate, of the bag as labelled (or as its printed dose and
        # volume make it, whichever is stronger).
        rate, concentration = figures["rate"], figures["concentration"]
        strongest = max(concentration.rounded, dose.rounded / total.rounded)
        per_hour = fastest.to(protocol.unit("{d}/h"))
        if rate.rounded * strongest > per_hour:
            problems.append(
                Problem(
                    "rate",
                    "printed_max_dose_rate",
                    f"{rate.text} of {concentration.text} runs faster than max_dose_rate "
                    f"{fastest.text.strip()}",
                )
            )
    return problems


def _hard_limits(
    protocol: Protocol, figures: Mapping[str, Figure], drawn: Decimal | None
) -> list[Problem]:
    """Every printed value a hard limit applies to, and the dose drawn up, inside that limit."""
    problems = []
    checks: list[tuple[str, str, Decimal, Figure | None]] = [
        (name, limit_name, figures[name].rounded, figures[name])
        for name, limit_name in _limited(tuple(figures))
    ]
    dose_fig = figures.get("dose")
    if drawn is not None and dose_fig is not None:
        checks.append(("drawn_dose", "dose", drawn, None))
    for name, limit_name, value, fig in checks:
        limit = protocol.limits.get(limit_name)
        if limit is None or limit.hard is None or limit.hard.contains(value):
            continue
        side = "below" if value < limit.hard.low else "above"
        edge = limit.hard.low if side == "below" else limit.hard.high
        shown = (
            fig.text
            if fig is not None
            else text_apart(value, edge, limit.unit, figures["dose"].step)
        )
        what = "dose drawn up" if name == "drawn_dose" else f"printed {_label(name)}"
        problems.append(
            Problem(
                name,
                "printed_hard_limit",
                f"{what} {shown} is {side} the hard limit "
                f"{format_quantity(edge, limit.unit)} for {limit_name.replace('_', ' ')}",
            )
        )
    return problems


@lru_cache(maxsize=256)
def _limited(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(figure, limit) for each figure of `names` a hard limit applies to, in figure order."""
    carriers = limit_carriers(names)
    return tuple(
        (name, limit_name)
        for name in names
        if (limit_name := BY_NAME[name].limit) is not None and carriers[limit_name] == name
    )


def operand_interval(fig: Figure) -> Interval:
    """The values a printed operand can stand for: exact where shown exact, else +- half a unit in
    the last place printed."""
    if not fig.was_rounded:
        return Interval.point(fig.exact)
    shown = operand_point(fig)  # fig.operand_number as a Decimal
    half = half_place(shown)
    return Interval(shown - half, shown + half)


def half_place(shown: Decimal) -> Decimal:
    """Half a unit in the last place of an unrounded value as printed (Figure.exact_shown: two
    more decimals than the step, or more where two would round to another printed value)."""
    exponent = shown.as_tuple().exponent
    assert isinstance(exponent, int)
    return _half_unit(exponent)


@lru_cache(maxsize=256)
def _half_unit(exponent: int) -> Decimal:
    return Decimal(5).scaleb(exponent - 1)


def operand_point(fig: Figure) -> Decimal:
    """The value a printed operand shows (the middle of its operand_interval): the Decimal of
    Figure.operand_number."""
    return fig.exact_shown if fig.was_rounded else fig.exact


def _true_as_shown(
    line: Compiled, target: str, figures: Mapping[str, Figure], shown: dict[str, Decimal]
) -> bool:
    """The quick form of the interval check: the line computed from the operands exactly as shown
    lands inside the values the printed result stands for. The operands as shown lie inside their
    intervals, so the line's interval holds this value too, and the two intervals overlap. False
    sends the line to the full interval check (which decides), never to a refusal by itself.
    `shown`: operand_point of each figure, filled as the lines need them (a figure is the result
    of one line and an operand of others). The caller holds localcontext(EXACT)."""
    for name in (*line.formula.operands, target):
        if name not in shown:
            shown[name] = operand_point(figures[name])
    try:
        value = line.within(shown)
    except ArithmeticError:  # a zero divisor: the interval check decides, as before
        return False
    fig = figures[target]
    if not fig.was_rounded:  # operand_interval: the exact value alone
        return value == fig.exact
    half = half_place(shown[target])
    return shown[target] - half <= value <= shown[target] + half


def _arithmetic(
    protocol: Protocol,
    figures: Mapping[str, Figure],
    basis: str | None = None,
    config: Config | None = None,
) -> list[Problem]:
    """Each printed line of arithmetic is true with the numbers shown (to their printed places)."""
    problems = []
    shown: dict[str, Decimal] = {}
    with localcontext(EXACT):
        for line in printed_lines(protocol, basis, config):
            name = line.formula.target
            if _true_as_shown(line, name, figures, shown):
                continue
            target = figures[name]
            operands = {n: operand_interval(figures[n]) for n in line.formula.operands}
            if not line.interval(operands).overlaps(operand_interval(target)):
                text = line.text({n: figures[n].operand_text for n in line.formula.operands})
                problems.append(
                    Problem(
                        name,
                        "printed_arithmetic",
                        f"the printed line '{text} = {target.operand_text}' is not true",
                    )
                )
    return problems


def _label(name: str) -> str:
    spec = BY_NAME.get(name)
    return spec.label.lower() if spec is not None else name.replace("_", " ")


def _shown(value: Decimal, like: Figure) -> str:
    """A value computed from printed figures, shown to two more places than `like`'s step."""
    return figure(value, like.step, like.unit).exact_text


def _step(protocol: Protocol, key: str) -> str:
    return format_quantity(protocol.steps[key], BY_NAME[key].unit)


def pump_gives(
    protocol: Protocol,
    config: Config,
    rate: Decimal,
    concentration: Decimal,
    weight: Decimal,
    unit: str,
) -> tuple[Decimal, Decimal, Decimal]:
    """What a pump rate of a concentration gives a patient of `weight`: (dose rate per h, per kg
    per h, and the prescription's rate in `unit`, "mcg/kg/min"), with the pint-checked formulas and
    pint's factor into `unit`. The reverse check of a continuous sheet (printed figures) and the
    double check (a nurse's entries) both ask it."""
    checked = compiled(config)
    with localcontext(EXACT):
        per_hour = checked["pump_dose_rate"].value({"rate": rate, "concentration": concentration})
        per_kg = checked["pump_dose_rate_per_kg"].value(
            {"pump_dose_rate": per_hour, "dosing_weight_kg": weight}
        )
        working = protocol.unit("{d}/kg/h" if config.per == "kg" else "{d}/h")
        value = per_kg if config.per == "kg" else per_hour
        in_unit = Quantity(value, working, "", BY_NAME[config.prescribed].kind).to(unit)
    return per_hour, per_kg, in_unit


def verify_continuous(
    protocol: Protocol,
    result: Result,
    figures: Mapping[str, Figure],
    titration: Sequence[tuple[Figure, Figure]] = (),
    operands: Mapping[str, Figure] | None = None,
) -> RateCheck:
    """A continuous infusion's printed figures (issue 11): none prints 0 or moves more than
    max_rounding_change, the bag adds up and holds its drug as drawn, each printed figure within
    its hard limit, each printed line of arithmetic true, each titration row's printed rate within
    max_rounding_change of its exact rate, and the reverse check from the printed rate. Raises
    LimitError."""
    config = result.config or protocol.config()
    checked = compiled(config)
    limit = protocol.max_rounding_change
    allowed = format_percent(limit)
    problems: list[Problem] = []
    held = {
        name: fig
        for name, fig in figures.items()
        if not (name == "diluent_volume" and protocol.preparation in FILLED_TO_MARK)
    }
    rows = [(f"titration {t.text}: rate", rate) for t, rate in titration]
    with localcontext(EXACT):
        for name, fig in [*held.items(), *rows]:
            if fig.exact != 0 and fig.rounded == 0:
                problems.append(
                    Problem(
                        name, "printed_zero", f"{_label(name)} {fig.exact_text} is printed as 0"
                    )
                )
        if problems:
            raise LimitError(problems)
        for name, fig in [*held.items(), *rows]:
            if abs(fig.rounded - fig.exact) > limit * abs(fig.exact):
                problems.append(
                    Problem(
                        name if name in figures else "titration",
                        "printed_rounding",
                        f"{_label(name)} {fig.exact_text} is printed as {fig.text}, a change of "
                        f"more than max_rounding_change {allowed}",
                    )
                )
        if "drug_volume" in figures:
            problems += _preparation(protocol, figures)
            amount = result.values["drug_amount"]
            drawn = checked["drawn_dose"].value(
                {"drug_volume": figures["drug_volume"].rounded, "stock": result.values["stock"]}
            )
            if abs(drawn - amount) > limit * amount:
                problems.append(
                    Problem(
                        "drug_volume",
                        "printed_drawn_dose",
                        f"{figures['drug_volume'].text} drawn up of {figures['stock'].text} holds "
                        f"{_shown(drawn, figures['drug_amount'])}, not the "
                        f"{figures['drug_amount'].text} the bag needs",
                    )
                )
        problems += _hard_limits(protocol, figures, None)
        problems += _arithmetic(protocol, {**(operands or {}), **figures}, None, config)

        v = result.values
        rate_fig, concentration = figures["rate"], figures["concentration"]
        rx_name = config.prescribed
        rx_fig = figures[rx_name]
        per_hour, per_kg, in_rx = pump_gives(
            protocol,
            config,
            rate_fig.rounded,
            concentration.rounded,
            figures["dosing_weight_kg"].rounded,
            rx_fig.unit,
        )
        agrees = abs(per_hour - v["dose_rate"]) <= limit * v["dose_rate"]
        agrees = agrees and abs(in_rx - v[rx_name]) <= limit * v[rx_name]
        if not agrees:
            problems.append(
                Problem(
                    "reverse_check",
                    "reverse_check_failed",
                    f"reverse check: {rate_fig.text} of {concentration.text} gives "
                    f"{_shown(in_rx, rx_fig)}, not the {rx_fig.text} prescribed",
                )
            )
    if problems:
        raise LimitError(problems)
    dose_rate_fig = figures["dose_rate"]
    per_kg_fig = figures.get("dose_rate_per_kg")
    return RateCheck(
        dose_rate=figure(per_hour, dose_rate_fig.step, dose_rate_fig.unit),
        dose_rate_per_kg=None
        if config.per != "kg" or per_kg_fig is None
        else figure(per_kg, per_kg_fig.step, per_kg_fig.unit),
        prescribed_unit=figure(in_rx, rx_fig.step, rx_fig.unit),
        agrees=agrees,
    )
