"""The dosecalc benchmark harness (issue 6): every figure as a ratio to a baseline timed in the same run.

    python benchmarks/run.py                 # full sizes (about 15-20 min on 2 cores)
    python benchmarks/run.py --quick         # smaller sizes, a few minutes
    python benchmarks/run.py --smoke         # tiny sizes, < 1 min; what CI runs
    python benchmarks/run.py --rows 50000 --only batch,rss --json out.json

Figures (each the median of several runs; baseline and subject runs alternate, so a noisy
neighbour slows both):
  1. start-up: `dosecalc --help`, `dosecalc protocols list` vs `python -c "import click"`, and
     which of pint, rich, fpdf each command imports (sys.modules at exit; a figure, not a check);
  2. one sheet: `dosecalc sheet --weight "72 kg"` as JSON and as text vs
     `python -c "import click, pint, rich.console"`;
  3. `dosecalc batch` to JSON Lines vs the plain-Python float baseline (benchmarks/floor.py);
  4. text and PDF sheets written by `batch --out`: time per sheet vs rendering the same texts
     with rich / fpdf2 alone (in this process, each written to a file without fsync);
  5. peak RSS of a large batch vs a small one (os.wait4: per child process; with a process pool
     it is the largest process, not the sum).

Every command's exit code and output are checked; the script exits 1 if any run failed, so a broken
benchmark is caught (CI). Nothing here asserts a time. Each run has a timeout and is killed past it.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import datetime as dt
import hashlib
import importlib.util
import io
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from floor import make_list

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PROTOCOLS = ROOT / "protocols.toml"
FONTS = ROOT / "dosecalc" / "fonts"
DATE = "2026-11-21"
HEAD_BYTES = 1 << 16  # stdout kept for the checks; the rest is only counted
HEAVY = ("pint", "rich", "fpdf")
FIGURES = ("startup", "sheet", "batch", "sheets", "rss")
# Runs a command and writes its peak RSS (KiB) to argv[1]. Needed because Linux carries a forked
# child's copy of this (large) process's peak RSS over exec into the child's ru_maxrss; a small
# middle process keeps that floor at its own ~10 MB.
RSS_SHIM = (
    "import os, sys; pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ); "
    "_, status, usage = os.wait4(pid, 0); "
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss)); "
    "sys.exit(os.waitstatus_to_exitcode(status))"
)


# --- sizes -------------------------------------------------------------------------------------


@dataclass
class Sizes:
    """How much work each figure does, and how many runs its median takes."""

    repeats: int  # start-up and single-sheet commands
    big_repeats: int  # the batch to JSON Lines
    sheet_repeats: int  # the sheet-writing batches (each already a mean over many sheets)
    rows: int  # figure 3
    text_sheets: int  # figure 4
    pdf_sheets: int
    library_sheets: int  # sheets rendered per library-alone run
    rss_small: int  # figure 5
    rss_big: int


PRESETS: dict[str, Sizes] = {
    "full": Sizes(7, 3, 1, 100_000, 10_000, 1_000, 200, 10_000, 1_000_000),
    "quick": Sizes(5, 3, 1, 20_000, 1_000, 100, 50, 10_000, 100_000),
    "smoke": Sizes(2, 1, 1, 300, 10, 2, 3, 100, 1_000),
}


# --- running commands --------------------------------------------------------------------------


@dataclass
class Run:
    """One finished child process: wall time, its own peak RSS, exit code and what it printed."""

    seconds: float
    maxrss_mb: float
    returncode: int
    lines: int
    head: bytes
    stderr: str


class Failure(Exception):
    """A benchmark command exited wrongly or printed the wrong thing."""


def child_env() -> dict[str, str]:
    """The environment for every child: no dosecalc settings, no colour, no audit log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSECALC_")}
    env.pop("FORCE_COLOR", None)
    # Measure dosecalc as pip installs it, byte-compiled: a PYTHONDONTWRITEBYTECODE shell would
    # otherwise make every run recompile dosecalc's sources (not click's, which pip compiled).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["NO_COLOR"] = "1"
    return env


