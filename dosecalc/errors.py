"""dosecalc's own exception types. Each carries its exit code; the CLI catches them once (cli.main)."""

from __future__ import annotations

from typing import NamedTuple

# Exit codes, documented in README.md and in every command's --help.
EXIT_OK = 0
EXIT_REFUSED = 1  # refused by a limit (batch: a row was refused or invalid)
EXIT_INVALID = 2  # invalid input, usage or output target; nothing written
EXIT_PROTOCOLS = 3  # invalid protocols file
EXIT_INCOMPLETE = 4  # a write failed part-way: what this run wrote was removed or marked INCOMPLETE
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT), as shells report it
EXIT_BROKEN_PIPE = 141  # the reader of stdout went away (SIGPIPE), as shells report it
EXIT_TERMINATED = 143  # SIGTERM (a scheduler's timeout, a service stopping), as shells report it


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by cli.main's handler. A KeyboardInterrupt, so every
    path that undoes a run on Ctrl-C (a batch removes what it wrote) undoes it on SIGTERM too;
    main exits 143."""


class Problem(NamedTuple):
    """One thing wrong, with the field (or protocols-file key path) it belongs to."""

    field: str
    code: str
    message: str


class DosecalcError(Exception):
    """Base class: carries one or more problems. `status` goes into the JSON error object."""

    status = "error"
    exit_code = EXIT_INVALID

    def __init__(self, problems: list[Problem] | Problem) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("; ".join(p.message for p in self.problems))


class InputError(DosecalcError):
    """A value typed by a user or read from a day list is not accepted (exit 2)."""

    exit_code = EXIT_INVALID


class LimitError(DosecalcError):
    """A hard limit, or a soft limit without an override, refuses the sheet (exit 1)."""

    status = "refused"
    exit_code = EXIT_REFUSED


class ProtocolFileError(DosecalcError):
    """The protocols file is missing, unreadable or invalid (exit 3)."""

    exit_code = EXIT_PROTOCOLS


class OutputError(DosecalcError):
    """An output file cannot be written (exists without --force, bad folder) (exit 2).

    Raised before the first write: nothing was written."""

    exit_code = EXIT_INVALID


class IncompleteOutputError(DosecalcError):
    """A write failed after others had succeeded (disk full, folder removed) (exit 4).

    The run has removed what it wrote, or left an INCOMPLETE marker naming what it could not remove."""

    exit_code = EXIT_INCOMPLETE


def stdout_failed(exc: BaseException) -> OutputError:
    """Why what was written to stdout may not all have arrived: a full disk, an I/O error, a
    reader gone, a stop mid-write (the sheet's audit record, a batch's exit 4)."""
    if isinstance(exc, KeyboardInterrupt):  # Ctrl-C, or SIGTERM (Terminated)
        why = "the run was stopped while stdout was written"
    else:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        why = f"stdout could not be written: {reason}"
    return OutputError(Problem("output", "stdout_failed", f"output: {why}"))


def arithmetic_error(exc: ArithmeticError) -> InputError:
    """The engine could not do the arithmetic (a number far outside any limit): invalid input."""
    return InputError(
        Problem(
            "calculation",
            "not_calculable",
            f"calculation: the values given cannot be calculated exactly ({type(exc).__name__}); "
            "check the weight, dose, duration and stock",
        )
    )
