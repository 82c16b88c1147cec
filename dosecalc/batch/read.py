"""Reading a day list: physical lines, each accounted for by its number, into `RawRow`s.

A record is one physical line, always: a CSV field quoted over several lines, a bare carriage
return, or two JSON values on one line would otherwise join patients into one record and hide them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator
from typing import IO, Any

from dosecalc.batch.rows import COLUMNS, TEXT_COLUMNS, WEIGHT_COLUMNS, RawRow
from dosecalc.errors import InputError, Problem
from dosecalc.model import PATIENT_ID
from dosecalc.sanitize import terminal

# A physical line longer than this is refused (and never held whole in memory).
MAX_LINE_BYTES = 16 * 1024
# A refused line is skipped to its line end, reading at most this much more: a stream with no
# line end at all (/dev/zero, a binary file) is not a day list, refused whole, never read for ever.
MAX_SKIPPED_BYTES = 64 * MAX_LINE_BYTES
# How many swallowed lines a refused multi-line field names (the count is always given).
MAX_NAMED = 20


class Line:
    """One physical line: its number and text (without its line end), or why it cannot be read
    and, then, its text as far as it can be read (`hint`: only to name the patient it holds)."""

    __slots__ = ("hint", "number", "problem", "text")

    def __init__(self, number: int, text: str, problem: str | None = None, hint: str = "") -> None:
        self.number, self.text, self.problem, self.hint = number, text, problem, hint


class Source:
    """The day list as physical lines (split at LF only): hashed as read, BOM dropped, bounded."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0
        self.line_no = 0
        self.unterminated: int | None = None  # the last line, read without a line end (LF)
        self._pending: list[Line] = []

    def _read(self, limit: int) -> bytes:
        try:
            raw = self.stream.readline(limit)
        except OSError as exc:  # a disk error, /proc/self/mem: never "cannot write the output"
            raise _unreadable(self.line_no + 1, exc) from None
        self.sha256.update(raw)
        self.bytes_read += len(raw)
        return raw

    def _next(self) -> Line | None:
        raw = self._read(MAX_LINE_BYTES + 1)
        if not raw:
            return None
        self.line_no += 1
        number = self.line_no
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            skipped = 0
            while (more := self._read(MAX_LINE_BYTES)) and not more.endswith(b"\n"):
                skipped += len(more)
                if skipped > MAX_SKIPPED_BYTES:
                    raise _no_line_end(number)
            hint = raw.decode("utf-8", "replace")
            return Line(number, "", f"line {number} is longer than {MAX_LINE_BYTES} bytes", hint)
        if not raw.endswith(b"\n"):
            self.unterminated = number  # only the last line can end without one
        raw = raw.removesuffix(b"\n").removesuffix(b"\r")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problem = f"line {number} is not valid UTF-8 (byte {exc.start + 1})"
            return Line(number, "", problem, raw.decode("utf-8", "replace"))
        return Line(number, text)

    def lines(self) -> Iterator[Line]:
        while True:
            line = self._pending.pop(0) if self._pending else self._next()
            if line is None:
                return
            yield line

    def peek(self, count: int) -> list[Line]:
        """Up to `count` lines after the current one, read but not yet taken."""
        while len(self._pending) < count and (line := self._next()) is not None:
            self._pending.append(line)
        return self._pending[:count]


def _unreadable(number: int, exc: OSError) -> InputError:
    return InputError(
        Problem(
            "daylist",
            "unreadable",
            f"daylist: cannot read line {number}: {exc.strerror or type(exc).__name__} (nothing "
            "was written)",
        )
    )


def _no_line_end(number: int) -> InputError:
    return InputError(
        Problem(
            "daylist",
            "no_line_end",
            f"daylist: line {number} runs on for more than {MAX_SKIPPED_BYTES:,} bytes without a "
            f"line end (LF): this is not a day list (a line has at most {MAX_LINE_BYTES:,} bytes); "
            "check the file given (nothing was written)",
        )
    )


def _header_problem(code: str, message: str) -> Problem:
    return Problem("header", code, f"header: {message}")