def run(cmd: Sequence[str], timeout: float, cwd: Path | None = None) -> Run:
    """Run `cmd`, reading stdout through a pipe (counted, the first bytes kept); killed at `timeout`.

    The working directory defaults to the temporary folder: `python -m`/`-c` put it first on
    sys.path, so running from the source tree would import that tree instead of PYTHONPATH's.
    The time is taken with perf_counter around start, output and exit; the peak RSS is the child's
    own (os.wait4), not the maximum over every child this process ever had.
    """
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=child_env(),
            cwd=cwd or tempfile.gettempdir(),
            start_new_session=True,
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        head, lines = bytearray(), 0
        try:
            assert proc.stdout is not None
            while chunk := proc.stdout.read(1 << 16):
                lines += chunk.count(b"\n")
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
        finally:
            timer.cancel()
            proc.stdout.close() if proc.stdout else None
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if killed.is_set():
        raise Failure(f"timed out after {timeout:.0f} s: {' '.join(cmd)}")
    return Run(seconds, usage.ru_maxrss / 1024, proc.returncode, lines, bytes(head), stderr)


def check(result: Run, cmd: Sequence[str], ok: Callable[[Run], bool], what: str) -> Run:
    """Raise Failure unless the command exited 0 and `ok` holds for its output."""
    if result.returncode != 0 or not ok(result):
        tail = result.stderr.strip().splitlines()[-3:]
        raise Failure(
            f"{' '.join(cmd)}: exit {result.returncode}, expected 0 and {what}; stderr: {tail}"
        )
    return result


@dataclass
class Command:
    """A command to time, with the check its output must pass."""

    cmd: list[str]
    ok: Callable[[Run], bool] = lambda r: True
    what: str = "exit 0"
    timeout: float = 120.0
    before: Callable[[], None] | None = None  # untimed set-up before every run (e.g. clear --out)


def timed(command: Command) -> Run:
    if command.before is not None:
        command.before()
    result = run(command.cmd, command.timeout)
    return check(result, command.cmd, command.ok, command.what)


def paired(subject: Command, base: Command | None, repeats: int) -> tuple[list[Run], list[Run]]:
    """Alternate baseline and subject runs, `repeats` of each; with more than 2 repeats, one
    untimed warm-up pair first (page cache, .pyc files)."""
    if repeats > 2:
        if base is not None:
            timed(base)
        timed(subject)
    subject_runs: list[Run] = []
    base_runs: list[Run] = []
    for _ in range(repeats):
        if base is not None:
            base_runs.append(timed(base))
        subject_runs.append(timed(subject))
    return subject_runs, base_runs


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# --- results -----------------------------------------------------------------------------------


@dataclass
class Figure:
    """One line of the table."""

    name: str
    value: float | str | None = None
    baseline: float | str | None = None
    unit: str = "s"
    target: float | None = None  # the ratio must be at most this
    target_text: str = ""
    note: str = ""
    runs: list[float] = field(default_factory=list)
    baseline_runs: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def ratio(self) -> float | None:
        if isinstance(self.value, float) and isinstance(self.baseline, float) and self.baseline:
            return self.value / self.baseline
        return None

    @property
    def met(self) -> str:
        if self.error:
            return "FAILED"
        if self.target is None or self.ratio is None:
            return ""
        return "yes" if self.ratio <= self.target else "no"


