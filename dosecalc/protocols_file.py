"""Reading a protocols file, and its inventory without the unit checks.

`read` is the one way a protocols file is read (bounded before tomllib parses it); `protocols.load`
validates what it returns in full, with pint. `inventory` is what `protocols list` shows (ids,
names, versions, the file's SHA-256): the same bytes, the same structure checks for the keys it
prints, and no pint. It never says a file is valid: every sheet, check and batch loads the file in
full, and `protocols check` validates it. Kept apart from protocols.py so that `protocols list`
starts within 1.5x of `import click` (issue 14).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import tomllib
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from dosecalc.errors import Problem, ProtocolFileError
from dosecalc.sanitize import has_unsafe, terminal, unreadable

ENV_PROTOCOLS = "DOSECALC_PROTOCOLS"
MAX_FILE_BYTES = 1024 * 1024
# Bounds checked on the text before tomllib parses it: tomllib recurses once per level of nesting
# (50,000 levels: RecursionError) and its memory grows with the square of the dotted-key segments
# (20,000 keys in 44 KB: 2.4 GB). A real protocols file needs a few levels and a few hundred keys.
MAX_NESTING = 16  # levels of [ ] and { } in one value or header
MAX_KEY_PARTS = 8  # segments of one dotted key or table header
MAX_KEYS = 4000  # key = value pairs in the file
MAX_DOTS = 8 * MAX_KEYS  # dots outside strings and comments, in the whole file
_TOML_TOKEN = re.compile(
    r'"""(?:[^\\]|\\.)*?"""'  # multi-line basic string
    r"|'''.*?'''"  # multi-line literal string
    r'|"(?:[^"\\\n]|\\.)*"'  # basic string
    r"|'[^'\n]*'"  # literal string
    r"|#[^\n]*"  # comment
    r"|[\[\]{}=.,\n]",  # what nesting and keys are made of
    re.DOTALL,
)
PROTOCOL_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
TOP_KEYS = frozenset({"format", "default", "protocols"})


class Entry(NamedTuple):
    id: str
    name: str
    version: str


class Inventory(NamedTuple):
    """What `protocols list` shows: the file (as a sheet would use it) and its protocols."""

    path: str
    sha256: str
    origin: str
    default: str
    entries: tuple[Entry, ...]


# --- finding the file ---------------------------------------------------------------------------


def shipped_path() -> str:
    """The protocols.toml shipped with dosecalc: in the wheel, or at the source tree's root."""
    # dosecalc is installed as files (never zipped), so the package folder is the resource root.
    # os.path rather than importlib.resources or pathlib: `protocols list` and `--help` stay within
    # 1.5x of `import click` (issue 6), and those imports cost 8 ms each.
    here = os.path.dirname(os.path.realpath(__file__))
    packaged = os.path.join(here, "data", "protocols.toml")
    return (
        packaged
        if os.path.isfile(packaged)
        else os.path.join(os.path.dirname(here), "protocols.toml")
    )


