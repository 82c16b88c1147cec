"""Each reported quantity described once, and each formula written once.

`QUANTITIES` names every number a dose sheet reports: its kind, working unit, rounding-step key, limit
key, JSON key, results.csv column and label. Each computed quantity has its formula, written once
over named operands with + - * / and the functions `lesser`, `sqrt` and `power` (a named exponent),
and no bare numbers: pint supplies every factor, and a published constant (Devine's 2.3 kg/in,
Mosteller's 3600) is a named operand with its units (`CONSTANTS`). Which formulas a sheet runs
depends on its protocol's `Config` (preparation, dose form, dosing basis, caps): `formulas(config)`.
A formula is evaluated three ways:
- with pint Quantities when a protocol is loaded (`compiled`): the result's dimension is asserted
  against its working unit, and pint gives the exact factor into that unit (mL/min to mL/h: 60);
- with exact Decimals for every sheet (`Compiled.value`), times that factor;
- with Intervals (`Compiled.interval`), for the pencil check of printed arithmetic (verify.py).
When it is compiled, pint also evaluates it at distinct operand values, converting every term, and
must agree with the Decimal path: a sum of terms in different units is refused.
Adding a quantity is one `Spec` plus its `Formula`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal, getcontext, localcontext
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple

from dosecalc.display import format_number
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
    # The dosing basis (issue 10): present on a sheet only where its protocol uses them.
    Spec("height_cm", "height", "cm", "height", "height", "height_cm", None, None, "Height"),
    Spec("bmi", "bmi", "kg/m2", "bmi", "bmi", "bmi", None, None, "BMI"),
    Spec(
        "ideal_weight_kg",
        "weight",
        "kg",
        "weight",
        None,
        "ideal_weight_kg",
        None,
        None,
        "Ideal weight",
    ),
    Spec(
        "adjusted_weight_kg",
        "weight",
        "kg",
        "weight",
        None,
        "adjusted_weight_kg",
        None,
        None,
        "Adj. weight",
    ),
    Spec("bsa_m2", "bsa", "m2", "bsa", "bsa", "bsa_m2", None, None, "BSA"),
    Spec(
        "dosing_weight_kg",
        "weight",
        "kg",
        "weight",
        "dosing_weight",
        "dosing_weight_kg",
        None,
        "dosing_weight_kg",
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
    Spec(
        "daily_dose_per_kg",
        "daily_dose_per_kg",
        "{d}/kg/day",
        None,
        "dose_per_kg",
        "daily_dose_per_kg",
        "daily_dose_per_kg_unit",
        None,
        "Dose per kg per day",
    ),
    Spec(
        "dose_per_m2",
        "dose_per_m2",
        "{d}/m2",
        None,
        "dose_per_m2",
        "dose_per_m2",
        "dose_per_m2_unit",
        None,
        "Dose per m2",
    ),
    Spec(
        "daily_dose_per_m2",
        "daily_dose_per_m2",
        "{d}/m2/day",
        None,
        "dose_per_m2",
        "daily_dose_per_m2",
        "daily_dose_per_m2_unit",
        None,
        "Dose per m2 per day",
    ),
    Spec("divided_into", "count", "1/day", None, None, "divided_into", None, None, "Doses a day"),
    Spec(
        "dose_uncapped", "dose", "{d}", "dose", None, "dose_uncapped", None, None, "Uncapped dose"
    ),
    Spec("dose", "dose", "{d}", "dose", "dose", "dose", "dose_unit", "dose", "Dose"),
    Spec(
        "daily_dose",
        "daily_dose",
        "{d}/day",
        "dose",
        "daily_dose",
        "daily_dose",
        None,
        None,
        "Daily dose",
    ),
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
    # Preparation (issue 11): a diluent volume per kg, and the concentration a to-concentration
    # preparation must not exceed (inputs, shown as the protocol gives them).
    Spec(
        "diluent_volume_per_kg",
        "volume_per_kg",
        "mL/kg",
        None,
        None,
        "diluent_volume_ml_per_kg",
        None,
        None,
        "Diluent per kg",
    ),
    Spec(
        "final_concentration",
        "concentration",
        "{d}/mL",
        None,
        None,
        "final_concentration",
        None,
        None,
        "Final concentration",
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
    # Continuous infusions prescribed per minute (issue 11): the prescription as given and the
    # patient's dose rate in the prescription's unit. They carry the dose-rate limits (a limit
    # applies to the last quantity of the table that names it: the prescribed unit).
    Spec(
        "dose_rate_per_min",
        "dose_rate",
        "{d}/min",
        "dose_rate_per_min",
        "dose_rate",
        "dose_rate",
        "dose_rate_unit",
        "dose_rate",
        "Dose rate",
    ),
    Spec(
        "dose_rate_per_kg_per_min",
        "dose_rate_per_kg",
        "{d}/kg/min",
        None,
        "dose_rate_per_kg",
        "dose_rate_per_kg",
        "dose_rate_per_kg_unit",
        "dose_rate_per_kg",
        "Dose rate per kg",
    ),
    # A continuous infusion's bag made up from an amount of drug, and how long the container lasts.
    Spec(
        "drug_amount",
        "dose",
        "{d}",
        None,
        None,
        "drug_amount",
        "drug_amount_unit",
        None,
        "Drug in the bag",
    ),
    Spec(
        "bag_duration",
        "duration",
        "min",
        "duration",
        None,
        "bag_duration_min",
        None,
        "bag_duration_min",
        "Bag lasts",
    ),
    # Delivery (issue 11): the most the drug may run at (an input), a gravity giving set's drops,
    # and the line flush after the dose (its volume, at the dose's rate, for its minutes).
    Spec(
        "max_dose_rate",
        "dose_rate",
        "{d}/min",
        None,
        None,
        "max_dose_rate",
        "max_dose_rate_unit",
        None,
        "Maximum dose rate",
    ),
    Spec(
        "drop_factor",
        "drop_factor",
        "gtt/mL",
        None,
        None,
        "drop_factor",
        None,
        "drop_factor",
        "Drop factor",
    ),
    Spec(
        "drops_per_min",
        "drip_rate",
        "gtt/min",
        "drops_per_min",
        None,
        "drops_per_min",
        None,
        "drops_per_min",
        "Drip rate",
    ),
    Spec(
        "flush_volume",
        "volume",
        "mL",
        None,
        None,
        "flush_volume_ml",
        None,
        "flush_volume_ml",
        "Flush",
    ),
    Spec(
        "flush_minutes",
        "duration",
        "min",
        "flush_minutes",
        None,
        "flush_minutes",
        None,
        None,
        "Flush time",
    ),
)
BY_NAME: dict[str, Spec] = {s.name: s for s in QUANTITIES}


def limit_carriers(present: Collection[str]) -> Mapping[str, str]:
    """{limit key: the quantity it applies to} among `present`: the last quantity of the table
    naming the limit (a continuous infusion per minute: the dose rate in mcg/kg/min, not the same
    rate in mcg/kg/h, which is shown but not limited twice). Read-only: kept per set of names
    (every row of a configuration has the same)."""
    return _limit_carriers(tuple(present))


@lru_cache(maxsize=256)
def _limit_carriers(present: tuple[str, ...]) -> Mapping[str, str]:
    # Read-only: one mapping is shared by every caller with the same names.
    return MappingProxyType(
        {s.limit: s.name for s in QUANTITIES if s.limit is not None and s.name in present}
    )


class Constant(NamedTuple):
    """A published constant: its value in `unit` (pint checks every formula that uses it), and how
    the sheet prints it."""

    kind: str
    unit: str
    value: Decimal
    shown: str


# Devine (1974): men 50 kg, women 45.5 kg, plus 2.3 kg per inch over 60 inches (the sheet's
# `devine_base` is one of the two, by sex). Mosteller (N Engl J Med 1987): BSA (m2) =
# sqrt(height (cm) x weight (kg) / 3600). DuBois and DuBois (Arch Intern Med 1916): BSA (m2) =
# 0.007184 x weight (kg)^0.425 x height (cm)^0.725; each constant carries the units that make the
# result m2, so pint checks the formula like any other.
DEVINE_BASE: dict[str, Decimal] = {"male": Decimal(50), "female": Decimal("45.5")}
DUBOIS_WEIGHT_EXPONENT = Decimal("0.425")
DUBOIS_HEIGHT_EXPONENT = Decimal("0.725")
CONSTANTS: dict[str, Constant] = {
    "devine_per_inch": Constant("", "kg/in", Decimal("2.3"), "2.3 kg/in"),
    "devine_from": Constant("", "in", Decimal(60), "60 in"),
    "mosteller": Constant("", "cm*kg/m**4", Decimal(3600), "3600"),
    "dubois": Constant(
        "",
        f"m**2/kg**{DUBOIS_WEIGHT_EXPONENT}/cm**{DUBOIS_HEIGHT_EXPONENT}",
        Decimal("0.007184"),
        "0.007184",
    ),
}
# Operands that are not reported quantities: the container's volume (the bag the dose is added to,
# or the volume it is made up to), the time since the start (checkpoints), and the figures the
# verifier recomputes from (named after what a second nurse reads).
OPERANDS: dict[str, tuple[str, str]] = {
    **{s.name: (s.kind, s.unit) for s in QUANTITIES},
    "container_volume": ("volume", "mL"),
    # The shortest duration a maximum dose rate allows, and the rate as programmed (issue 11).
    "minimum_duration": ("duration", "min"),
    "programmed_rate": ("rate", "mL/h"),
    "devine_base": ("weight", "kg"),
    "cm_per_inch": ("", "cm/in"),
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
    "pump_dose_rate_per_kg": ("dose_rate_per_kg", "{d}/kg/h"),
    # The prescription of a fixed dose, and the protocol's caps.
    "dose_ordered": ("dose", "{d}"),
    "daily_dose_ordered": ("daily_dose", "{d}/day"),
    "dose_max": ("dose", "{d}"),
    "daily_dose_max": ("daily_dose", "{d}/day"),
    "dosing_weight_max": ("weight", "kg"),
    "adjusted_factor": ("factor", ""),
    # Published constants, each with the units that make its formula come out right (CONSTANTS).
    **{name: (c.kind, c.unit) for name, c in CONSTANTS.items()},
}
# How a working unit is printed where it is not a canonical unit.
DISPLAY_UNITS: dict[str, str] = {"1/day": "doses/day"}

# Round keys: the required ones, and the optional ones with their default step (working unit).
# The first quantity naming a key gives its kind and unit (the daily and uncapped doses use
# round.dose, in the dose unit).
STEP_KINDS: dict[str, tuple[str, str]] = {}
LIMIT_KINDS: dict[str, tuple[str, str]] = {}
for _spec in QUANTITIES:
    if _spec.step is not None:
        STEP_KINDS.setdefault(_spec.step, (_spec.kind, _spec.unit))
    if _spec.limit is not None:
        LIMIT_KINDS.setdefault(_spec.limit, (_spec.kind, _spec.unit))
# Optional steps and their defaults (working units): the height, BMI and BSA steps apply only to
# protocols that compute them.
OPTIONAL_STEPS: dict[str, Decimal] = {
    "duration": Decimal("0.1"),
    "height": Decimal("0.1"),
    "bmi": Decimal("0.1"),
    "bsa": Decimal("0.01"),
    "drops_per_min": Decimal(1),  # whole drops: nobody counts a tenth of a drop
    "flush_minutes": Decimal("0.1"),  # how long the flush runs: shown, not programmed
    "dose_rate_per_min": Decimal("0.1"),  # a continuous infusion prescribed per minute
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
    # Undiluted, from the syringe or premixed bag: what is drawn up is what runs (issue 11).
    "neat": (Formula("total_volume", ("drug_volume",), lambda v: v),),
}
# Diluted to a target concentration: the final volume is the dose at that concentration, rounded
# up to the volume step (dosing.py: a preparation choice, so the concentration never exceeds the
# target), then made up to it. The rounding up makes it no printed line of arithmetic.
_PREPARATION["to-concentration"] = (
    Formula("container_volume", ("dose", "final_concentration"), lambda dose, c: dose / c),
    *_PREPARATION["make-up-to"],
)
# A diluent (add) or final volume (make-up-to) per kg of dosing weight (acetylcysteine 3 mL/kg):
# rounded to the volume step and held within the protocol's bounds in dosing.py.
_PER_KG_VOLUME = Formula(
    "container_volume",
    ("diluent_volume_per_kg", "dosing_weight_kg"),
    lambda per_kg, w: per_kg * w,
)
# The shortest duration a maximum dose rate allows (dosing.py lengthens the duration to it).
_MINIMUM_DURATION = Formula("minimum_duration", ("dose", "max_dose_rate"), lambda dose, r: dose / r)
_DROPS = Formula(
    "drops_per_min",
    ("rate", "drop_factor"),
    lambda r, f: r * f,
    "{rate} x {drop_factor}",
    "min/h",
)
# The rate as programmed (the rate rounded to its step, dosing.py): what the pump runs at, so how
# long a flush or a bag lasts comes from it, not from the exact rate nobody programs.
_PROGRAMMED_RATE = Formula("programmed_rate", ("rate",), lambda r: r)
_FLUSH = Formula(
    "flush_minutes",
    ("flush_volume", "programmed_rate"),
    lambda v, r: v / r,
    "{flush_volume} / {programmed_rate}",
    "min/h",
)
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
    # What the pump shows as volume infused after `elapsed` at the rate programmed (the printed
    # rate: dosing._checkpoints), and the dose in that volume of the bag.
    Formula("checkpoint_volume", ("rate", "elapsed"), lambda r, t: r * t),
    Formula(
        "checkpoint_dose",
        ("dose", "checkpoint_volume", "total_volume"),
        lambda dose, v, total: dose * v / total,
    ),
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
    Formula(
        "pump_dose_rate_per_kg",
        ("pump_dose_rate", "dosing_weight_kg"),
        lambda r, w: r / w,
    ),
)
PREPARATIONS = tuple(_PREPARATION)


class Config(NamedTuple):
    """Which formulas a sheet runs: the preparation and dose unit, and the dosing basis (issue 10).
    The default is the original engine: a dose per kg of actual body weight, no caps."""

    preparation: str
    dose_unit: str = "mg"
    per: str = "kg"  # "kg", "m2", or "" for a fixed dose
    per_day: bool = False  # a daily dose, divided into `divided_into` doses
    basis: str = "actual"  # the weight this sheet doses on: actual, ideal or adjusted
    weights: str = "actual"  # the protocol's basis: the weights computed and shown
    height: bool = False  # height is an input (BMI is computed)
    bsa_formula: str = ""  # "mosteller" or "dubois", for a dose per m2
    weight_cap: bool = False  # dosing_weight.max
    dose_cap: bool = False  # dose_max
    daily_cap: bool = False  # daily_dose_max
    # Preparation and delivery (issue 11).
    volume_per_kg: bool = False  # diluent_volume_per_kg instead of a fixed diluent_volume
    max_rate: bool = False  # max_dose_rate: the duration may be lengthened
    drops: bool = False  # a gravity giving set's drop factor: drops per minute
    flush: bool = False  # flush_volume: a flush step after the dose
    # A continuous infusion: the time unit of its dose rate ("min" or "h"); "" for a dose.
    continuous: str = ""

    @property
    def capped(self) -> bool:
        return self.dose_cap or self.daily_cap

    def dosing_basis(self) -> Config:
        """This configuration without its preparation and delivery options (issue 11)."""
        return _dosing_basis(self)

    @property
    def prescribed(self) -> str:
        """The operand holding what the protocol prescribes ("dose_per_kg", "daily_dose_per_m2")."""
        if self.continuous:
            per_kg = "_per_kg" if self.per == "kg" else ""
            return f"dose_rate{per_kg}" + ("_per_min" if self.continuous == "min" else "")
        if self.per == "":
            return "daily_dose_ordered" if self.per_day else "dose_ordered"
        name = "dose_per_kg" if self.per == "kg" else "dose_per_m2"
        return f"daily_{name}" if self.per_day else name


@lru_cache(maxsize=128)
def _dosing_basis(config: Config) -> Config:
    return config._replace(volume_per_kg=False, max_rate=False, drops=False, flush=False)


@lru_cache(maxsize=128)
def formulas(config: Config | str) -> tuple[Formula, ...]:
    """The forward calculation of a sheet, in the order it runs (cached per configuration: every
    row of a day list asks for it several times)."""
    if isinstance(config, str):
        config = Config(config)
    if config.continuous:
        return _continuous(config)
    plain = Config(config.preparation, config.dose_unit)
    basis = config.dosing_basis()
    head = _COMMON_HEAD if basis == plain else _body(basis)
    preparation = _PREPARATION[config.preparation]
    if config.volume_per_kg:
        preparation = (_PER_KG_VOLUME, *preparation)
    tail = _COMMON_TAIL
    if config.max_rate:
        tail = (_MINIMUM_DURATION, *tail)
    if config.drops:
        tail = (*tail, _DROPS)
    if config.flush:
        tail = (*tail, _PROGRAMMED_RATE, _FLUSH)
    return head + preparation + tail


@lru_cache(maxsize=64)
def _continuous(c: Config) -> tuple[Formula, ...]:
    """A continuous infusion (issue 11): the patient's dose rate from the prescribed rate, the
    concentration of the container, the pump rate, and how long the container lasts."""
    found: list[Formula] = [Formula("dosing_weight_kg", ("weight_kg",), lambda w: w)]
    per_min = c.continuous == "min"
    if c.per == "kg" and per_min:
        found += [
            Formula(
                "dose_rate_per_min",
                ("dose_rate_per_kg_per_min", "dosing_weight_kg"),
                lambda r, w: r * w,
                "{dose_rate_per_kg_per_min} x {dosing_weight_kg}",
            ),
            Formula("dose_rate", ("dose_rate_per_min",), lambda r: r),
            Formula("dose_rate_per_kg", ("dose_rate", "dosing_weight_kg"), lambda r, w: r / w),
        ]
    elif c.per == "kg":
        found.append(
            Formula(
                "dose_rate",
                ("dose_rate_per_kg", "dosing_weight_kg"),
                lambda r, w: r * w,
                "{dose_rate_per_kg} x {dosing_weight_kg}",
            )
        )
    else:
        if per_min:
            found.append(Formula("dose_rate", ("dose_rate_per_min",), lambda r: r))
        found.append(
            Formula("dose_rate_per_kg", ("dose_rate", "dosing_weight_kg"), lambda r, w: r / w)
        )
    if c.preparation == "neat":
        found += [
            Formula("total_volume", ("container_volume",), lambda v: v),
            Formula("concentration", ("stock",), lambda s: s),
        ]
    else:
        found.append(
            Formula(
                "drug_volume",
                ("drug_amount", "stock"),
                lambda amount, s: amount / s,
                "{drug_amount} / {stock}",
            )
        )
        found += _PREPARATION[c.preparation]
        found.append(
            Formula(
                "concentration",
                ("drug_amount", "total_volume"),
                lambda amount, v: amount / v,
                "{drug_amount} / {total_volume}",
            )
        )
    rate_from = "dose_rate_per_min" if per_min else "dose_rate"
    found += [
        Formula(
            "rate",
            (rate_from, "concentration"),
            lambda r, conc: r / conc,
            f"{{{rate_from}}} / {{concentration}}",
            "min/h" if per_min else "",
        ),
        _PROGRAMMED_RATE,
        Formula(
            "bag_duration",
            ("total_volume", "programmed_rate"),
            lambda v, r: v / r,
            "{total_volume} / {programmed_rate}",
            "min/h",
        ),
    ]
    if c.drops:
        found.append(_DROPS)
    return tuple(found)


def _lesser_of(parts: list[str]) -> str:
    return "lesser of " + ", ".join(parts[:-1]) + " and " + parts[-1]


@lru_cache(maxsize=128)
def _body(c: Config) -> tuple[Formula, ...]:
    """The body measurements, the dosing weight and the dose, for a protocol's dosing basis."""
    found: list[Formula] = []
    if c.height:
        found.append(
            Formula(
                "bmi",
                ("weight_kg", "height_cm"),
                lambda w, h: w / (h * h),
                "{weight_kg} / ({height_cm} x {height_cm})",
                "cm2/m2",
            )
        )
    if c.weights in ("ideal", "adjusted"):
        found.append(
            Formula(
                "ideal_weight_kg",
                ("devine_base", "devine_per_inch", "height_cm", "cm_per_inch", "devine_from"),
                lambda base, per, h, cm, start: base + per * (h / cm - start),
                "{devine_base} + {devine_per_inch} x ({height_cm} / {cm_per_inch} - {devine_from})",
            )
        )
    if c.weights == "adjusted":
        found.append(
            Formula(
                "adjusted_weight_kg",
                ("ideal_weight_kg", "adjusted_factor", "weight_kg"),
                lambda ideal, f, w: ideal + f * (w - ideal),
                "{ideal_weight_kg} + {adjusted_factor} x ({weight_kg} - {ideal_weight_kg})",
            )
        )
    if c.per == "m2":
        if c.bsa_formula == "dubois":
            found.append(
                Formula(
                    "bsa_m2",
                    ("dubois", "weight_kg", "height_cm"),
                    lambda k, w, h: (
                        k * power(w, DUBOIS_WEIGHT_EXPONENT) * power(h, DUBOIS_HEIGHT_EXPONENT)
                    ),
                    f"{{dubois}} x {{weight_kg}}^{DUBOIS_WEIGHT_EXPONENT} x "
                    f"{{height_cm}}^{DUBOIS_HEIGHT_EXPONENT}",
                )
            )
        else:
            found.append(
                Formula(
                    "bsa_m2",
                    ("height_cm", "weight_kg", "mosteller"),
                    lambda h, w, k: sqrt(h * w / k),
                    "sqrt({height_cm} x {weight_kg} / {mosteller})",
                )
            )
    # The dosing weight: the basis, never above the actual weight, and never above the cap.
    chosen = {"actual": [], "ideal": ["ideal_weight_kg"], "adjusted": ["adjusted_weight_kg"]}[
        c.basis
    ]
    candidates = [*chosen, "weight_kg"] + (["dosing_weight_max"] if c.weight_cap else [])
    if len(candidates) == 1:
        found.append(Formula("dosing_weight_kg", ("weight_kg",), lambda w: w))
    else:
        found.append(
            Formula(
                "dosing_weight_kg",
                tuple(candidates),
                lesser,
                _lesser_of([f"{{{n}}}" for n in candidates]),
            )
        )
    # The dose: what is prescribed, times the body measure, divided over the day, capped.
    first = "dose_uncapped" if c.capped else "dose"
    rx = c.prescribed
    measure = {"kg": "dosing_weight_kg", "m2": "bsa_m2", "": ""}[c.per]
    if measure and c.per_day:
        found.append(
            Formula(
                first,
                (rx, measure, "divided_into"),
                lambda r, m, n: r * m / n,
                f"{{{rx}}} x {{{measure}}} / {{divided_into}}",
            )
        )
    elif measure:
        found.append(Formula(first, (rx, measure), lambda r, m: r * m, f"{{{rx}}} x {{{measure}}}"))
    elif c.per_day:
        found.append(
            Formula(first, (rx, "divided_into"), lambda r, n: r / n, f"{{{rx}}} / {{divided_into}}")
        )
    else:
        found.append(Formula(first, (rx,), lambda r: r))
    if c.capped:
        operands = ["dose_uncapped"] + (["dose_max"] if c.dose_cap else [])
        parts = [f"{{{n}}}" for n in operands]
        if c.daily_cap:
            parts.append("{daily_dose_max} / {divided_into}")
            found.append(
                Formula(
                    "dose",
                    (*operands, "daily_dose_max", "divided_into"),
                    lambda *xs: lesser(*xs[:-2], xs[-2] / xs[-1]),
                    _lesser_of(parts),
                )
            )
        else:
            found.append(Formula("dose", tuple(operands), lesser, _lesser_of(parts)))
    if c.per_day:
        found.append(
            Formula(
                "daily_dose",
                ("dose", "divided_into"),
                lambda dose, n: dose * n,
                "{dose} x {divided_into}",
            )
        )
    found.append(_COMMON_HEAD[-1])  # the drug volume
    return tuple(found)


