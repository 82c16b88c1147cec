"""Atomic, no-clobber file writes: temporary file in the same folder, flush, fsync, then link/rename.

A reader (or a run killed at any moment) sees either no file or a complete one, never a partial one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from dosecalc.display import printable
from dosecalc.errors import OutputError, Problem

TEMP_PREFIX = ".dosecalc-tmp-"


def exists_error(path: Path, field: str = "output") -> OutputError:
    return OutputError(
        Problem(field, "file_exists", f"{field}: {path} already exists; use --force to replace it")
    )


def write_atomic(
    path: Path, data: bytes | Iterable[bytes], *, force: bool = False, field: str = "output"
) -> None:
    """Write `data` to `path` atomically. Without `force`, an existing file is never replaced.

    `data` may be an iterable of chunks, so a large file (a batch's results) is never held in memory.
    """
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
    except (OSError, ValueError) as exc:
        raise OutputError(
            Problem(field, "cannot_write", f"{field}: cannot write in {folder}: {_why(exc)}")
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                for chunk in data:
                    handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        if force:
            os.replace(tmp_name, path)
        else:
            try:
                os.link(tmp_name, path)  # fails if the target exists: no window for a clobber
            except FileExistsError:
                raise exists_error(path, field) from None
            os.unlink(tmp_name)
        _fsync_dir(folder)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise OutputError(
            Problem(
                field, "cannot_write", f"{field}: cannot write {printable(str(path))}: {_why(exc)}"
            )
        ) from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def append_line(path: Path, line: str, field: str = "audit_log") -> None:
    """Append one line (for the audit log): O_APPEND, flushed and fsynced."""
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except (OSError, ValueError) as exc:
        raise OutputError(
            Problem(
                field,
                "cannot_write",
                f"{field}: cannot append to {printable(str(path))}: {_why(exc)}",
            )
        ) from None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__