def check_header(header: list[str], what: str = "header") -> list[str]:
    """The column names (matched ignoring case), or InputError: missing, unknown or duplicate
    columns, or not exactly one weight column."""
    # Case is ignored in ASCII only: str.lower() makes the Kelvin sign in "weight_\u212ag" a k.
    names = [name.lower() if name.isascii() else name for name in header]
    problems = []
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if duplicates:
        shown = ", ".join(terminal(n) for n in duplicates)
        problems.append(Problem(what, "duplicate_column", f"{what}: duplicate column(s): {shown}"))
    unknown = [name for name, low in zip(header, names, strict=True) if low not in COLUMNS]
    if unknown:
        shown = ", ".join(
            f"'{terminal(n)}'" if n.isascii() else f"'{terminal(ascii(n)[1:-1])}' (not ASCII)"
            for n in unknown
        )
        hint = _hint(unknown)
        problems.append(
            Problem(
                what,
                "unknown_column",
                f"{what}: unknown column(s): {shown}. Accepted: {', '.join(COLUMNS)}{hint}",
            )
        )
    if "patient_id" not in names:
        problems.append(
            Problem(what, "missing_column", f"{what}: the patient_id column is required")
        )
    weights = [name for name in WEIGHT_COLUMNS if name in names]
    if not weights:
        problems.append(
            Problem(
                what,
                "missing_column",
                f"{what}: a weight column is required: weight (with its unit, '72 kg'), "
                "weight_kg or weight_lb (plain numbers)",
            )
        )
    elif len(weights) > 1:
        problems.append(
            Problem(
                what,
                "conflicting_columns",
                f"{what}: more than one weight column ({', '.join(weights)}): give exactly one",
            )
        )
    if problems:
        raise InputError(problems)
    return names


def _hint(unknown: list[str]) -> str:
    for name in unknown:
        for separator, what in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if separator in name and any(
                part.strip().lower() in COLUMNS for part in name.split(separator)
            ):
                return (
                    f". The header looks separated by {what}: dosecalc reads comma-separated "
                    "CSV (save as 'CSV UTF-8 (comma delimited)')"
                )
        if name.isascii() and name.strip().lower() in COLUMNS:
            return ". A column name has spaces around it: remove them"
    return ""


def _parse_csv_line(text: str) -> list[str]:
    return next(csv.reader([text], strict=True), [])


def csv_rows(source: Source) -> tuple[list[str], Iterator[RawRow]]:
    """The checked header, and one record per physical line after it (blank lines included)."""
    first = next(source.lines(), None)
    if first is None or (first.problem is None and not first.text.strip()):
        raise InputError(_header_problem("missing_header", "line 1 must name the columns"))
    if first.problem is not None:
        raise InputError(_header_problem("bad_line", first.problem))
    if "\r" in first.text:
        raise InputError(_header_problem("bare_cr", _bare_cr(1, first.text)))
    try:
        header = check_header(_parse_csv_line(first.text))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise _multiline(source, first) from None
        raise InputError(_header_problem("bad_csv", f"line 1 is not valid CSV: {exc}")) from None

    def records() -> Iterator[RawRow]:
        for line in source.lines():
            yield _csv_record(source, line, header)

    return header, records()


def _csv_record(source: Source, line: Line, header: list[str]) -> RawRow:
    number = line.number
    if line.problem is not None:
        ids = _csv_ids(line.hint, header)
        return RawRow(number, None, line.problem + _named(ids), "bad_line", ids=ids)
    if "\r" in line.text:
        parts = [p for p in line.text.split("\r") if p.strip()]
        ids = tuple(i for p in parts for i in _csv_ids(p, header))
        return RawRow(number, None, _bare_cr(number, line.text), "bare_cr", ids=ids)
    try:
        cells = _parse_csv_line(line.text)
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise _multiline(source, line) from None
        ids = _csv_ids(line.text, header)
        message = f"line {number} is not valid CSV: {exc}{_named(ids)}"
        return RawRow(number, None, message, "bad_csv", ids=ids)
    if all(not c.strip(" ") for c in cells):
        return RawRow(number, None, blank=True)
    if len(cells) != len(header):
        which = "short" if len(cells) < len(header) else "long"
        # Only the id is kept (to name the patient): the other cells may be out of place.
        named = {"patient_id": cells[0]} if header[0] == "patient_id" and cells[0] else None
        return RawRow(
            number,
            named,
            f"line {number} has {len(cells)} cells, the header has {len(header)} "
            f"({', '.join(header)})",
            f"{which}_row",
            ids=_csv_ids(line.text, header),
        )
    return RawRow(number, {k: v for k, v in zip(header, cells, strict=True) if v != ""})


