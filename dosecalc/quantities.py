"""Each reported quantity described once, and each formula written once.

`QUANTITIES` names every number a dose sheet reports: its kind, working unit, rounding-step key, limit
key, JSON key, results.csv column and label. `FORMULAS` gives each computed quantity its formula,
written once over named operands with + - * / and nothing else (no bare numbers: pint supplies every
factor). A formula is evaluated three ways:
- with pint Quantities when a protocol is loaded (`compiled`): the result's dimension is asserted
  against its working unit, and pint gives the exact factor into that unit (mL/min to mL/h: 60);
- with exact Decimals for every sheet (`Compiled.value`), times that factor;
- with Intervals (`Compiled.interval`), for the pencil check of printed arithmetic (verify.py).
Adding a quantity is one `Spec` plus its `Formula`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from functools import lru_cache
from typing import Any, NamedTuple

from dosecalc.exact import EXACT


class Spec(NamedTuple):
    """One reported quantity."""

    name: str  # key in Result.values and Figures
    kind: str  # units.KINDS key: which units it may be written in
    unit: str  # working unit; {d} is the protocol's dose unit (mg, mcg)
    step: str | None  # round.<key> in the protocols file; None: an input, shown as given
    limit: str | None  # limits.<key> in the protocols file
    json: str | None  # key in the JSON sheet
    json_unit: str | None  # key in the JSON sheet that names the unit
    csv: str | None  # column of results.csv
    label: str  # as printed on the sheet


QUANTITIES: tuple[Spec, ...] = (
    Spec("weight_kg", "weight", "kg", "weight", "weight", "weight_kg", None, "weight_kg", "Weight"),
    Spec(
        "dosing_weight_kg",
        "weight",
        "kg",
        "weight",
        None,
        "dosing_weight_kg",
        None,
        None,
        "Dosing weight",
    ),
    Spec(
        "dose_per_kg",
        "dose_per_kg",
        "{d}/kg",
        None,
        "dose_per_kg",
        "dose_per_kg",
        "dose_per_kg_unit",
        None,
        "Dose per kg",
    ),
    Spec("dose", "dose", "{d}", "dose", "dose", "dose", "dose_unit", "dose", "Dose"),
    Spec("stock", "concentration", "{d}/mL", None, None, "stock", "stock_unit", None, "Stock"),
    Spec(
        "drug_volume",
        "volume",
        "mL",
        "drug_volume",
        "drug_volume",
        "drug_volume_ml",
        None,
        "drug_volume_ml",
        "Drug volume",
    ),
    Spec(
        "diluent_volume",
        "volume",
        "mL",
        "volume",
        None,
        "diluent_volume_ml",
        None,
        None,
        "Diluent",
    ),
    Spec(
        "total_volume",
        "volume",
        "mL",
        "volume",
        "total_volume",
        "total_volume_ml",
        None,
        "total_volume_ml",
        "Total volume",
    ),
    Spec(
        "duration",
        "duration",
        "min",
        "duration",
        "duration",
        "duration_min",
        None,
        None,
        "Duration",
    ),
    Spec("rate", "rate", "mL/h", "rate", "rate", "rate_ml_per_h", None, "rate_ml_per_h", "Rate"),
    Spec(
        "concentration",
        "concentration",
        "{d}/mL",
        "concentration",
        "concentration",
        "concentration",
        "concentration_unit",
        None,
        "Concentration",
    ),
    Spec(
        "dose_rate",
        "dose_rate",
        "{d}/h",
        "dose_rate",
        "dose_rate",
        "dose_rate_per_h",
        None,
        None,
        "Dose rate",
    ),
    Spec(
        "dose_rate_per_kg",
        "dose_rate_per_kg",
        "{d}/kg/h",
        "dose_rate_per_kg",
        "dose_rate_per_kg",
        "dose_rate_per_kg_per_h",
        None,
        None,
        "Dose rate per kg",
    ),
)
BY_NAME: dict[str, Spec] = {s.name: s for s in QUANTITIES}

# Operands that are not reported quantities: the container's volume (the bag the dose is added to,
# or the volume it is made up to), the time since the start (checkpoints), and the figures the
# verifier recomputes from (named after what a second nurse reads).
OPERANDS: dict[str, tuple[str, str]] = {
    **{s.name: (s.kind, s.unit) for s in QUANTITIES},
    "container_volume": ("volume", "mL"),
    "elapsed": ("duration", "min"),
    "drawn_dose": ("dose", "{d}"),
    "reverse_volume": ("volume", "mL"),
    "reverse_dose": ("dose", "{d}"),
    "reverse_dose_per_kg": ("dose_per_kg", "{d}/kg"),
    "delivered_dose": ("dose", "{d}"),
    "checkpoint_volume": ("volume", "mL"),
    "checkpoint_dose": ("dose", "{d}"),
    # What a second nurse's entries imply (double_check.py): how long a VTBI runs at a rate, and
    # the dose per hour a rate delivers from a bag.
    "pump_minutes": ("duration", "min"),
    "pump_dose_rate": ("dose_rate", "{d}/h"),
}

# Round keys: the required ones, and the optional ones with their default step (working unit).
STEP_KINDS: dict[str, tuple[str, str]] = {
    s.step: (s.kind, s.unit) for s in QUANTITIES if s.step is not None
}
OPTIONAL_STEPS: dict[str, Decimal] = {"duration": Decimal("0.1")}
LIMIT_KINDS: dict[str, tuple[str, str]] = {
    s.limit: (s.kind, s.unit) for s in QUANTITIES if s.limit is not None
}


class Formula(NamedTuple):
    target: str
    operands: tuple[str, ...]
    fn: Callable[..., Any]
    # How the sheet prints it: operand names in braces; pint's factor, where it is not 1, is shown
    # after the operands with `factor_unit` ("x 60 min/h").
    shown: str = ""
    factor_unit: str = ""


_COMMON_HEAD: tuple[Formula, ...] = (
    Formula("dosing_weight_kg", ("weight_kg",), lambda w: w),
    Formula(
        "dose",
        ("dose_per_kg", "dosing_weight_kg"),
        lambda dpk, w: dpk * w,
        "{dose_per_kg} x {dosing_weight_kg}",
    ),
    Formula("drug_volume", ("dose", "stock"), lambda dose, s: dose / s, "{dose} / {stock}"),
)
_PREPARATION: dict[str, tuple[Formula, ...]] = {
    "add": (
        Formula("diluent_volume", ("container_volume",), lambda v: v),
        Formula(
            "total_volume",
            ("diluent_volume", "drug_volume"),
            lambda diluent, drug: diluent + drug,
            "{diluent_volume} + {drug_volume}",
        ),
    ),
    "make-up-to": (
        Formula("total_volume", ("container_volume",), lambda v: v),
        Formula(
            "diluent_volume",
            ("total_volume", "drug_volume"),
            lambda total, drug: total - drug,
            "{total_volume} - {drug_volume}",
        ),
    ),
}
_COMMON_TAIL: tuple[Formula, ...] = (
    Formula(
        "concentration",
        ("dose", "total_volume"),
        lambda dose, v: dose / v,
        "{dose} / {total_volume}",
    ),
    Formula(
        "rate",
        ("total_volume", "duration"),
        lambda v, t: v / t,
        "{total_volume} / {duration}",
        "min/h",
    ),
    Formula("dose_rate", ("dose", "duration"), lambda dose, t: dose / t),
    Formula("dose_rate_per_kg", ("dose_rate", "dosing_weight_kg"), lambda r, w: r / w),
)
# Not part of a sheet's forward calculation: the cumulative checkpoints, and what the verifier
# recomputes from the printed figures, the way a second nurse with a calculator would.
CHECKS: tuple[Formula, ...] = (
    Formula(
        "checkpoint_volume",
        ("total_volume", "elapsed", "duration"),
        lambda v, t, d: v * t / d,
    ),
    Formula("checkpoint_dose", ("dose", "elapsed", "duration"), lambda dose, t, d: dose * t / d),
    Formula("drawn_dose", ("drug_volume", "stock"), lambda v, s: v * s, "{drug_volume} x {stock}"),
    Formula(
        "delivered_dose",
        ("total_volume", "concentration"),
        lambda v, c: v * c,
        "{total_volume} x {concentration}",
    ),
    Formula(
        "reverse_volume",
        ("rate", "duration"),
        lambda r, t: r * t,
        "{rate} x {duration}",
        "min/h",
    ),
    Formula(
        "reverse_dose",
        ("reverse_volume", "drawn_dose", "total_volume"),
        lambda v, drawn, total: v * drawn / total,
        "{reverse_volume} x {drawn_dose} / {total_volume}",
    ),
    Formula(
        "reverse_dose_per_kg",
        ("reverse_dose", "dosing_weight_kg"),
        lambda dose, w: dose / w,
        "{reverse_dose} / {dosing_weight_kg}",
    ),
    Formula("pump_minutes", ("total_volume", "rate"), lambda v, r: v / r),
    Formula("pump_dose_rate", ("rate", "concentration"), lambda r, c: r * c),
)
PREPARATIONS = tuple(_PREPARATION)


def formulas(preparation: str) -> tuple[Formula, ...]:
    """The forward calculation of a sheet, in the order it runs."""
    return _COMMON_HEAD + _PREPARATION[preparation] + _COMMON_TAIL


class FormulaError(Exception):
    """A formula is wrong: a bare number in it, or its result has the wrong dimension."""


class Compiled(NamedTuple):
    """A formula checked by pint, with pint's exact factor into its target's working unit."""

    formula: Formula
    multiply: Decimal
    divide: Decimal

    @property
    def factor_text(self) -> str:
        """' x 60 min/h' where pint's factor is not 1 (for the printed arithmetic)."""
        unit = f" {self.formula.factor_unit}" if self.formula.factor_unit else ""
        if self.divide == 1 and self.multiply == 1:
            return ""
        if self.divide == 1:
            return f" x {_plain(self.multiply)}{unit}"
        return f" / {_plain(self.divide)}{unit}"

    def text(self, operands: Mapping[str, str]) -> str:
        """The left side of the printed line, with the operands as printed."""
        return self.formula.shown.format(**operands) + self.factor_text

    def value(self, values: Mapping[str, Decimal]) -> Decimal:
        """The exact value, from operands in their working units (60-digit context)."""
        with localcontext(EXACT):
            raw = self.formula.fn(*(values[name] for name in self.formula.operands))
            return raw * self.multiply / self.divide

    def interval(self, ranges: Mapping[str, Interval]) -> Interval:
        with localcontext(EXACT):
            raw = self.formula.fn(*(ranges[name] for name in self.formula.operands))
            if not isinstance(raw, Interval):
                raw = Interval(raw, raw)
            return raw.scale(self.multiply, self.divide)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