# --- functions of the formula language -------------------------------------------------------
# Each works in the four algebras a formula runs in: Decimal (60 digits), pint Quantities, Interval
# and the _Symbol tracer. A square root or a fractional power of a Decimal is correctly rounded at
# the 60th digit (not exact); everything else on the dose path is.


def lesser(*values: Any) -> Any:
    """The least of its operands, which must be in the same unit (a cap, "never above actual")."""
    if any(isinstance(v, _Symbol) for v in values):
        return _Symbol()._op(*[v for v in values if not isinstance(v, _Symbol)] or [_Symbol()])
    if any(isinstance(v, Interval) for v in values):
        spans = [_as_interval(v) for v in values]
        return Interval(min(s.low for s in spans), min(s.high for s in spans))
    if hasattr(values[0], "dimensionality"):
        first = values[0]
        for other in values[1:]:
            if other.units != first.units:
                raise FormulaError(f"lesser of {first.units} and {other.units}: not the same unit")
        return min(values, key=lambda v: v.magnitude)
    return min(values)


def sqrt(value: Any) -> Any:
    if isinstance(value, _Symbol):
        return value
    if isinstance(value, Interval):
        return Interval(value.low.sqrt(), value.high.sqrt())
    if isinstance(value, Decimal):
        return value.sqrt()
    return value ** Decimal("0.5")  # pint: the units' exponents halve (m4 -> m2)


