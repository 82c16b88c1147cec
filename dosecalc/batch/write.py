"""Writing a batch: targets checked before the first write, an exclusive lock on the folder,
atomic files, the manifest last, and on a failure part-way, this run's files removed (or, where
they replaced older ones with --force, an INCOMPLETE marker naming them).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

from dosecalc import sanitize
from dosecalc.batch.rows import (
    ERRORS_FILE,
    FAILED,
    INCOMPLETE_FILE,
    MANIFEST_FILE,
    MANIFEST_SCHEMA,
    PRODUCED,
    RESULT_COLUMNS,
    RESULTS_FILE,
    Options,
    Report,
    ResultRow,
)
from dosecalc.batch.spool import Spool
from dosecalc.errors import IncompleteOutputError, OutputError, Problem
from dosecalc.files import (
    TEMP_PREFIX,
    exists_error,
    replaceable,
    same_file,
    shown_path,
    write_atomic,
)
from dosecalc.model import DATE, PATIENT_ID
from dosecalc.render import FORMATS
from dosecalc.stopping import held

# Shown when files already exist: only the first few names (the list can be long).
SHOWN_NAMES = 5


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def csv_chunks(rows: Iterator[ResultRow]) -> Iterator[bytes]:
    """results.csv / errors.csv: header, then one line per row, in chunks of bytes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RESULT_COLUMNS)
    for i, row in enumerate(rows, 1):
        writer.writerow([sanitize.csv_cell(c) for c in row])
        if i % 1000 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


class Hashed:
    """Chunks passed through, hashed and counted: the manifest's sha256 without a second read."""

    def __init__(self, chunks: Iterator[bytes] | list[bytes]) -> None:
        self.chunks = chunks
        self.sha256 = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.sha256.update(chunk)
            self.size += len(chunk)
            yield chunk


# --- the folder lock ----------------------------------------------------------------------------


class FolderLock:
    """An exclusive lock on the output folder for the whole run (flock on the folder itself:
    nothing is created in it, and the lock vanishes with the process). The folder is made if it
    does not exist, and removed again at the end if this run made it and left it empty."""

    def __init__(self, folder: Path, field: str = "out") -> None:
        self.folder, self.field = folder, field
        self.created = False
        self.fd: int | None = None

    def __enter__(self) -> FolderLock:
        folder, field = self.folder, self.field
        if os.path.lexists(folder) and not folder.is_dir():
            raise OutputError(
                Problem(
                    field,
                    "not_a_folder",
                    f"{field}: {shown_path(folder)} exists and is not a folder",
                )
            )
        try:
            if not folder.exists():
                folder.mkdir(parents=True)
                self.created = True
            self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except (OSError, ValueError) as exc:
            self._remove_if_made()
            why = getattr(exc, "strerror", None) or "the folder name is not valid"
            raise OutputError(
                Problem(field, "cannot_write", f"{field}: cannot use {shown_path(folder)}: {why}")
            ) from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.__exit__()
            raise OutputError(
                Problem(
                    field,
                    "locked",
                    f"{field}: another dosecalc batch is writing to {shown_path(folder)}; "
                    "nothing was written; wait for it to finish",
                )
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
            self.fd = None
        self._remove_if_made()

    def _remove_if_made(self) -> None:
        if self.created:
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only if empty: a refused or undone run leaves no folder


# --- targets ------------------------------------------------------------------------------------

# A sheet's file name as a batch writes it: DATE_PATIENT-ID.EXTENSION.
SHEET_NAME = re.compile(
    rf"{DATE.pattern}_{PATIENT_ID.pattern}\.(?:{'|'.join(ext for _, ext in FORMATS.values())})"
)
# A manifest larger than this is not read for names (a million-row run's is about 120 MB, and
# json.load holds several times its size): its sheets then count as unlisted, refused, not removed.
MANIFEST_READ_MAX = 64 * 1024 * 1024


def earlier_files(out: Path, ours: set[str], inputs: list[str]) -> tuple[list[str], list[str]]:
    """The files of an earlier run in the output folder that this run does not write, sorted:
    (listed: those the folder's dosecalc manifest lists, which --force removes; unlisted: files
    named like a sheet, DATE_ID.txt/.json/.html/.pdf, that no manifest lists, which nothing here
    may remove: they could be anyone's). Left in place, an old dose would sit among new ones. The
    run's own inputs (day list, protocols file) are never among them."""
    try:
        present = set(os.listdir(out))
    except (OSError, ValueError):
        return [], []
    listed = present & listed_names(out)
    sheets = {name for name in present if SHEET_NAME.fullmatch(name)} - listed
    found: tuple[list[str], list[str]] = ([], [])
    for names, kept in ((listed, found[0]), (sheets, found[1])):
        for name in sorted(names - ours):
            path = out / name
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):  # never a folder or a FIFO
                continue
            if any(source != "-" and same_file(path, source) for source in inputs):
                continue  # a day list or protocols file kept in the folder
            kept.append(name)
    return found


