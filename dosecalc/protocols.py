"""Load and validate protocols.toml into frozen dataclasses.

Every problem is reported with its key path, all at once, so a pharmacist fixes the file in one pass.
Which file: an explicit option, else $DOSECALC_PROTOCOLS, else the shipped default; the file used,
its SHA-256 and the protocol's version are carried to every sheet.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, localcontext
from functools import cached_property, lru_cache
from itertools import product
from types import MappingProxyType
from typing import Any, NamedTuple

from dosecalc.display import format_percent, format_quantity, round_half_up
from dosecalc.errors import InputError, Problem, ProtocolFileError
from dosecalc.exact import EXACT
from dosecalc.protocols_file import (  # noqa: F401 - re-exported: protocols.X stays valid
    ENV_PROTOCOLS,
    MAX_DOTS,
    MAX_FILE_BYTES,
    MAX_KEY_PARTS,
    MAX_KEYS,
    MAX_NESTING,
    PROTOCOL_ID,
    TOP_KEYS,
    Checks,
    _shape_problem,
    _toml_type,
    read,
    resolve,
    shipped_path,
)
from dosecalc.quantities import (
    BY_NAME,
    DEVINE_BASE,
    LIMIT_KINDS,
    OPERANDS,
    OPTIONAL_STEPS,
    PREPARATIONS,
    QUANTITIES,
    STEP_KINDS,
    Compiled,
    Config,
    FormulaError,
    Interval,
    compiled,
    formulas,
    limit_carriers,
)
from dosecalc.sanitize import terminal
from dosecalc.units import (
    FAMILIES,
    KINDS,
    STRENGTH,
    Quantity,
    canonical_spelling,
    describe,
    factor,
    family_kind,
    label_volume,
    parse_quantity,
    unit_of,
)

MAX_CHECKPOINTS = 60
# monitoring_times: "10 min" after the start, or "end + 15 min" after the end (whole minutes).
MONITORING_TIME = re.compile(
    r"(?:(?P<start>0|[1-9][0-9]{0,3}) min|end \+ (?P<after>[1-9][0-9]{0,3}) min)"
)
MAX_MONITORING_TIMES = 24

# Limited and rounded quantities, from the one quantity table: {key: (kind, working unit with {d}
# for the dose unit)}.
LIMITED: dict[str, tuple[str, str]] = LIMIT_KINDS
REQUIRED_LIMITS = ("weight", "dose_per_kg", "dose", "duration", "rate")
# The dose key's forms (issue 10): what follows the amount -> (per, per day, kind of the dose).
DOSE_FORMS: dict[tuple[str, ...], tuple[str, bool, str]] = {
    ("kg",): ("kg", False, "dose_per_kg"),
    ("m2",): ("m2", False, "dose_per_m2"),
    (): ("", False, "dose"),
    ("kg", "day"): ("kg", True, "daily_dose_per_kg"),
    ("m2", "day"): ("m2", True, "daily_dose_per_m2"),
    ("day",): ("", True, "daily_dose"),
}
DOSE_ACCEPTED = (
    'a dose per kg ("0.5 mg/kg"), per m2 ("1.5 mg/m2"), a fixed dose ("100 mg"), or any of these '
    'per day ("45 mg/kg/day", "300 mg/m2/day", "4 g/day"), in mg, mcg, g, units, mmol or mEq'
)
BASES = ("actual", "ideal", "adjusted")
BSA_FORMULAS = ("mosteller", "dubois")
DEFAULT_ADJUSTED_FACTOR = Decimal("0.4")
FACTOR = re.compile(r"(?:0|1)(?:\.[0-9]{1,4})?")
MAX_DIVIDED_INTO = 24
# Devine's formula starts at 60 inches: an ideal weight below that is outside the formula.
DEVINE_FROM_CM = Decimal("152.4")
DOSING_WEIGHT_KEYS = frozenset({"basis", "adjusted_factor", "use_when_bmi_at_least", "max"})
ROUNDED: dict[str, tuple[str, str]] = {
    key: value for key, value in STEP_KINDS.items() if key not in OPTIONAL_STEPS
}
OPTIONAL_ROUNDED: dict[str, tuple[str, str]] = {key: STEP_KINDS[key] for key in OPTIONAL_STEPS}
DEFAULT_DURATION_STEP = OPTIONAL_STEPS["duration"]
# max_rounding_change: how far rounding may move any printed figure from its exact value, as a
# percentage (the usual hospital dose-rounding policy is 5%; a pharmacy may allow up to 10%).
DEFAULT_MAX_ROUNDING_CHANGE = Decimal("0.05")
MAX_ROUNDING_CHANGE_CEILING = Decimal("0.10")
PERCENT = re.compile(r"(?:0|[1-9][0-9]?)(?:\.[0-9]{1,3})?%")

TEXT_KEYS = ("name", "drug", "indication", "version", "advisory")
# A drug's name, and each word of it (the longest drug names are about 40 characters in all and 19
# in one word: "amoxicillin and clavulanate potassium", "hydroxyprogesterone").
MAX_DRUG_NAME = 60
MAX_DRUG_WORD = 30
QUANTITY_KEYS = {
    "duration": "duration",
    "checkpoint_every": "duration",
}
PROTOCOL_KEYS = frozenset(
    {*TEXT_KEYS, *QUANTITY_KEYS, "dose", "stock", "preparation", "monitoring", "round", "limits"}
)
# Preparation and delivery (issue 11): which keys each preparation takes. `diluent` (its name) and
# one of diluent_volume / diluent_volume_per_kg for add and make-up-to; a diluent and a
# final_concentration to dilute to; nothing of a diluent for a neat dose.
DILUENT_KEYS = frozenset(
    {
        "diluent",
        "diluent_volume",
        "diluent_volume_per_kg",
        "diluent_volume_min",
        "diluent_volume_max",
        "final_concentration",
    }
)
# The preparation and delivery settings a protocol may have, in the order `protocols show` prints
# them (each a Protocol attribute).
SETTINGS = (
    "vtbi",
    "drug_amount",
    "diluent",
    "diluent_volume",
    "diluent_volume_per_kg",
    "diluent_volume_min",
    "diluent_volume_max",
    "final_concentration",
    "max_dose_rate",
    "min_duration",
    "drop_factor",
    "flush_volume",
)
PREPARATION_KEYS: dict[str, frozenset[str]] = {
    "add": frozenset(
        {
            "diluent",
            "diluent_volume",
            "diluent_volume_per_kg",
            "diluent_volume_min",
            "diluent_volume_max",
        }
    ),
    "neat": frozenset(),
    "to-concentration": frozenset({"diluent", "final_concentration"}),
}
PREPARATION_KEYS["make-up-to"] = PREPARATION_KEYS["add"]
DELIVERY_KINDS = {
    "diluent_volume": "volume",
    "diluent_volume_per_kg": "volume_per_kg",
    "diluent_volume_min": "volume",
    "diluent_volume_max": "volume",
    "min_duration": "duration",
    "flush_volume": "volume",
    "drop_factor": "drop_factor",
}
# Continuous infusions (issue 11): `dose_rate` in place of `dose`, `duration` and `checkpoint_every`;
# the container (`vtbi`, or `drug_amount` for a bag made up on the ward) and the titration table.
# Keys of a dose given over a duration are refused on a continuous protocol, and the other way round.
DOSE_ONLY_KEYS = (
    "dose",
    "duration",
    "checkpoint_every",
    "monitoring_times",
    "divided_into",
    "dose_max",
    "daily_dose_max",
    "bsa_formula",
    "dosing_weight",
    "diluent_volume_per_kg",
    "diluent_volume_min",
    "diluent_volume_max",
    "final_concentration",
    "max_dose_rate",
    "min_duration",
    "flush_volume",
)
# Why a key of a dose given over a duration is refused on a continuous protocol.
CONTINUOUS_REFUSAL = "a continuous infusion (dose_rate) has no dose, duration or checkpoints"
CONTINUOUS_REFUSALS = {
    "dosing_weight": "a continuous infusion (dose_rate) is dosed per kg of actual weight: an "
    "ideal or adjusted dosing weight is for a dose given over a duration only",
    "bsa_formula": "a continuous infusion (dose_rate) is dosed per kg or as a fixed rate, never "
    "per m2",
}
CONTINUOUS_KEYS = ("dose_rate", "titration", "titration_step", "vtbi", "drug_amount")
CONTINUOUS_FORMS = {
    ("kg", "min"): "kg",
    ("kg", "h"): "kg",
    ("min",): "",
    ("h",): "",
}
MAX_TITRATION = 40
# The drop factors of the giving sets in use: macro sets 10, 15 and 20 gtt/mL, micro sets 60.
DROP_FACTORS = (Decimal(10), Decimal(15), Decimal(20), Decimal(60))
OPTIONAL_PROTOCOL_KEYS: frozenset[str] = frozenset(
    {
        "monitoring_times",
        "monitoring_grid",
        "max_rounding_change",
        "divided_into",
        "dose_max",
        "daily_dose_max",
        "bsa_formula",
        "dosing_weight",
        "preinfusion",
        *DILUENT_KEYS,
        *DELIVERY_KINDS,
        "max_dose_rate",
        *CONTINUOUS_KEYS,
    }
)
# [protocols.ID.preinfusion]: limits on the vitals taken before the infusion (vitals.VITALS), whether
# they are required, and a checklist printed as boxes to tick.
PREINFUSION_OPTIONS = frozenset({"required", "checklist"})
MAX_CHECKLIST_ITEMS = 12
# monitoring_grid: the printed grid's rows (what is written in at each time), one short label each.
MAX_GRID_ROWS = 8
MAX_GRID_LABEL = 60


class Bounds(NamedTuple):
    low: Decimal
    high: Decimal

    def contains(self, value: Decimal) -> bool:
        return self.low <= value <= self.high


class Limit(NamedTuple):
    name: str
    unit: str
    soft: Bounds | None
    hard: Bounds | None


@dataclass(frozen=True)
class Preinfusion:
    """The pre-infusion gate: limits on systolic, diastolic, heart_rate and spo2 (whole numbers in
    mmHg, /min and %), whether the vitals must be given, and the checklist."""

    limits: Mapping[str, Limit]
    required: bool
    checklist: tuple[str, ...]


@dataclass(frozen=True, eq=False)  # identity: a loaded protocol is a cache key (model.py)
class Protocol:
    id: str
    name: str
    drug: str
    indication: str
    version: str
    # As prescribed: "0.5 mg/kg", "1.5 mg/m2", "100 mg", "45 mg/kg/day"; for a continuous
    # infusion, its dose rate: "5 mcg/kg/min", "2 g/h".
    dose: Quantity
    duration: Quantity | None  # None for a continuous infusion
    stock: tuple[Quantity, ...]
    diluent: str  # "" for a neat preparation
    diluent_volume: Quantity | None  # None: per kg, to a concentration, or neat
    preparation: str
    checkpoint_every: Quantity | None  # None for a continuous infusion
    advisory: str
    monitoring: tuple[str, ...]
    steps: Mapping[str, Decimal]  # in working units
    limits: Mapping[str, Limit]  # in working units
    # The printed monitoring grid's columns ("10 min", "end + 15 min"); empty: checkpoints + defaults.
    monitoring_times: tuple[str, ...] = ()
    # The printed monitoring grid's rows; empty: the default rows (render/content.GRID_ROWS).
    monitoring_grid: tuple[str, ...] = ()
    # The most rounding may change a printed figure, as a fraction (0.05 for "5%").
    max_rounding_change: Decimal = DEFAULT_MAX_ROUNDING_CHANGE
    preinfusion: Preinfusion | None = None
    # The dosing basis (issue 10); the defaults are the original per-kg-of-actual-weight engine.
    per: str = "kg"  # "kg", "m2" or "" (a fixed dose)
    per_day: bool = False
    divided_into: int | None = None
    dose_max: Quantity | None = None
    daily_dose_max: Quantity | None = None
    bsa_formula: str = "mosteller"
    basis: str = "actual"
    adjusted_factor: Decimal = DEFAULT_ADJUSTED_FACTOR
    bmi_trigger: Quantity | None = None  # use_when_bmi_at_least
    weight_max: Quantity | None = None  # dosing_weight.max
    # Preparation and delivery (issue 11).
    diluent_volume_per_kg: Quantity | None = None
    diluent_volume_min: Quantity | None = None
    diluent_volume_max: Quantity | None = None
    final_concentration: Quantity | None = None
    max_dose_rate: Quantity | None = None
    min_duration: Quantity | None = None
    drop_factor: Quantity | None = None
    flush_volume: Quantity | None = None
    # A continuous infusion: the time unit of its dose rate ("min" or "h"; "" for a dose), the
    # container's volume to infuse (else the premixed bag's label), the drug in a bag made up on the
    # ward, and the titration table's dose rates (in the prescription's unit).
    continuous: str = ""
    vtbi: Quantity | None = None
    drug_amount: Quantity | None = None
    titration: tuple[Quantity, ...] = ()

    @property
    def given_over(self) -> Quantity:
        """The default duration of a dose (a continuous infusion has none: never asked of one)."""
        assert self.duration is not None, "a continuous infusion has no duration"
        return self.duration

    @cached_property
    def dose_unit(self) -> str:
        """The unit doses are reported in: the prescription's amount ('mg' for mg/kg, 'units' for
        units/kg); a dose written in g is reported in mg."""
        amount = self.dose.unit.split("/")[0]
        return "mg" if amount == "g" else amount

    def unit(self, template: str) -> str:
        return template.format(d=self.dose_unit)

    def kind(self, kind: str) -> str:
        """The kind of a field in this protocol's drug amount (a units protocol: dose@units)."""
        return family_kind(kind, self.dose_unit)

    @cached_property
    def needs_height(self) -> bool:
        return self.per == "m2" or self.basis != "actual" or self.bmi_trigger is not None

    @property
    def needs_sex(self) -> bool:
        return self.basis != "actual"

    def config(self, basis: str | None = None, drops: bool | None = None) -> Config:
        """The formulas of a sheet dosing on `basis` (the protocol's own basis by default); `drops`:
        a drop factor given for this sheet (--drop-factor), else the protocol's. Kept per
        protocol: a day list asks for it several times a row."""
        return _config(self, basis, drops)

    def configs(self) -> tuple[Config, ...]:
        """Every configuration a sheet of this protocol can run: with a BMI trigger, below it the
        actual weight is used."""
        if self.bmi_trigger is not None and self.basis != "actual":
            return (self.config(), self.config("actual"))
        return (self.config(),)

    @cached_property
    def quantities(self) -> frozenset[str]:
        """The names of every value a sheet of this protocol holds."""
        found: set[str] = set()
        for config in self.configs():
            for formula in formulas(config):
                found.add(formula.target)
                found.update(formula.operands)
        return frozenset(found)


