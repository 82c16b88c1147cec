"""Soft and hard limit checks over an exact result, like a smart pump's drug library.

Bounds are inclusive and checked on exact (unrounded) values, and the soft ones again on the
printed (rounded) figures, as the nurse reads them (a printed figure outside a hard limit is refused
by verify.py). Hard breaches always refuse; soft breaches need a recorded reason and operator.
Also: the checks that what is programmed (rounded) still delivers what was prescribed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext

from dosecalc.display import Figure, decimals, figure, format_quantity, text_apart
from dosecalc.dosing import Result
from dosecalc.exact import EXACT
from dosecalc.protocols import Bounds, Limit, Protocol
from dosecalc.quantities import Compiled, limit_carriers

# A pump that finishes the VTBI more than this many minutes away from the intended duration
# because its rate was rounded is worth a warning.
RATE_ROUNDING_MINUTES = Decimal(1)
# Values in limit messages are exact unless longer than ten decimals (a repeating quotient);
# those are shown to six (Figure.exact_text adds two decimals to the step).
MAX_MESSAGE_DECIMALS = 10
MESSAGE_STEP = Decimal("0.0001")


@dataclass(frozen=True)
class Breach:
    limit: str
    level: str  # "soft" or "hard"
    value: Decimal
    unit: str
    bounds: Bounds
    printed: bool = False  # the printed (rounded) figure is outside; its exact value is inside

    @property
    def edge(self) -> Decimal:
        return self.bounds.low if self.value < self.bounds.low else self.bounds.high

    @property
    def value_text(self) -> str:
        """The exact value; a long quotient (7201 s in min) is cut to six decimals, or to as many
        as it takes to differ from the limit's edge (44.0924524 lb is 19.99999998... kg, not 20)."""
        if self.printed or decimals(self.value) <= MAX_MESSAGE_DECIMALS:
            return format_quantity(self.value, self.unit)
        return text_apart(self.value, self.edge, self.unit, MESSAGE_STEP)

    @property
    def message(self) -> str:
        side = "below" if self.value < self.bounds.low else "above"
        edge = self.edge
        label = ("printed " if self.printed else "") + self.limit.replace("_", " ")
        return (
            f"{label} {self.value_text} is {side} the {self.level} limit "
            f"{format_quantity(edge, self.unit)} "
            f"(range {format_quantity(self.bounds.low, self.unit)} to "
            f"{format_quantity(self.bounds.high, self.unit)})"
        )


@dataclass(frozen=True)
class Notice:
    code: str
    message: str


def limited_values(result: Result, carriers: Mapping[str, str] | None = None) -> dict[str, Decimal]:
    """The exact value each limit name applies to, in the protocol's working units (`carriers`:
    limit_carriers of the result's values, where the caller has them)."""
    values = result.values
    carriers = limit_carriers(values) if carriers is None else carriers
    return {limit: values[name] for limit, name in carriers.items()}


def check(
    protocol: Protocol, result: Result, carriers: Mapping[str, str] | None = None
) -> list[Breach]:
    """Every breach, hard ones first, in the protocol's limit order."""
    values = limited_values(result, carriers)
    return hard_first(breach(name, limit, values[name]) for name, limit in protocol.limits.items())


def check_printed(
    protocol: Protocol,
    carriers: Mapping[str, str],
    figures: Mapping[str, Figure],
    found: Iterable[Breach],
) -> list[Breach]:
    """The soft limits read as the nurse reads them: a printed figure outside a soft limit that its
    exact value kept to (a bound between two of the figure's rounding steps: 36.15 mg, printed
    36.2 mg) is a soft breach of its own, needing the same override. Limits already breached by
    the exact value are not counted twice."""
    printed = []
    for name, carrier in carriers.items():
        fig = figures.get(carrier)
        if fig is None or fig.rounded == fig.exact:  # printed as it is: checked already
            continue
        limit = protocol.limits.get(name)
        if limit is None or limit.soft is None or any(b.limit == name for b in found):
            continue
        value = fig.rounded
        if not limit.soft.contains(value) and (limit.hard is None or limit.hard.contains(value)):
            printed.append(Breach(name, "soft", value, limit.unit, limit.soft, printed=True))
    return printed


def hard_first(found: Iterable[Breach | None]) -> list[Breach]:
    """The breaches found (None: within its limits), the hard ones first, each group in order."""
    breaches = [b for b in found if b is not None]
    return [b for b in breaches if b.level == "hard"] + [b for b in breaches if b.level == "soft"]


def breach(name: str, limit: Limit, value: Decimal) -> Breach | None:
    """`value` (in the limit's unit) outside the hard limit, else outside the soft one, else None."""
    if limit.hard is not None and not limit.hard.contains(value):
        return Breach(name, "hard", value, limit.unit, limit.hard)
    if limit.soft is not None and not limit.soft.contains(value):
        return Breach(name, "soft", value, limit.unit, limit.soft)
    return None


def rounding_notices(
    checked: Mapping[str, Compiled],
    result: Result,
    dose: Figure,
    drug_volume: Figure,
    vtbi: Figure,
    rate: Figure,
) -> list[Notice]:
    """Warn where rounding what is drawn up or programmed changes what the patient receives, with
    the protocol's pint-checked formulas (`checked`: quantities.compiled) on the rounded figures."""
    notices = []
    half_step = dose.step / 2
    # The comparisons need every digit: at 28 a repeating quotient can round onto the boundary.
    with localcontext(EXACT):
        drawn = checked["drawn_dose"].within(
            {"drug_volume": drug_volume.rounded, "stock": result.stock}
        )
        if abs(drawn - result.dose) > half_step:
            notices.append(
                Notice(
                    "ROUNDED_DRUG_VOLUME",
                    f"{drug_volume.text} drawn up holds "
                    f"{figure(drawn, dose.step, dose.unit).text}, not the {dose.text} prescribed",
                )
            )
        # A VTBI rounded up past the bag delivers the bag, never more (as the checkpoints say).
        delivered = min(
            result.dose,
            checked["delivered_dose"].within(
                {"total_volume": vtbi.rounded, "concentration": result.concentration}
            ),
        )
        if abs(delivered - result.dose) > half_step:
            notices.append(
                Notice(
                    "ROUNDED_VTBI",
                    f"a VTBI of {vtbi.text} delivers "
                    f"{figure(delivered, dose.step, dose.unit).text}, not the {dose.text} "
                    "prescribed",
                )
            )
        minutes = checked["pump_minutes"].within(
            {"total_volume": vtbi.rounded, "rate": rate.rounded}
        )
        if abs(minutes - result.duration) > RATE_ROUNDING_MINUTES:
            notices.append(
                Notice(
                    "ROUNDED_RATE",
                    f"at {rate.text} the VTBI of {vtbi.text} runs "
                    f"{figure(minutes, Decimal('0.1'), 'min').text}, not "
                    f"{format_quantity(result.duration, 'min')}",
                )
            )
    return notices