def listed_names(out: Path) -> set[str]:
    """The file names dosecalc's own records in the folder list as a batch run's: its manifest,
    and an INCOMPLETE marker (a run that was stopped or killed part-way, before its manifest)."""
    return _manifest_names(out / MANIFEST_FILE) | _marker_names(out / INCOMPLETE_FILE)


MARKER_HEAD = "This folder is INCOMPLETE: a dosecalc batch run"


COMBINED_HEADING = "Combined PDF in this folder:"


def _marker_names(path: Path) -> set[str]:
    """The file names an INCOMPLETE marker of dosecalc's own lists (each on a line of its own,
    indented two spaces): only names a batch run writes (a sheet's DATE_ID.ext, results.csv,
    errors.csv, and a .pdf under the combined PDF's heading), so that no text file starting like a
    marker can make --force remove anything else; none where the file is not such a marker."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode) or path.stat().st_size > MANIFEST_READ_MAX:
            return set()
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return set()
    if not text.startswith(MARKER_HEAD):
        return set()
    names, heading = set(), ""
    for line in text.splitlines():
        if not line.startswith("  "):
            heading = line
            continue
        name = line[2:]
        if heading == COMBINED_HEADING:
            ours = name.endswith(".pdf") and Path(name).name == name and name not in (".", "..")
        else:
            ours = bool(SHEET_NAME.fullmatch(name)) or name in (RESULTS_FILE, ERRORS_FILE)
        if ours:
            names.add(name)
    return names


def _manifest_names(path: Path) -> set[str]:
    """The file names a dosecalc batch manifest lists (plain names in the folder only); none where
    there is no readable manifest of dosecalc's own (its schema)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode) or path.stat().st_size > MANIFEST_READ_MAX:
            return set()
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
        if not str(manifest.get("schema", "")).startswith(MANIFEST_SCHEMA.rpartition("/")[0]):
            return set()
        return {
            name
            for item in manifest.get("files", [])
            if isinstance(item, dict)
            and isinstance(name := item.get("name"), str)
            and name not in ("", ".", "..")
            and Path(name).name == name
        }
    except (OSError, ValueError, AttributeError, TypeError, RecursionError):
        return set()


def target(out: Path, name: str) -> Path:
    """`name` inside `out`, or refuse: a file name can never leave the output folder."""
    if not name or Path(name).name != name or name in (".", ".."):
        raise OutputError(
            Problem("out", "bad_name", f"out: refusing file name '{sanitize.terminal(name)}'")
        )
    return out / name


class Targets(NamedTuple):
    names: list[str]  # every file the run writes in --out (none without --out)
    earlier: list[str]  # an earlier run's files there that --force removes (earlier_files)


