"""The spool: row outcomes between the phases, in SQLite (bounded memory at any size). All SQL of
the batch is here.

The database is SQLite's anonymous temporary database (`connect("")`): its file is unlinked as
soon as it is opened, so it vanishes with the process, even after a SIGKILL, and no patient name
is ever left in $TMPDIR.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from json.encoder import encode_basestring_ascii
from typing import Any

from dosecalc.batch.evaluate import Outcome
from dosecalc.batch.rows import MAX_COMBINED, PRODUCED, WARNING, ResultRow
from dosecalc.errors import InputError, OutputError, Problem
from dosecalc.model import Sheet

INSERT_BATCH = 500
PAGE = 1000


def cells_json(row: ResultRow) -> str:
    """A row's results.csv cells as the JSON array json.dumps writes (every cell is a str), each
    cell written by json's own C string encoder: the main process stores one a row."""
    return "[" + ", ".join(map(encode_basestring_ascii, row)) + "]"


def _spool_error(exc: sqlite3.Error) -> OutputError:
    """The spool could not be read or written: its temporary file in $TMPDIR is on a full disk
    (SQLite: "database or disk is full") or failed. Raised before the first write it means nothing
    was written (exit 2); during the writes, the run undoes what it wrote (exit 4)."""
    return OutputError(
        Problem(
            "spool",
            "spool_failed",
            f"spool: the batch's temporary storage (in $TMPDIR) failed: {exc}; free space there "
            "or set TMPDIR to another folder",
        )
    )


@contextmanager
def _spooling() -> Iterator[None]:
    """SQLite's errors inside the block as the spool's (_spool_error), never a traceback."""
    try:
        yield
    except sqlite3.Error as exc:
        raise _spool_error(exc) from None


class _Rows:
    """A cursor whose errors are the spool's, while it is read too."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def __iter__(self) -> Iterator[Any]:
        with _spooling():
            yield from self._cursor

    def fetchone(self) -> Any:
        with _spooling():
            return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        with _spooling():
            return self._cursor.fetchall()


class _Database:
    """The spool's connection: an SQLite error (a full $TMPDIR) is an OutputError."""

    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, parameters: Any = ()) -> _Rows:
        with _spooling():
            return _Rows(self._db.execute(sql, parameters))

    def executemany(self, sql: str, rows: Any) -> None:
        with _spooling():
            self._db.executemany(sql, rows)

    def close(self) -> None:
        self._db.close()


