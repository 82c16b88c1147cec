"""A clinic's day list -> one dose sheet per patient, results.csv, errors.csv and a manifest.

Phases, each in its own module: `read` (physical lines into records), `evaluate` (each record through
`model.make_sheet`), `spool` (outcomes in an anonymous SQLite database, all the SQL), `write`
(targets checked, folder locked, files written atomically, the manifest last). Nothing is written
until every row has been read, checked and calculated. Memory does not grow with the number of
rows. No click here.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from dosecalc import sanitize, stopping
from dosecalc.batch.evaluate import Context, mark_duplicates
from dosecalc.batch.pool import Workers, jobs_for
from dosecalc.batch.progress import Progress, summary
from dosecalc.batch.read import Source, csv_rows, jsonl_rows
from dosecalc.batch.rows import (
    COLUMNS,
    MANIFEST_FILE,
    MANIFEST_SCHEMA,
    MAX_COMBINED,
    RESULT_COLUMNS,
    STATUSES,
    Options,
    RawRow,
    Report,
    ResultRow,
)
from dosecalc.batch.spool import Spool
from dosecalc.batch.write import (
    FolderLock,
    Writer,
    check_targets,
    combined_pdf,
    now,
    write_folder,
    write_stdout,
)
from dosecalc.errors import (
    DosecalcError,
    IncompleteOutputError,
    InputError,
    OutputError,
    Problem,
    Terminated,
    stdout_failed,
)
from dosecalc.files import refuse_clash, same_file, shown_path
from dosecalc.model import TEXT_LIMITS, check_date, check_text
from dosecalc.protocols import Library
from dosecalc.render import FORMATS
from dosecalc.stopping import held

__all__ = [
    "COLUMNS",
    "MANIFEST_SCHEMA",
    "RESULT_COLUMNS",
    "STATUSES",
    "Options",
    "RawRow",
    "Report",
    "ResultRow",
    "input_format",
    "run",
]


def input_format(daylist: str, chosen: str | None) -> str:
    if chosen:
        return chosen
    return "jsonl" if daylist.lower().endswith((".jsonl", ".ndjson")) else "csv"


def _open(daylist: str, stdin: IO[bytes] | None) -> IO[bytes]:
    if daylist == "-":
        if stdin is None:
            raise InputError(
                Problem("daylist", "stdin_closed", "daylist: '-' reads stdin, but stdin is closed")
            )
        return stdin
    try:
        return open(daylist, "rb")  # closed by the caller
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or "the file name is not valid"
        raise InputError(
            Problem(
                "daylist",
                "unreadable",
                f"daylist: cannot read {sanitize.terminal(daylist, None)}: {why}",
            )
        ) from None


def _identity(handle: IO[bytes]) -> tuple[int, int, int, int] | None:
    """A regular file's size, modification time and inode, and where reading starts in it (stdin
    from a file can be past its start), as it is opened (None: a pipe)."""
    import os
    import stat

    try:
        info = os.fstat(handle.fileno())
        start = handle.tell()
    except (OSError, ValueError, AttributeError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_size, info.st_mtime_ns, info.st_ino, start


def _unchanged(
    daylist: str, handle: IO[bytes], opened: tuple[int, int, int, int] | None, read: int
) -> None:
    """A day list rewritten while it was read (a script still writing it, an export saved over
    it) gave rows of two files, and a manifest hash of neither: refused, nothing written."""
    if opened is None:
        return
    now = _identity(handle)
    if now is not None and now[:3] == opened[:3] and read == opened[0] - opened[3]:
        return
    raise InputError(
        Problem(
            "daylist",
            "changed_while_read",
            f"daylist: {sanitize.terminal(daylist, None)} changed while it was read (its size "
            "or modification time is not the same): nothing was written; rerun it once the "
            "file is complete",
        )
    )


def _check_options(library: Library, options: Options) -> Options:
    check_date(options.date, "date")
    check_text(options.operator, "operator", TEXT_LIMITS["operator"])
    if options.protocol_id is not None:
        library.get(options.protocol_id)
    for fmt in options.sheets:
        if fmt not in FORMATS:
            raise InputError(
                Problem(
                    "sheets",
                    "unknown_format",
                    f"sheets: unknown format '{sanitize.terminal(fmt)}'. Accepted: {', '.join(FORMATS)}",
                )
            )
        if options.sheets.count(fmt) > 1:  # each sheet would be written twice, over itself
            raise InputError(
                Problem(
                    "sheets",
                    "repeated_format",
                    f"sheets: format '{fmt}' is given twice; give each format once",
                )
            )
    return replace(options, protocol_id=options.protocol_id or library.default)


def _check_audit_log(library: Library, daylist: str, options: Options) -> None:
    """The audit log is a file of its own: never the day list, the protocols file, the combined
    PDF, or a file in the output folder (whose files are the run's, replaced with --force)."""
    log = options.audit_log
    if log is None:
        return
    others: list[tuple[str, str | Path]] = [("protocols file", library.path)]
    if daylist != "-":
        others.append(("day list", daylist))
    if options.combined is not None:
        others.append(("combined PDF", options.combined))
    refuse_clash("audit_log", log, others)
    if options.out is not None and same_file(log.parent if str(log.parent) else ".", options.out):
        raise OutputError(
            Problem(
                "audit_log",
                "same_file",
                f"audit_log: {shown_path(log)} is in the output folder {shown_path(options.out)}, "
                "whose files are the run's; keep the audit log elsewhere (nothing was written)",
            )
        )


def _combined_precount(stream: IO[bytes], size: int | None) -> None:
    """--combined: refuse at once a list with more non-blank lines than a combined PDF holds
    (not after computing a thousand sheets). Files only; stdin is counted as it is read."""
    if size is None or not stream.seekable():
        return
    lines = sum(1 for raw in iter(lambda: stream.readline(1 << 16), b"") if raw.strip())
    stream.seek(0)
    if lines - 1 > MAX_COMBINED:
        raise InputError(
            Problem(
                "combined",
                "too_many_sheets",
                f"combined: the day list has {lines - 1:,} non-blank rows; a combined PDF holds "
                f"at most {MAX_COMBINED:,} sheets; split the day list (nothing was written)",
            )
        )


def run(
    library: Library,
    daylist: str,
    options: Options,
    *,
    stdin: IO[bytes] | None,
    stdout: IO[bytes] | None,
    stderr: IO[str],
    progress: bool = False,
) -> Report:
    """The whole batch. Raises InputError or OutputError before writing anything, and
    IncompleteOutputError (after undoing what it can) when a write fails part-way."""
    options = _check_options(library, options)
    _check_audit_log(library, daylist, options)
    if options.out is None and stdout is None:
        raise OutputError(
            Problem("output", "stdout_closed", "output: stdout is closed; use --out DIR")
        )
    started = now()
    run_id = uuid.uuid4().hex
    report = Report()
    fmt = input_format(daylist, options.input_format)
    ctx = Context(library, options, run_id)
    with ExitStack() as stack:
        for folder in _folders(options):  # before any work: a second run stops at once
            stack.enter_context(FolderLock(*folder))
        stream = _open(daylist, stdin)
        if stream is not stdin:
            stack.enter_context(stream)
        opened = _identity(stream)  # also the size the progress shows (a file named, not stdin)
        total = opened[0] if opened is not None and stream is not stdin else None
        spool = Spool()
        stack.callback(spool.close)
        workers = Workers(ctx, jobs_for(ctx, total))  # forked before the progress thread starts
        stack.callback(workers.close)
        bar = Progress(stderr, total) if progress and not options.quiet else None
        if bar is not None:
            stack.callback(bar.close)
        if options.combined is not None:
            _combined_precount(stream, total)
        source = Source(stream)
        records: Iterator[RawRow] = jsonl_rows(source) if fmt == "jsonl" else csv_rows(source)[1]
        for outcome in workers.outcomes(records):
            spool.add(outcome)
            if bar is not None:
                bar.computed(source.bytes_read)
        workers.close(wait=True)
        _unchanged(daylist, stream, opened, source.bytes_read)
        report.unterminated = source.unterminated
        mark_duplicates(spool, ctx)
        report.counts.update(dict.fromkeys(STATUSES, 0))
        counts, report.with_override = spool.counts()
        report.counts.update(counts)
        if bar is not None:
            bar.pause()
        summary(spool, report, stderr)
        inputs = {
            "day_list": {
                "path": sanitize.log(daylist),
                "format": fmt,
                "sha256": source.sha256.hexdigest(),
            },
            "protocols_file": {"path": sanitize.log(library.path), "sha256": library.sha256},
        }
        if options.strict and report.failed:
            _audit(spool, options, ctx, report, inputs, "refused (--strict): nothing written")
            stderr.write(
                f"dosecalc: --strict: {report.failed} row(s) failed: nothing was written\n"
            )
            return report
        targets = check_targets(spool, options, [daylist, library.path])
        writer = Writer(spool, options, report, targets)
        if bar is not None:
            bar.start_writing(_file_count(spool, options))
            writer.tick = bar.wrote
        try:
            # The rows' audit records first: a stop or a full disk while they are appended ends
            # with the run's own record (terminated, incomplete) where it can still be written.
            _audit(spool, options, ctx, report, inputs, None)
            _write(writer, spool, options, stdout, started, run_id, inputs)
        except BaseException as exc:
            # One handler, held: a Ctrl-C or SIGTERM during it cannot skip the undo.
            with held(then_stop=False):
                if bar is not None:
                    bar.pause()  # the undo's message on its own line
                incomplete = _stopped(exc, writer, options, ctx, report, inputs, stderr)
            if incomplete is not None:
                raise incomplete from None
            raise
        with held():  # the folder is complete: its run record goes with it
            if bar is not None:
                bar.pause()
            _run_record(options, ctx, report, inputs, "complete")
            stopping.finished()  # a stop from here is dropped: nothing is undone any more
        if options.out is not None:
            removed = (
                f"; removed {len(writer.removed)} file(s) of an earlier run"
                if writer.removed
                else ""
            )
            stderr.write(
                f"dosecalc: wrote {report.written} file(s) to {sanitize.terminal(str(options.out), None)}, "
                f"{MANIFEST_FILE} last{removed}\n"
            )
        return report
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


class StdoutFailed(Exception):
    """The results could not all be written to stdout (not a broken pipe): some may be out."""

    def __init__(self, error: OutputError) -> None:
        self.why = error.problems[0].message
        super().__init__(self.why)


def _stopped(
    exc: BaseException,
    writer: Writer,
    options: Options,
    ctx: Context,
    report: Report,
    inputs: dict[str, Any],
    stderr: IO[str],
) -> DosecalcError | None:
    """Undo a run whose writing stopped part-way, then add the run's record to the audit log. A
    failed write (disk full): the error to raise (exit 4; record "incomplete"), or, where the
    first write failed and the folder is as it was (a read-only folder), the write's own error
    (exit 2: nothing was written). Otherwise (a broken pipe, Ctrl-C, SIGTERM: main exits 141, 130,
    143) the undo is reported here and the exception goes on (None; record "broken_pipe",
    "interrupted", "terminated")."""
    if isinstance(exc, StdoutFailed):  # part of the results may be out: exit 4, as for sheet
        why = exc.why
        if writer.paths:
            writer.undo(why)  # the combined PDF beside them
        with contextlib.suppress(OutputError):
            _run_record(options, ctx, report, inputs, "incomplete")
        return IncompleteOutputError(
            Problem("output", "stdout_failed", f"{why}; the results on stdout are incomplete")
        )
    if isinstance(exc, (OutputError, OSError)) and not isinstance(exc, BrokenPipeError):
        why = exc.problems[0].message if isinstance(exc, OutputError) else str(exc)
        untouched = not (writer.paths or writer.removed or writer.retired)
        undone = writer.undo(why)
        with contextlib.suppress(OutputError):
            _run_record(options, ctx, report, inputs, "incomplete")
        if untouched and isinstance(exc, OutputError):
            first = exc.problems[0]
            return OutputError(
                Problem(first.field, first.code, f"{first.message}; nothing was written")
            )
        if untouched:
            return OutputError(Problem("out", "cannot_write", f"out: {why}; nothing was written"))
        return undone
    if isinstance(exc, BrokenPipeError):
        why, outcome = "broken pipe", "broken_pipe"
    elif isinstance(exc, Terminated):
        why, outcome = "terminated (SIGTERM)", "terminated"
    elif isinstance(exc, KeyboardInterrupt):
        why, outcome = "interrupted", "interrupted"
    else:  # not a stop: a fault of dosecalc's own, reported by main after the undo
        why, outcome = f"failed ({type(exc).__name__})", "failed"
    _undo_quietly(writer, stderr, why)
    with contextlib.suppress(OutputError):
        _run_record(options, ctx, report, inputs, outcome)
    return None


def _undo_quietly(writer: Writer, stderr: IO[str], why: str) -> None:
    if writer.paths or writer.removed:
        undone = writer.undo(why)
        with contextlib.suppress(OSError, ValueError):
            stderr.write(f"dosecalc: {undone.problems[0].message}\n")


def _folders(options: Options) -> list[tuple[Path, str]]:
    folders: list[tuple[Path, str]] = []
    if options.out is not None:
        folders.append((options.out, "out"))
    if options.combined is not None:
        parent = options.combined.parent if str(options.combined.parent) else Path(".")
        if options.out is None or parent.resolve() != options.out.resolve():
            if parent.is_dir():
                folders.append((parent, "combined"))
            else:
                raise OutputError(
                    Problem(
                        "combined",
                        "no_folder",
                        f"combined: the folder of "
                        f"{sanitize.terminal(str(options.combined), None)} does not exist",
                    )
                )
    return folders


def _file_count(spool: Spool, options: Options) -> int:
    count = spool.sheet_count() + (1 if options.combined is not None else 0)
    return count + (3 if options.out is not None else 0)


def _write(
    writer: Writer,
    spool: Spool,
    options: Options,
    stdout: IO[bytes] | None,
    started: str,
    run_id: str,
    inputs: dict[str, Any],
) -> None:
    def combined() -> None:
        if options.combined is None:
            return
        in_out = options.out is not None and (
            options.combined.parent.resolve() == options.out.resolve()
        )
        writer.file(options.combined, combined_pdf(spool, options), "combined", listed=in_out)

    if options.out is None:
        combined()
        assert stdout is not None
        try:
            write_stdout(spool, options, stdout)
        except BrokenPipeError:
            raise
        except OSError as exc:  # a full disk, an I/O error: never "out:", nor "nothing written"
            raise StdoutFailed(stdout_failed(exc)) from None
        except OutputError as exc:  # the spool failed while its rows were streamed out
            raise StdoutFailed(exc) from None
        return
    writer.begin()
    if options.force:
        writer.retire_manifest()
        writer.remove_earlier()
    head = {
        "schema": MANIFEST_SCHEMA,
        "started": started,
        "batch_run": run_id,
        "versions": _versions(),
        **inputs,
        "options": {
            "sheets": list(options.sheets),
            "strict": options.strict,
            "force": options.force,
            "date": options.date,
            "protocol": options.protocol_id,
        },
    }
    write_folder(writer, head, combined)


def _versions() -> dict[str, str]:
    from dosecalc.audit import versions

    return versions()


def _audit(
    spool: Spool,
    options: Options,
    ctx: Context,
    report: Report,
    inputs: dict[str, Any],
    outcome: str | None,
) -> None:
    """One record per non-blank row (before the first write), then, with `outcome`, the run's."""
    if options.audit_log is None:
        return
    from dosecalc import audit

    records = (
        audit.stamped_text(text)
        for text in spool.audit_records()
        if outcome is None or '"event": "refusal"' in text
    )
    audit.append(options.audit_log, records)
    if outcome is not None:
        _run_record(options, ctx, report, inputs, outcome)


def _run_record(
    options: Options, ctx: Context, report: Report, inputs: dict[str, Any], outcome: str
) -> None:
    if options.audit_log is None:
        return
    from dosecalc import audit

    record = {
        "event": "batch",
        "batch_run": ctx.run_id,
        "outcome": outcome,
        **inputs,
        "out": sanitize.log(str(options.out)) if options.out is not None else None,
        "combined": sanitize.log(str(options.combined)) if options.combined is not None else None,
        "counts": {"lines_read": report.lines_read, **report.counts},
        "files_written": report.written,
        "versions": audit.versions(),
    }
    audit.append(options.audit_log, [audit.stamped(record)])