@lru_cache(maxsize=64)
def compiled(preparation: str, dose_unit: str) -> dict[str, Compiled]:
    """Every formula of a preparation, checked by pint: {target: Compiled}. Raises FormulaError."""
    return compile_formulas(formulas(preparation) + CHECKS, dose_unit)


def compile_formulas(found: tuple[Formula, ...], dose_unit: str) -> dict[str, Compiled]:
    return {f.target: compile_formula(f, dose_unit) for f in found}


def compile_formula(formula: Formula, dose_unit: str) -> Compiled:
    """Evaluate `formula` with pint Quantities in working units; assert its dimension; take the
    factor into the target's working unit from pint."""
    from dosecalc.units import dimensionality, pint_unit, registry, units_ratio

    _refuse_bare_numbers(formula)
    reg = registry()
    target_kind, target_template = OPERANDS[formula.target]
    target_unit = target_template.format(d=dose_unit)
    operands = []
    for name in formula.operands:
        kind, template = OPERANDS[name]
        operands.append(reg.Quantity(Decimal(1), pint_unit(template.format(d=dose_unit), kind)))
    try:
        result = formula.fn(*operands)
    except Exception as exc:  # pint's DimensionalityError: adding a volume to a mass
        raise FormulaError(
            f"formula for {formula.target} ({_describe(formula)}) mixes dimensions: {exc}"
        ) from None
    expected = dimensionality(target_unit, target_kind)
    if str(result.dimensionality) != expected:
        raise FormulaError(
            f"formula for {formula.target} ({_describe(formula)}) gives "
            f"{result.dimensionality}, but {formula.target} is {expected} ({target_unit})"
        )
    # The formula must scale the same at every point (no sum of terms in different units).
    multiply, divide = units_ratio(result.units, pint_unit(target_unit, target_kind))
    return Compiled(formula, multiply, divide)


