"""Load and validate protocols.toml into frozen dataclasses.

Every problem is reported with its key path, all at once, so a pharmacist fixes the file in one pass.
Which file: an explicit option, else $DOSECALC_PROTOCOLS, else the shipped default; the file used,
its SHA-256 and the protocol's version are carried to every sheet.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from dosecalc.display import format_quantity, has_unsafe
from dosecalc.errors import InputError, Problem, ProtocolFileError
from dosecalc.sanitize import terminal
from dosecalc.units import Quantity, parse_quantity

ENV_PROTOCOLS = "DOSECALC_PROTOCOLS"
MAX_FILE_BYTES = 1024 * 1024
# Bounds checked on the text before tomllib parses it: tomllib recurses once per level of nesting
# (50,000 levels: RecursionError) and its memory grows with the square of the dotted-key segments
# (20,000 keys in 44 KB: 2.4 GB). A real protocols file needs a few levels and a few hundred keys.
MAX_NESTING = 16  # levels of [ ] and { } in one value or header
MAX_KEY_PARTS = 8  # segments of one dotted key or table header
MAX_KEYS = 4000  # key = value pairs in the file
MAX_DOTS = 8 * MAX_KEYS  # dots outside strings and comments, in the whole file
_TOML_TOKEN = re.compile(
    r'"""(?:[^\\]|\\.)*?"""'  # multi-line basic string
    r"|'''.*?'''"  # multi-line literal string
    r'|"(?:[^"\\\n]|\\.)*"'  # basic string
    r"|'[^'\n]*'"  # literal string
    r"|#[^\n]*"  # comment
    r"|[\[\]{}=.,\n]",  # what nesting and keys are made of
    re.DOTALL,
)
MAX_CHECKPOINTS = 60
PROTOCOL_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
PREPARATIONS = ("add", "make-up-to")
# monitoring_times: "10 min" after the start, or "end + 15 min" after the end (whole minutes).
MONITORING_TIME = re.compile(
    r"(?:(?P<start>0|[1-9][0-9]{0,3}) min|end \+ (?P<after>[1-9][0-9]{0,3}) min)"
)
MAX_MONITORING_TIMES = 24

# Limited and rounded quantities: (kind of quantity, working unit with {d} for the dose unit).
LIMITED: dict[str, tuple[str, str]] = {
    "weight": ("weight", "kg"),
    "dose_per_kg": ("dose_per_kg", "{d}/kg"),
    "dose": ("dose", "{d}"),
    "drug_volume": ("volume", "mL"),
    "total_volume": ("volume", "mL"),
    "duration": ("duration", "min"),
    "rate": ("rate", "mL/h"),
    "concentration": ("concentration", "{d}/mL"),
    "dose_rate": ("dose_rate", "{d}/h"),
    "dose_rate_per_kg": ("dose_rate_per_kg", "{d}/kg/h"),
}
REQUIRED_LIMITS = ("weight", "dose_per_kg", "dose", "duration", "rate")
ROUNDED: dict[str, tuple[str, str]] = {
    "weight": ("weight", "kg"),
    "dose": ("dose", "{d}"),
    "drug_volume": ("volume", "mL"),
    "volume": ("volume", "mL"),
    "rate": ("rate", "mL/h"),
    "concentration": ("concentration", "{d}/mL"),
    "dose_rate": ("dose_rate", "{d}/h"),
    "dose_rate_per_kg": ("dose_rate_per_kg", "{d}/kg/h"),
}
OPTIONAL_ROUNDED: dict[str, tuple[str, str]] = {"duration": ("duration", "min")}
DEFAULT_DURATION_STEP = Decimal("0.1")

TEXT_KEYS = ("name", "drug", "indication", "version", "diluent", "advisory")
QUANTITY_KEYS = {
    "dose": "dose_per_kg",
    "duration": "duration",
    "diluent_volume": "volume",
    "checkpoint_every": "duration",
}
PROTOCOL_KEYS = frozenset(
    {*TEXT_KEYS, *QUANTITY_KEYS, "stock", "preparation", "monitoring", "round", "limits"}
)
OPTIONAL_PROTOCOL_KEYS: frozenset[str] = frozenset({"monitoring_times"})
TOP_KEYS = frozenset({"format", "default", "protocols"})


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


@dataclass(frozen=True, eq=False)  # identity: a loaded protocol is a cache key (model.py)
class Protocol:
    id: str
    name: str
    drug: str
    indication: str
    version: str
    dose_per_kg: Quantity
    duration: Quantity
    stock: tuple[Quantity, ...]
    diluent: str
    diluent_volume: Quantity
    preparation: str
    checkpoint_every: Quantity
    advisory: str
    monitoring: tuple[str, ...]
    steps: Mapping[str, Decimal]  # in working units
    limits: Mapping[str, Limit]  # in working units
    # The printed monitoring grid's columns ("10 min", "end + 15 min"); empty: checkpoints + defaults.
    monitoring_times: tuple[str, ...] = ()

    @property
    def dose_unit(self) -> str:
        """'mg' for a mg/kg protocol, 'mcg' for a mcg/kg one: doses are reported in it."""
        return self.dose_per_kg.unit.split("/")[0]

    def unit(self, template: str) -> str:
        return template.format(d=self.dose_unit)


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


# --- finding the file ---------------------------------------------------------------------------


def shipped_path() -> str:
    """The protocols.toml shipped with dosecalc: in the wheel, or at the source tree's root."""
    # dosecalc is installed as files (never zipped), so the package folder is the resource root.
    # os.path rather than importlib.resources or pathlib: `protocols list` and `--help` stay within
    # 1.5x of `import click` (issue 6), and those imports cost 8 ms each.
    here = os.path.dirname(os.path.realpath(__file__))
    packaged = os.path.join(here, "data", "protocols.toml")
    return (
        packaged
        if os.path.isfile(packaged)
        else os.path.join(os.path.dirname(here), "protocols.toml")
    )


