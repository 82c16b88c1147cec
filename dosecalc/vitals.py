"""The pre-infusion gate: blood pressure, heart rate and SpO2 taken before the infusion, in a strict
grammar of whole numbers, checked against a protocol's `preinfusion` limits (soft and hard, like
the dose limits; model.py checks them).

Typed: `--bp 128/82` (optionally "128/82 mmHg"), `--hr 76` (optionally "76 /min"), `--spo2 98` or
"98%". In a protocols file every bound carries its unit: "140 mmHg", "100 /min", "94%".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from dosecalc.errors import InputError, Problem
from dosecalc.sanitize import echo


class Vital(NamedTuple):
    name: str  # key in the protocols file's preinfusion table
    label: str  # on the sheet
    unit: str
    highest: int  # anything above is not a measurement (input error)
    pattern: re.Pattern[str]  # the number, with the unit optional (typed) or required (file)
    example: str


_WHOLE = r"(?P<n>[1-9][0-9]{0,2})"
VITALS: dict[str, Vital] = {
    "systolic": Vital(
        "systolic", "Systolic BP", "mmHg", 300, re.compile(_WHOLE + r"(?P<u> mmHg)?"), "140 mmHg"
    ),
    "diastolic": Vital(
        "diastolic", "Diastolic BP", "mmHg", 300, re.compile(_WHOLE + r"(?P<u> mmHg)?"), "90 mmHg"
    ),
    "heart_rate": Vital(
        "heart_rate", "Heart rate", "/min", 300, re.compile(_WHOLE + r"(?P<u> ?/min)?"), "100 /min"
    ),
    "spo2": Vital("spo2", "SpO2", "%", 100, re.compile(_WHOLE + r"(?P<u>%)?"), "94%"),
}
BP = re.compile(r"(?P<s>[1-9][0-9]{0,2})/(?P<d>[1-9][0-9]{0,2})(?: mmHg)?")
MAX_CHARS = 16


@dataclass(frozen=True)
class Readings:
    """The vitals as typed and as whole numbers (None: not given)."""

    values: Mapping[str, int | None]
    typed: Mapping[str, str | None]

    def given(self) -> bool:
        return any(v is not None for v in self.values.values())


def _refuse(field: str, text: str, accepted: str) -> InputError:
    return InputError(
        Problem(
            field,
            "bad_vital",
            f"{field}: '{echo(text)}' is not accepted. Accepted: {accepted}.",
        )
    )


def _in_range(field: str, text: str, vital: Vital, value: int, accepted: str) -> int:
    if value > vital.highest:
        raise _refuse(
            field, text, f"{accepted}; {vital.label} at most {vital.highest} {vital.unit}"
        )
    return value


def parse_bp(text: str, field: str = "bp") -> tuple[int, int]:
    accepted = "systolic/diastolic in mmHg as whole numbers, for example 128/82"
    match = BP.fullmatch(text) if len(text) <= MAX_CHARS else None
    if match is None:
        raise _refuse(field, text, accepted)
    systolic = _in_range(field, text, VITALS["systolic"], int(match["s"]), accepted)
    diastolic = _in_range(field, text, VITALS["diastolic"], int(match["d"]), accepted)
    if diastolic >= systolic:
        raise _refuse(field, text, accepted + " (the systolic, first, is the higher)")
    return systolic, diastolic


def parse_vital(text: str, field: str, name: str, *, unit_required: bool = False) -> int:
    vital = VITALS[name]
    whole = f"a whole number from 1 to {vital.highest}"  # not 0: "a whole number" read as 0 too
    accepted = (
        f"{whole} with its unit, for example {vital.example}"
        if unit_required
        else f"{whole}, for example {vital.example.split(' ')[0].rstrip('%')}"
        + (" or 98%" if name == "spo2" else "")
    )
    match = vital.pattern.fullmatch(text) if len(text) <= MAX_CHARS else None
    if match is None or (unit_required and match["u"] is None):
        raise _refuse(field, text, accepted)
    return _in_range(field, text, vital, int(match["n"]), accepted)


def read(bp: str | None, hr: str | None, spo2: str | None) -> Readings:
    """Parse what was typed; raise InputError listing every field refused."""
    problems: list[Problem] = []
    values: dict[str, int | None] = dict.fromkeys(VITALS)
    if bp is not None:
        try:
            values["systolic"], values["diastolic"] = parse_bp(bp)
        except InputError as exc:
            problems.extend(exc.problems)
    for field, name, text in (("hr", "heart_rate", hr), ("spo2", "spo2", spo2)):
        if text is not None:
            try:
                values[name] = parse_vital(text, field, name)
            except InputError as exc:
                problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return Readings(values, {"bp": bp, "hr": hr, "spo2": spo2})
