"""The words of a dose sheet, written once for every human-readable renderer (text, HTML, PDF).

Text from a user or a file passes display.clean here; numbers come only from the Sheet's figures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal

from dosecalc.display import Figure, clean
from dosecalc.model import Sheet


@dataclass(frozen=True)
class Line:
    label: str
    text: str


def shown(fig: Figure) -> str:
    """'34.927 mg, given as 34.9 mg' when rounding changed the value, else '36 mg'."""
    if fig.was_rounded and fig.exact_number != fig.number:
        return f"{fig.exact_text}, given as {fig.text}"
    return fig.text


def operand(fig: Figure) -> str:
    """A value inside a calculation: the unrounded value, so the arithmetic checks with a pencil."""
    return fig.exact_text if fig.was_rounded else fig.text


def title(sheet: Sheet) -> str:
    return f"{clean(sheet.protocol.drug).upper()} DOSE SHEET"


def protocols_file(sheet: Sheet) -> str:
    """The protocols file as a sheet shows it: its name and short hash. The full path is in the JSON
    sheet and the audit log; on paper it only wraps, and can be mistaken for something to read."""
    lib = sheet.library
    return f"{clean(os.path.basename(lib.path)) or clean(lib.path)} (sha256 {lib.short_hash})"


def header(sheet: Sheet) -> list[Line]:
    p = sheet.protocol
    return [
        Line("Protocol", f"{clean(p.name)} ({p.id}), version {clean(p.version)}"),
        Line("Indication", clean(p.indication)),
        Line("Protocols file", protocols_file(sheet)),
    ]


SUMMARY_TITLE = "SUMMARY"


def summary(sheet: Sheet) -> list[Line]:
    """What must be on the nurse's screen when the command ends: who, what to draw up, what to
    program, and whether anything needs reading first. Short enough for the last lines of a 24-line
    terminal, with room for one more line (the check code)."""
    o, f = sheet.order, sheet.figures
    # The patient ID, else the name (the full sheet above shows both): one line for the usual ID.
    who = o.patient_id or (clean(o.name) if o.name else "") or "(no patient ID)"
    weight = clean(o.weight.strip())
    if sheet.weight_in_lb or f.weight_kg.text != weight:
        weight = f"{weight} = {f.weight_kg.text}"
    codes = [w.code for w in sheet.warnings]
    named = ", ".join(
        code if codes.count(code) == 1 else f"{code} x{codes.count(code)}"
        for code in dict.fromkeys(codes)
    )
    warnings = f"YES, {len(codes)}: {named}" if codes else "none"
    return [
        Line("Patient", f"{who} | {o.date}"),
        Line("Weight", weight),
        Line("Protocol", f"{sheet.protocol.id}, version {clean(sheet.protocol.version)}"),
        Line("Dose", f"{f.dose.text} ({f.dose_per_kg.text})"),
        Line("Draw up", f"{f.drug_volume.text} of {clean(sheet.protocol.drug)} {f.stock.text}"),
        *pump(sheet),
        Line("Warnings", warnings),
    ]


def patient(sheet: Sheet) -> list[Line]:
    o, f = sheet.order, sheet.figures
    weight = clean(o.weight.strip())
    if sheet.weight_in_lb or f.weight_kg.text != weight:
        weight = f"{weight} = {shown(f.weight_kg)}"
    return [
        Line("Patient ID", o.patient_id or "(none given)"),
        Line("Name", clean(o.name) if o.name else "(none given)"),
        Line("Date", o.date),
        Line("Weight", weight),
        Line("Dosing weight", f"{f.dosing_weight_kg.text} (actual weight)"),
    ]


def calculation(sheet: Sheet) -> list[Line]:
    f, p = sheet.figures, sheet.protocol
    entered = "" if sheet.result.weight.unit == "kg" else f" ({clean(sheet.order.weight.strip())})"
    lines = [
        Line(
            "Dose",
            f"{f.dose_per_kg.text} x {operand(f.dosing_weight_kg)}{entered} = {shown(f.dose)}",
        ),
        Line("Drug volume", f"{operand(f.dose)} / {f.stock.text} = {shown(f.drug_volume)}"),
    ]
    if p.preparation == "add":
        lines.append(
            Line(
                "Total volume",
                f"{f.diluent_volume.text} + {operand(f.drug_volume)} = {shown(f.total_volume)}",
            )
        )
    else:
        lines.append(
            Line(
                "Diluent",
                f"{f.total_volume.text} - {operand(f.drug_volume)} = {shown(f.diluent_volume)}",
            )
        )
    lines += [
        Line(
            "Concentration",
            f"{operand(f.dose)} / {operand(f.total_volume)} = {shown(f.concentration)}",
        ),
        Line(
            "Rate",
            f"{operand(f.total_volume)} / {f.duration.text} x 60 min/h = {shown(f.rate)}",
        ),
    ]
    return lines


def preparation(sheet: Sheet) -> list[str]:
    f, p = sheet.figures, sheet.protocol
    drug, diluent = clean(p.drug), clean(p.diluent)
    steps = [f"Draw up {f.drug_volume.text} of {drug} {f.stock.text} ({f.dose.text})."]
    if p.preparation == "add":
        steps.append(f"Add it to {f.diluent_volume.text} {diluent}.")
    else:
        steps.append(f"Add {f.diluent_volume.text} {diluent} to make up to {f.total_volume.text}.")
    steps.append(
        f"Total {f.total_volume.text}, {f.concentration.text}: label with the patient, drug, "
        "dose, concentration and time, and check against this sheet."
    )
    return steps


def pump(sheet: Sheet) -> list[Line]:
    f = sheet.figures
    return [
        Line("RATE", f.rate.text),
        Line("VTBI", f.total_volume.text),
        Line("DURATION", f.duration.text),
    ]


def dose_rate(sheet: Sheet) -> str:
    f = sheet.figures
    return f"{f.dose_rate.text} ({f.dose_rate_per_kg.text})"


def checkpoint_rows(sheet: Sheet) -> list[tuple[str, str, str]]:
    return [(c.minute.text, c.volume.text, c.dose.text) for c in sheet.figures.checkpoints]


def reverse_check(sheet: Sheet) -> str:
    f = sheet.figures
    return (
        f"{operand(f.rate)} x {f.duration.text} = {f.reverse_volume.text}; "
        f"{operand(f.reverse_volume)} x {f.concentration.exact_text} = {f.reverse_dose.text}; "
        f"{operand(f.reverse_dose)} / {operand(f.dosing_weight_kg)} = "
        f"{f.reverse_dose_per_kg.text}: matches the prescribed {f.dose_per_kg.text}"
    )


def alerts(sheet: Sheet) -> list[str]:
    """Warnings and overrides, for the box that cannot be missed."""
    return [f"{w.code}: {clean(w.message)}" for w in sheet.warnings]


def advisory(sheet: Sheet) -> str:
    return clean(sheet.protocol.advisory, keep_newlines=True).strip()


def monitoring(sheet: Sheet) -> list[str]:
    return [clean(m) for m in sheet.protocol.monitoring]


SIGNATURES = ("Prepared by", "Independent double check by")


# --- printed sheets (HTML and PDF) -------------------------------------------------------------

TIMELINE_TITLE = "INFUSION TIMELINE (cumulative, compare with the pump's volume infused)"
GRID_TITLE = "MONITORING (fill in by hand)"
GRID_ROWS = (
    "Blood pressure (mmHg)",
    "Heart rate (/min)",
    "SpO2 (%)",
    "Sedation / dissociation",
)
GRID_FIRST_COLUMN = "Baseline"
DEFAULT_AFTER_END = ("end + 15 min", "end + 30 min")
SIGNATURE_FIELDS = ("Name", "Signature", "Date / time")
# Filled in by hand on a printed sheet: a second patient identifier, who prescribed, when it started.
WRITE_INS = ("Date of birth", "Prescriber", "Start time")
TICKS_PER_SEGMENT = 8
GRID_COLUMNS_PER_BLOCK = 10


@dataclass(frozen=True)
class Tick:
    """One checkpoint on the timeline: where it sits (0 to 1 along its bar) and its three labels."""

    position: Decimal
    time: str
    volume: str
    dose: str
    # Labels alternate above and below the bar (the first above, clear of the start label below),
    # so neighbouring ticks never overlap.
    above: bool


@dataclass(frozen=True)
class Segment:
    """One bar of the timeline: from `start` (text) to its last tick. Long infusions get several."""

    start: str
    ticks: tuple[Tick, ...]


def timeline(sheet: Sheet, per_segment: int = TICKS_PER_SEGMENT) -> list[Segment]:
    """The checkpoints as bars of at most `per_segment` ticks, so every label has room on paper.

    Positions are layout only (minute / bar length); the labels are the Sheet's rounded figures.
    """
    points = sheet.figures.checkpoints
    segments: list[Segment] = []
    begin, begin_text = Decimal(0), "0 min"
    for first in range(0, len(points), per_segment):
        chunk = points[first : first + per_segment]
        end = chunk[-1].minute.exact
        span = end - begin
        ticks = tuple(
            Tick(
                (c.minute.exact - begin) / span,
                c.minute.text,
                c.volume.text,
                c.dose.text,
                above=i % 2 == 0,
            )
            for i, c in enumerate(chunk)
        )
        segments.append(Segment(begin_text, ticks))
        begin, begin_text = end, chunk[-1].minute.text
    return segments


def grid_columns(sheet: Sheet) -> list[str]:
    """Baseline, then the protocol's monitoring_times, else every checkpoint and end + 15, + 30 min."""
    times = sheet.protocol.monitoring_times
    if not times:
        points = sheet.figures.checkpoints
        times = (
            tuple(
                f"{c.minute.text} (end)" if i == len(points) - 1 else c.minute.text
                for i, c in enumerate(points)
            )
            + DEFAULT_AFTER_END
        )
    return [GRID_FIRST_COLUMN, *times]