def power(value: Any, exponent: Decimal) -> Any:
    """`value` to a positive fractional power (DuBois): increasing in `value`."""
    if isinstance(value, _Symbol):
        return value
    if isinstance(value, Interval):
        return Interval(value.low**exponent, value.high**exponent)
    return value**exponent


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
            return f" x {format_number(self.multiply, grouping=False)}{unit}"
        return f" / {format_number(self.divide, grouping=False)}{unit}"

    def text(self, operands: Mapping[str, str]) -> str:
        """The left side of the printed line, with the operands as printed."""
        return self.formula.shown.format(**operands) + self.factor_text

    def value(self, values: Mapping[str, Decimal]) -> Decimal:
        """The exact value, from operands in their working units (60-digit context)."""
        with localcontext(EXACT):
            return self.within(values)

    def within(self, values: Mapping[str, Decimal]) -> Decimal:
        """`value`, for a caller that already holds `localcontext(EXACT)` (a loop over a sheet's
        formulas enters it once, not once a formula)."""
        if getcontext().prec != EXACT.prec:  # not an assert: `python -O` would drop it, and the
            # arithmetic would run at 28 digits
            raise RuntimeError("Compiled.within needs localcontext(EXACT)")
        formula = self.formula
        raw = formula.fn(*map(values.__getitem__, formula.operands))
        if self.divide == 1:  # the common cases: fewer operations
            # x 1 changes neither the value nor its digits (every operand has at most 60).
            return raw if self.multiply == 1 else raw * self.multiply
        return raw * self.multiply / self.divide

    def interval(self, ranges: Mapping[str, Interval]) -> Interval:
        with localcontext(EXACT):
            raw = self.formula.fn(*(ranges[name] for name in self.formula.operands))
            if not isinstance(raw, Interval):
                raw = Interval(raw, raw)
            return raw.scale(self.multiply, self.divide)


