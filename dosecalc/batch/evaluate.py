"""Evaluating a day list: each record through the one calculation path, `model.make_sheet`.

A row's outcome (`Outcome`) holds its results.csv row, its rendered sheets, its JSON Lines text and
its audit record; the batch reaches a sheet's numbers only through the Sheet object.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from dosecalc.batch.rows import (
    BLANK,
    INVALID,
    OK,
    PRODUCED,
    PROGRAMMED_COLUMNS,
    REFUSED,
    WARNING,
    WEIGHT_COLUMNS,
    Options,
    RawRow,
    ResultRow,
)
from dosecalc.double_check import double_check
from dosecalc.errors import DosecalcError, InputError, LimitError, Problem
from dosecalc.model import (
    DATE,
    PATIENT_ID,
    TEXT_LIMITS,
    Figures,
    Order,
    Sheet,
    check_patient_id,
    dosing_basis,
    make_sheet,
)
from dosecalc.protocols import Library
from dosecalc.render import extension, render
from dosecalc.render.as_json import dumps, error_object, sheet_json
from dosecalc.sanitize import terminal
from dosecalc.units import parse_number


class Outcome(NamedTuple):
    """One row's outcome, as spooled between the phases."""

    row: ResultRow
    key: str | None  # (date, patient id) for the duplicate check; None: no valid id
    overridden: bool = False
    jsonl: str | None = None  # the row's JSON Lines text (stdout output only)
    audit: str | None = None  # the row's audit record, as JSON without its time
    sheets: tuple[tuple[str, bytes], ...] = ()
    sheet: Sheet | None = None  # kept only for --combined
    pdf_style: int | None = None  # --combined with pdf sheets: the style the sheet's PDF fitted in
    # A row without a duplicate key (unreadable, or its id or date not valid): the patient ids it
    # seems to name, lower case, so that no other row naming them gets a sheet.
    loose: tuple[str, ...] = ()

    @property
    def line(self) -> int:
        return int(self.row.line)

    @property
    def status(self) -> str:
        return self.row.status


class Context(NamedTuple):
    """What every row's evaluation needs besides the row."""

    library: Library
    options: Options
    run_id: str


def evaluate(raw: RawRow, ctx: Context) -> Outcome:
    """One physical line's outcome: blank, invalid, refused, or a sheet (ok / warning)."""
    options = ctx.options
    if raw.blank:
        row = ResultRow(str(raw.line), "", "", "", "", BLANK, message="blank line")
        jsonl = dumps({"line": raw.line, "status": BLANK}) if wants_jsonl(options) else None
        return Outcome(row, None, jsonl=jsonl)
    cells = raw.cells or {}
    if raw.problem is not None:
        error = InputError(Problem("row", raw.code or "bad_line", raw.problem))
        return failure(raw.line, cells, ctx, error, None)._replace(loose=_loose(cells, raw.ids))
    key = duplicate_key(cells, options)
    try:
        order = to_order(cells, options)
        sheet = make_sheet(ctx.library, order, confirm=None)
        programmed_matches(ctx.library, order, cells)
    except (InputError, LimitError) as exc:  # an arithmetic failure arrives as an InputError
        outcome = failure(raw.line, cells, ctx, exc, key)
        return outcome if key is not None else outcome._replace(loose=_loose(cells, ()))
    assert key is not None
    return success(raw.line, sheet, ctx, key)


def _loose(cells: dict[str, str], ids: tuple[str, ...]) -> tuple[str, ...]:
    """The ids a row without a duplicate key seems to name: its patient_id cell without spaces
    around it ("B1 " is not an id, but it is B1's line) and those its line holds, lower case."""
    found = [cells.get("patient_id", "").strip(" "), *ids]
    return tuple(dict.fromkeys(i.lower() for i in found if PATIENT_ID.fullmatch(i)))


def kept_sheet(raw: RawRow, outcome: Outcome, ctx: Context) -> Sheet | None:
    """The Sheet of a row that produced one (for --combined), made again from its cells in this
    process: the same cells, protocols file and options give the same Sheet (a pure function)."""
    if outcome.status not in PRODUCED:
        return None
    return make_sheet(ctx.library, to_order(raw.cells or {}, ctx.options), confirm=None)


def programmed_matches(library: Library, order: Order, cells: dict[str, str]) -> None:
    """Where the row says what was drawn up and programmed (vial, drawn, rate, vtbi), each must
    equal the sheet's printed figure, as in `dosecalc check`; a mismatch refuses the row, naming
    what the entered values would deliver."""
    entered = {name: cells.get(name) for name in PROGRAMMED_COLUMNS}
    if all(value is None for value in entered.values()):
        return
    outcome = double_check(library, order, entered)
    wrong = [e for e in outcome.entries if not e.matches]
    if wrong:
        raise LimitError(
            [
                Problem(
                    e.field,
                    "programmed_mismatch",
                    f"{e.field}: {terminal(e.entered)} entered, the sheet says {e.printed}"
                    + (f"; {e.implies}" if e.implies else ""),
                )
                for e in wrong
            ]
        )