@dataclass(frozen=True)
class Library:
    path: str
    sha256: str
    origin: str  # "option", "environment" or "shipped"
    default: str
    protocols: Mapping[str, Protocol] = field(default_factory=dict)

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]

    def get(self, protocol_id: str | None) -> Protocol:
        wanted = self.default if protocol_id is None else protocol_id
        if wanted not in self.protocols:
            known = ", ".join(sorted(self.protocols))
            raise InputError(
                Problem(
                    "protocol",
                    "unknown_protocol",
                    f"protocol: '{terminal(wanted)}' is not in {terminal(self.path, None)}. "
                    f"Accepted: {known}.",
                )
            )
        return self.protocols[wanted]


# --- reading the file (protocols_file.py) ---------------------------------------------------


def load(path: str | os.PathLike[str], origin: str = "option") -> Library:
    """Read and validate a protocols file; raise ProtocolFileError listing every problem."""
    where, digest, data = read(path)
    checker = _Checker()
    default, protocols = checker.library(data)
    if checker.problems:
        raise ProtocolFileError(checker.problems)
    return Library(where, digest, origin, default, protocols)


# --- validation ---------------------------------------------------------------------------------


class _Checker(Checks):
    """Walks the parsed TOML, collecting every problem with its key path."""

    def quantity(self, value: Any, full: str, kind: str) -> Quantity | None:
        if not isinstance(value, str):
            self.add(
                full,
                "wrong_type",
                f"must be a quantity in quotes with its unit, not {_toml_type(value)}",
            )
            return None
        try:
            # Printed as the file spells it (a strength as on the vial), with its units spelled
            # as every sheet spells units: never "10000 µg/mL" on a sheet.
            found = parse_quantity(value, full, kind)
            return found._replace(text=canonical_spelling(found.text))
        except InputError as exc:
            for problem in exc.problems:
                self.problems.append(Problem(full, problem.code, problem.message))
            return None

    def library(self, data: Mapping[str, Any]) -> tuple[str, dict[str, Protocol]]:
        table = self.top(data)
        protocols: dict[str, Protocol] = {}
        for pid, body, path in self.bodies(table):
            protocol = self.protocol(pid, body, path)
            if protocol is not None:
                protocols[pid] = protocol
        return self.default(data, table), protocols

    def protocol(self, pid: str, body: Mapping[str, Any], path: str) -> Protocol | None:
        before = len(self.problems)
        self.keys(body, path, PROTOCOL_KEYS | OPTIONAL_PROTOCOL_KEYS)
        continuous = "dose_rate" in body
        for key in PROTOCOL_KEYS:
            if continuous and key in DOSE_ONLY_KEYS:
                continue
            if key not in body and key not in TEXT_KEYS:  # text keys report themselves
                self.add(f"{path}.{key}", "missing", "is required")
        for key in DOSE_ONLY_KEYS if continuous else CONTINUOUS_KEYS:
            if key in body:
                self.add(
                    f"{path}.{key}",
                    "not_for_continuous" if continuous else "continuous_only",
                    f"{CONTINUOUS_REFUSALS.get(key, CONTINUOUS_REFUSAL)}: leave {key} out"
                    if continuous
                    else 'only a continuous infusion (dose_rate = "5 mcg/kg/min") takes this key',
                )
        texts = {
            key: self.text(body, key, path, multiline=(key == "advisory")) for key in TEXT_KEYS
        }
        self.drug_name(texts["drug"], f"{path}.drug")
        quantities = {
            key: self.quantity(body[key], f"{path}.{key}", kind)
            for key, kind in QUANTITY_KEYS.items()
            if key in body
        }
        time_unit = ""
        if continuous:
            rate = self.dose_rate(body["dose_rate"], f"{path}.dose_rate")
            dose = None if rate is None else (rate[0], rate[1], False)
            time_unit = "min" if rate is None else rate[2]
        else:
            dose = self.dose(body.get("dose"), f"{path}.dose") if "dose" in body else None
        family = "mg" if dose is None else dose[0].unit.split("/")[0]
        stock = self.stock(body.get("stock"), f"{path}.stock", family) if "stock" in body else ()
        preparation = body.get("preparation")
        if "preparation" in body and preparation not in PREPARATIONS:
            self.add(
                f"{path}.preparation",
                "unknown_preparation",
                f"must be one of: {', '.join(PREPARATIONS)}",
            )
        monitoring = self.text_list(body, "monitoring", path, required=True)
        monitoring_times = self.monitoring_times(body, path)
        monitoring_grid = self.monitoring_grid(body, path)
        dose_unit = "mg" if family == "g" else family
        delivery = self.delivery(body, path, preparation, dose_unit)
        if continuous:
            delivery.update(self.container(body, path, preparation, dose_unit, stock))
            delivery["continuous"] = time_unit
        per, per_day = ("kg", False) if dose is None else dose[1:]
        basis = self.basis(body, path, dose_unit, per, per_day)
        steps = self.steps(body.get("round"), f"{path}.round", dose_unit, not continuous)
        max_change = self.max_rounding_change(body, path)
        preinfusion = self.preinfusion(body, path)
        # The protocol's shape (dose form, basis) decides which limits apply: built from what
        # parsed, with placeholders for what did not, so limit problems are reported too.
        placeholder = parse_quantity("1 min", "placeholder", "duration")
        shape = Protocol(
            id=pid,
            name="",
            drug="",
            indication="",
            version="",
            dose=dose[0] if dose is not None else parse_quantity("1 mg/kg", "x", "dose_per_kg"),
            duration=None if continuous else placeholder,
            stock=stock,
            diluent="",
            diluent_volume=placeholder,
            preparation=preparation if preparation in PREPARATIONS else "add",
            **{k: v for k, v in delivery.items() if k not in ("diluent", "diluent_volume")},
            checkpoint_every=None if continuous else placeholder,
            advisory="",
            monitoring=(),
            steps={},
            limits={},
            **basis,
        )
        present = shape.quantities
        table = body.get("limits")
        if (
            dose is not None
            and dose[1] != "kg"
            and isinstance(table, dict)
            and "dose_per_kg" in table
        ):
            # A dose per kg written without its /kg ("0.5 mg") would silently become a fixed dose:
            # a protocol with a dose_per_kg limit must dose per kg.
            self.add(
                f"{path}.dose",
                "wrong_dimension",
                f"'{dose[0].text}' is {describe(dose[0].unit)}, not a dose per kg, but "
                'limits.dose_per_kg is set: write the dose per kg ("0.5 mg/kg") or remove '
                "limits.dose_per_kg",
            )
        limits = self.limits(body.get("limits"), f"{path}.limits", shape, present)
        titration: tuple[Quantity, ...] = ()
        if continuous and dose is not None:
            titration = self.titration(body, path, dose[0], limits)
            delivery["titration"] = titration
        if continuous and isinstance(body.get("round"), dict):
            for spec in QUANTITIES:
                if spec.name in present and spec.step in ROUNDED and spec.step not in steps:
                    self.add(f"{path}.round.{spec.step}", "missing", "is required")
        for key, default in OPTIONAL_STEPS.items():
            used = any(s.step == key and s.name in present for s in QUANTITIES)
            if key in steps and not used:
                self.add(
                    f"{path}.round.{key}",
                    "unused_key",
                    "this protocol computes no quantity rounded with this step: leave it out",
                )
            elif used:
                steps.setdefault(key, default)
        if len(self.problems) > before:
            return None
        assert dose is not None
        assert isinstance(preparation, str)
        protocol = Protocol(
            id=pid,
            name=texts["name"],
            drug=texts["drug"],
            indication=texts["indication"],
            version=texts["version"],
            dose=dose[0],
            duration=quantities.get("duration"),
            stock=stock,
            preparation=preparation,
            checkpoint_every=quantities.get("checkpoint_every"),
            advisory=texts["advisory"],
            monitoring=monitoring,
            steps=steps,
            limits=limits,
            monitoring_times=monitoring_times,
            monitoring_grid=monitoring_grid,
            max_rounding_change=max_change,
            preinfusion=preinfusion,
            **basis,
            **delivery,
        )
        self.consistency(protocol, path)
        if len(self.problems) == before:
            self.formulas(protocol, path)
        if len(self.problems) == before:
            self.rounding_steps(protocol, path)
        return protocol if len(self.problems) == before else None

    def delivery(
        self, body: Mapping[str, Any], path: str, preparation: Any, dose_unit: str
    ) -> dict[str, Any]:
        """The preparation's diluent keys and the delivery keys (issue 11): each preparation takes
        its own keys and refuses the others'."""
        found: dict[str, Any] = {"diluent": "", "diluent_volume": None}
        if preparation not in PREPARATIONS:
            return found
        allowed = PREPARATION_KEYS[preparation]
        for key in sorted(DILUENT_KEYS - allowed):
            if key in body:
                why = {
                    "neat": "a neat preparation is given undiluted: it has no diluent",
                    "to-concentration": "a to-concentration preparation's volume comes from "
                    "final_concentration",
                }.get(preparation, "only a to-concentration preparation has a final concentration")
                self.add(f"{path}.{key}", "not_for_preparation", f"{why}: leave {key} out")
        if "diluent" in allowed:
            found["diluent"] = self.text(body, "diluent", path)
        for key, kind in DELIVERY_KINDS.items():
            if key in body and key in DILUENT_KEYS - allowed:
                continue
            if key in body:
                found[key] = self.quantity(body[key], f"{path}.{key}", kind)
        if preparation in ("add", "make-up-to"):
            fixed, per_kg = "diluent_volume" in body, "diluent_volume_per_kg" in body
            if fixed == per_kg:
                self.add(
                    f"{path}.diluent_volume",
                    "missing" if not fixed else "both_given",
                    'give exactly one of diluent_volume ("100 mL") and diluent_volume_per_kg '
                    '("3 mL/kg")',
                )
            for key in ("diluent_volume_min", "diluent_volume_max"):
                if key in body and not per_kg:
                    self.add(
                        f"{path}.{key}",
                        "unused_key",
                        "bounds a diluent_volume_per_kg only: leave it out",
                    )
            low, high = found.get("diluent_volume_min"), found.get("diluent_volume_max")
            if low is not None and high is not None and low.to("mL") > high.to("mL"):
                self.add(
                    f"{path}.diluent_volume_min",
                    "low_above_high",
                    f"is above diluent_volume_max {high.text}",
                )
        if preparation == "to-concentration":
            if "final_concentration" not in body:
                self.add(
                    f"{path}.final_concentration",
                    "missing",
                    'is required for a to-concentration preparation ("5 mg/mL" or "5%")',
                )
            else:
                kind = family_kind("concentration", dose_unit)
                found["final_concentration"] = self.quantity(
                    body["final_concentration"],
                    f"{path}.final_concentration",
                    STRENGTH if kind == "concentration" else kind,
                )
        if "max_dose_rate" in body:
            found["max_dose_rate"] = self.quantity(
                body["max_dose_rate"], f"{path}.max_dose_rate", family_kind("dose_rate", dose_unit)
            )
        drops = found.get("drop_factor")
        if drops is not None and drops.value not in DROP_FACTORS:
            self.add(
                f"{path}.drop_factor",
                "unknown_drop_factor",
                f"'{terminal(drops.text)}' is not a giving set's drop factor. Accepted: "
                + ", ".join(f"{n} gtt/mL" for n in DROP_FACTORS),
            )
        return found

    def dose_rate(self, value: Any, full: str) -> tuple[Quantity, str, str] | None:
        """A continuous infusion's prescription: (quantity, per "kg" or "", time unit)."""
        unit = unit_of(value)
        if unit is None:
            self.quantity(value, full, "dose_rate_per_kg")
            return None
        parts = unit.split("/")
        per = CONTINUOUS_FORMS.get(tuple(parts[1:]))
        if per is None or parts[0] not in FAMILIES:
            self.add(
                full,
                "bad_dose_rate",
                f"'{terminal(value)}' is {describe(unit)}, not a dose rate. Accepted: a dose rate "
                'per kg ("5 mcg/kg/min", "0.1 units/kg/h") or a dose rate ("2 g/h", "400 mcg/min")',
            )
            return None
        kind = "dose_rate_per_kg" if per == "kg" else "dose_rate"
        q = self.quantity(value, full, family_kind(kind, parts[0]))
        return None if q is None else (q, per, parts[-1])

    def container(
        self,
        body: Mapping[str, Any],
        path: str,
        preparation: Any,
        dose_unit: str,
        stock: tuple[Quantity, ...],
    ) -> dict[str, Any]:
        """A continuous infusion's container and titration table (checked against the limits in
        `consistency`)."""
        found: dict[str, Any] = {}
        if "vtbi" in body:
            found["vtbi"] = self.quantity(body["vtbi"], f"{path}.vtbi", "volume")
        if preparation == "to-concentration":
            self.add(
                f"{path}.preparation",
                "not_for_continuous",
                "a continuous infusion is neat (a premixed bag or syringe) or a bag made with add or "
                "make-up-to from drug_amount",
            )
        elif preparation == "neat":
            if "drug_amount" in body:
                self.add(
                    f"{path}.drug_amount",
                    "not_for_preparation",
                    "a neat infusion runs the container as supplied: leave drug_amount out",
                )
            unlabelled = [s.text for s in stock if label_volume(s) is None]
            if unlabelled and "vtbi" not in body:
                self.add(
                    f"{path}.vtbi",
                    "missing",
                    f"is required: the strength {unlabelled[0]} gives no container volume (give "
                    'vtbi = "50 mL", or a labelled strength such as "400 mg/250 mL")',
                )
        elif preparation in ("add", "make-up-to"):
            if "drug_amount" not in body:
                self.add(
                    f"{path}.drug_amount", "missing", 'is required: the drug in the bag ("400 mg")'
                )
            else:
                found["drug_amount"] = self.quantity(
                    body["drug_amount"], f"{path}.drug_amount", family_kind("dose", dose_unit)
                )
        if "titration" in body and "titration_step" in body:
            self.add(f"{path}.titration_step", "both_given", "give titration or titration_step")
        return found

    def titration(
        self, body: Mapping[str, Any], path: str, rx: Quantity, limits: Mapping[str, Limit]
    ) -> tuple[Quantity, ...]:
        """The titration table's dose rates, each inside the hard limits of the dose rate (a list,
        or every titration_step between the hard limits, inclusive)."""
        name = "dose_rate_per_kg" if rx.kind.startswith("dose_rate_per_kg") else "dose_rate"
        limit = limits.get(name)
        hard = limit.hard if limit is not None else None
        found: list[Quantity] = []
        if "titration" in body:
            full = f"{path}.titration"
            value = body["titration"]
            if not isinstance(value, list) or not value or len(value) > MAX_TITRATION:
                self.add(full, "wrong_type", f"must be a list of 1 to {MAX_TITRATION} dose rates")
                return ()
            for i, item in enumerate(value):
                q = self.quantity(item, f"{full}[{i}]", rx.kind)
                if q is None or hard is None or limit is None:
                    continue
                if not hard.contains(q.to(limit.unit)):
                    self.add(
                        f"{full}[{i}]",
                        "titration_outside_limits",
                        f"'{q.text}' is outside the hard limits of {name.replace('_', ' ')} "
                        f"({format_quantity(hard.low, limit.unit)} to "
                        f"{format_quantity(hard.high, limit.unit)})",
                    )
                    continue
                if found and q.to(limit.unit) <= found[-1].to(limit.unit):
                    self.add(
                        f"{full}[{i}]",
                        "titration_order",
                        f"'{q.text}' is not above the entry before it ({found[-1].text}): list "
                        "each dose rate once, from the lowest to the highest",
                    )
                    continue
                found.append(q)
        elif "titration_step" in body:
            full = f"{path}.titration_step"
            step = self.quantity(body["titration_step"], full, rx.kind)
            if step is None or hard is None or limit is None:
                return ()
            size = step.to(limit.unit)
            count = (hard.high - hard.low) / size
            if count >= MAX_TITRATION or count != count.to_integral_value():
                self.add(
                    full,
                    "titration_outside_limits",
                    f"'{step.text}' must divide the hard limits of {name.replace('_', ' ')} "
                    f"({format_quantity(hard.low, limit.unit)} to "
                    f"{format_quantity(hard.high, limit.unit)}) into at most {MAX_TITRATION} steps",
                )
                return ()
            value = hard.low
            while value <= hard.high:
                text = format_quantity(value, limit.unit)
                found.append(Quantity(value, limit.unit, text, rx.kind))
                value += size
        return tuple(found)

    def dose(self, value: Any, full: str) -> tuple[Quantity, str, bool] | None:
        """The prescription: (quantity, per "kg"/"m2"/"", per day). Its unit decides its form."""

        unit = unit_of(value)
        if unit is None:  # not text, not a quantity, or no known unit: the grammar says which
            self.quantity(value, full, "dose_per_kg")
            return None
        parts = unit.split("/")
        form = DOSE_FORMS.get(tuple(parts[1:]))
        if form is None or parts[0] not in FAMILIES or (parts[0] == "g" and form[0] != ""):
            why = (
                "is in g: write a dose per kg or m2 in mg or mcg"
                if parts[0] == "g" and form is not None
                else f"is {describe(unit)}, not a dose"
            )
            self.add(full, "bad_dose", f"'{terminal(value)}' {why}. Accepted: {DOSE_ACCEPTED}")
            return None
        per, per_day, kind = form
        q = self.quantity(value, full, family_kind(kind, parts[0]))
        return None if q is None else (q, per, per_day)

    def basis(
        self, body: Mapping[str, Any], path: str, dose_unit: str, per: str, per_day: bool
    ) -> dict[str, Any]:
        """The dosing basis keys: divided_into, the caps, bsa_formula and the dosing_weight table."""
        found: dict[str, Any] = {"per": per, "per_day": per_day}
        if "divided_into" in body:
            value = body["divided_into"]
            full = f"{path}.divided_into"
            if type(value) is not int:
                self.add(
                    full,
                    "wrong_type",
                    f"must be a whole number of doses a day (divided_into = 3), not {_toml_type(value)}",
                )
            elif not 1 <= value <= MAX_DIVIDED_INTO:
                self.add(full, "out_of_range", f"must be 1 to {MAX_DIVIDED_INTO} doses a day")
            elif not per_day:
                self.add(
                    full,
                    "unused_key",
                    "only a dose per day is divided: leave it out, or write the dose per day",
                )
            else:
                found["divided_into"] = value
        elif per_day:
            self.add(
                f"{path}.divided_into",
                "missing",
                "a dose per day needs divided_into, the number of doses a day (divided_into = 3)",
            )
        for key, kind in (("dose_max", "dose"), ("daily_dose_max", "daily_dose")):
            if key not in body:
                continue
            q = self.quantity(body[key], f"{path}.{key}", family_kind(kind, dose_unit))
            if q is not None and key == "daily_dose_max" and not per_day:
                self.add(
                    f"{path}.{key}",
                    "unused_key",
                    "a cap on the day's total needs a dose per day with divided_into",
                )
            elif q is not None and key == "dose_max" and per == "" and not per_day:
                self.add(f"{path}.{key}", "unused_key", "a fixed dose needs no cap: leave it out")
            elif q is not None:
                found[key] = q
        if "bsa_formula" in body:
            value = body["bsa_formula"]
            if value not in BSA_FORMULAS:
                self.add(
                    f"{path}.bsa_formula",
                    "unknown_formula",
                    f"must be one of: {', '.join(BSA_FORMULAS)}",
                )
            elif per != "m2":
                self.add(
                    f"{path}.bsa_formula",
                    "unused_key",
                    "only a dose per m2 uses the body surface area: leave it out",
                )
            else:
                found["bsa_formula"] = value
        table = body.get("dosing_weight")
        if table is None:
            return found
        full = f"{path}.dosing_weight"
        if not isinstance(table, dict):
            self.add(full, "wrong_type", "must be a table")
            return found
        self.keys(table, full, DOSING_WEIGHT_KEYS)
        basis = table.get("basis", "actual")
        if basis not in BASES:
            self.add(f"{full}.basis", "unknown_basis", f"must be one of: {', '.join(BASES)}")
            basis = "actual"
        found["basis"] = basis
        if "adjusted_factor" in table:
            value = table["adjusted_factor"]
            if (
                not isinstance(value, str)
                or not FACTOR.fullmatch(value)
                or not 0 < Decimal(value) <= 1
            ):
                shown = _toml_type(value) if not isinstance(value, str) else f"'{terminal(value)}'"
                self.add(
                    f"{full}.adjusted_factor",
                    "bad_factor",
                    f"{shown} is not a factor. Accepted: a decimal in quotes above 0 and at most 1, "
                    'such as "0.4"',
                )
            elif basis != "adjusted":
                self.add(f"{full}.adjusted_factor", "unused_key", 'only basis = "adjusted" uses it')
            else:
                found["adjusted_factor"] = Decimal(value)
        if "use_when_bmi_at_least" in table:
            q = self.quantity(
                table["use_when_bmi_at_least"], f"{full}.use_when_bmi_at_least", "bmi"
            )
            if q is not None and basis == "actual":
                self.add(
                    f"{full}.use_when_bmi_at_least",
                    "unused_key",
                    "the actual weight needs no BMI trigger: leave it out",
                )
            elif q is not None:
                found["bmi_trigger"] = q
        if "max" in table:
            q = self.quantity(table["max"], f"{full}.max", "weight")
            if q is not None:
                found["weight_max"] = q
        if per != "kg" and (basis != "actual" or "max" in table):
            self.add(full, "unused_key", "only a dose per kg uses a dosing weight")
        return found

    def max_rounding_change(self, body: Mapping[str, Any], path: str) -> Decimal:
        full = f"{path}.max_rounding_change"
        if "max_rounding_change" not in body:
            return DEFAULT_MAX_ROUNDING_CHANGE
        value = body["max_rounding_change"]
        ceiling = format_percent(MAX_ROUNDING_CHANGE_CEILING)
        accepted = f'Accepted: a percentage in quotes above 0% and at most {ceiling}, such as "5%"'
        if not isinstance(value, str) or not PERCENT.fullmatch(value):
            shown = terminal(value) if isinstance(value, str) else _toml_type(value)
            self.add(full, "bad_percentage", f"'{shown}' is not a percentage. {accepted}.")
            return DEFAULT_MAX_ROUNDING_CHANGE
        fraction = Decimal(value[:-1]) / 100
        if not 0 < fraction <= MAX_ROUNDING_CHANGE_CEILING:
            self.add(full, "out_of_range", f"'{value}' is out of range. {accepted}.")
            return DEFAULT_MAX_ROUNDING_CHANGE
        return fraction

    def preinfusion(self, body: Mapping[str, Any], path: str) -> Preinfusion | None:
        """The optional gate: { systolic = { soft = ["90 mmHg", "140 mmHg"], hard = [...] }, ...,
        required = false, checklist = ["Escort home confirmed"] }."""
        from dosecalc.vitals import VITALS

        full = f"{path}.preinfusion"
        if "preinfusion" not in body:
            return None
        table = body["preinfusion"]
        if not isinstance(table, dict):
            self.add(full, "wrong_type", "must be a table")
            return None
        self.keys(table, full, frozenset(VITALS) | PREINFUSION_OPTIONS)
        required = table.get("required", False)
        if not isinstance(required, bool):
            self.add(f"{full}.required", "wrong_type", "must be true or false")
            required = False
        checklist = self.text_list(table, "checklist", full, required=True)
        if len(checklist) > MAX_CHECKLIST_ITEMS:
            self.add(f"{full}.checklist", "too_many", f"has more than {MAX_CHECKLIST_ITEMS} items")
        limits: dict[str, Limit] = {}
        for name, vital in VITALS.items():
            if name not in table:
                continue
            entry, key = table[name], f"{full}.{name}"
            if not isinstance(entry, dict):
                self.add(key, "wrong_type", "must be a table: { soft = [...], hard = [...] }")
                continue
            self.keys(entry, key, frozenset({"soft", "hard"}))
            if "soft" not in entry and "hard" not in entry:
                self.add(key, "missing", "needs soft or hard bounds")
                continue
            soft = self.vital_bounds(entry.get("soft"), f"{key}.soft", name)
            hard = self.vital_bounds(entry.get("hard"), f"{key}.hard", name)
            if soft and hard and not (hard.low <= soft.low and soft.high <= hard.high):
                self.add(f"{key}.soft", "soft_outside_hard", "must lie within the hard bounds")
            limits[name] = Limit(name, vital.unit, soft, hard)
        if required and not limits:
            self.add(
                f"{full}.required",
                "nothing_required",
                "required = true needs at least one of: " + ", ".join(VITALS),
            )
        if not limits and not checklist:
            self.add(full, "empty", "needs limits on a vital sign or a checklist")
        return Preinfusion(limits, required, checklist)

    def vital_bounds(self, value: Any, full: str, name: str) -> Bounds | None:
        from dosecalc.vitals import parse_vital

        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 2:
            self.add(full, "wrong_type", 'must be a list of two values: ["low", "high"]')
            return None
        found = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.add(
                    f"{full}[{i}]",
                    "wrong_type",
                    f"must be text in quotes with its unit, not {_toml_type(item)}",
                )
                continue
            try:
                found.append(Decimal(parse_vital(item, f"{full}[{i}]", name, unit_required=True)))
            except InputError as exc:
                self.problems.extend(exc.problems)
        if len(found) != 2:
            return None
        if found[0] > found[1]:
            self.add(full, "low_above_high", "the low bound is above the high bound")
            return None
        return Bounds(found[0], found[1])

    def formulas(self, p: Protocol, path: str) -> None:
        """pint evaluates every formula of the protocol's preparation and checks its dimension."""
        try:
            for config in p.configs():
                compiled(config)
        except FormulaError as exc:
            self.add(f"{path}.preparation", "formula_dimension", str(exc))

    def rounding_steps(self, p: Protocol, path: str) -> None:
        """Refuse a step that, somewhere inside the hard limits, could move a printed figure by more
        than max_rounding_change, or round it to zero (ranges by interval arithmetic)."""
        found = reachable(p)
        limit_text = format_percent(p.max_rounding_change)
        for spec in QUANTITIES:
            if spec.step is None or spec.name not in found:
                continue
            if spec.name == "diluent_volume" and p.preparation in FILLED_TO_MARK:
                continue  # fills to the mark: not held to max_rounding_change (verify.py)
            step = p.steps[spec.step]
            unit = p.unit(spec.unit)
            span = found[spec.name]
            smallest = span.low
            if smallest <= 0:
                continue  # a make-up-to diluent can be nothing at all
            # The most rounding can move a value: half a step, or exactly, for a fixed value.
            half = (
                abs(round_half_up(smallest, step) - smallest) if span.low == span.high else step / 2
            )
            key = f"{path}.round.{spec.step}"
            stepped = format_quantity(step, unit)
            where = (
                f"the smallest {spec.label.lower()} inside the hard limits is "
                f"{format_quantity(_short(smallest), unit)}"
            )
            if round_half_up(smallest, step) == 0 or (span.low != span.high and smallest < half):
                self.add(
                    key,
                    "step_rounds_to_zero",
                    f"a step of {stepped} can round a {spec.label.lower()} to zero: {where}",
                )
            elif half > p.max_rounding_change * smallest:
                change = format_percent(half / smallest)
                largest = 2 * p.max_rounding_change * smallest
                self.add(
                    key,
                    "step_too_coarse",
                    f"a step of {stepped} can change a {spec.label.lower()} by {change}, more than "
                    f"max_rounding_change {limit_text}: {where}; use a step of at most "
                    f"{format_quantity(_short(largest), unit)}",
                )

        # Checkpoint rows are monitoring aids, not held to max_rounding_change, but the first one
        # must never read 0 for a real amount (the smallest dose over the longest duration).
        if p.checkpoint_every is None:
            return  # a continuous infusion: its titration rows are at the hard limits' corners
        every = p.checkpoint_every.to("min")
        longest = found["duration"].high
        for name, step_key in (("dose", "dose"), ("total_volume", "volume")):
            first = found[name].low * every / longest
            if round_half_up(first, p.steps[step_key]) == 0:
                self.add(
                    f"{path}.checkpoint_every",
                    "checkpoint_rounds_to_zero",
                    f"the first checkpoint can show 0 for a {BY_NAME[name].label.lower()} of "
                    f"{format_quantity(_short(first), p.unit(BY_NAME[name].unit))} (round.{step_key}"
                    f" {format_quantity(p.steps[step_key], p.unit(BY_NAME[name].unit))}): use "
                    "fewer checkpoints or a finer step",
                )

    def text_list(
        self, body: Mapping[str, Any], key: str, path: str, required: bool
    ) -> tuple[str, ...]:
        full = f"{path}.{key}"
        if key not in body:
            return ()
        value = body[key]
        if not isinstance(value, list) or (required and not value):
            self.add(full, "wrong_type", "must be a non-empty list of texts in quotes")
            return ()
        return tuple(self._text_value(item, f"{full}[{i}]") for i, item in enumerate(value))

    def drug_name(self, drug: str, full: str) -> None:
        """A drug's name is printed in a sheet's title and beside the dose it is drawn up as: a
        name or word longer than a printed box is wide ran over the PUMP box of a PDF."""
        if len(drug) > MAX_DRUG_NAME:
            self.add(full, "too_long", f"is longer than {MAX_DRUG_NAME} characters")
        elif any(len(word) > MAX_DRUG_WORD for word in drug.split()):
            self.add(
                full,
                "word_too_long",
                f"has a word longer than {MAX_DRUG_WORD} characters: write the name with spaces "
                '("piperacillin and tazobactam")',
            )

    def monitoring_grid(self, body: Mapping[str, Any], path: str) -> tuple[str, ...]:
        """The optional rows of the printed grid: short labels, at most one page's worth."""
        full = f"{path}.monitoring_grid"
        rows = self.text_list(body, "monitoring_grid", path, required=True)
        if len(rows) > MAX_GRID_ROWS:
            self.add(full, "too_many", f"has more than {MAX_GRID_ROWS} rows (one printed grid)")
            return ()
        for i, row in enumerate(rows):
            if len(row) > MAX_GRID_LABEL:
                self.add(f"{full}[{i}]", "too_long", f"is longer than {MAX_GRID_LABEL} characters")
        if len(set(rows)) != len(rows):
            self.add(full, "duplicate", "names a row twice")
        return rows

    def monitoring_times(self, body: Mapping[str, Any], path: str) -> tuple[str, ...]:
        """The optional grid columns: strict "N min" / "end + N min" texts, in time order."""
        full = f"{path}.monitoring_times"
        if "monitoring_times" not in body:
            return ()
        value = body["monitoring_times"]
        if not isinstance(value, list) or not value:
            self.add(
                full,
                "wrong_type",
                'must be a non-empty list of times such as ["10 min", "end + 15 min"]',
            )
            return ()
        if len(value) > MAX_MONITORING_TIMES:
            self.add(
                full, "too_many", f"has more than {MAX_MONITORING_TIMES} times (one printed page)"
            )
            return ()
        times: list[str] = []
        previous: tuple[int, int] | None = None
        for i, item in enumerate(value):
            item_path = f"{full}[{i}]"
            if not isinstance(item, str):
                self.add(item_path, "wrong_type", f"must be text in quotes, not {_toml_type(item)}")
                continue
            match = MONITORING_TIME.fullmatch(item)
            if match is None:
                self.add(
                    item_path,
                    "bad_time",
                    f"'{terminal(item)}' is not a monitoring time. Accepted: whole minutes "
                    'from the start ("10 min") or after the end ("end + 15 min"), written '
                    "exactly so, no leading zero",
                )
                continue
            key = (0, int(match["start"])) if match["start"] else (1, int(match["after"]))
            if previous is not None and key <= previous:
                self.add(
                    item_path,
                    "out_of_order",
                    f"'{item}' must come after the time before it (times from the start first, "
                    "then times after the end, each increasing, no repeats)",
                )
            previous = key
            times.append(item)
        return tuple(times)

    def stock(self, value: Any, full: str, family: str = "mg") -> tuple[Quantity, ...]:
        if not isinstance(value, list) or not value:
            self.add(full, "wrong_type", 'must be a non-empty list such as ["10 mg/mL"]')
            return ()
        found: list[Quantity] = []
        kind = family_kind("concentration", family)
        for i, item in enumerate(value):
            q = self.quantity(item, f"{full}[{i}]", STRENGTH if kind == "concentration" else kind)
            if q is None:
                continue
            reference = KINDS[kind].reference
            if any(
                q.to(reference) == other.to(reference) and label_volume(q) == label_volume(other)
                for other in found
            ):
                # The same strength in another container ("400 mg/250 mL", "800 mg/500 mL") is
                # another bag: a continuous infusion runs its volume.
                self.add(f"{full}[{i}]", "duplicate", "is listed twice")
                continue
            found.append(q)
        return tuple(found)

    def steps(
        self, table: Any, path: str, dose_unit: str, required: bool = True
    ) -> dict[str, Decimal]:
        """The rounding steps; `required=False` (a continuous infusion): the required keys are
        checked later, against the quantities the protocol computes."""
        if not isinstance(table, dict):
            if table is not None:
                self.add(path, "wrong_type", "must be a table")
            return {}
        self.keys(table, path, frozenset(ROUNDED) | frozenset(OPTIONAL_ROUNDED))
        steps: dict[str, Decimal] = {"duration": DEFAULT_DURATION_STEP}
        for key, (kind, unit) in (ROUNDED | OPTIONAL_ROUNDED).items():
            kind = family_kind(kind, dose_unit)
            if key not in table:
                if key in ROUNDED and required:
                    self.add(f"{path}.{key}", "missing", "is required")
                continue
            q = self.quantity(table[key], f"{path}.{key}", kind)
            if q is None:
                continue
            printed = unit.format(d=dose_unit)
            if q.unit != printed:
                # A step is written in the unit its figures are printed in: "0.1 mg" copied into a
                # mcg protocol, "0.1 g" for mg, "1 lb" for kg or "1 s" for min (1/60 min, which no
                # decimal step can hold) are all refused, never converted.
                self.add(
                    f"{path}.{key}",
                    "step_unit_mismatch",
                    f"'{q.text}' is in {q.unit}, but {key.replace('_', ' ')} is printed in "
                    f"{printed}: write the step in {printed}",
                )
                continue
            steps[key] = q.value.normalize(EXACT)
        return steps

    def limits(
        self, table: Any, path: str, p: Protocol, present: frozenset[str]
    ) -> dict[str, Limit]:
        if not isinstance(table, dict):
            if table is not None:
                self.add(path, "wrong_type", "must be a table")
            return {}
        self.keys(table, path, frozenset(LIMITED))
        dose_unit = p.dose_unit
        # Each limit applies to the quantity of this protocol that names it (limits.dose_per_kg to
        # a daily dose per kg in mg/kg/day), in this protocol's drug amount (units, mmol, mEq).
        # The last quantity of the table naming a limit, as limits.limited_values takes it (a
        # continuous infusion per minute: its dose rate in mcg/kg/min, not the same in mcg/kg/h).
        kinds = {
            s.limit: (s.kind, s.unit)
            for s in QUANTITIES
            if s.limit is not None and s.name in present
        }
        required = [n for n in REQUIRED_LIMITS if n != "dose_per_kg" or p.per == "kg"]
        if p.continuous:
            required = ["weight", "rate", "dose_rate_per_kg" if p.per == "kg" else "dose_rate"]
        if p.needs_height:
            required.append("height")
        limits: dict[str, Limit] = {}
        for name in required:
            if name not in table:
                why = (
                    f"is required, with hard bounds{height_reason(p)}"
                    if name == "height"
                    else "is required, with hard bounds"
                )
                self.add(f"{path}.{name}", "missing", why)
        for name in LIMITED:
            if name not in table:
                continue
            if name not in kinds:
                self.add(
                    f"{path}.{name}",
                    "unused_limit",
                    "this protocol does not compute this quantity: leave the limit out",
                )
                continue
            kind, template = kinds[name]
            kind = family_kind(kind, dose_unit)
            full = f"{path}.{name}"
            entry = table[name]
            if not isinstance(entry, dict):
                self.add(full, "wrong_type", "must be a table: { soft = [...], hard = [...] }")
                continue
            self.keys(entry, full, frozenset({"soft", "hard"}))
            unit = template.format(d=dose_unit)
            soft = self.bounds(entry.get("soft"), f"{full}.soft", kind, unit)
            hard = self.bounds(entry.get("hard"), f"{full}.hard", kind, unit)
            if hard is None and "hard" not in entry and name in required:
                self.add(f"{full}.hard", "missing", "is required")
            if "soft" not in entry and "hard" not in entry:
                self.add(full, "missing", "needs soft or hard bounds")
            if soft and hard and not (hard.low <= soft.low and soft.high <= hard.high):
                self.add(f"{full}.soft", "soft_outside_hard", "must lie within the hard bounds")
            limits[name] = Limit(name, unit, soft, hard)
        return limits

    def bounds(self, value: Any, full: str, kind: str, unit: str) -> Bounds | None:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 2:
            self.add(full, "wrong_type", 'must be a list of two quantities: ["low", "high"]')
            return None
        low = self.quantity(value[0], f"{full}[0]", kind)
        high = self.quantity(value[1], f"{full}[1]", kind)
        if low is None or high is None:
            return None
        for q, index in ((low, 0), (high, 1)):
            if not _terminates(q.to(unit)):
                self.add(
                    f"{full}[{index}]",
                    "not_exact",
                    f"'{q.text}' is not an exact number of {unit} (write it in {unit})",
                )
                return None
        bounds = Bounds(low.to(unit), high.to(unit))
        if bounds.low > bounds.high:
            self.add(full, "low_above_high", "the low bound is above the high bound")
            return None
        return bounds

    def consistency(self, p: Protocol, path: str) -> None:
        """Checks across keys: defaults inside limits, make-up-to cannot overflow, checkpoints."""
        limit_name = prescription(p)[1]
        if limit_name in p.limits:
            unit = p.limits[limit_name].unit
            key = "dose_rate" if p.continuous else "dose"
            self._default_inside(p, limit_name, p.dose.to(unit), f"{path}.{key}")
        if p.continuous:
            self.continuous(p, path)
            return
        dose_hard = p.limits["dose"].hard if "dose" in p.limits else None
        caps = [("dose_max", p.dose_max, Decimal(1))]
        if p.divided_into is not None:
            caps.append(("daily_dose_max", p.daily_dose_max, Decimal(p.divided_into)))
        for key, cap, per_dose in caps:
            if cap is None or dose_hard is None:
                continue
            unit = p.unit("{d}") if key == "dose_max" else p.unit("{d}/day")
            if cap.to(unit) / per_dose < dose_hard.low:
                self.add(
                    f"{path}.{key}",
                    "cap_below_hard_limit",
                    f"{cap.text} caps every dose below the dose hard minimum "
                    f"{format_quantity(dose_hard.low, p.unit('{d}'))}: every sheet would be refused",
                )
        if p.needs_height and "height" in p.limits:
            height = p.limits["height"].hard
            if p.basis != "actual" and height is not None and height.low < DEVINE_FROM_CM:
                self.add(
                    f"{path}.limits.height.hard",
                    "below_devine",
                    "Devine's ideal body weight is defined from 60 in (152.4 cm): the hard "
                    "minimum height must be at least 152.4 cm",
                )
        assert p.duration is not None
        assert p.checkpoint_every is not None
        self._default_inside(p, "duration", p.duration.to("min"), f"{path}.duration")
        minutes = p.duration.to("min")
        if round_half_up(minutes, p.steps["duration"]) != minutes:
            self.add(
                f"{path}.duration",
                "default_off_step",
                f"the default '{p.duration.text}' is not a whole number of "
                f"{format_quantity(p.steps['duration'], 'min')} steps (round.duration): the sheet "
                "would print another duration than the pump runs",
            )
        self.preparation(p, path)
        if p.preparation == "make-up-to" and p.diluent_volume is not None:
            largest = largest_drug_volume(p)
            final = p.diluent_volume.to("mL")
            if largest is None:
                self.add(
                    f"{path}.limits",
                    "unbounded_volume",
                    "a make-up-to protocol needs a drug_volume hard maximum, or weight, "
                    "dose_per_kg or dose hard limits that bound the drug volume",
                )
            elif largest > final:
                self.add(
                    f"{path}.diluent_volume",
                    "make_up_overflow",
                    f"the largest allowed drug volume ({format_quantity(largest, 'mL')}) exceeds "
                    f"the final volume {format_quantity(final, 'mL')}",
                )
        longest = p.limits["duration"].hard
        if longest is not None:
            count = longest.high / p.checkpoint_every.to("min")
            if count > MAX_CHECKPOINTS:
                self.add(
                    f"{path}.checkpoint_every",
                    "too_many_checkpoints",
                    f"gives more than {MAX_CHECKPOINTS} checkpoints over the longest allowed "
                    "duration",
                )

    def continuous(self, p: Protocol, path: str) -> None:
        """A continuous infusion's container: the VTBI fits each labelled container, and a bag
        made up to its volume holds the drug drawn up from the weakest stock."""
        if p.vtbi is not None:
            for i, stock in enumerate(p.stock):
                bag = label_volume(stock)
                if bag is not None and p.vtbi.to("mL") > bag:
                    self.add(
                        f"{path}.vtbi",
                        "vtbi_above_container",
                        f"'{p.vtbi.text}' is more than the {format_quantity(bag, 'mL')} in "
                        f"{stock.text} (stock[{i}])",
                    )
        if p.drug_amount is not None and p.diluent_volume is not None:
            unit = p.unit("{d}/mL")
            drawn = p.drug_amount.to(p.unit("{d}")) / min(s.to(unit) for s in p.stock)
            if p.preparation == "make-up-to" and drawn > p.diluent_volume.to("mL"):
                self.add(
                    f"{path}.drug_amount",
                    "make_up_overflow",
                    f"{p.drug_amount.text} of the weakest stock is "
                    f"{format_quantity(drawn, 'mL')}, more than the final volume "
                    f"{p.diluent_volume.text}",
                )

    def preparation(self, p: Protocol, path: str) -> None:
        """Preparation and delivery across keys (issue 11)."""
        if p.preparation == "neat" and p.steps["volume"] != p.steps["drug_volume"]:
            self.add(
                f"{path}.round.volume",
                "neat_volume_step",
                "a neat dose runs the volume drawn up, so its VTBI is printed like the drug "
                f"volume: round.volume must equal round.drug_volume "
                f"({format_quantity(p.steps['drug_volume'], 'mL')})",
            )
        final = p.final_concentration
        if final is not None:
            unit = p.unit("{d}/mL")
            for i, stock in enumerate(p.stock):
                if final.to(unit) > stock.to(unit):
                    self.add(
                        f"{path}.final_concentration",
                        "final_above_stock",
                        f"'{final.text}' is stronger than the stock {stock.text} "
                        f"(stock[{i}]): the final volume would be smaller than the drug volume",
                    )
        for key in ("diluent_volume_min", "diluent_volume_max"):
            q = getattr(p, key)
            if q is not None and not _on_step(q.to("mL"), p.steps["volume"]):
                self.add(
                    f"{path}.{key}",
                    "off_step",
                    f"'{q.text}' is not a whole number of round.volume steps "
                    f"({format_quantity(p.steps['volume'], 'mL')})",
                )
        shortest = p.min_duration
        if shortest is not None:
            minutes = shortest.to("min")
            if not _on_step(minutes, p.steps["duration"]):
                self.add(
                    f"{path}.min_duration",
                    "off_step",
                    f"'{shortest.text}' is not a whole number of round.duration steps",
                )
            if p.given_over.to("min") < minutes:
                self.add(
                    f"{path}.duration",
                    "below_min_duration",
                    f"the default '{p.given_over.text}' is shorter than min_duration "
                    f"'{shortest.text}'",
                )

    def _default_inside(self, p: Protocol, name: str, value: Decimal, full: str) -> None:
        limit = p.limits[name]
        for level, bounds in (("hard", limit.hard), ("soft", limit.soft)):
            if bounds is not None and not bounds.contains(value):
                self.add(
                    full,
                    f"default_outside_{level}",
                    f"the default is outside the {level} limits "
                    f"{format_quantity(bounds.low, limit.unit)} to "
                    f"{format_quantity(bounds.high, limit.unit)}",
                )