def check_targets(spool: Spool, options: Options, inputs: list[str]) -> Targets:
    """Every target (sheets, tables, combined PDF, manifest) checked against the others, the inputs
    and existing files, before the first write: a refused run writes nothing. Returns the files
    the run writes in the output folder, and those of an earlier run there for --force to
    remove."""
    out, combined = options.out, options.combined
    fixed = [RESULTS_FILE, ERRORS_FILE, MANIFEST_FILE, INCOMPLETE_FILE] if out else []
    names = [*fixed, *spool.sheet_names()]  # every file this run writes in --out (read once)
    if combined is not None:
        if not combined.name or combined.name in (".", "..") or combined.is_dir():
            raise OutputError(
                Problem(
                    "combined",
                    "bad_name",
                    f"combined: {shown_path(combined)} is a folder; give a file name (.pdf)",
                )
            )
        if out is not None and same_file(combined.parent, out):
            lowered = combined.name.lower()
            clash = next((n for n in names if n.lower() == lowered), None)
            if clash is not None:
                raise OutputError(
                    Problem(
                        "combined",
                        "target_clash",
                        f"combined: {shown_path(combined)} is also the batch's {clash}; "
                        "give the combined PDF another name (nothing was written)",
                    )
                )
    for source in inputs:
        if source == "-":
            continue
        hits = []
        if combined is not None and same_file(combined, source):
            hits.append(str(combined))
        if out is not None:
            for name in names:
                if same_file(out / name, source):
                    hits.append(str(out / name))
                    break
        if hits:
            raise OutputError(
                Problem(
                    "out",
                    "overwrites_input",
                    f"out: the run would overwrite its own input {shown_path(source)}; "
                    "nothing was written (--force never allows this)",
                )
            )
    listed: list[str] = []
    if out is not None:
        ours = set(names)
        if combined is not None and same_file(combined.parent, out):
            ours.add(combined.name)
        listed, unlisted = earlier_files(out, ours, inputs)
        if unlisted:
            raise OutputError(
                Problem(
                    "out",
                    "unlisted_files",
                    f"out: {shown_path(out)} holds {len(unlisted)} file(s) named like sheets that "
                    f"no manifest of an earlier run lists ({_some(unlisted)}); nothing was written "
                    "(--force never removes them); move them or give another folder",
                )
            )
    if options.force:  # every target that exists must be a regular file to be replaced
        if combined is not None:
            replaceable(combined, "combined")
        if out is not None:
            for name in names:
                replaceable(target(out, name), "out")
        return Targets(names, listed)
    if combined is not None and os.path.lexists(combined):
        raise exists_error(combined, "combined")
    if out is None:
        return Targets(names, [])
    existing = [name for name in names if os.path.lexists(target(out, name))]
    if existing:
        raise OutputError(
            Problem(
                "out",
                "file_exists",
                f"out: {len(existing)} file(s) already exist in {shown_path(out)} "
                f"({_some(existing)}); nothing was written; use --force to replace them",
            )
        )
    if listed:
        raise OutputError(
            Problem(
                "out",
                "earlier_files",
                f"out: {shown_path(out)} holds {len(listed)} file(s) of an earlier run that this "
                f"run would not replace ({_some(listed)}); nothing was written; use --force to "
                "remove them with the rest of the earlier run, or give another folder",
            )
        )
    return Targets(names, [])


def _some(names: list[str]) -> str:
    """The first few names of a list that can be as long as the day list, and how many more."""
    more = len(names) - SHOWN_NAMES
    return ", ".join(names[:SHOWN_NAMES]) + (f" and {more} more" if more > 0 else "")


# --- writing ------------------------------------------------------------------------------------