def wants_jsonl(options: Options) -> bool:
    return options.out is None and options.output_format == "jsonl"


def shown(text: str | None, limit: int = 64) -> str:
    return "" if text is None else terminal(text, limit)


def identity(line: int, cells: dict[str, str], options: Options, status: str) -> ResultRow:
    """The identifying cells of results.csv for a row, as typed (made safe), numbers empty."""
    return ResultRow(
        str(line),
        shown(cells.get("patient_id")),
        shown(cells.get("name"), TEXT_LIMITS["name"]),
        shown(cells.get("date", options.date)),
        shown(cells.get("protocol", options.protocol_id)),
        status,
    )


def failure(
    line: int, cells: dict[str, str], ctx: Context, error: DosecalcError, key: str | None
) -> Outcome:
    status = REFUSED if isinstance(error, LimitError) else INVALID
    message = "; ".join(p.message for p in error.problems)
    row = identity(line, cells, ctx.options, status)._replace(message=message)
    jsonl = None
    if wants_jsonl(ctx.options):
        jsonl = dumps(failure_object(error, line, row.patient_id or None, status))
    record = None
    if ctx.options.audit_log is not None:
        record = audit_record(loose_order(cells, ctx.options), ctx, line, error=error)
    return Outcome(row, key, jsonl=jsonl, audit=record)


def failure_object(
    error: DosecalcError, line: int, patient_id: str | None, status: str
) -> dict[str, Any]:
    return {**error_object(error), "status": status, "line": line, "patient_id": patient_id}


def figure_cell(figures: Figures, name: str) -> str:
    """A figure as a results.csv cell, or empty where the sheet has no such figure."""
    found = figures.values.get(name)
    return "" if found is None else found.json


def success(line: int, sheet: Sheet, ctx: Context, key: str) -> Outcome:
    options = ctx.options
    f = sheet.figures
    status = WARNING if sheet.warnings else OK
    rate = f.values.get("dose_rate_per_min") or f.dose_rate
    row = ResultRow(
        line=str(line),
        patient_id=sheet.order.patient_id or "",
        name=shown(sheet.order.name, TEXT_LIMITS["name"]),
        date=sheet.order.date,
        protocol=sheet.protocol.id,
        status=status,
        weight_kg=f.weight_kg.json,
        dosing_weight_kg=f.dosing_weight_kg.json,
        dosing_weight_basis=dosing_basis(sheet)[0],
        dose=figure_cell(f, "dose"),
        dose_unit=f.dose.unit if "dose" in f.values else "",
        drug_volume_ml=figure_cell(f, "drug_volume"),
        total_volume_ml=f.total_volume.json,
        rate_ml_per_h=f.rate.json,
        preparation=sheet.protocol.preparation,
        concentration=f.concentration.json,
        concentration_unit=f.concentration.unit,
        dose_rate=rate.json,
        dose_rate_unit=rate.unit,
        bag_duration_min=figure_cell(f, "bag_duration"),
        drops_per_min=figure_cell(f, "drops_per_min"),
        message="; ".join(f"{w.code}: {w.message}" for w in sheet.warnings),
    )
    sheets: list[tuple[str, bytes]] = []
    jsonl = None
    pdf_style = None
    if options.out is not None:
        stem = f"{sheet.order.date}_{sheet.order.patient_id}"
        for fmt in options.sheets:
            if fmt == "pdf" and options.combined is not None:
                from dosecalc.render.as_pdf import render_fitted

                data, pdf_style = render_fitted(sheet, options.paper)
            else:
                data = render(sheet, fmt, paper=options.paper)
            sheets.append((f"{stem}.{extension(fmt)}", data))
    elif options.output_format == "jsonl":
        jsonl = sheet_json(sheet, extra={"status": status, "line": line})
    return Outcome(
        row,
        key,
        overridden=bool(sheet.overrides),
        jsonl=jsonl,
        audit=audit_record(sheet.order, ctx, line, sheet=sheet),
        sheets=tuple(sheets),
        sheet=sheet if options.combined is not None else None,
        pdf_style=pdf_style,
    )


def audit_record(order: Order, ctx: Context, line: int, **outcome: Any) -> str | None:
    if ctx.options.audit_log is None:
        return None
    from dosecalc import audit

    library = ctx.library
    extra = {"batch_run": ctx.run_id, "line": line}
    return dumps(audit.entry(order, library.path, library.sha256, extra=extra, **outcome))