def largest_drug_volume(p: Protocol) -> Decimal | None:
    """The largest drug volume the hard limits allow, in mL (None when nothing bounds it)."""
    drug_volume = p.limits.get("drug_volume")
    if drug_volume is not None and drug_volume.hard is not None:
        return drug_volume.hard.high
    candidates = []
    weight, dpk, dose = (p.limits.get(n) for n in ("weight", "dose_per_kg", "dose"))
    if weight and weight.hard and dpk and dpk.hard and p.per == "kg" and not p.per_day:
        candidates.append(weight.hard.high * dpk.hard.high)
    if dose and dose.hard:
        candidates.append(dose.hard.high)
    if not candidates:
        return None
    if p.dose_max is not None:
        candidates.append(p.dose_max.to(p.unit("{d}")))
    weakest = min(s.to(p.unit("{d}/mL")) for s in p.stock)
    return min(candidates) / weakest


def reachable(p: Protocol) -> dict[str, Interval]:
    """The range each computed quantity can take inside the protocol's hard limits.

    Every formula is monotone in each input (weight, height, the prescription, duration, stock;
    a cap or "never above the actual weight" is a lesser-of, which keeps that), so its extremes lie
    at the corners of the inputs' hard limits: each corner, for each sex and each dosing basis the
    protocol can use (a BMI trigger switches between two), is run through the protocol's own
    formulas (exact Decimal), and each quantity's range is then cut to its own hard limit where it
    has one (a value outside is refused before it is printed). Corners, not interval arithmetic:
    dose rate / dosing weight must not count the weight twice.
    """

    def hard(name: str, fallback: Decimal) -> tuple[Decimal, ...]:
        limit = p.limits.get(name)
        if limit is None or limit.hard is None:
            return (fallback,)
        return (limit.hard.low, limit.hard.high)

    carriers = limit_carriers(p.quantities)

    def clamp(name: str, value: Decimal) -> Decimal:
        spec = BY_NAME.get(name)
        carried = spec is not None and spec.limit and carriers.get(spec.limit) == name
        limit = p.limits.get(spec.limit) if spec is not None and spec.limit and carried else None
        if limit is None or limit.hard is None:
            return value
        return min(max(value, limit.hard.low), limit.hard.high)

    found: dict[str, list[Decimal]] = {}
    # Corners share most operands (stock changes only what follows the dose, sex only the ideal
    # weight...): a formula's settled value is computed once per distinct set of its operands
    # (1,696 evaluations, 301 distinct, for the shipped file) and the operands the sheet does not
    # type once per (sex, stock). Exact Decimal functions of their operands, so the same values.
    memos: dict[Config, dict[tuple[str, tuple[Decimal, ...]], Decimal]] = {}
    fixed_once: dict[tuple[str | None, Quantity], dict[str, Decimal]] = {}
    steps = {config: (formulas(config), compiled(config)) for config in p.configs()}
    stock_unit = p.unit("{d}/mL")
    rx_name, rx_limit, rx_unit = prescription(p)
    heights = hard("height", Decimal(170)) if p.needs_height else (None,)
    sexes = tuple(DEVINE_BASE) if p.needs_sex else (None,)
    durations = (None,) if p.duration is None else hard("duration", p.duration.to("min"))
    for config, weight, height, rx, minutes, stock, sex in product(
        p.configs(),
        hard("weight", Decimal(70)),
        heights,
        hard(rx_limit, p.dose.to(rx_unit)),
        durations,
        p.stock,
        sexes,
    ):
        order, checked = steps[config]
        memo = memos.setdefault(config, {})
        fixed = fixed_once.get((sex, stock))
        if fixed is None:
            fixed = fixed_once[sex, stock] = dict(fixed_values(p, sex, stock))
            fixed["stock"] = stock.to(stock_unit)
        values = {**fixed, "weight_kg": weight, rx_name: rx}
        if minutes is not None:
            values["duration"] = minutes
        if height is not None:
            values["height_cm"] = height
        with localcontext(EXACT):
            for formula in order:
                # Cut to the quantity's own hard limit before it feeds the next formula: a dose
                # below its hard minimum is refused, so the smallest dose that goes on is that
                # minimum.
                if formula.target in _READS_MORE:  # reads more than its operands: never memoised
                    value = clamp(formula.target, settled(p, checked[formula.target], values))
                else:
                    key = (formula.target, tuple(values[n] for n in formula.operands))
                    known = memo.get(key)
                    if known is None:
                        known = memo[key] = clamp(
                            formula.target, settled(p, checked[formula.target], values)
                        )
                    value = known
                values[formula.target] = value
        for name, value in values.items():
            found.setdefault(name, []).append(value)
    return {name: Interval(min(seen), max(seen)) for name, seen in found.items()}


