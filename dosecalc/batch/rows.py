"""What flows between the batch phases: the options, one record read, one row of results.csv.

The columns of results.csv and errors.csv are defined here once, as the fields of `ResultRow`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

# Day-list columns. Weight column -> the unit its plain numbers are in (None: the cell has its own).
WEIGHT_COLUMNS: dict[str, str | None] = {"weight": None, "weight_kg": "kg", "weight_lb": "lb"}
OPTIONAL_COLUMNS = (
    "protocol",
    "name",
    "dose",
    "duration",
    "stock",
    "override_reason",
    "operator",
    "date",
    "height",  # issue 10: where the protocol needs them (ideal or adjusted weight, per m2)
    "sex",
    "bp",  # issue 13: the pre-infusion vitals, checked against the protocol's gate
    "hr",
    "spo2",
    "vial",  # issue 13: what was drawn up and programmed, compared as `dosecalc check` does
    "drawn",
    "rate",
    "vtbi",
    "drop_factor",  # issue 11: a gravity giving set's drops per mL
    "dose_rate",  # issue 11: a continuous infusion's starting dose rate
)
PROGRAMMED_COLUMNS = ("vial", "drawn", "rate", "vtbi")
# Columns that hold text, not a quantity: a JSON Lines number there (patient_id 1e2, operator 2)
# is refused, never taken as its literal text. A number in a quantity column is handed to the
# quantity grammar as typed ("weight_kg": 72 is accepted, "weight": 72 has no unit).
TEXT_COLUMNS = ("patient_id", "protocol", "name", "override_reason", "operator", "date", "sex")
COLUMNS = ("patient_id", *WEIGHT_COLUMNS, *OPTIONAL_COLUMNS)

# Every physical line of the input gets exactly one of these, in results.csv and JSON Lines alike.
OK, WARNING, REFUSED, INVALID, BLANK = "ok", "warning", "refused", "invalid", "blank"
STATUSES = (OK, WARNING, REFUSED, INVALID, BLANK)
FAILED = (REFUSED, INVALID)
PRODUCED = (OK, WARNING)

RESULTS_FILE, ERRORS_FILE, MANIFEST_FILE = "results.csv", "errors.csv", "manifest.json"
INCOMPLETE_FILE = "INCOMPLETE"  # left in --out when a run failed part-way and could not undo it
MANIFEST_SCHEMA = "dosecalc.batch-manifest/2"
MAX_COMBINED = 1000  # sheets in one combined PDF


class ResultRow(NamedTuple):
    """One line of results.csv (and errors.csv): the identifying cells as typed (made safe), the
    status, the sheet's figures (empty unless a sheet was made), and the message."""

    line: str
    patient_id: str
    name: str
    date: str
    protocol: str
    status: str
    weight_kg: str = ""
    dose: str = ""
    dose_unit: str = ""
    drug_volume_ml: str = ""
    total_volume_ml: str = ""
    rate_ml_per_h: str = ""
    dosing_weight_kg: str = ""  # issue 10: the weight the dose is based on, and which it is
    dosing_weight_basis: str = ""
    # Issue 11: what a pharmacist checks across a day's preparations and continuous infusions.
    preparation: str = ""
    concentration: str = ""
    concentration_unit: str = ""
    dose_rate: str = ""  # the patient's dose rate, in the prescription's unit where per minute
    dose_rate_unit: str = ""
    bag_duration_min: str = ""  # continuous infusions: how long the container lasts
    drops_per_min: str = ""  # gravity infusions
    message: str = ""

    def failed(self, status: str, message: str) -> ResultRow:
        """The same line, identifying cells kept, as a failure: figures emptied."""
        blank = ResultRow(self.line, self.patient_id, self.name, self.date, self.protocol, status)
        return blank._replace(message=message)


RESULT_COLUMNS = ResultRow._fields


class RawRow(NamedTuple):
    """One physical line of the day list: its number, its cells, or why it cannot be read."""

    line: int
    cells: dict[str, str] | None
    problem: str | None = None  # a message: the line is invalid
    code: str = ""
    blank: bool = False
    # The patient ids a line that cannot be read seems to name (for the duplicate check: a
    # patient named on an unreadable line gets no sheet from another line either).
    ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Options:
    """What the command line asked for; defaults for rows that leave a cell empty."""

    date: str
    protocol_id: str | None = None
    operator: str | None = None
    out: Path | None = None
    sheets: tuple[str, ...] = ("text",)
    output_format: str = "csv"  # without `out`: csv or jsonl on stdout
    input_format: str | None = None  # None: from the file's extension (csv unless .jsonl/.ndjson)
    strict: bool = False
    force: bool = False
    paper: str = "a4"  # for html and pdf sheets
    combined: Path | None = None  # one PDF: a cover page, then a page per sheet
    audit_log: Path | None = None  # one record per row and one for the run
    quiet: bool = False  # no progress display
    jobs: int | None = None  # worker processes for phase 1; None: the CPUs, for a long list


@dataclass
class Report:
    """What the run did: counts by status (they add up to lines_read) and what was written."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    with_override: int = 0
    written: int = 0
    unterminated: int | None = None  # the last line, where it has no line end (LF)

    @property
    def lines_read(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        return self.counts[REFUSED] + self.counts[INVALID]