def resolve(option: str | None, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Which file to use, and why: the option, else the environment variable, else the shipped one."""
    environ = os.environ if environ is None else environ
    if option:
        return option, "option"
    if environ.get(ENV_PROTOCOLS):
        return environ[ENV_PROTOCOLS], "environment"
    return shipped_path(), "shipped"


class NotRegularFile(OSError):
    """An input file that is a FIFO, a device or a folder."""

    def __init__(self) -> None:
        super().__init__(errno.EINVAL, "not a regular file (a FIFO, a device or a folder)")


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """Up to `limit` bytes of a regular file (the protocols or the settings file). A FIFO is
    opened without waiting for a writer and refused, as a device or a folder is (`--protocols
    fifo` waited for ever). OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile()
        chunks, size = [], 0
        while size < limit and (chunk := os.read(fd, limit - size)):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read(path: str | os.PathLike[str]) -> tuple[str, str, dict[str, Any]]:
    """The file's name as given, the SHA-256 of its bytes, and its parsed TOML; ProtocolFileError
    when it cannot be read, is too large, has a BOM, is not UTF-8, too complex or not TOML."""
    where = str(path)
    try:
        raw = read_regular(path, MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _file_error(
            where, "unreadable", f"cannot read the protocols file: {reason}"
        ) from None
    except ValueError:  # a NUL byte in the path
        raise _file_error(where, "unreadable", "the protocols file name is not valid") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _file_error(where, "too_large", f"is larger than {MAX_FILE_BYTES} bytes")
    digest = hashlib.sha256(raw).hexdigest()
    if raw.startswith(b"\xef\xbb\xbf"):
        raise _file_error(
            where, "bom", "starts with a byte-order mark (BOM): save it as UTF-8 without BOM"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _file_error(where, "encoding", f"is not valid UTF-8 (byte {exc.start})") from None
    shape = _shape_problem(text)
    if shape is not None:
        raise _file_error(where, "too_complex", shape)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _file_error(where, "toml", f"is not valid TOML: {exc}") from None
    except (RecursionError, MemoryError):  # the bounds above should make this unreachable
        raise _file_error(where, "too_complex", "is too deeply nested to read") from None
    return where, digest, data


def inventory(path: str | os.PathLike[str], origin: str = "option") -> Inventory:
    """The protocols in the file, read as `protocols.load` reads it, with the checks of the keys
    shown (format, default, ids, name, version); the units, formulas and limits are not checked."""
    where, digest, data = read(path)
    checks = Checks()
    table = checks.top(data)
    entries = [
        Entry(pid, checks.text(body, "name", path), checks.text(body, "version", path))
        for pid, body, path in checks.bodies(table)
    ]
    default = checks.default(data, table)
    if checks.problems:
        raise ProtocolFileError(checks.problems)
    return Inventory(where, digest, origin, default, tuple(entries))


def _shape_problem(text: str) -> str | None:
    """Why the text is too deeply nested or has too many keys to hand to tomllib, or None.

    A scan of the text outside strings and comments that stops at the first bound passed, so that a
    hostile file is refused in a fraction of a second. A dot in a number counts as a key segment:
    the bounds leave room for that."""
    line, depth, keys, dots, run = 1, 0, 0, 0, 0
    for match in _TOML_TOKEN.finditer(text):
        piece = match.group()
        if piece == "\n":
            line, run = line + 1, 0
        elif piece in ("[", "{"):
            depth, run = depth + 1, 0
            if depth > MAX_NESTING:
                return f"line {line}: is nested more than {MAX_NESTING} levels deep"
        elif piece in ("]", "}"):
            depth, run = max(0, depth - 1), 0
        elif piece == ".":
            dots, run = dots + 1, run + 1
            if run >= MAX_KEY_PARTS:
                return f"line {line}: a dotted key has more than {MAX_KEY_PARTS} parts"
            if dots > MAX_DOTS:
                return f"line {line}: the file has more than {MAX_DOTS} dotted-key parts"
        elif piece == "=":
            keys, run = keys + 1, 0
            if keys > MAX_KEYS:
                return f"line {line}: the file has more than {MAX_KEYS} keys"
        elif piece == ",":
            run = 0
        else:
            line += piece.count("\n")  # a multi-line string or a comment
    return None


def _file_error(where: str, code: str, message: str) -> ProtocolFileError:
    return ProtocolFileError(Problem("protocols", code, f"{terminal(where, 200)}: {message}"))


class Checks:
    """The checks `protocols.load` and `inventory` share, collecting every problem with its key
    path."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, code: str, message: str) -> None:
        self.problems.append(Problem(path, code, f"{path}: {message}"))

    def keys(self, table: Mapping[str, Any], path: str, allowed: frozenset[str]) -> None:
        for key in table:
            if key not in allowed:
                self.add(
                    f"{path}.{key}" if path else key,
                    "unknown_key",
                    f"unknown key (accepted: {', '.join(sorted(allowed))})",
                )

    def text(self, table: Mapping[str, Any], key: str, path: str, multiline: bool = False) -> str:
        full = f"{path}.{key}"
        if key not in table:
            self.add(full, "missing", "is required")
            return ""
        value = table[key]
        return self._text_value(value, full, multiline)

    def _text_value(self, value: Any, full: str, multiline: bool = False) -> str:
        if not isinstance(value, str):
            self.add(full, "wrong_type", f"must be text in quotes, not {_toml_type(value)}")
            return ""
        if not value.strip():
            self.add(full, "empty", "must not be empty")
            return ""
        if has_unsafe(value.replace("\n", "") if multiline else value):
            self.add(full, "control_character", "contains a control or format character")
            return ""
        why = unreadable(value)
        if why is not None:
            self.add(full, "unreadable", why)
            return ""
        limit = 4000 if multiline else 200
        if len(value) > limit:
            self.add(full, "too_long", f"is longer than {limit} characters")
            return ""
        return value

    def top(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The file's top-level keys and format; the protocols table (empty when missing)."""
        self.keys(data, "", TOP_KEYS)
        fmt = data.get("format")
        if "format" not in data:
            self.add("format", "missing", "is required (format = 1)")
        elif type(fmt) is not int or fmt != 1:
            self.add("format", "unsupported", "must be 1")
        table = data.get("protocols")
        if not isinstance(table, dict) or not table:
            self.add("protocols", "missing", "must be a table with at least one protocol")
            table = {}
        return table

    def bodies(self, table: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
        """Each protocol with a well-formed id and a table body: (id, body, key path). A generator,
        so that each protocol's own problems follow its id's, in the file's order."""
        seen: dict[str, str] = {}  # ids with '_' read as '-': the id first written so
        for pid, body in table.items():
            path = f"protocols.{pid}"
            if not PROTOCOL_ID.fullmatch(pid):
                self.add(
                    path,
                    "bad_id",
                    "protocol ids are 1-64 lower-case letters, digits, '-' or '_', "
                    "starting with a letter or digit",
                )
                continue
            other = seen.setdefault(pid.replace("_", "-"), pid)
            if other != pid:  # --protocol ketamine_iv would pick it for ketamine-iv, unseen
                self.add(
                    path,
                    "confusable_id",
                    f"differs from the protocol id '{other}' only in '-' and '_': give them "
                    "ids that differ in a letter or digit",
                )
                continue
            if not isinstance(body, dict):
                self.add(path, "wrong_type", "must be a table")
                continue
            yield pid, body, path

    def default(self, data: Mapping[str, Any], table: Mapping[str, Any]) -> str:
        default = data.get("default")
        if "default" not in data:
            self.add("default", "missing", "is required: the id of the default protocol")
            return ""
        if not isinstance(default, str) or default not in table:
            self.add("default", "unknown_protocol", "does not name a protocol in this file")
            return ""
        return default


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, float):
        return f"the number {value}" if value == value else "nan"
    if isinstance(value, int):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__