class Spool:
    def __init__(self) -> None:
        with _spooling():
            connection = sqlite3.connect("", isolation_level=None)  # anonymous: unlinked at once
        self.db = _Database(connection)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute(
            "CREATE TABLE rows (line INTEGER PRIMARY KEY, status TEXT, cells TEXT, key TEXT, "
            "overridden INTEGER, jsonl TEXT, audit TEXT, pid TEXT)"
        )
        # The patient ids (lower case) that lines which could not be read seem to name.
        self.db.execute("CREATE TABLE loose (line INTEGER, pid TEXT)")
        self.db.execute(
            "CREATE TABLE sheets (line INTEGER, seq INTEGER, name TEXT, data BLOB, "
            "PRIMARY KEY (line, seq))"
        )
        self.db.execute(
            "CREATE TABLE written (seq INTEGER PRIMARY KEY, name TEXT, sha256 TEXT, size INTEGER)"
        )
        self.db.execute("BEGIN")
        self._rows: list[tuple[Any, ...]] = []
        self._sheets: list[tuple[Any, ...]] = []
        self._loose: list[tuple[int, str]] = []
        self.kept: dict[int, Sheet] = {}  # for --combined only (at most MAX_COMBINED)
        self.styles: dict[int, int | None] = {}  # the PDF style each kept sheet fitted in

    def close(self) -> None:
        self.db.close()

    # --- phase 1 --------------------------------------------------------------------------------

    def add(self, outcome: Outcome) -> None:
        line = outcome.line
        if outcome.sheet is not None:
            if len(self.kept) >= MAX_COMBINED:
                raise InputError(
                    Problem(
                        "combined",
                        "too_many_sheets",
                        f"combined: a combined PDF holds at most {MAX_COMBINED:,} sheets; "
                        "split the day list (nothing was written)",
                    )
                )
            self.kept[line] = outcome.sheet
            self.styles[line] = outcome.pdf_style
        self._rows.append(
            (
                line,
                outcome.status,
                cells_json(outcome.row),
                outcome.key,
                outcome.overridden,
                outcome.jsonl,
                outcome.audit,
                None if outcome.key is None else outcome.key.split("\x00", 1)[1],
            )
        )
        self._sheets.extend((line, i, n, d) for i, (n, d) in enumerate(outcome.sheets))
        self._loose.extend((line, pid) for pid in outcome.loose)
        if len(self._rows) >= INSERT_BATCH:
            self.flush()

    def flush(self) -> None:
        self.db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._rows)
        self.db.executemany("INSERT INTO sheets VALUES (?, ?, ?, ?)", self._sheets)
        self.db.executemany("INSERT INTO loose VALUES (?, ?)", self._loose)
        self._rows, self._sheets, self._loose = [], [], []

    # --- duplicates -----------------------------------------------------------------------------

    def duplicate_keys(self) -> list[tuple[str, int, list[int]]]:
        """Each (date, patient id) key on more than one row: its count and its first ten lines."""
        self.flush()
        self.db.execute("CREATE INDEX IF NOT EXISTS rows_key ON rows (key)")
        keys = self.db.execute(
            "SELECT key, COUNT(*) FROM rows WHERE key IS NOT NULL GROUP BY key HAVING COUNT(*) > 1"
        ).fetchall()
        found = []
        for key, count in keys:
            lines = [
                line
                for (line,) in self.db.execute(
                    "SELECT line FROM rows WHERE key = ? ORDER BY line LIMIT 10", (key,)
                )
            ]
            found.append((key, count, lines))
        return found

    def loose_ids(self) -> list[tuple[str, list[int]]]:
        """Each patient id (lower case) that a line which could not be read seems to name and
        that a row with a sheet also names: the id and the first eleven unreadable lines naming
        it (ten are shown, and "..." for more)."""
        self.flush()
        self.db.execute("CREATE INDEX IF NOT EXISTS rows_pid ON rows (pid)")
        marks = ", ".join("?" * len(PRODUCED))
        query = (
            "SELECT DISTINCT loose.pid FROM loose JOIN rows ON rows.pid = loose.pid "  # noqa: S608
            f"WHERE rows.status IN ({marks}) ORDER BY loose.pid"
        )
        named = self.db.execute(query, PRODUCED).fetchall()
        return [
            (
                pid,
                [
                    line
                    for (line,) in self.db.execute(
                        "SELECT DISTINCT line FROM loose WHERE pid = ? ORDER BY line LIMIT 11",
                        (pid,),
                    )
                ],
            )
            for (pid,) in named
        ]

    def rows_with_key(
        self, key: str, column: str = "key", produced: bool = False
    ) -> Iterator[tuple[ResultRow, str | None, str | None]]:
        """(row, jsonl, audit) of every row with the key (or, column "pid", the patient id), in
        line order, a page at a time; `produced`: only the rows that have a sheet."""
        assert column in ("key", "pid")
        status = f" AND status IN ({', '.join('?' * len(PRODUCED))})" if produced else ""
        last = 0
        while True:
            page = self.db.execute(
                f"SELECT line, cells, jsonl, audit FROM rows WHERE {column} = ?{status} "  # noqa: S608
                "AND line > ? ORDER BY line LIMIT ?",
                (key, *(PRODUCED if produced else ()), last, PAGE),
            ).fetchall()
            if not page:
                return
            for _, cells, jsonl, audit in page:
                yield ResultRow(*json.loads(cells)), jsonl, audit
            last = page[-1][0]

    def replace(self, row: ResultRow, jsonl: str | None, audit: str | None) -> None:
        """A row that became a failure: its new row, JSON Lines and audit texts; no sheets."""
        line = int(row.line)
        self.db.execute(
            "UPDATE rows SET status = ?, cells = ?, overridden = 0, jsonl = ?, audit = ? "
            "WHERE line = ?",
            (row.status, cells_json(row), jsonl, audit, line),
        )
        self.db.execute("DELETE FROM sheets WHERE line = ?", (line,))
        self.kept.pop(line, None)
        self.styles.pop(line, None)

    # --- phase 2 --------------------------------------------------------------------------------

    def counts(self) -> tuple[dict[str, int], int]:
        """Rows by status, and how many warnings carry an override."""
        self.flush()
        counts = dict(self.db.execute("SELECT status, COUNT(*) FROM rows GROUP BY status"))
        (overridden,) = self.db.execute(
            "SELECT COUNT(*) FROM rows WHERE overridden AND status = ?", (WARNING,)
        ).fetchone()
        return counts, overridden

    def rows(self, *statuses: str) -> Iterator[tuple[ResultRow, str | None]]:
        """(row, jsonl) in line order, all of them or only those with the given statuses."""
        query = "SELECT cells, jsonl FROM rows ORDER BY line"
        if statuses:
            marks = ", ".join("?" * len(statuses))
            query = f"SELECT cells, jsonl FROM rows WHERE status IN ({marks}) ORDER BY line"  # noqa: S608
        for cells, jsonl in self.db.execute(query, statuses):
            yield ResultRow(*json.loads(cells)), jsonl

    def jsonl(self) -> Iterator[str]:
        """Every row's JSON Lines text, in line order (stdout output: each row has one)."""
        for (jsonl,) in self.db.execute("SELECT jsonl FROM rows ORDER BY line"):
            assert jsonl is not None
            yield jsonl

    def dates(self) -> list[str]:
        """The distinct dates of the rows that produced a sheet, sorted."""
        where = f"$[{ResultRow._fields.index('date')}]"
        query = (
            "SELECT DISTINCT json_extract(cells, ?) AS d FROM rows "
            "WHERE status IN (?, ?) ORDER BY d"
        )
        return [date for (date,) in self.db.execute(query, (where, *PRODUCED))]

    def audit_records(self) -> Iterator[str]:
        for (audit,) in self.db.execute(
            "SELECT audit FROM rows WHERE audit IS NOT NULL ORDER BY line"
        ):
            yield audit

    def sheet_names(self) -> Iterator[str]:
        for (name,) in self.db.execute("SELECT name FROM sheets ORDER BY line, seq"):
            yield name

    def sheet_count(self) -> int:
        (count,) = self.db.execute("SELECT COUNT(*) FROM sheets").fetchone()
        return int(count)

    def sheets(self) -> Iterator[tuple[str, bytes]]:
        yield from self.db.execute("SELECT name, data FROM sheets ORDER BY line, seq")

    def record_written(self, name: str, sha256: str, size: int) -> None:
        self.db.execute(
            "INSERT INTO written (name, sha256, size) VALUES (?, ?, ?)", (name, sha256, size)
        )

    def written(self) -> Iterator[tuple[str, str, int]]:
        yield from self.db.execute("SELECT name, sha256, size FROM written ORDER BY seq")