def _terminates(value: Decimal) -> bool:
    """False for a 60-digit quotient that does not end (1201 s is 20.01666... min)."""
    return len(value.normalize(EXACT).as_tuple().digits) < 40


@lru_cache(maxsize=256)
def _config(p: Protocol, basis: str | None, drops: bool | None) -> Config:
    """Protocol.config, kept per (loaded protocol, basis, drops)."""
    return Config(
        p.preparation,
        p.dose_unit,
        per=p.per,
        per_day=p.per_day,
        basis=p.basis if basis is None else basis,
        weights=p.basis,
        height=p.needs_height,
        bsa_formula=p.bsa_formula if p.per == "m2" else "",
        weight_cap=p.weight_max is not None,
        dose_cap=p.dose_max is not None,
        daily_cap=p.daily_dose_max is not None,
        volume_per_kg=p.diluent_volume_per_kg is not None,
        max_rate=p.max_dose_rate is not None,
        drops=p.drop_factor is not None if drops is None else drops,
        flush=p.flush_volume is not None,
        continuous=p.continuous,
    )


@lru_cache(maxsize=256)
def prescription(p: Protocol) -> tuple[str, str, str]:
    """What the protocol prescribes: (operand name, limit key, working unit)."""
    name = p.config().prescribed
    spec = BY_NAME.get(name)
    kind, template = OPERANDS[name]
    limit = spec.limit if spec is not None and spec.limit else kind
    return name, limit, p.unit(template)


