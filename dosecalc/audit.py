"""The audit log: one JSON line per sheet or refusal (no patient name), appended and fsynced."""

from __future__ import annotations

import datetime as dt
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from dosecalc import __version__
from dosecalc.errors import DosecalcError
from dosecalc.files import append_line
from dosecalc.model import Order, Sheet
from dosecalc.render.as_json import dumps, error_object, sheet_object

ENV_AUDIT_LOG = "DOSECALC_AUDIT_LOG"


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


def _inputs(order: Order) -> dict[str, Any]:
    found = {
        "weight": order.weight,
        "protocol": order.protocol_id,
        "patient_id": order.patient_id,
        "dose": order.dose,
        "duration": order.duration,
        "stock": order.stock,
        "date": order.date,
        "override_reason": order.override_reason,
        "operator": order.operator,
    }
    # Issue 10: the height and sex a dose was worked out from, where they were given.
    for name in ("height", "sex"):
        if getattr(order, name) is not None:
            found[name] = getattr(order, name)
    return found


def record(
    path: Path,
    order: Order,
    protocols_file: str | None,
    protocols_sha256: str | None,
    sheet: Sheet | None = None,
    error: DosecalcError | None = None,
) -> None:
    entry: dict[str, Any] = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "event": "sheet" if sheet is not None else "refusal",
        "inputs": _inputs(order),
        "protocols_file": protocols_file,
        "protocols_sha256": protocols_sha256,
        "versions": versions(),
    }
    if sheet is not None:
        entry["result"] = sheet_object(sheet)
    if error is not None:
        entry["error"] = error_object(error)
    append_line(path, dumps(entry))
