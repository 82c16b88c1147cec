"""The audit log: one JSON line per sheet or refusal, and one per batch run, appended and fsynced.

A patient's name never reaches the log, not even inside a message that repeats it back.
"""

from __future__ import annotations

import datetime as dt
import platform
import re
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from dosecalc import __version__, sanitize
from dosecalc.errors import DosecalcError, LimitError, Problem
from dosecalc.files import append_records
from dosecalc.model import Order, Sheet
from dosecalc.render.as_json import dumps, error_object, sheet_object

NAME_WITHHELD = "[name withheld]"


@cache
def versions() -> dict[str, str]:
    """dosecalc, its libraries and Python: what produced a record."""
    found = {"dosecalc": __version__}
    for dist in ("pint", "rich", "click"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    found["python"] = platform.python_version()
    return found


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _inputs(order: Order) -> dict[str, Any]:
    """What was typed, under the log policy (no control, bidi or zero-width character raw)."""
    typed = {
        "weight": order.weight,
        "protocol": order.protocol_id,
        "patient_id": order.patient_id,
        "dose": order.dose,
        "duration": order.duration,
        "stock": order.stock,
        "date": order.date,
        "override_reason": order.override_reason,
        "operator": order.operator,
        "bp": order.bp,
        "hr": order.hr,
        "spo2": order.spo2,
    }
    # Where they were given: the height and sex a dose was worked out from (issue 10), a gravity
    # giving set and a continuous infusion's dose rate (issue 11).
    for name in ("height", "sex", "drop_factor", "dose_rate"):
        if getattr(order, name) is not None:
            typed[name] = getattr(order, name)
    return {k: v if v is None else sanitize.log(v) for k, v in typed.items()}


def without_name(error: DosecalcError, name: str | None) -> dict[str, Any]:
    """The error object with every trace of the patient's name removed: a problem about the name
    keeps its field and code but not its message (which repeats the name), and the name (or any
    40-character stretch of it) is cut out of every other message."""
    problems = []
    for p in error.problems:
        if p.field == "name":
            p = Problem(p.field, p.code, f"name: not accepted ({p.code}); the name is never logged")
        elif name and not isinstance(error, LimitError):
            # A limit's message is numbers and units only (never "1[name withheld]8 kg" for the
            # name "5"); elsewhere the name is cut out where it stands as a whole word.
            message = _cut(p.message, name)
            if len(name) >= 8:  # messages repeat at most 40 characters, made printable
                message = _cut(message, sanitize.terminal(name).removesuffix("..."))
            p = Problem(p.field, p.code, message)
        problems.append(p)
    scrubbed = DosecalcError(problems)
    scrubbed.status = error.status
    return error_object(scrubbed)


def _cut(message: str, name: str) -> str:
    """`message` with `name` withheld wherever it is not part of a longer word or number."""
    # Not inside a word; and a "name" that is a number ("5") not inside a number either ("0.5",
    # "1,500"). A name with a letter in it is withheld wherever it stands as a word, a comma
    # before or after it included (a CSV line echoed: "A1,Ann5,72 kg").
    number = name.isdigit()
    before = r"(?<!\w)" + (r"(?<!\d[.,])" if number else "")
    after = r"(?!\w)" + (r"(?![.,]\d)" if number else "")
    return re.sub(before + re.escape(name) + after, NAME_WITHHELD, message)


def entry(
    order: Order,
    protocols_file: str | None,
    protocols_sha256: str | None,
    sheet: Sheet | None = None,
    error: DosecalcError | None = None,
    event: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One record (without its time): what was asked, with what protocols file, and the outcome."""
    record: dict[str, Any] = {
        "event": event or ("sheet" if sheet is not None else "refusal"),
        "inputs": _inputs(order),
        "protocols_file": protocols_file,
        "protocols_sha256": protocols_sha256,
        "versions": versions(),
        **(extra or {}),
    }
    if sheet is not None:
        record["result"] = sheet_object(sheet)
    if error is not None:
        record["error"] = without_name(error, order.name)
    return record


def stamped(record: dict[str, Any]) -> str:
    """The record's JSON line, with the time first."""
    return dumps({"time": now(), **record})


def record(
    path: Path,
    order: Order,
    protocols_file: str | None,
    protocols_sha256: str | None,
    sheet: Sheet | None = None,
    error: DosecalcError | None = None,
    event: str | None = None,
) -> None:
    """Append one record for `dosecalc sheet`."""
    append_records(
        path, [stamped(entry(order, protocols_file, protocols_sha256, sheet, error, event))]
    )


def append(path: Path, lines: Iterable[str]) -> None:
    """Append records already made (a batch: one per row, then one for the run)."""
    append_records(path, lines)


def stamped_text(record: str) -> str:
    """A record already in JSON text (`{...}`), with the time put first."""
    return '{"time": ' + dumps(now()) + (", " + record[1:] if record != "{}" else "}")


def record_check(
    path: Path,
    order: Order,
    entered: dict[str, str | None],
    protocols_file: str | None,
    protocols_sha256: str | None,
    outcome: dict[str, Any] | None = None,
    error: DosecalcError | None = None,
) -> None:
    """One `dosecalc check` (event "check"): the second nurse's inputs and operator, what they
    entered, and the outcome (check code, match or mismatch per value) or the refusal."""
    typed = {k: v if v is None else sanitize.log(v) for k, v in entered.items()}
    extra: dict[str, Any] = {} if outcome is None else {"result": outcome}
    found = entry(order, protocols_file, protocols_sha256, error=error, event="check", extra=extra)
    found["inputs"] = {**found["inputs"], "entered": typed}
    append_records(path, [stamped(found)])