class Writer:
    """Writes the run's files, remembering each one, so that a failure part-way can be undone."""

    def __init__(
        self, spool: Spool, options: Options, report: Report, targets: Targets | None = None
    ) -> None:
        self.spool, self.options, self.report = spool, options, report
        self.paths: list[Path] = []  # written by this run, in order
        self.replaced: list[Path] = []  # of those, the ones that replaced an older file
        targets = targets or Targets([], [])
        self.names = targets.names  # every file this run writes in --out (check_targets)
        self.earlier = targets.earlier  # --force: an earlier run's files this run does not write
        self.removed: list[Path] = []  # of those, the ones removed (they cannot be restored)
        self.previous: list[str] = []  # every earlier run's file in the folder as the run began
        self.retired = False  # this run removed the earlier run's manifest
        self.marked = False  # this run's INCOMPLETE marker is in the folder (begin)
        self.tick: Callable[[], None] = lambda: None  # progress: one file written

    def begin(self) -> None:
        """Before the first change to the folder: an INCOMPLETE marker naming the earlier run's
        files there and every file this run writes, removed when the manifest is written. A run
        killed part-way (SIGKILL, a power cut: no undo) leaves it, so the folder says it is
        incomplete and the next run with --force knows every file as dosecalc's to replace or
        remove (without it the old sheets, no longer listed by any manifest, refused every rerun)."""
        out = self.options.out
        assert out is not None
        try:
            present = set(os.listdir(out))
        except OSError:
            present = set()
        self.previous = sorted(present & listed_names(out))
        # A killed run's temporary files (a whole sheet, with a name, mode 0600): this run holds
        # the folder's lock, so none of them is being written.
        for name in present:
            if name.startswith(TEMP_PREFIX):
                with contextlib.suppress(OSError):
                    if stat.S_ISREG(os.lstat(out / name).st_mode):
                        os.unlink(out / name)
        ours = [n for n in self.names if n not in (MANIFEST_FILE, INCOMPLETE_FILE)]
        text = (
            f"{MARKER_HEAD} started writing it at {now()} and has not finished.\n"
            f"There is no {MANIFEST_FILE} until it does: do not use these files as a complete "
            "set.\n"
            + _names("Files of an earlier run (out of date where still here):", self.previous)
            + _names("Files this run writes:", ours)
            + self._combined_names()
            + "Rerun the batch with --force to complete the folder.\n"
        )
        write_atomic(out / INCOMPLETE_FILE, text.encode("utf-8"), force=True, field="out")
        self.marked = True

    def _combined_names(self) -> str:
        """The marker's section for a combined PDF written into --out, and an earlier one there."""
        out, combined = self.options.out, self.options.combined
        assert out is not None
        names = [n for n in self.previous if n.endswith(".pdf") and not SHEET_NAME.fullmatch(n)]
        if combined is not None and same_file(combined.parent, out):
            names.append(combined.name)
        return _names(COMBINED_HEADING, sorted(set(names)))

    def file(self, path: Path, data: bytes | Hashed, field: str, listed: bool = True) -> None:
        chunks = data if isinstance(data, Hashed) else Hashed([data])
        existed = self.options.force and os.path.lexists(path)

        def on_the_list() -> None:  # as the file appears: no Ctrl-C or SIGTERM between the two
            self.paths.append(path)
            if existed:
                self.replaced.append(path)

        write_atomic(path, chunks, force=self.options.force, field=field, committed=on_the_list)
        if listed:
            self.spool.record_written(path.name, chunks.sha256.hexdigest(), chunks.size)
        self.report.written += 1
        self.tick()

    def retire_manifest(self) -> None:
        """With --force, remove an old manifest before the first write: until the new one is
        written last, the folder is visibly incomplete."""
        assert self.options.out is not None
        try:
            os.unlink(self.options.out / MANIFEST_FILE)
            self.retired = True
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OutputError(
                Problem(
                    "out", "cannot_write", f"out: cannot replace {MANIFEST_FILE}: {exc.strerror}"
                )
            ) from None

    def remove_earlier(self) -> None:
        """With --force, after the old manifest: remove the earlier run's files this run does not
        write (check_targets found them), so the folder never mixes two runs' sheets."""
        assert self.options.out is not None
        for name in self.earlier:
            path = self.options.out / name
            with held():  # removed and noted together: the undo's marker names every one
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise OutputError(
                        Problem(
                            "out",
                            "cannot_write",
                            f"out: cannot remove {shown_path(path)} of an earlier run: "
                            f"{exc.strerror}",
                        )
                    ) from None
                self.removed.append(path)

    def undo(self, why: str) -> IncompleteOutputError:
        """After a failure part-way: remove the files this run made new; files that replaced
        older ones (--force) cannot be undone, so an INCOMPLETE marker names them. A Ctrl-C or
        SIGTERM during the undo waits for it, and is then dropped: the run is stopping already."""
        with held(then_stop=False):
            return self._undo(why)

    def _undo(self, why: str) -> IncompleteOutputError:
        why = why.removeprefix("out: ")  # the message below says "out:" once
        left: list[Path] = list(self.replaced)
        out = self.options.out
        # The earlier run's files this run neither replaced nor removed: old doses, still here.
        touched = {p.name for p in [*self.replaced, *self.removed]}
        # Only once the folder has no manifest (this run removed it, or a killed run left none).
        stale = [
            n
            for n in self.previous
            if out is not None
            and not (out / MANIFEST_FILE).exists()
            and n not in touched
            and n != MANIFEST_FILE
            and (out / n).exists()
        ]
        for path in self.paths:
            if path in self.replaced:
                continue
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError:
                left.append(path)
        removed = len(self.paths) - len(left)
        message = f"{why}; the run stopped part-way: removed the {removed} file(s) it had written"
        gone = self.removed
        if gone:
            message += f"; the {len(gone)} file(s) of an earlier run it removed cannot be restored"
        if stale:
            message += f"; {len(stale)} file(s) of an earlier run remain, out of date"
        if (left or gone or stale) and out is not None:
            marker = out / INCOMPLETE_FILE
            text = (
                f"{MARKER_HEAD} failed part-way at {now()} ({sanitize.log(why)}).\n"
                f"There is no {MANIFEST_FILE}: do not use these files as a complete set.\n"
                + _names(
                    "Files this run wrote that could not be undone (they replaced older files):",
                    [p.name for p in left],
                )
                + _names(
                    "Files of an earlier run this run removed (they cannot be restored):",
                    [p.name for p in gone],
                )
                + _names("Files of an earlier run still here (out of date: do not use):", stale)
                + self._combined_names()
                + "Rerun the batch with --force to complete the folder.\n"
            )
            try:
                write_atomic(marker, text.encode("utf-8"), force=True, field="out")
                message += (
                    f"; {len(left)} file(s) replaced older ones and remain: see "
                    f"{shown_path(marker)}"
                    if left
                    else f"; see {shown_path(marker)}"
                )
            except OutputError:
                message += (
                    f"; {len(left)} file(s) replaced older ones and remain" if left else ""
                ) + "; no INCOMPLETE marker could be written"
        else:
            if out is not None and self.marked:  # this run's marker: nothing left to warn about
                with contextlib.suppress(OSError):
                    os.unlink(out / INCOMPLETE_FILE)
            if left:
                message += f"; could not remove: {', '.join(shown_path(p) for p in left)}"
        return IncompleteOutputError(Problem("out", "incomplete", f"out: {message}"))


