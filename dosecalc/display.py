"""The one number formatter (ISMP safe display). Text a user or a file typed: see sanitize.py.

Every number a renderer shows comes from a `Figure`, rounded here once, half-up, to the protocol's
step. Nothing in this module imports rich or click.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import NamedTuple

from dosecalc.exact import EXACT


def round_half_up(value: Decimal, step: Decimal) -> Decimal:
    """`value` rounded half-up to the nearest multiple of `step` (0.5 mg: 36.25 -> 36.5)."""
    quantum = _power_of_ten(step)
    if quantum is not None:  # 0.1, 0.01, 1, 0.010: one quantize does the same, faster
        return value.quantize(quantum, rounding=ROUND_HALF_UP, context=EXACT)
    units = EXACT.divide(value, step).to_integral_value(rounding=ROUND_HALF_UP, context=EXACT)
    return EXACT.multiply(units, step)


@lru_cache(maxsize=256)
def _power_of_ten(step: Decimal) -> Decimal | None:
    """The step as a normalised power of ten (0.010 -> 1E-2), or None (0.5, 0.25, 2)."""
    normal = step.normalize(EXACT)
    return normal if normal.as_tuple().digits == (1,) else None


@lru_cache(maxsize=1024)
def decimals(step: Decimal) -> int:
    """How many decimal places a step has (0.01 -> 2, 0.5 -> 1, 5 -> 0). Cached: a sheet asks
    about the same few protocol steps for every figure (a Decimal is immutable and hashable)."""
    # normalize() in EXACT: at the default 28 digits a longer value (a 60-digit quotient) would
    # first be rounded, and its decimals miscounted.
    exponent = step.normalize(EXACT).as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def format_number(value: Decimal, *, grouping: bool = True) -> str:
    """ISMP: leading zero, no trailing zeros, thousands separators from 1,000 up, never exponent."""
    # No normalize(): it rounds to the ambient context precision (28 digits); "f" prints every digit.
    text = format(value, ",f" if grouping else "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_quantity(value: Decimal, unit: str) -> str:
    """'10 mg', '1,600 mcg/mL'; a percentage without the space ('94%')."""
    return f"{format_number(value)}%" if unit == "%" else f"{format_number(value)} {unit}"


def format_percent(fraction: Decimal) -> str:
    """A fraction as a percentage ('5%' for 0.05); a long quotient to six significant digits."""
    value = (fraction * 100).normalize(EXACT)
    if len(value.as_tuple().digits) > 6:
        value = value.quantize(Decimal(1).scaleb(value.adjusted() - 5), context=EXACT)
    return f"{format_number(value, grouping=False)}%"


class Figure(NamedTuple):
    """One reported value: exact, rounded once to its step, and its unit.

    A NamedTuple rather than a frozen dataclass: a batch makes about thirty per row, and a
    NamedTuple is immutable and about three times cheaper to create. `json` is the rounded value
    as a JSON number (no grouping, no exponent), written once when the figure is made: a day list
    reuses the figures of repeated weights, and every row writes them.
    """

    exact: Decimal
    rounded: Decimal
    unit: str
    step: Decimal
    json: str

    @property
    def number(self) -> str:
        text = self.json  # the same digits without grouping: equal below 1,000
        if len(text) < 4 or (text.find(".") if "." in text else len(text)) - (text[0] == "-") < 4:
            return text
        return format_number(self.rounded)

    @property
    def text(self) -> str:
        """'36 mg': the value as given, for every renderer (a unitless constant: '3,600')."""
        return f"{self.number} {self.unit}" if self.unit else self.number

    @property
    def was_rounded(self) -> bool:
        return self.exact != self.rounded

    @property
    def exact_shown(self) -> Decimal:
        """The unrounded value to two more decimals than the step: what exact_number prints; or
        to as many more as it takes for it to round, half-up, to this figure's printed value
        (103.7495 mL beside "given as 103.7 mL" is "103.7495", never "103.75", which a reader
        rounds to 103.8). Its exponent is the last place printed (verify.half_place)."""
        quantum = finer(self.step)
        shown = self.exact.quantize(quantum, rounding=ROUND_HALF_UP, context=EXACT)
        while shown != self.exact and round_half_up(shown, self.step) != self.rounded:
            quantum = quantum.scaleb(-1)
            shown = self.exact.quantize(quantum, rounding=ROUND_HALF_UP, context=EXACT)
        return shown

    @property
    def exact_number(self) -> str:
        """The unrounded value with two more decimals than the step (or more: exact_shown), for
        a pencil check."""
        return format_number(self.exact_shown)

    @property
    def exact_text(self) -> str:
        return f"{self.exact_number} {self.unit}"

    @property
    def operand_number(self) -> str:
        """The value inside printed arithmetic: unrounded (two more decimals) where rounding
        changed it, so the arithmetic checks with a pencil."""
        return self.exact_number if self.was_rounded else self.number

    @property
    def operand_text(self) -> str:
        return f"{self.operand_number} {self.unit}" if self.unit else self.operand_number


@lru_cache(maxsize=1024)
def finer(step: Decimal) -> Decimal:
    """The quantum two decimals finer than `step` (0.1 -> 0.001), for exact_number."""
    return Decimal(1).scaleb(-(decimals(step) + 2))


def figure(exact: Decimal, step: Decimal, unit: str) -> Figure:
    rounded = round_half_up(exact, step)
    return Figure(exact, rounded, unit, step, format_number(rounded, grouping=False))


def text_apart(value: Decimal, edge: Decimal, unit: str, step: Decimal) -> str:
    """`value` as text with two more decimals than `step`, or as many more as it takes never to
    print equal to `edge` when it is not (200.001 mg is not "200 mg" beside a 200 mg limit)."""
    shown = figure(value, step, unit).exact_text
    edge_text = format_quantity(edge, unit)
    while value != edge and shown == edge_text and step > _FINEST:
        step = step.scaleb(-4)
        shown = figure(value, step, unit).exact_text
    return shown


_FINEST = Decimal("1e-50")