def resolve(option: str | None, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Which file to use, and why: the option, else the environment variable, else the shipped one."""
    environ = os.environ if environ is None else environ
    if option:
        return option, "option"
    if environ.get(ENV_PROTOCOLS):
        return environ[ENV_PROTOCOLS], "environment"
    return shipped_path(), "shipped"


def load(path: str | os.PathLike[str], origin: str = "option") -> Library:
    """Read and validate a protocols file; raise ProtocolFileError listing every problem."""
    where = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _file_error(
            where, "unreadable", f"cannot read the protocols file: {reason}"
        ) from None
    except ValueError:  # a NUL byte in the path
        raise _file_error(where, "unreadable", "the protocols file name is not valid") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _file_error(where, "too_large", f"is larger than {MAX_FILE_BYTES} bytes")
    digest = hashlib.sha256(raw).hexdigest()
    if raw.startswith(b"\xef\xbb\xbf"):
        raise _file_error(
            where, "bom", "starts with a byte-order mark (BOM): save it as UTF-8 without BOM"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _file_error(where, "encoding", f"is not valid UTF-8 (byte {exc.start})") from None
    shape = _shape_problem(text)
    if shape is not None:
        raise _file_error(where, "too_complex", shape)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _file_error(where, "toml", f"is not valid TOML: {exc}") from None
    except (RecursionError, MemoryError):  # the bounds above should make this unreachable
        raise _file_error(where, "too_complex", "is too deeply nested to read") from None
    checker = _Checker()
    default, protocols = checker.library(data)
    if checker.problems:
        raise ProtocolFileError(checker.problems)
    return Library(where, digest, origin, default, protocols)


def _shape_problem(text: str) -> str | None:
    """Why the text is too deeply nested or has too many keys to hand to tomllib, or None.

    A scan of the text outside strings and comments that stops at the first bound passed, so that a
    hostile file is refused in a fraction of a second. A dot in a number counts as a key segment:
    the bounds leave room for that."""
    line, depth, keys, dots, run = 1, 0, 0, 0, 0
    for match in _TOML_TOKEN.finditer(text):
        piece = match.group()
        if piece == "\n":
            line, run = line + 1, 0
        elif piece in ("[", "{"):
            depth, run = depth + 1, 0
            if depth > MAX_NESTING:
                return f"line {line}: is nested more than {MAX_NESTING} levels deep"
        elif piece in ("]", "}"):
            depth, run = max(0, depth - 1), 0
        elif piece == ".":
            dots, run = dots + 1, run + 1
            if run >= MAX_KEY_PARTS:
                return f"line {line}: a dotted key has more than {MAX_KEY_PARTS} parts"
            if dots > MAX_DOTS:
                return f"line {line}: the file has more than {MAX_DOTS} dotted-key parts"
        elif piece == "=":
            keys, run = keys + 1, 0
            if keys > MAX_KEYS:
                return f"line {line}: the file has more than {MAX_KEYS} keys"
        elif piece == ",":
            run = 0
        else:
            line += piece.count("\n")  # a multi-line string or a comment
    return None


def _file_error(where: str, code: str, message: str) -> ProtocolFileError:
    return ProtocolFileError(Problem("protocols", code, f"{terminal(where, 200)}: {message}"))


# --- validation ---------------------------------------------------------------------------------


class _Checker:
    """Walks the parsed TOML, collecting every problem with its key path."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, code: str, message: str) -> None:
        self.problems.append(Problem(path, code, f"{path}: {message}"))

    def keys(self, table: Mapping[str, Any], path: str, allowed: frozenset[str]) -> None:
        for key in table:
            if key not in allowed:
                self.add(
                    f"{path}.{key}" if path else key,
                    "unknown_key",
                    f"unknown key (accepted: {', '.join(sorted(allowed))})",
                )

    def text(self, table: Mapping[str, Any], key: str, path: str, multiline: bool = False) -> str:
        full = f"{path}.{key}"
        if key not in table:
            self.add(full, "missing", "is required")
            return ""
        value = table[key]
        return self._text_value(value, full, multiline)

    def _text_value(self, value: Any, full: str, multiline: bool = False) -> str:
        if not isinstance(value, str):
            self.add(full, "wrong_type", f"must be text in quotes, not {_toml_type(value)}")
            return ""
        if not value.strip():
            self.add(full, "empty", "must not be empty")
            return ""
        if has_unsafe(value.replace("\n", "") if multiline else value):
            self.add(full, "control_character", "contains a control or format character")
            return ""
        limit = 4000 if multiline else 200
        if len(value) > limit:
            self.add(full, "too_long", f"is longer than {limit} characters")
            return ""
        return value

    def quantity(self, value: Any, full: str, kind: str) -> Quantity | None:
        if not isinstance(value, str):
            self.add(
                full,
                "wrong_type",
                f"must be a quantity in quotes with its unit, not {_toml_type(value)}",
            )
            return None
        try:
            return parse_quantity(value, full, kind)
        except InputError as exc:
            for problem in exc.problems:
                self.problems.append(Problem(full, problem.code, problem.message))
            return None

    def library(self, data: Mapping[str, Any]) -> tuple[str, dict[str, Protocol]]:
        self.keys(data, "", TOP_KEYS)
        fmt = data.get("format")
        if "format" not in data:
            self.add("format", "missing", "is required (format = 1)")
        elif type(fmt) is not int or fmt != 1:
            self.add("format", "unsupported", "must be 1")
        table = data.get("protocols")
        protocols: dict[str, Protocol] = {}
        if not isinstance(table, dict) or not table:
            self.add("protocols", "missing", "must be a table with at least one protocol")
            table = {}
        for pid, body in table.items():
            path = f"protocols.{pid}"
            if not PROTOCOL_ID.fullmatch(pid):
                self.add(
                    path,
                    "bad_id",
                    "protocol ids are 1-64 lower-case letters, digits, '-' or '_', "
                    "starting with a letter or digit",
                )
                continue
            if not isinstance(body, dict):
                self.add(path, "wrong_type", "must be a table")
                continue
            protocol = self.protocol(pid, body, path)
            if protocol is not None:
                protocols[pid] = protocol
        default = data.get("default")
        if "default" not in data:
            self.add("default", "missing", "is required: the id of the default protocol")
            default = ""
        elif not isinstance(default, str) or default not in table:
            self.add("default", "unknown_protocol", "does not name a protocol in this file")
            default = ""
        return default, protocols

    def protocol(self, pid: str, body: Mapping[str, Any], path: str) -> Protocol | None:
        before = len(self.problems)
        self.keys(body, path, PROTOCOL_KEYS | OPTIONAL_PROTOCOL_KEYS)
        for key in PROTOCOL_KEYS:
            if key not in body and key not in TEXT_KEYS:  # text keys report themselves
                self.add(f"{path}.{key}", "missing", "is required")
        texts = {
            key: self.text(body, key, path, multiline=(key == "advisory")) for key in TEXT_KEYS
        }
        quantities = {
            key: self.quantity(body[key], f"{path}.{key}", kind)
            for key, kind in QUANTITY_KEYS.items()
            if key in body
        }
        stock = self.stock(body.get("stock"), f"{path}.stock") if "stock" in body else ()
        preparation = body.get("preparation")
        if "preparation" in body and preparation not in PREPARATIONS:
            self.add(
                f"{path}.preparation",
                "unknown_preparation",
                f"must be one of: {', '.join(PREPARATIONS)}",
            )
        monitoring = self.text_list(body, "monitoring", path, required=True)
        monitoring_times = self.monitoring_times(body, path)
        dose_per_kg = quantities.get("dose")
        dose_unit = dose_per_kg.unit.split("/")[0] if dose_per_kg else "mg"
        steps = self.steps(body.get("round"), f"{path}.round", dose_unit)
        limits = self.limits(body.get("limits"), f"{path}.limits", dose_unit)
        if len(self.problems) > before:
            return None
        assert dose_per_kg is not None
        assert isinstance(preparation, str)
        protocol = Protocol(
            id=pid,
            name=texts["name"],
            drug=texts["drug"],
            indication=texts["indication"],
            version=texts["version"],
            dose_per_kg=dose_per_kg,
            duration=_present(quantities["duration"]),
            stock=stock,
            diluent=texts["diluent"],
            diluent_volume=_present(quantities["diluent_volume"]),
            preparation=preparation,
            checkpoint_every=_present(quantities["checkpoint_every"]),
            advisory=texts["advisory"],
            monitoring=monitoring,
            steps=steps,
            limits=limits,
            monitoring_times=monitoring_times,
        )
        self.consistency(protocol, path)
        return protocol if len(self.problems) == before else None

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
                from dosecalc.units import safe_echo

                self.add(
                    item_path,
                    "bad_time",
                    f"'{safe_echo(item)}' is not a monitoring time. Accepted: whole minutes "
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

    def stock(self, value: Any, full: str) -> tuple[Quantity, ...]:
        if not isinstance(value, list) or not value:
            self.add(full, "wrong_type", 'must be a non-empty list such as ["10 mg/mL"]')
            return ()
        found: list[Quantity] = []
        for i, item in enumerate(value):
            q = self.quantity(item, f"{full}[{i}]", "concentration")
            if q is None:
                continue
            if any(q.to("mg/mL") == other.to("mg/mL") for other in found):
                self.add(f"{full}[{i}]", "duplicate", "is listed twice")
                continue
            found.append(q)
        return tuple(found)

    def steps(self, table: Any, path: str, dose_unit: str) -> dict[str, Decimal]:
        if not isinstance(table, dict):
            if table is not None:
                self.add(path, "wrong_type", "must be a table")
            return {}
        self.keys(table, path, frozenset(ROUNDED) | frozenset(OPTIONAL_ROUNDED))
        steps: dict[str, Decimal] = {"duration": DEFAULT_DURATION_STEP}
        for key, (kind, unit) in (ROUNDED | OPTIONAL_ROUNDED).items():
            if key not in table:
                if key in ROUNDED:
                    self.add(f"{path}.{key}", "missing", "is required")
                continue
            q = self.quantity(table[key], f"{path}.{key}", kind)
            if q is not None:
                steps[key] = q.to(unit.format(d=dose_unit)).normalize()
        return steps

    def limits(self, table: Any, path: str, dose_unit: str) -> dict[str, Limit]:
        if not isinstance(table, dict):
            if table is not None:
                self.add(path, "wrong_type", "must be a table")
            return {}
        self.keys(table, path, frozenset(LIMITED))
        limits: dict[str, Limit] = {}
        for name in REQUIRED_LIMITS:
            if name not in table:
                self.add(f"{path}.{name}", "missing", "is required, with hard bounds")
        for name, (kind, template) in LIMITED.items():
            if name not in table:
                continue
            full = f"{path}.{name}"
            entry = table[name]
            if not isinstance(entry, dict):
                self.add(full, "wrong_type", "must be a table: { soft = [...], hard = [...] }")
                continue
            self.keys(entry, full, frozenset({"soft", "hard"}))
            unit = template.format(d=dose_unit)
            soft = self.bounds(entry.get("soft"), f"{full}.soft", kind, unit)
            hard = self.bounds(entry.get("hard"), f"{full}.hard", kind, unit)
            if hard is None and "hard" not in entry and name in REQUIRED_LIMITS:
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
        bounds = Bounds(low.to(unit), high.to(unit))
        if bounds.low > bounds.high:
            self.add(full, "low_above_high", "the low bound is above the high bound")
            return None
        return bounds

    def consistency(self, p: Protocol, path: str) -> None:
        """Checks across keys: defaults inside limits, make-up-to cannot overflow, checkpoints."""
        dpk_unit = p.unit("{d}/kg")
        self._default_inside(p, "dose_per_kg", p.dose_per_kg.to(dpk_unit), f"{path}.dose")
        self._default_inside(p, "duration", p.duration.to("min"), f"{path}.duration")
        if p.preparation == "make-up-to":
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
    if weight and weight.hard and dpk and dpk.hard:
        candidates.append(weight.hard.high * dpk.hard.high)
    if dose and dose.hard:
        candidates.append(dose.hard.high)
    if not candidates:
        return None
    weakest = min(s.to(p.unit("{d}/mL")) for s in p.stock)
    return min(candidates) / weakest


def _present(q: Quantity | None) -> Quantity:
    assert q is not None
    return q


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, float):
        return f"the number {value}" if value == value else "nan"
    if isinstance(value, int):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__