def fmt_value(value: float | str | None, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "us":
        return f"{value:.1f} us"
    return f"{value:.1f} {unit}"


def table(figures: Sequence[Figure]) -> str:
    """The results as a markdown table."""
    out = [
        "| Figure | Value | Baseline | Ratio | Target | Met | Note |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "-"
        note = f"**{f.error}**" if f.error else f.note
        out.append(
            f"| {f.name} | {fmt_value(f.value, f.unit)} | {fmt_value(f.baseline, f.unit)} | "
            f"{ratio} | {f.target_text or '-'} | {f.met or '-'} | {note} |"
        )
    return "\n".join(out)


# --- the machine -------------------------------------------------------------------------------


def dosecalc_dir() -> Path:
    """The dosecalc package the children will import (PYTHONPATH may point at another tree)."""
    spec = importlib.util.find_spec("dosecalc")
    if spec is None or spec.origin is None:
        raise SystemExit("dosecalc is not importable: install it (pip install -e .)")
    return Path(spec.origin).resolve().parent


def source_digest() -> str:
    """SHA-256 (12 hex) of the dosecalc package's files: pins the code measured, committed or not."""
    digest = hashlib.sha256()
    package = dosecalc_dir()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def git(*args: str) -> str:
    """A read-only git query (no index refresh); empty when git is unavailable."""
    try:
        return subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    versions = {}
    for package in ("dosecalc", "click", "pint", "rich", "fpdf2"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    package = dosecalc_dir()
    inside = package.is_relative_to(ROOT)
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "dosecalc") if inside else ""
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
        # The commit measured; when PYTHONPATH points at another tree (a `git archive` of an older
        # commit), that tree has no commit of its own: say so with --label.
        "commit": (git("rev-parse", "--short", "HEAD") or "unknown") if inside else "-",
        "repo_head": git("rev-parse", "--short", "HEAD") or "unknown",
        "dosecalc_path": str(dosecalc_dir()),
        "dosecalc_dirty": bool(dirty),
        "source_sha256": source_digest(),
    }


# --- library-alone baselines (figure 4) --------------------------------------------------------


@dataclass
class Texts:
    """The words of one sheet as plain strings, taken once from dosecalc (untimed)."""

    title: str
    header: list[tuple[str, str]]
    patient: list[tuple[str, str]]
    alerts: list[str]
    calculation: list[tuple[str, str]]
    preparation: list[str]
    pump: list[tuple[str, str]]
    dose_rate: str
    checkpoints: list[tuple[str, str, str]]
    reverse_check: str
    advisory: str
    monitoring: list[str]
    signatures: list[str]
    timeline: list[tuple[str, list[tuple[float, str, str, str, bool]]]]
    grid_blocks: list[list[str]]
    grid_rows: list[str]
    footer: str


def sheet_texts(count: int) -> list[Texts]:
    """`count` distinct sheets' texts (the day list's first rows), via dosecalc's own content module."""
    from dosecalc import protocols
    from dosecalc.model import Order, make_sheet
    from dosecalc.render import content

    library = protocols.load(PROTOCOLS)

    def pairs(lines: Sequence[Any]) -> list[tuple[str, str]]:
        return [(line.label, line.text) for line in lines]

    out = []
    for i in range(count):
        order = Order(
            weight=f"{40 + i % 110}.{i % 10} kg",
            date=DATE,
            patient_id=f"P{i:07d}",
            name=f"Patient {i}",
        )
        s = make_sheet(library, order)
        out.append(
            Texts(
                title=content.title(s),
                header=pairs(content.header(s)),
                patient=pairs(content.patient(s)),
                alerts=list(content.alerts(s)),
                calculation=pairs(content.calculation(s)),
                preparation=list(content.preparation(s)),
                pump=pairs(content.pump(s)),
                dose_rate=content.dose_rate(s),
                checkpoints=[tuple(r) for r in content.checkpoint_rows(s)],
                reverse_check=content.reverse_check(s),
                advisory=content.advisory(s),
                monitoring=list(content.monitoring(s)),
                signatures=list(content.SIGNATURES),
                timeline=[
                    (
                        seg.start,
                        [(float(t.position), t.time, t.volume, t.dose, t.above) for t in seg.ticks],
                    )
                    for seg in content.timeline(s)
                ],
                grid_blocks=[list(b) for b in content.grid_blocks(s)],
                grid_rows=list(content.GRID_ROWS),
                footer=content.footer(s),
            )
        )
    return out


def rich_text_sheet(t: Texts) -> bytes:
    """The text sheet's layout (grids, panels, the checkpoint table) with rich alone, 80 columns."""
    from rich import box
    from rich.console import Console, Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    def grid(rows: list[tuple[str, str]]) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for label, text in rows:
            table.add_row(Text(label), Text(text))
        return table

    def section(title: str) -> Text:
        return Text(f"\n{title}", style="bold underline")

    parts: list[Any] = [
        Text(t.title, style="bold reverse"),
        grid(t.header),
        section("PATIENT"),
        grid(t.patient),
    ]
    if t.alerts:
        body = Text("\n".join(f"! {a}" for a in t.alerts))
        parts.append(Panel(body, title=Text("WARNINGS AND OVERRIDES"), box=box.DOUBLE))
    parts += [section("CALCULATION"), grid(t.calculation), section("PREPARATION")]
    parts += [Text(f"{i}. {step}") for i, step in enumerate(t.preparation, 1)]
    pump = Table.grid(padding=(0, 3))
    pump.add_column(style="bold", no_wrap=True)
    pump.add_column(style="bold", no_wrap=True)
    for label, text in t.pump:
        pump.add_row(Text(label), Text(text))
    checkpoints = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    for heading in ("Time", "Volume infused", "Dose delivered"):
        checkpoints.add_column(Text(heading), justify="right")
    for row in t.checkpoints:
        checkpoints.add_row(*(Text(cell) for cell in row))
    parts += [
        Text(""),
        Panel(pump, title=Text("PUMP"), box=box.HEAVY, expand=False, padding=(0, 2)),
        Text(f"Dose rate: {t.dose_rate}"),
        section("CHECKPOINTS"),
        checkpoints,
        section("REVERSE CHECK"),
        Text(t.reverse_check),
        section("ADVISORY"),
        Text(t.advisory),
        section("MONITORING"),
        *(Text(f"- {m}") for m in t.monitoring),
        Text(""),
        *(Text(f"{who}: ______________________  Time: ________") for who in t.signatures),
    ]
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=80,
        force_terminal=False,
        color_system=None,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=False,
    )
    console.print(Group(*parts))
    text = "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())
    return text.encode("utf-8")