def grid_blocks(sheet: Sheet, per_block: int = GRID_COLUMNS_PER_BLOCK) -> list[list[str]]:
    """The grid's columns in blocks that fit across a page (each block is printed as one table)."""
    columns = grid_columns(sheet)
    return [columns[i : i + per_block] for i in range(0, len(columns), per_block)]


def footer(sheet: Sheet) -> str:
    """Whose sheet, made from what: at the foot of every page, so a spilled page is never anonymous."""
    from dosecalc import __version__

    return (
        f"Patient {sheet.order.patient_id or '(no patient ID)'} | {sheet.order.date}"
        f" | protocol {sheet.protocol.id} version {clean(sheet.protocol.version)}"
        f" | {protocols_file(sheet)} | dosecalc {__version__}"
    )


COVER_COLUMNS = ("Line", "Patient ID", "Status", "Dose", "Drug volume", "Rate", "Override")


def cover_row(
    sheet: Sheet, line: str, status: str = "ok"
) -> tuple[str, str, str, str, str, str, str]:
    """One produced sheet ("ok", or "warning" where it has one) as a line of a combined PDF's cover
    page (refused lines: built by batch)."""
    f = sheet.figures
    override = "; ".join(
        f"{o.limit}: {clean(o.reason)} ({clean(o.operator)})" for o in sheet.overrides
    )
    return (
        line,
        sheet.order.patient_id or "",
        status,
        f.dose.text,
        f.drug_volume.text,
        f.rate.text,
        override or "none",
    )