def _csv_ids(text: str, header: list[str]) -> tuple[str, ...]:
    """The patient id a CSV line that cannot be read seems to hold: the cell in the patient_id
    column's place, stripped of spaces, where it is an id, also inside a cell that holds a whole
    quoted row (a guess, used only to keep a patient named on an unreadable line from getting a
    sheet from another line)."""
    try:
        cells = [c.strip(" ") for c in next(csv.reader([text]), [])]
    except csv.Error:
        cells = [c.strip(' "') for c in text.split(",")]
    found = _id_cells(cells, header)
    # A whole row quoted into one cell ('"80 kg,A003,Cy"'): read that cell as the row it holds.
    for cell in [c for c in cells if "," in c]:
        try:
            inner = [c.strip(" ") for c in next(csv.reader([cell]), [])]
        except csv.Error:
            continue
        found += _id_cells(inner, header)
    return tuple(dict.fromkeys(i for i in found if PATIENT_ID.fullmatch(i)))


def _id_cells(cells: list[str], header: list[str]) -> list[str]:
    """The cell in the patient_id column's place (a weight in the first cell of a list whose
    patient_id is not first would be named as an id)."""
    place = header.index("patient_id") if "patient_id" in header else 0
    return cells[place : place + 1]


def _named(ids: tuple[str, ...]) -> str:
    return f" (patient id(s) in it: {', '.join(ids[:MAX_NAMED])})" if ids else ""


def _first_cell(text: str) -> str:
    return text.split(",", 1)[0].strip().strip('"')


def _bare_cr(number: int, text: str) -> str:
    parts = [p for p in text.split("\r") if p.strip()]
    ids = ", ".join(terminal(_first_cell(p)) for p in parts[:MAX_NAMED])
    return (
        f"line {number} contains a carriage return (CR) inside the line: it may hold "
        f"{len(parts)} rows run together (first cells: {ids}); save the file with LF or CRLF "
        "line ends"
    )


def _multiline(source: Source, opened: Line) -> InputError:
    """A quoted field not closed on its own line: the batch is refused (nothing written), naming
    the line where the quote opened and the lines (and patient ids) it would have swallowed."""
    swallowed: list[Line] = []
    closed = False
    while not closed:
        ahead = source.peek(len(swallowed) + 1)
        if len(ahead) <= len(swallowed):
            break
        line = ahead[len(swallowed)]
        swallowed.append(line)
        closed = line.text.count('"') % 2 == 1
    if not swallowed:
        where = "the quote is never closed: it is the last line"
    else:
        last = swallowed[-1].number
        ids = [terminal(_first_cell(line.text)) for line in swallowed[:MAX_NAMED]]
        more = f" and {len(swallowed) - MAX_NAMED} more" if len(swallowed) > MAX_NAMED else ""
        span = f"through line {last}" if closed else f"to the end of the file (line {last})"
        where = (
            f"it runs over {len(swallowed)} more line(s) {span}, which would hide the patient "
            f"id(s) {', '.join(ids)}{more}"
        )
    return InputError(
        Problem(
            "daylist",
            "multiline_field",
            f"daylist: line {opened.number} opens a quoted field that is not closed on that line; "
            f"{where}. A day-list field never spans lines: fix the quote and rerun (nothing was "
            "written)",
        )
    )


# --- JSON Lines ---------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number dosecalc accepts")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key '{terminal(key)}' appears twice")
        result[key] = value
    return result


class _Number(str):
    """A JSON number, kept as its literal text (for the quantity grammar) but known not to have
    been written as text."""


_DECODER = json.JSONDecoder(
    parse_float=_Number,
    parse_int=_Number,
    parse_constant=_no_constant,
    object_pairs_hook=_unique_pairs,
)
# JSON's whitespace (RFC 8259) that a line can hold around its value: what json.loads skips.
_JSON_SPACE = " \t\r"