def fixed_values(
    p: Protocol, sex: str | None, stock: Quantity | None = None
) -> Mapping[str, Decimal]:
    """The operands a sheet does not type: the container, the protocol's caps and factors, and the
    published constants (the Devine base by sex; the inch in cm from pint). `stock`: the strength
    used (a neat continuous infusion runs its premixed bag's volume). Read-only, made once per
    protocol, sex and stock: every row of a day list asks for them."""
    return MappingProxyType(_fixed_values(p, sex, stock))


@lru_cache(maxsize=256)
def _fixed_values(p: Protocol, sex: str | None, stock: Quantity | None) -> dict[str, Decimal]:
    from dosecalc.quantities import CONSTANTS

    values: dict[str, Decimal] = {}
    if p.diluent_volume is not None:
        values["container_volume"] = p.diluent_volume.to("mL")
    elif p.continuous and p.preparation == "neat":
        bag = p.vtbi.to("mL") if p.vtbi is not None else None
        if bag is None and stock is not None:
            bag = label_volume(stock)
        if bag is not None:
            values["container_volume"] = bag
    for name, q in (
        ("diluent_volume_per_kg", p.diluent_volume_per_kg),
        ("final_concentration", p.final_concentration),
        ("max_dose_rate", p.max_dose_rate),
        ("drop_factor", p.drop_factor),
        ("flush_volume", p.flush_volume),
        ("drug_amount", p.drug_amount),
    ):
        if q is not None:
            values[name] = q.to(p.unit(OPERANDS[name][1]))
    if p.needs_height:
        multiply, divide = factor("in", "cm")
        values["cm_per_inch"] = multiply / divide
        values.update({name: c.value for name, c in CONSTANTS.items()})
    if sex is not None:
        values["devine_base"] = DEVINE_BASE[sex]
    if p.basis == "adjusted":
        values["adjusted_factor"] = p.adjusted_factor
    if p.divided_into is not None:
        values["divided_into"] = Decimal(p.divided_into)
    if p.dose_max is not None:
        values["dose_max"] = p.dose_max.to(p.unit("{d}"))
    if p.daily_dose_max is not None:
        values["daily_dose_max"] = p.daily_dose_max.to(p.unit("{d}/day"))
    if p.weight_max is not None:
        values["dosing_weight_max"] = p.weight_max.to("kg")
    return values