def _describe(formula: Formula) -> str:
    return formula.shown.replace("{", "").replace("}", "") or ", ".join(formula.operands)


class _Symbol:
    """An operand that combines only with other operands: a bare number in a formula (a
    hand-written 60 or 1000) is refused, so every factor comes from pint."""

    def _op(self, other: object) -> _Symbol:
        if not isinstance(other, _Symbol):
            raise FormulaError(f"a formula uses the bare number {other!r}: pint supplies factors")
        return self

    __add__ = __sub__ = __mul__ = __truediv__ = _op
    __radd__ = __rsub__ = __rmul__ = __rtruediv__ = _op


def _refuse_bare_numbers(formula: Formula) -> None:
    try:
        formula.fn(*(_Symbol() for _ in formula.operands))
    except FormulaError as exc:
        raise FormulaError(f"formula for {formula.target}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Interval:
    """A closed range [low, high] of exact values (interval arithmetic, for the pencil check of
    printed arithmetic: each printed operand stands for a range of values)."""

    low: Decimal
    high: Decimal

    @staticmethod
    def point(value: Decimal) -> Interval:
        return Interval(value, value)

    def __add__(self, other: object) -> Interval:
        o = _as_interval(other)
        return Interval(self.low + o.low, self.high + o.high)

    def __sub__(self, other: object) -> Interval:
        o = _as_interval(other)
        return Interval(self.low - o.high, self.high - o.low)

    def __mul__(self, other: object) -> Interval:
        o = _as_interval(other)
        products = [a * b for a in (self.low, self.high) for b in (o.low, o.high)]
        return Interval(min(products), max(products))

    def __truediv__(self, other: object) -> Interval:
        o = _as_interval(other)
        if o.low <= 0 <= o.high:
            raise ZeroDivisionError("interval divisor contains zero")
        quotients = [a / b for a in (self.low, self.high) for b in (o.low, o.high)]
        return Interval(min(quotients), max(quotients))

    def scale(self, multiply: Decimal, divide: Decimal) -> Interval:
        return Interval(self.low * multiply / divide, self.high * multiply / divide)

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high


def _as_interval(value: object) -> Interval:
    if isinstance(value, Interval):
        return value
    if isinstance(value, Decimal):
        return Interval(value, value)
    raise TypeError(f"not an interval: {value!r}")
