"""The outcome of `dosecalc check` (double_check.py), as text for the second nurse or as JSON
(schema dosecalc.check/1). Only what was compared is shown: no figure the nurse did not enter,
except the printed one beside a mismatch.
"""

from __future__ import annotations

from typing import Any

from dosecalc import __version__
from dosecalc.double_check import ENTRIES, DoubleCheck
from dosecalc.render import content
from dosecalc.render.as_json import dumps
from dosecalc.render.wrap import fill
from dosecalc.sanitize import text as clean

CHECK_SCHEMA = "dosecalc.check/1"


def verdict(check: DoubleCheck) -> str:
    if check.matches:
        skipped = len(not_entered(check))
        if skipped:  # "MATCH" after one value of four says nothing of the other three
            compared = len(check.entries)
            return (
                f"MATCH for {compared} of {compared + skipped} values ({skipped} not entered, "
                "not compared): every value entered equals this independent computation"
            )
        return "MATCH: every value entered equals this independent computation"
    wrong = sum(not e.matches for e in check.entries)
    return f"MISMATCH: {wrong} of {len(check.entries)} value(s) differ: do not start; resolve first"


def not_entered(check: DoubleCheck) -> list[str]:
    """What the nurse did not enter: a match says nothing about these."""
    entered = {e.field for e in check.entries}
    shown = check.sheet.figures.values  # a neat infusion has no volume drawn up
    return [
        label
        for field, (_, name, label) in ENTRIES.items()
        if field not in entered and name in shown
    ]


def text(check: DoubleCheck, width: int | None = None) -> str:
    """The outcome as text; `width`: a terminal's, each line broken to fit it (render.wrap), the
    lines under an entry indented under its value."""
    sheet = check.sheet
    p, f = sheet.protocol, sheet.figures
    weight = clean(sheet.order.weight.strip())
    if f.dosing_weight_kg.text != weight:
        weight = f"{weight} = {f.dosing_weight_kg.text}"
    lines = [
        "INDEPENDENT DOUBLE CHECK",
        f"Protocol        {clean(p.name)} ({p.id}), version {clean(p.version)}",
        f"Protocols file  {content.protocols_file(sheet)}",  # as on the sheet: name, short hash
        f"Weight          {weight}",
        f"Check code      {check.check_code} (must equal the code on the sheet)",
        "",
    ]
    label = max(len(e.label) for e in check.entries)
    indents = [16] * len(lines)  # under the header's values
    for e in check.entries:
        if e.matches:
            lines.append(f"{e.label:<{label}}  {clean(e.entered)}: matches")
            indents.append(label + 2)
        else:
            lines.append(
                f"{e.label:<{label}}  {clean(e.entered)}: MISMATCH, this computation prints "
                f"{e.printed}"
            )
            lines.append(f"{'':<{label}}  -> {e.implies}")
            indents += [label + 2, label + 5]
    missing = not_entered(check)
    if missing:
        lines.append(f"Not compared (not entered): {', '.join(missing)}")
        indents.append(2)
    lines += ["", verdict(check)]
    indents += [0, 2]
    if width is not None:
        lines = [
            fill(line, width, min(n, width // 2)) for line, n in zip(lines, indents, strict=True)
        ]
    return "\n".join(lines) + "\n"


def check_object(check: DoubleCheck) -> dict[str, Any]:
    sheet = check.sheet
    p = sheet.protocol
    return {
        "schema": CHECK_SCHEMA,
        "dosecalc_version": __version__,
        "protocol_id": p.id,
        "protocol_version": p.version,
        "protocols_file": sheet.library.path,
        "protocols_sha256": sheet.library.sha256,
        "patient_id": sheet.order.patient_id,
        "date": sheet.order.date,
        "weight_entered": sheet.order.weight,
        "dosing_weight_kg": sheet.figures.dosing_weight_kg,
        "check_code": check.check_code,
        "entries": [
            {
                "field": e.field,
                "entered": e.entered,
                "printed": e.printed,
                "matches": e.matches,
                "implies": e.implies or None,
            }
            for e in check.entries
        ],
        "not_entered": [
            field for field in ENTRIES if field not in {e.field for e in check.entries}
        ],
        "warnings": [{"code": w.code, "message": w.message} for w in sheet.warnings],
        "overrides": [
            {"limit": v.limit, "value": v.value, "reason": v.reason, "operator": v.operator}
            for v in sheet.overrides
        ],
        "status": "match" if check.matches else "mismatch",
    }


def render_json(check: DoubleCheck) -> str:
    return dumps(check_object(check), indent=2) + "\n"