def _names(heading: str, names: list[str]) -> str:
    """A marker's list: its heading, then each name on a line of its own, indented two spaces."""
    if not names:
        return ""
    return heading + "\n" + "".join(f"  {sanitize.log(name)}\n" for name in names)


def write_folder(
    writer: Writer, manifest_head: dict[str, Any], combined: Callable[[], None]
) -> None:
    """Sheets, results.csv, errors.csv, the combined PDF, then the manifest, last."""
    spool, options = writer.spool, writer.options
    out = options.out
    assert out is not None
    for name, data in spool.sheets():
        writer.file(target(out, name), data, "out")
    rows = (row for row, _ in spool.rows())
    writer.file(target(out, RESULTS_FILE), Hashed(csv_chunks(rows)), "out")
    failed = (row for row, _ in spool.rows(*FAILED))
    writer.file(target(out, ERRORS_FILE), Hashed(csv_chunks(failed)), "out")
    combined()
    manifest = Hashed(manifest_chunks(spool, manifest_head, writer.report))
    writer.file(target(out, MANIFEST_FILE), manifest, "out", listed=False)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(out / INCOMPLETE_FILE)  # a marker from an earlier failed run: now complete


def manifest_chunks(spool: Spool, head: dict[str, Any], report: Report) -> Iterator[bytes]:
    """manifest.json, streamed: the file list can be as long as the day list."""
    head = {
        **head,
        "finished": now(),
        "counts": {
            "lines_read": report.lines_read,
            **report.counts,
            "warning_with_override": report.with_override,
        },
    }
    text = json.dumps(head, indent=2)
    yield (text[: text.rindex("}")].rstrip() + ',\n  "files": [').encode("utf-8")
    separator = "\n"
    for name, sha, size in spool.written():
        item = json.dumps({"name": name, "sha256": sha, "bytes": size})
        yield f"{separator}    {item}".encode()
        separator = ",\n"
    yield b"\n  ]\n}\n"


def cover_date(spool: Spool, options: Options) -> str:
    """The combined PDF's date: the list's date (the dates of its sheets), not the run's."""
    dates = spool.dates()
    if not dates:
        return options.date
    return dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"


def combined_pdf(spool: Spool, options: Options) -> bytes:
    """The combined PDF: a cover line for every input line, then the produced sheets in order."""
    from dosecalc.render import content
    from dosecalc.render.as_pdf import render_combined

    cover, sheets, styles = [], [], []
    for row, _ in spool.rows():
        sheet = spool.kept.get(int(row.line)) if row.status in PRODUCED else None
        if sheet is not None:
            cover.append(content.cover_row(sheet, row.line, row.status))
            sheets.append(sheet)
            styles.append(spool.styles.get(int(row.line)))
        else:
            cover.append((row.line, row.patient_id, row.status, "", "", "", "", row.message))
    return render_combined(
        cover, sheets, title="Day list dose sheets", date=cover_date(spool, options),
        paper=options.paper, styles=styles,
    )  # fmt: skip


def write_stdout(spool: Spool, options: Options, stdout: IO[bytes]) -> None:
    if options.output_format == "jsonl":
        for jsonl in spool.jsonl():
            stdout.write(jsonl.encode("utf-8") + b"\n")
    else:
        for chunk in csv_chunks(row for row, _ in spool.rows()):
            stdout.write(chunk)
    stdout.flush()