def jsonl_rows(source: Source) -> Iterator[RawRow]:
    """One record per line, exactly one object each; numbers kept as their literal text so the
    strict grammar sees them."""
    for line in source.lines():
        yield _jsonl_record(line)


def _jsonl_record(line: Line) -> RawRow:
    number = line.number
    if line.problem is not None:
        ids = _json_ids(line.hint)
        return RawRow(number, None, line.problem + _named(ids), "bad_line", ids=ids)
    text = line.text
    if not text.strip():
        return RawRow(number, None, blank=True)
    values: list[Any] = []
    position = len(text) - len(text.lstrip(_JSON_SPACE))
    try:
        while position < len(text):
            value, end = _DECODER.raw_decode(text, position)
            values.append(value)
            position = len(text) - len(text[end:].lstrip(_JSON_SPACE))
    except (ValueError, RecursionError) as exc:
        if not values:
            return RawRow(
                number, None, _not_json(number, text, exc), "bad_json", ids=_json_ids(text)
            )
        values.append(None)  # something after the first value: more than one value on the line
    if len(values) > 1:
        shown = [
            terminal(str(v.get("patient_id")))
            for v in values
            if isinstance(v, dict) and v.get("patient_id")
        ]
        named = f" (patient ids: {', '.join(shown[:MAX_NAMED])})" if shown else ""
        return RawRow(
            number,
            None,
            f"line {number} holds more than one JSON value{named}: JSON Lines has exactly one "
            "object per line",
            "several_values",
            ids=_json_ids(text),
        )
    data = values[0]
    problem = _json_problem(number, data)
    if problem is not None:
        cells = data if isinstance(data, dict) else None
        return RawRow(number, _text_cells(cells), problem, "bad_json")
    return RawRow(number, {k.lower(): str(v) for k, v in data.items() if v is not None and v != ""})


# A patient id as written in a line that is not valid JSON: named in the message (never a cell:
# the line could not be read, so which key holds it is a guess).
# A key and its text value, each as JSON writes a string (escapes included: "A\u0030\u00301" is
# A001, "patient\u005fid" is patient_id).
_STRING = r'"((?:[^"\\\x00-\x1f]|\\.)*)"'
_KEY_AND_TEXT = re.compile(rf"{_STRING}[ \t]*:[ \t]*{_STRING}")


def _json_ids(text: str) -> tuple[str, ...]:
    found = []
    for match in _KEY_AND_TEXT.finditer(text):
        key, value = _unescaped(match.group(1)), _unescaped(match.group(2))
        if key is not None and key.lower() == "patient_id" and value is not None:
            found += [value] if PATIENT_ID.fullmatch(value) else []
    return tuple(dict.fromkeys(found))


def _unescaped(literal: str) -> str | None:
    """A JSON string's text, its escapes read; None where they are not JSON's."""
    if "\\" not in literal:
        return literal
    try:
        value = json.loads(f'"{literal}"')
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _not_json(number: int, text: str, exc: Exception) -> str:
    """Where the line stops being JSON (its column: the parser's own "line 1" is the line's
    text), and the patient ids it seems to name."""
    why = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
    return f"line {number} is not valid JSON: {terminal(why)}{_named(_json_ids(text))}"


def _text_cells(data: dict[str, Any] | None) -> dict[str, str] | None:
    """The cells written as text, to name the patient of a refused line."""
    if data is None:
        return None
    return {
        k.lower(): v
        for k, v in data.items()
        if isinstance(v, str) and not isinstance(v, _Number) and v
    }


def _json_problem(number: int, data: Any) -> str | None:
    if not isinstance(data, dict):
        return f"line {number} must be a JSON object with one key per column"
    try:
        check_header(list(data), "keys")
    except InputError as exc:
        return "; ".join(p.message for p in exc.problems)
    for key, value in data.items():
        text_only = key.lower() in TEXT_COLUMNS
        if text_only and isinstance(value, _Number):
            return (
                f"{terminal(key)}: the JSON number {terminal(value)} is not accepted: "
                f"{terminal(key)} is text. Accepted: text in quotes, or null"
            )
        if value is not None and not isinstance(value, str):
            accepted = "text in quotes or null" if text_only else "text in quotes, a number or null"
            return f"{terminal(key)}: must be {accepted}"
    return None