def fpdf_sheet(t: Texts) -> bytes:
    """An A4 page with the same strings, boxes and grid as the PDF sheet, DejaVu Sans embedded."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF(unit="mm", format="A4")
    pdf.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_margins(10, 10, 10)
    pdf.set_auto_page_break(True, 17)
    pdf.set_creation_date(dt.datetime(2026, 11, 21, tzinfo=dt.UTC))
    pdf.add_page()
    width = pdf.w - 20
    nxt = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}

    def heading(text: str) -> None:
        pdf.set_font("DejaVu", "B", 8.6)
        pdf.cell(width, 3.9, text.upper(), **nxt)
        pdf.line(10, pdf.get_y(), 10 + width, pdf.get_y())

    def lines(rows: list[tuple[str, str]]) -> None:
        for label, text in rows:
            y = pdf.get_y()
            pdf.set_font("DejaVu", "B", 8.2)
            pdf.set_xy(10, y)
            pdf.cell(27, 3.5, label)
            pdf.set_font("DejaVu", "", 8.2)
            pdf.set_xy(37, y)
            pdf.multi_cell(width - 27, 3.5, text, **nxt)

    def paragraph(text: str, size: float = 8.2) -> None:
        pdf.set_font("DejaVu", "", size)
        pdf.multi_cell(width, 3.5, text, **nxt)

    pdf.set_line_width(0.6)
    pdf.rect(10, pdf.get_y(), width, 8)
    pdf.set_font("DejaVu", "B", 13)
    pdf.cell(width, 8, t.title, **nxt)
    lines(t.header)
    heading("Patient")
    lines(t.patient)
    top = pdf.get_y()
    pdf.rect(10, top, width / 2, 4 + 6 * len(t.pump) + 2)
    for label, text in t.pump:
        pdf.set_font("DejaVu", "B", 12)
        pdf.cell(28, 6, label)
        pdf.cell(width / 2 - 34, 6, text, **nxt)
    paragraph(f"Dose rate: {t.dose_rate}")
    for alert in t.alerts:
        paragraph(f"- {alert}")
    heading("Calculation")
    lines(t.calculation)
    heading("Preparation")
    for i, step in enumerate(t.preparation, 1):
        paragraph(f"{i}. {step}")
    heading("Reverse check")
    paragraph(t.reverse_check)
    heading("Infusion timeline")
    for start, ticks in t.timeline:
        y = pdf.get_y()
        pdf.rect(16, y + 10.5, width - 15, 3)
        pdf.set_font("DejaVu", "", 7.2)
        pdf.set_xy(16, y + 15.5)
        pdf.cell(30, 2.9, start)
        for position, *labels, above in ticks:
            x = 16 + position * (width - 15)
            pdf.line(x, y + 9, x, y + 15)
            for j, label in enumerate(labels):
                pdf.set_xy(x - 15, y + (0.0 if above else 15.5) + 2.9 * j)
                pdf.cell(30, 2.9, label, align="C")
        pdf.set_y(y + 27)
    heading("Monitoring (fill in by hand)")
    pdf.set_font("DejaVu", "", 7.2)
    for block in t.grid_blocks:
        cell = (width - 38) / max(len(block), 5)
        pdf.cell(38, 4.5, "Time", border=1)
        for column in block:
            pdf.cell(cell, 4.5, column, border=1, align="C")
        pdf.ln(4.5)
        for row in t.grid_rows:
            pdf.cell(38, 5.8, row, border=1)
            for _ in block:
                pdf.cell(cell, 5.8, "", border=1)
            pdf.ln(5.8)
    heading("Advisory")
    paragraph(t.advisory, 7.2)
    heading("Monitoring")
    for item in t.monitoring:
        paragraph(f"- {item}", 7.2)
    for who in t.signatures:
        paragraph(f"{who}: name, signature, date / time")
    pdf.set_y(-15)
    paragraph(t.footer, 6.6)
    return bytes(pdf.output())


def library_alone(render: Callable[[Texts], bytes], texts: list[Texts], count: int) -> float:
    """Seconds per sheet to render `count` sheets (cycling through `texts`) and write each file."""
    with tempfile.TemporaryDirectory(prefix="dosecalc-lib-") as folder:
        start = time.perf_counter()
        for i in range(count):
            data = render(texts[i % len(texts)])
            with open(os.path.join(folder, f"{i}.out"), "wb") as handle:
                handle.write(data)
        return (time.perf_counter() - start) / count


# --- the figures -------------------------------------------------------------------------------


def dosecalc_cmd() -> tuple[list[str], str]:
    """The installed entry point (as a nurse runs it), else `python -m dosecalc`."""
    found = shutil.which("dosecalc")
    if found:
        return [found], found
    return [sys.executable, "-m", "dosecalc"], f"{sys.executable} -m dosecalc"


# Runs `python -m dosecalc ARGS` and, at exit (sys.exit included), writes to argv[1] which of the
# heavy packages are in sys.modules.
IMPORTS_SHIM = (
    "import atexit, runpy, sys; out, heavy = sys.argv[1], sys.argv[2].split(','); "
    "atexit.register(lambda: open(out, 'w').write(','.join(h for h in heavy if h in sys.modules))); "
    "sys.argv = ['dosecalc', *sys.argv[3:]]; runpy.run_module('dosecalc', run_name='__main__')"
)


def imported(args: list[str], folder: Path) -> str:
    """Which of pint, rich and fpdf the command has imported when it exits (untimed)."""
    out = folder / "imports.txt"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-c", IMPORTS_SHIM, str(out), ",".join(HEAVY), *args]
    check(run(cmd, 120), cmd, lambda r: out.is_file(), "the imports written at exit")
    heavy = out.read_text(encoding="utf-8")
    return heavy.replace(",", ", ") if heavy else "none"


def is_json_sheet(r: Run) -> bool:
    try:
        return json.loads(r.head)["schema"] == "dosecalc.sheet/1"
    except (ValueError, KeyError, TypeError):
        return False


def startup_figures(dc: list[str], sizes: Sizes, folder: Path) -> Iterator[Figure]:
    click_only = Command([sys.executable, "-c", "import click"])
    commands = {
        "`dosecalc --help`": Command(
            [*dc, "--help"], lambda r: b"Usage:" in r.head, "a usage text"
        ),
        "`dosecalc protocols list`": Command(
            [*dc, "protocols", "list"], lambda r: b"ketamine-iv" in r.head, "ketamine-iv listed"
        ),
    }
    for (name, command), args in zip(
        commands.items(), (["--help"], ["protocols", "list"]), strict=True
    ):
        runs, base = paired(command, click_only, sizes.repeats)
        yield Figure(
            f"1. {name}",
            median([r.seconds for r in runs]),
            median([r.seconds for r in base]),
            target=1.5,
            target_text="<= 1.5x",
            note='baseline `python -c "import click"`',
            runs=[r.seconds for r in runs],
            baseline_runs=[r.seconds for r in base],
        )
        yield Figure(
            f"1. {name}: heavy modules imported",
            imported(args, folder),
            unit="",
            target_text="none",
            note="of pint, rich, fpdf: in sys.modules at exit",
        )


def sheet_figures(dc: list[str], sizes: Sizes, folder: Path) -> Iterator[Figure]:
    floor = Command([sys.executable, "-c", "import click, pint, rich.console"])
    weight = ["sheet", "--weight", "72 kg", "--date", DATE]
    commands = [
        ("JSON", ["--format", "json"], is_json_sheet, "a dosecalc.sheet/1 object"),
        ("text", [], lambda r: b"155.4 mL/h" in r.head, "155.4 mL/h on the sheet"),
    ]
    for label, extra, ok, what in commands:
        runs, base = paired(Command([*dc, *weight, *extra], ok, what), floor, sizes.repeats)
        yield Figure(
            f'2. `dosecalc sheet --weight "72 kg"`, {label}',
            median([r.seconds for r in runs]),
            median([r.seconds for r in base]),
            target=1.5,
            target_text="<= 1.5x",
            note='baseline `python -c "import click, pint, rich.console"`',
            runs=[r.seconds for r in runs],
            baseline_runs=[r.seconds for r in base],
        )
        yield Figure(
            f"2. sheet, {label}: heavy modules imported",
            imported([*weight, *extra], folder),
            unit="",
            note="of pint, rich, fpdf: in sys.modules at exit",
        )


def batch_cmd(dc: list[str], daylist: Path, *args: str) -> list[str]:
    return [*dc, "--protocols", str(PROTOCOLS), "batch", str(daylist), "--date", DATE, *args]


def jsonl_ok(rows: int) -> Callable[[Run], bool]:
    """Exactly one line per row, the first a dosecalc.sheet/1 object."""

    def ok(r: Run) -> bool:
        first = r.head.split(b"\n", 1)[0]
        try:
            schema = json.loads(first).get("schema")
        except ValueError:
            return False
        return r.lines == rows and schema in ("dosecalc.sheet/1", "baseline")

    return ok


def batch_figures(dc: list[str], sizes: Sizes, folder: Path) -> Iterator[Figure]:
    rows = sizes.rows
    daylist = folder / f"list-{rows}.csv"
    make_list(daylist, rows)
    timeout = 120 + rows * 0.005
    floor_code = (
        f"import sys; sys.path.insert(0, {str(BENCH)!r}); from floor import baseline; "
        f"baseline({str(daylist)!r}, '/dev/stdout')"
    )
    floor = Command([sys.executable, "-c", floor_code], jsonl_ok(rows), f"{rows} lines", timeout)
    subject = Command(
        batch_cmd(dc, daylist, "--format", "jsonl"), jsonl_ok(rows), f"{rows} lines", timeout
    )
    runs, base = paired(subject, floor, sizes.big_repeats)
    value, baseline = median([r.seconds for r in runs]), median([r.seconds for r in base])
    yield Figure(
        f"3. `dosecalc batch --format jsonl`, {rows:,} rows",
        value,
        baseline,
        target=2.0,
        target_text="<= 2x",
        note=f"{value / rows * 1e6:.0f} us/row vs {baseline / rows * 1e6:.1f} us/row; "
        "baseline floor.baseline (csv, the sheet's arithmetic in float, the same keys, json.dumps)",
        runs=[r.seconds for r in runs],
        baseline_runs=[r.seconds for r in base],
    )
    minimal = Command(
        [
            sys.executable,
            "-c",
            floor_code.replace("import baseline", "import minimal_baseline").replace(
                "baseline(", "minimal_baseline("
            ),
        ],
        jsonl_ok(rows),
        f"{rows} lines",
        timeout,
    )
    small = [timed(minimal) for _ in range(sizes.big_repeats)]
    yield Figure(
        "3b. the same, against the minimal floor of issue 3 (four numbers, nine keys)",
        value,
        median([r.seconds for r in small]),
        note="for comparison with the issue-3 figures; not the target's baseline",
        baseline_runs=[r.seconds for r in small],
    )


def sheets_figures(dc: list[str], sizes: Sizes, folder: Path) -> Iterator[Figure]:
    texts = sheet_texts(min(50, max(sizes.text_sheets, sizes.pdf_sheets, sizes.library_sheets)))
    kinds = [
        ("text", "txt", sizes.text_sheets, rich_text_sheet, "rich", b"DOSE SHEET", 0.5),
        ("pdf", "pdf", sizes.pdf_sheets, fpdf_sheet, "fpdf2", b"%PDF-", 2.0),
    ]
    for fmt, ext, count, render, library, magic, per_sheet_timeout in kinds:
        daylist = folder / f"sheets-{count}.csv"
        make_list(daylist, count)
        out = folder / f"out-{fmt}"

        def clear(out: Path = out) -> None:
            shutil.rmtree(out, ignore_errors=True)

        def ok(r: Run, out: Path = out, ext: str = ext, count: int = count, magic: bytes = magic):
            files = sorted(out.glob(f"*.{ext}"))
            return (
                len(files) == count
                and (out / "manifest.json").is_file()
                and magic in files[0].read_bytes()[:200]
            )

        subject = Command(
            batch_cmd(dc, daylist, "--out", str(out), "--sheets", fmt),
            ok,
            f"{count} .{ext} sheets and a manifest",
            120 + count * per_sheet_timeout,
            before=clear,
        )
        runs: list[Run] = []
        base: list[float] = []
        lib_count = max(1, min(sizes.library_sheets, count))
        for _ in range(sizes.sheet_repeats):
            base.append(library_alone(render, texts, lib_count))
            runs.append(timed(subject))
            clear()
        while len(base) < 3:  # the library run is cheap: always the median of at least 3
            base.append(library_alone(render, texts, lib_count))
        per_sheet = [r.seconds / count * 1000 for r in runs]
        yield Figure(
            f"4. `batch --out --sheets {fmt}`, {count:,} sheets, per sheet",
            median(per_sheet),
            median(base) * 1000,
            unit="ms",
            note=f"baseline: {library} alone, same texts, {lib_count} sheets rendered and "
            f"written (no fsync); batch total {median([r.seconds for r in runs]):.1f} s",
            runs=per_sheet,
            baseline_runs=[b * 1000 for b in base],
        )


def rss_figures(dc: list[str], sizes: Sizes, folder: Path) -> Iterator[Figure]:
    measured: dict[int, Run] = {}
    for rows in (sizes.rss_small, sizes.rss_big):
        daylist = folder / f"rss-{rows}.csv"
        make_list(daylist, rows)
        command = Command(
            batch_cmd(dc, daylist, "--format", "jsonl"),
            jsonl_ok(rows),
            f"{rows} lines",
            300 + rows * 0.005,
        )
        rss_file = folder / f"rss-{rows}.kib"
        command.cmd = [sys.executable, "-c", RSS_SHIM, str(rss_file), *command.cmd]
        measured[rows] = timed(command)
        measured[rows].maxrss_mb = int(rss_file.read_text()) / 1024
        daylist.unlink()
    big, small = measured[sizes.rss_big], measured[sizes.rss_small]
    yield Figure(
        f"5. peak RSS, batch of {sizes.rss_big:,} rows vs {sizes.rss_small:,} rows",
        big.maxrss_mb,
        small.maxrss_mb,
        unit="MB",
        target=1.2,
        target_text="<= 1.2x",
        note="JSONL to a pipe; ru_maxrss of the dosecalc process (with a process pool: the "
        f"largest process, not the sum); the big run took {big.seconds:.0f} s",
    )


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Sizes]:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="tiny sizes, < 1 min (CI)")
    mode.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    for name in Sizes.__dataclass_fields__:
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            metavar="N",
            help=f"override the preset's {name} (full: {getattr(PRESETS['full'], name):,})",
        )
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(FIGURES)}")
    parser.add_argument("--json", metavar="FILE", help="also save the results as JSON")
    parser.add_argument(
        "--label", default="", help="what is measured, e.g. 'git archive 847a6e7' (recorded)"
    )
    args = parser.parse_args(argv)
    preset = "smoke" if args.smoke else "quick" if args.quick else "full"
    sizes = PRESETS[preset]
    overrides = {k: getattr(args, k) for k in Sizes.__dataclass_fields__ if getattr(args, k)}
    sizes = Sizes(**{**asdict(sizes), **overrides})
    args.preset = preset
    only = set(args.only.split(",")) if args.only else set(FIGURES)
    if only - set(FIGURES):
        parser.error(f"--only: unknown figure(s) {', '.join(sorted(only - set(FIGURES)))}")
    args.figures = [f for f in FIGURES if f in only]
    return args, sizes


def main(argv: Sequence[str] | None = None) -> int:
    args, sizes = parse_args(argv)
    dc, entry = dosecalc_cmd()
    meta = machine()
    meta.update(preset=args.preset, sizes=asdict(sizes), entry_point=entry, label=args.label)
    print(
        f"dosecalc benchmark ({args.preset}): {meta['platform']}, {meta['cpus']} cores, "
        f"Python {meta['python']}, commit {meta['commit']}"
        f"{' + uncommitted dosecalc changes' if meta['dosecalc_dirty'] else ''} "
        f"(source {meta['source_sha256']} in {meta['dosecalc_path']}), {meta['date']}"
        f"{'; ' + args.label if args.label else ''}",
        flush=True,
    )
    compileall.compile_dir(str(dosecalc_dir()), quiet=1)  # as `pip install` does
    figures: list[Figure] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dosecalc-bench-") as tmp:
        folder = Path(tmp)
        groups: dict[str, Callable[[], Iterator[Figure]]] = {
            "startup": lambda: startup_figures(dc, sizes, folder),
            "sheet": lambda: sheet_figures(dc, sizes, folder),
            "batch": lambda: batch_figures(dc, sizes, folder),
            "sheets": lambda: sheets_figures(dc, sizes, folder),
            "rss": lambda: rss_figures(dc, sizes, folder),
        }
        for name in args.figures:
            t0 = time.perf_counter()
            try:
                for figure in groups[name]():
                    figures.append(figure)
                    print(f"  {figure.name}: {fmt_value(figure.value, figure.unit)}", flush=True)
            except Failure as exc:
                figures.append(Figure(f"{name}", error=str(exc)))
                print(f"  {name}: FAILED: {exc}", file=sys.stderr, flush=True)
            print(f"[{name} done in {time.perf_counter() - t0:.0f} s]", flush=True)
    meta["seconds"] = round(time.perf_counter() - started, 1)
    meta["source_sha256_after"] = source_digest()
    if meta["source_sha256_after"] != meta["source_sha256"]:
        print("warning: dosecalc's source changed during the run", file=sys.stderr)
    print()
    print(table(figures))
    print(
        f"\n{meta['platform']}, {meta['cpus']} cores, Python {meta['python']}, "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        + f"; commit {meta['commit']}{' (dirty)' if meta['dosecalc_dirty'] else ''}, "
        f"source {meta['source_sha256']} ({meta['dosecalc_path']})"
        f"{'; ' + args.label if args.label else ''}; {meta['date']}; {meta['seconds']} s in all"
    )
    if args.json:
        record = {
            "meta": meta,
            "figures": [{**asdict(f), "ratio": f.ratio, "met": f.met} for f in figures],
        }
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    failed = [f for f in figures if f.error]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
