"""dosecalc's own exception types. The CLI maps each to its exit code in one place (cli.py)."""

from __future__ import annotations

from typing import NamedTuple


class Problem(NamedTuple):
    """One thing wrong, with the field (or protocols-file key path) it belongs to."""

    field: str
    code: str
    message: str


class DosecalcError(Exception):
    """Base class: carries one or more problems. `status` goes into the JSON error object."""

    status = "error"

    def __init__(self, problems: list[Problem] | Problem) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("; ".join(p.message for p in self.problems))


class InputError(DosecalcError):
    """A value typed by a user or read from a day list is not accepted (exit 2)."""


class LimitError(DosecalcError):
    """A hard limit, or a soft limit without an override, refuses the sheet (exit 1)."""

    status = "refused"


class ProtocolFileError(DosecalcError):
    """The protocols file is missing, unreadable or invalid (exit 3)."""


class OutputError(DosecalcError):
    """An output file cannot be written (exists without --force, bad folder) (exit 2)."""
