"""What a batch tells people, on stderr: a progress display while it runs (at a terminal only, and
never with --quiet), then the counts and every line that failed or warns."""

from __future__ import annotations

from typing import IO, Any

from dosecalc import sanitize
from dosecalc.batch.rows import BLANK, INVALID, REFUSED, WARNING, Report
from dosecalc.batch.spool import Spool

# How often (in rows) the display is updated while rows are computed.
EVERY = 200


class Progress:
    """Rows computed (against the list's size in bytes, when known), then files written. Each
    phase has its own display, stopped before anything else is written to stderr."""

    def __init__(self, stderr: IO[str], total_bytes: int | None) -> None:
        self.stderr = stderr
        self.rows = self.files = self.done = 0
        self.bar = self._bar()
        self.task = self.bar.add_task("dosecalc: rows computed", total=total_bytes, detail="0")

    def _bar(self) -> Any:
        from rich.progress import BarColumn, TextColumn
        from rich.progress import Progress as Bar

        from dosecalc.render.as_text import make_console

        bar = Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            console=make_console(self.stderr, terminal=True),
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        bar.start()
        return bar

    def computed(self, bytes_read: int) -> None:
        self.rows += 1
        if self.rows % EVERY == 0:
            self.bar.update(self.task, completed=bytes_read, detail=f"{self.rows:,}")

    def pause(self) -> None:
        """Before the summary is written to stderr."""
        self.bar.stop()

    def start_writing(self, files: int) -> None:
        self.files = files
        self.bar = self._bar()
        self.task = self.bar.add_task(
            "dosecalc: files written", total=files, detail=f"0 of {files:,}"
        )

    def wrote(self) -> None:
        self.done += 1
        self.bar.update(self.task, advance=1, detail=f"{self.done:,} of {self.files:,}")

    def close(self) -> None:
        self.bar.stop()


def summary(spool: Spool, report: Report, stderr: IO[str]) -> None:
    """For people, on stderr: the counts, blank lines, and every row that failed or warns."""
    c = report.counts
    stderr.write(
        f"dosecalc: batch: {report.lines_read} line(s) read: {c['ok']} ok, {c[WARNING]} with "
        f"warnings ({report.with_override} overridden), {c[REFUSED]} refused, "
        f"{c[INVALID]} invalid, {c[BLANK]} blank\n"
    )
    if report.lines_read == 0:
        stderr.write("dosecalc: the day list has no rows after its header: check it is complete\n")
    if report.unterminated is not None and report.lines_read > 0:
        stderr.write(
            f"dosecalc: line {report.unterminated}, the last, has no line end: if the list was "
            "cut short, that row may be incomplete (45 for 45.9 kg): check it against the list\n"
        )
    blanks = [row.line for row, _ in spool.rows(BLANK)]
    if blanks:
        shown = ", ".join(blanks[:20]) + (", ..." if len(blanks) > 20 else "")
        stderr.write(f"dosecalc: blank line(s) counted, not skipped silently: {shown}\n")
    for row, _ in spool.rows(REFUSED, INVALID, WARNING):
        who = f" (patient_id {row.patient_id})" if row.patient_id else ""
        line = f"dosecalc: line {row.line}{who}: {row.status}: {row.message}"
        stderr.write(sanitize.terminal(line, None) + "\n")