def duplicate_key(cells: dict[str, str], options: Options) -> str | None:
    """Same date and same id (ignoring case: the files would collide on many file systems); None
    where the id or the date is not valid (the row's ids are then checked loose: _loose)."""
    date = cells.get("date", options.date)
    if not PATIENT_ID.fullmatch(cells.get("patient_id", "")) or not DATE.fullmatch(date):
        return None
    return f"{date}\x00{cells['patient_id'].lower()}"


def weight_text(cells: dict[str, str]) -> str:
    for column, unit in WEIGHT_COLUMNS.items():
        if column in cells:
            text = cells[column]
            if unit is None:
                return text
            parse_number(text, column)  # the grammar first: only an accepted number gets a unit
            return f"{text.strip(' ')} {unit}"
    raise InputError(
        Problem(
            "weight",
            "missing",
            "weight: is empty: every row needs the patient's weight, for example 72 kg",
        )
    )


def loose_order(cells: dict[str, str], options: Options, weight: str | None = None) -> Order:
    """The row as typed, unchecked: what the audit record repeats for a row that failed (and, with
    the weight checked and given its unit, the Order of a good row)."""
    if weight is None:
        weight = next((cells[c] for c in WEIGHT_COLUMNS if c in cells), "")
    return Order(
        weight=weight,
        date=cells.get("date", options.date),
        protocol_id=cells.get("protocol", options.protocol_id),
        patient_id=cells.get("patient_id"),
        name=cells.get("name"),
        dose=cells.get("dose"),
        duration=cells.get("duration"),
        stock=cells.get("stock"),
        override_reason=cells.get("override_reason"),
        operator=cells.get("operator", options.operator),
        height=cells.get("height"),
        sex=cells.get("sex"),
        bp=cells.get("bp"),
        hr=cells.get("hr"),
        spo2=cells.get("spo2"),
        drop_factor=cells.get("drop_factor"),
        dose_rate=cells.get("dose_rate"),
    )


def to_order(cells: dict[str, str], options: Options) -> Order:
    """The row as an Order, exactly as `dosecalc sheet` would receive it; raises InputError."""
    problems: list[Problem] = []
    if "patient_id" not in cells:
        problems.append(
            Problem("patient_id", "missing", "patient_id: is empty: every row needs one")
        )
    else:
        try:
            check_patient_id(cells["patient_id"])
        except InputError as exc:
            problems.extend(exc.problems)
    weight = ""
    try:
        weight = weight_text(cells)
    except InputError as exc:
        problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return loose_order(cells, options, weight)


def mark_duplicates(spool: Any, ctx: Context) -> None:
    """Every row whose (date, patient_id) appears more than once becomes invalid, its own problems
    kept after the duplicate's; and every row with a sheet whose patient id a line that could not
    be read (or whose id or date is not valid) also names, on any date: which of the two was meant
    cannot be known."""
    for key, count, lines in spool.duplicate_keys():
        listed = ", ".join(map(str, lines)) + (", ..." if count > len(lines) else "")
        for row, old_jsonl, old_audit in spool.rows_with_key(key):
            problem = Problem(
                "patient_id",
                "duplicate_patient_id",
                f"patient_id: '{row.patient_id}' appears {count} times for {row.date} "
                f"(lines {listed}): every such row is refused; fix the list and rerun",
            )
            _refuse_duplicate(spool, ctx, row, old_jsonl, old_audit, problem)
    for pid, lines in spool.loose_ids():
        listed = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
        for row, old_jsonl, old_audit in spool.rows_with_key(pid, "pid", produced=True):
            problem = Problem(
                "patient_id",
                "duplicate_patient_id",
                f"patient_id: '{row.patient_id}' is also named on line(s) {listed}, which could "
                "not be read or has an invalid id or date: every row naming it is refused; fix "
                "the list and rerun",
            )
            _refuse_duplicate(spool, ctx, row, old_jsonl, old_audit, problem)


def _refuse_duplicate(
    spool: Any,
    ctx: Context,
    row: ResultRow,
    old_jsonl: str | None,
    old_audit: str | None,
    problem: Problem,
) -> None:
    """`row` made invalid by `problem`, its own problems (if it had any) kept after it."""
    old = row.message if row.status in (REFUSED, INVALID) else ""
    error = InputError(problem)
    new = row.failed(INVALID, problem.message + (f"; {old}" if old else ""))
    jsonl = None
    if wants_jsonl(ctx.options):
        obj = failure_object(error, int(row.line), row.patient_id or None, INVALID)
        if old and old_jsonl:  # keep the row's own problems after the duplicate
            obj["errors"] += json.loads(old_jsonl)["errors"]
        jsonl = dumps(obj)
    audit = None
    if old_audit is not None:
        record = json.loads(old_audit)
        record.pop("result", None)
        earlier = record.get("error", {}).get("errors", [])
        record |= {"event": "refusal", "error": error_object(error)}
        record["error"]["errors"] += earlier
        audit = dumps(record)
    spool.replace(new, jsonl, audit)