def compiled(config: Config | str, dose_unit: str = "mg") -> dict[str, Compiled]:
    """Every formula of a configuration (or of a preparation, dosing per kg of actual weight),
    checked by pint: {target: Compiled}. Raises FormulaError. Cached per configuration."""
    if isinstance(config, str):
        config = Config(config, dose_unit)
    return _compiled(config)


@lru_cache(maxsize=128)
def _compiled(config: Config) -> dict[str, Compiled]:
    return compile_formulas(formulas(config) + CHECKS, config.dose_unit)


def _cache_clear() -> None:
    _compiled.cache_clear()
    _compiled_formula.cache_clear()
    formulas.cache_clear()


compiled.cache_clear = _cache_clear  # type: ignore[attr-defined]


def compile_formulas(found: tuple[Formula, ...], dose_unit: str) -> dict[str, Compiled]:
    return {f.target: _compiled_formula(f, dose_unit) for f in found}


@lru_cache(maxsize=512)
def _compiled_formula(formula: Formula, dose_unit: str) -> Compiled:
    """compile_formula once per process for a formula that several configurations share (76
    compilations of 28 distinct formulas for the shipped file): each is still checked by pint."""
    return compile_formula(formula, dose_unit)


def compile_formula(formula: Formula, dose_unit: str) -> Compiled:
    """Evaluate `formula` with pint Quantities in working units; assert its dimension; take the
    factor into the target's working unit from pint."""
    from dosecalc.units import dimensionality, pint_unit, ratio, registry

    _refuse_bare_numbers(formula)
    reg = registry()
    target_kind, target_template = OPERANDS[formula.target]
    target_unit = target_template.format(d=dose_unit)
    units = [
        _pint_units(pint_unit(OPERANDS[name][1].format(d=dose_unit), OPERANDS[name][0]))
        for name in formula.operands
    ]
    with localcontext() as context:
        context.prec = 60
        try:
            result = formula.fn(*(reg.Quantity(Decimal(1), unit) for unit in units))
        except FormulaError:
            raise
        except Exception as exc:  # pint's DimensionalityError: adding a volume to a mass
            raise FormulaError(
                f"formula for {formula.target} ({_describe(formula)}) mixes dimensions: {exc}"
            ) from None
        expected = reg.parse_units(pint_unit(target_unit, target_kind)).dimensionality
        if dict(result.dimensionality) != dict(expected):
            raise FormulaError(
                f"formula for {formula.target} ({_describe(formula)}) gives "
                f"{result.dimensionality}, but {formula.target} is "
                f"{dimensionality(target_unit, target_kind)} ({target_unit})"
            )
        multiply, divide = ratio(result.units, pint_unit(target_unit, target_kind))
        # The Decimal path applies one factor to the whole formula: check, at operands that differ
        # from one another, that pint (converting every term) gets the same value (no sum of terms
        # in different units, no cap compared across units).
        sample = [Decimal(n) for n in _SAMPLE[: len(units)]]
        by_pint = formula.fn(*(reg.Quantity(v, u) for v, u in zip(sample, units, strict=True)))
        by_pint = Decimal(by_pint.to(pint_unit(target_unit, target_kind)).magnitude)
        by_decimal = formula.fn(*sample) * multiply / divide
        if abs(by_pint - by_decimal) > abs(by_pint) * Decimal("1e-20"):
            raise FormulaError(
                f"formula for {formula.target} ({_describe(formula)}) combines terms in different "
                "units: write each term in the same working unit"
            )
    return Compiled(formula, multiply, divide)


_SAMPLE = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)


@lru_cache(maxsize=64)
def _pint_units(unit: str) -> Any:
    """pint's Unit for a unit expression, parsed by pint once per process: the shipped file's
    formulas name about 20 operand units, in 90 operand Quantities."""
    from dosecalc.units import registry

    return registry().Unit(unit)


def _describe(formula: Formula) -> str:
    return formula.shown.replace("{", "").replace("}", "") or ", ".join(formula.operands)


class _Symbol:
    """An operand that combines only with other operands: a bare number in a formula (a
    hand-written 60 or 1000) is refused, so every factor comes from pint."""

    def _op(self, *others: object) -> _Symbol:
        for other in others:
            if not isinstance(other, _Symbol):
                raise FormulaError(
                    f"a formula uses the bare number {other!r}: pint supplies factors"
                )
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