# Preparations whose diluent fills the syringe or bag to its mark (not held to max_rounding_change).
FILLED_TO_MARK = ("make-up-to", "to-concentration")


def dose_as_drawn(p: Protocol, values: Mapping[str, Decimal]) -> Decimal:
    """The most drug the bag can hold as the nurse reads the sheet: the exact dose, the printed
    dose, or the printed drug volume times the stock, whichever is most. A rule that must not be
    exceeded (a final concentration, a maximum dose rate) is applied to this, so the printed
    figures keep to it too."""
    dose = values["dose"]
    printed = round_half_up(dose, p.steps["dose"])
    drawn = EXACT.multiply(
        round_half_up(values["drug_volume"], p.steps["drug_volume"]), values["stock"]
    )
    return max(dose, printed, drawn)


def round_up(value: Decimal, step: Decimal) -> Decimal:
    units = EXACT.divide(value, step).to_integral_value(rounding=ROUND_CEILING, context=EXACT)
    return EXACT.multiply(units, step)


# Targets whose settled value reads more of `values` than the formula's operands (the dose as
# drawn: dose, drug volume and stock): reachable() does not memoise them by their operands.
_READS_MORE = frozenset({"container_volume"})


def settled(p: Protocol, formula: Compiled, values: Mapping[str, Decimal]) -> Decimal:
    """A formula's value where the sheet sets it to what a nurse measures or programs: the
    container's volume (prepared_volume, which reads more than the formula's operands: keep
    _READS_MORE in step), the rate as programmed (rounded to the rate step); else its exact value
    (a function of the formula's operands only). The caller holds localcontext(EXACT)
    (Compiled.within)."""
    target = formula.formula.target
    if target == "container_volume":
        return prepared_volume(p, formula, values)
    if target == "programmed_rate":
        return round_half_up(formula.within(values), p.steps["rate"])
    if target in _PER_PROGRAMMED_RATE and not values["programmed_rate"]:
        # A rate that rounds to 0 mL/h (a dose rate typed per hour where the protocol's is per
        # minute: 60 times too small): the pump cannot run it and the container never empties.
        # Infinity, not a division by zero, so the limits refuse it by name (the dose rate, the
        # rate): the loader refuses a rate step that can round a rate inside the rate's hard
        # limits to zero, so a rate that rounds to zero is always outside them.
        return NEVER
    return formula.within(values)


