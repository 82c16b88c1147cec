"""Whole-or-nothing file writes: atomic, no-clobber files and single-write audit records.

A reader (or a run killed at any moment) sees either no file or a complete one, never a partial one.
Every write loops until all its bytes are written or fails loudly (a disk may accept part of a buffer).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from dosecalc import sanitize
from dosecalc.errors import OutputError, Problem
from dosecalc.stopping import held

TEMP_PREFIX = ".dosecalc-tmp-"


def shown_path(path: str | os.PathLike[str]) -> str:
    """A path as it may be repeated in a message: control and format characters as escapes."""
    return sanitize.terminal(os.fspath(path), None)


def exists_error(path: Path, field: str = "output") -> OutputError:
    return OutputError(
        Problem(
            field,
            "file_exists",
            f"{field}: {shown_path(path)} already exists; use --force to replace it",
        )
    )


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of `data` to `fd`, looping over partial writes; raise OSError otherwise."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # never seen from a regular file, but a loop must end
            raise OSError(errno.EIO, "the write made no progress")
        view = view[written:]


def write_atomic(
    path: Path,
    data: bytes | Iterable[bytes],
    *,
    force: bool = False,
    field: str = "output",
    committed: Callable[[], None] | None = None,
) -> None:
    """Write `data` to `path` atomically. Without `force`, an existing file is never replaced.

    `data` may be an iterable of chunks, so a large file (a batch's results) is never held in memory.
    `committed` runs as the file appears under its name, with no Ctrl-C or SIGTERM between the two
    (stopping.held): a batch's record of the files it wrote, which its undo removes.
    """
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = -1, ""
    try:
        with held():  # a stop waits until the name is known: the `finally` below removes the file
            fd, tmp_name = _temporary(folder, field)
        for chunk in [data] if isinstance(data, bytes) else data:
            write_all(fd, chunk)
        os.fsync(fd)
        fd, closing = -1, fd
        os.close(closing)
        os.chmod(tmp_name, 0o666 & ~umask())  # as `open` would make it: the user's umask
        with held():
            if force:
                replaceable(path, field)
                os.replace(tmp_name, path)
            else:
                try:
                    os.link(tmp_name, path)  # fails if the target exists: no window for a clobber
                except FileExistsError:
                    raise exists_error(path, field) from None
            if committed is not None:  # at once: nothing between the file and its record
                committed()
            if not force:
                os.unlink(tmp_name)
        _fsync_dir(folder)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise OutputError(
            Problem(field, "cannot_write", f"{field}: cannot write {shown_path(path)}: {_why(exc)}")
        ) from None
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp_name and os.path.lexists(tmp_name):
            os.unlink(tmp_name)


def replaceable(path: Path, field: str) -> None:
    """--force replaces a regular file only: never a FIFO, a device (as root, /dev/null itself),
    a folder or a symbolic link (/dev/stdout is one), each of which `os.replace` would swap for a
    regular file. Raises OutputError."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode):
        return
    raise OutputError(
        Problem(
            field,
            "not_a_file",
            f"{field}: {shown_path(path)} is {_kind(mode)}; --force replaces only a regular file "
            "(nothing was written)",
        )
    )


def umask() -> int:
    """The process's umask, read without changing it (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):  # pragma: no cover - not Linux
        pass
    mask = os.umask(0o077)  # pragma: no cover - set and restored at once
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file (the same inode, or, where either is missing, the same
    resolved path)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        try:
            return os.path.realpath(a) == os.path.realpath(b)
        except ValueError:  # a NUL byte
            return False


def refuse_clash(
    field: str, path: str | os.PathLike[str], others: Iterable[tuple[str, str | os.PathLike[str]]]
) -> None:
    """`path` (an audit log, an output) must not be any of `others`, the files the command reads
    or writes: (what, path) pairs such as the day list, the protocols file, a sheet. Raises
    OutputError."""
    for what, other in others:
        if same_file(path, other):
            raise OutputError(
                Problem(
                    field,
                    "same_file",
                    f"{field}: {shown_path(path)} is also the {what}; give the "
                    f"{field.replace('_', ' ')} a file of its own (nothing was written)",
                )
            )


def _temporary(folder: Path, field: str) -> tuple[int, str]:
    try:
        return tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
    except (OSError, ValueError) as exc:
        raise OutputError(
            Problem(
                field,
                "cannot_write",
                f"{field}: cannot write in {shown_path(folder)}: {_why(exc)}",
            )
        ) from None


def open_log(path: Path, field: str = "audit_log") -> int:
    """Open an append-only log: a regular file only (never a symlink, FIFO or device).

    O_NONBLOCK so that a FIFO without a reader fails at once instead of hanging; O_NOFOLLOW so that a
    symbolic link is refused rather than followed."""
    # O_RDWR rather than O_WRONLY: the last byte is read to see whether the last record is whole.
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            why = "it is a symbolic link, which is never followed; give the real file"
            raise _log_error(path, field, "not_a_file", why) from None
        if exc.errno == errno.ENXIO:
            raise _log_error(
                path, field, "not_a_file", "it is a FIFO; give a regular file"
            ) from None
        raise _log_error(path, field, "cannot_write", f"{_why(exc)}") from None
    except ValueError:
        raise _log_error(path, field, "cannot_write", "the file name is not valid") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _log_error(path, field, "not_a_file", f"it is {_kind(mode)}; give a regular file")
    return fd


def append_records(path: Path, records: Iterable[str], field: str = "audit_log") -> None:
    """Append records (one JSON line each) to a log: each record is one `write` of the whole line,
    O_APPEND, fsynced once at the end. A short write is undone (the file truncated back) and fails."""
    fd = open_log(path, field)
    try:
        first = True
        for record in records:
            data = (record.rstrip("\n") + "\n").encode("utf-8")
            if first:
                first = False
                data = _after_complete_record(fd) + data
            _append_one(fd, path, data, field)
        os.fsync(fd)
    except OSError as exc:
        raise _log_error(path, field, "cannot_write", _why(exc)) from None
    finally:
        os.close(fd)


def _after_complete_record(fd: int) -> bytes:
    """b"\\n" when the log ends inside a record (cut by an earlier failure), so ours is never glued
    onto it; the cut record stays visible as it is."""
    size = os.fstat(fd).st_size
    if size == 0:
        return b""
    return b"" if os.pread(fd, 1, size - 1) == b"\n" else b"\n"


def _append_one(fd: int, path: Path, data: bytes, field: str) -> None:
    written = os.write(fd, data)  # one write: with O_APPEND, never interleaved with another writer
    if written == len(data):
        return
    ours_end = os.lseek(fd, 0, os.SEEK_CUR)  # with O_APPEND: where our bytes ended
    if written > 0 and ours_end == os.fstat(fd).st_size:  # nobody appended after us
        with contextlib.suppress(OSError):
            os.ftruncate(fd, ours_end - written)  # take the cut record back out
    raise _log_error(
        path,
        field,
        "short_write",
        f"only {written} of {len(data)} bytes of the record could be written (disk full?); "
        "the record was not logged",
    )


def _log_error(path: Path, field: str, code: str, why: str) -> OutputError:
    return OutputError(Problem(field, code, f"{field}: cannot append to {shown_path(path)}: {why}"))


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, for a message."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a folder" if stat.S_ISDIR(mode) else "not a regular file"


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