# What a programmed rate of 0 mL/h takes forever to do (settled).
_PER_PROGRAMMED_RATE = frozenset({"bag_duration", "flush_minutes"})
NEVER = Decimal("Infinity")


def prepared_volume(p: Protocol, formula: Compiled, values: Mapping[str, Decimal]) -> Decimal:
    """The container's volume as prepared, where a rule gives it (issue 11): a to-concentration
    volume (for the dose as drawn) rounded UP to the volume step, so the concentration never
    exceeds the target; a volume per kg rounded half-up to the step, then held within
    diluent_volume_min and _max. Both are volumes a nurse measures, so they are on the step the
    sheet prints them at."""
    step = p.steps["volume"]
    if p.preparation == "to-concentration":
        return round_up(formula.value({**values, "dose": dose_as_drawn(p, values)}), step)
    value = round_half_up(formula.value(values), step)
    if p.diluent_volume_min is not None:
        value = max(value, p.diluent_volume_min.to("mL"))
    if p.diluent_volume_max is not None:
        value = min(value, p.diluent_volume_max.to("mL"))
    return value


def _on_step(value: Decimal, step: Decimal) -> bool:
    return round_half_up(value, step) == value


def height_reason(p: Protocol) -> str:
    """Which rule of the protocol needs the patient's height."""
    if p.per == "m2":
        return " (the dose is per m2 of body surface area, computed from the height)"
    if p.basis != "actual":
        return f" (the {p.basis} body weight is computed from the height)"
    return " (the BMI trigger is computed from the height)"


def _short(value: Decimal) -> Decimal:
    """A value for a message: six significant digits are plenty to say where a range ends."""
    if len(value.normalize().as_tuple().digits) <= 6:
        return value
    return value.quantize(Decimal(1).scaleb(value.adjusted() - 5)).normalize()


def _present(q: Quantity | None) -> Quantity:
    assert q is not None
    return q
