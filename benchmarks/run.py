"""dosecalc's benchmarks (issue 14): every figure a ratio to a baseline timed in the same run.

    python benchmarks/run.py                  # full sizes (about 15 min on 2 cores)
    python benchmarks/run.py --quick          # smaller sizes, a few minutes
    python benchmarks/run.py --smoke          # tiny sizes, well under a minute: what CI runs
    python benchmarks/run.py --only startup,check --json out.json

hyperfine times every command (a warm-up run, then timed runs; start-up commands alternate with
their baseline in rounds of two runs; figures are medians of wall time, with mean CPU time, user +
system, beside them: read the CPU figure on a busy machine).
Figures, each against its baseline (issue 14's targets):
  1. batch: `dosecalc batch --format jsonl` of a day list with unique weights (floor.unique_list:
     45-140 kg at 0.01 kg, one row in ten in lb, the protocols of --protocol-ids in turn) vs
     floor.py doing the same arithmetic in floats and writing the same keys (<= 3x); the same for
     the repeated-weight list of issues 3 and 6; peak RSS of a big batch vs a small one (<= 1.2x);
  2. start-up: `dosecalc sheet --weight "72 kg"` (JSON and text) vs `python -c "import click,
     pint, rich.console"` (<= 1.5x); `--help`, `--version`, `protocols list` vs `python -c "import
     click"` (<= 1.5x); and which of pint, rich, fpdf each imports (a sheet must import pint);
  3. PDF day: `batch --out DIR --sheets pdf --combined` vs fpdf_alone.py drawing and saving the
     same pages on one core (<= 1x);
  4. `dosecalc check` vs the same sheet (<= 1.5x).

Each command's output is checked once (line counts, schema, files written, pages); the script
exits 1 if any command failed or printed the wrong thing. Nothing asserts a time. Needs hyperfine
(Debian package `hyperfine`). To measure another tree: PYTHONPATH=/that/tree python benchmarks/run.py.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from itertools import islice
from pathlib import Path

from floor import PROTOCOL_IDS, repeated_list, unique_list

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATE = "2026-11-21"
GROUPS = ("batch", "rss", "startup", "pdf", "check")
# Runs a command and writes its own peak RSS (KiB) to argv[1]: a small middle process, since Linux
# carries a forked child's copy of this process's peak RSS into the child's ru_maxrss.
RSS_SHIM = (
    "import os, sys; pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ); "
    "_, status, usage = os.wait4(pid, 0); open(sys.argv[1], 'w').write(str(usage.ru_maxrss)); "
    "sys.exit(os.waitstatus_to_exitcode(status))"
)
# Runs dosecalc's entry point and writes which heavy packages it imported to argv[1] at exit.
IMPORTS_SHIM = (
    "import atexit, sys; out, heavy = sys.argv[1], ('pint', 'rich', 'fpdf'); "
    "atexit.register(lambda: open(out, 'w').write(' '.join(h for h in heavy if h in sys.modules))); "
    "sys.argv = ['dosecalc', *sys.argv[2:]]; from dosecalc.cli import main; main()"
)


@dataclass
class Sizes:
    runs: int  # timed runs of each start-up command (and of check)
    big_runs: int  # timed runs of each batch and PDF-day command
    rows: int  # figure 1
    rss_small: int
    rss_big: int
    patients: int  # figure 3


PRESETS = {
    "full": Sizes(20, 3, 100_000, 10_000, 1_000_000, 200),
    "quick": Sizes(10, 2, 20_000, 10_000, 100_000, 50),
    "smoke": Sizes(2, 1, 200, 100, 1_000, 2),
}


@dataclass
class Figure:
    name: str
    value: float | str | None = None  # seconds, MB or text
    baseline: float | None = None
    cpu: float | None = None  # mean user + system seconds, when timed
    baseline_cpu: float | None = None
    target: float | None = None
    unit: str = "s"
    note: str = ""
    error: str = ""

    @property
    def ratio(self) -> float | None:
        if isinstance(self.value, float) and self.baseline:
            return self.value / self.baseline
        return None

    @property
    def cpu_ratio(self) -> float | None:
        return self.cpu / self.baseline_cpu if self.cpu and self.baseline_cpu else None

    @property
    def met(self) -> str:
        if self.error:
            return "FAILED"
        if self.target is None or self.ratio is None:
            return "-"
        return "yes" if self.ratio <= self.target else "no"


class Failure(Exception):
    """A benchmarked command failed or printed the wrong thing."""


# --- running -----------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """No dosecalc settings or colour; byte-compiled as pip installs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSECALC_")}
    env.pop("FORCE_COLOR", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(NO_COLOR="1", DOSECALC_CONFIG="")
    return env


def run(cmd: Sequence[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[bytes]:
    """One untimed run (the output check); children run in the temporary folder, so `python -c`
    never imports the source tree instead of PYTHONPATH's."""
    try:
        done = subprocess.run(
            list(cmd), cwd=cwd, env=child_env(), capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise Failure(f"timed out after {timeout:.0f} s: {shlex.join(cmd)}") from None
    return done


def checked(
    cmd: Sequence[str], cwd: Path, ok: Callable[[bytes], bool], what: str, timeout: float = 600
) -> bytes:
    done = run(cmd, cwd, timeout)
    if done.returncode != 0 or not ok(done.stdout):
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise Failure(f"{shlex.join(cmd)}: exit {done.returncode}, expected 0 and {what}; {tail}")
    return done.stdout


def streamed(cmd: Sequence[str], cwd: Path, rows: int, timeout: float) -> None:
    """One untimed run whose JSON Lines on stdout (a pipe) are checked as they come."""
    err = cwd / "stderr.txt"
    with (
        open(err, "wb") as stderr,
        subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,  # the watchdog stops the command and what it started (shim)
        ) as process,
    ):
        watchdog = threading.Timer(timeout, _kill_group, (process.pid,))
        watchdog.start()
        try:
            out = process.stdout
            assert out is not None
            ok = produced(out, rows)
            for _ in iter(lambda: out.read(1 << 20), b""):  # the rest, if a bad line came first
                pass
            code = process.wait()
        finally:
            watchdog.cancel()
            if process.poll() is None:  # Ctrl-C in the harness: not left computing on its own
                _kill_group(process.pid)
    tail = err.read_text("utf-8", "replace").strip().splitlines()[-3:]
    err.unlink()
    if code == -signal.SIGKILL:
        raise Failure(f"timed out after {timeout:.0f} s: {shlex.join(cmd)}")
    if code != 0 or not ok:
        raise Failure(f"{shlex.join(cmd)}: exit {code}, expected 0 and {rows} JSON lines; {tail}")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended as the watchdog fired
        os.killpg(pid, signal.SIGKILL)


def hyperfine(
    commands: Sequence[Sequence[str]],
    runs: int,
    cwd: Path,
    warmup: int = 1,
    output: str = "null",
    rounds: int = 1,
) -> list[tuple[float, float]]:
    """(median wall seconds, mean user + system seconds) of each command, timed by hyperfine; a
    non-zero exit of any run is a Failure. With `rounds`, hyperfine is called that many times with
    runs / rounds runs of each command, so that subject and baseline alternate: on a shared machine
    the load moves between hyperfine's blocks of runs, and a ratio of two blocks would carry it."""
    times: list[list[float]] = [[] for _ in commands]
    cpu: list[list[float]] = [[] for _ in commands]
    report = cwd / "hyperfine.json"
    for round_ in range(rounds):
        cmd = ["hyperfine", "-N", "--style", "none", "--runs", str(max(1, runs // rounds))]
        cmd += ["--warmup", str(warmup if round_ == 0 else 0)]
        cmd += ["--output", output, "--export-json", str(report)]
        cmd += [shlex.join(c) for c in commands]
        done = subprocess.run(
            cmd, cwd=cwd, env=child_env(), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise Failure(f"hyperfine: {done.stderr.strip()[-400:]}")
        for i, r in enumerate(json.loads(report.read_text(encoding="utf-8"))["results"]):
            times[i] += r["times"]
            cpu[i] += [r["user"] + r["system"]] * len(r["times"])
    return [(statistics.median(t), statistics.mean(c)) for t, c in zip(times, cpu, strict=True)]


def timed_pair(
    name: str, subject: list[str], base: list[str], runs: int, cwd: Path, **kw: object
) -> Figure:
    """Subject and baseline alternating in rounds of two runs each."""
    timing = hyperfine([subject, base], runs, cwd, rounds=max(1, runs // 2))
    (value, cpu), (baseline, baseline_cpu) = timing
    return Figure(name, value, baseline, cpu, baseline_cpu, **kw)  # type: ignore[arg-type]


# --- the figures -------------------------------------------------------------------------------


def dosecalc() -> list[str]:
    found = shutil.which("dosecalc")
    return [found] if found else [sys.executable, "-m", "dosecalc"]


def produced(lines: Iterable[bytes], rows: int) -> bool:
    """One line per row, each produced (no error object); read line by line, never held whole (a
    million-row run writes gigabytes)."""
    count = 0
    for line in lines:
        if b'"status": "ok"' not in line and b'"warning"' not in line:
            return False
        count += 1
    return count == rows


def batch_figures(dc: list[str], args: argparse.Namespace, folder: Path) -> Iterator[Figure]:
    rows, protocols = args.sizes.rows, Path(args.protocols)
    for label, make in (
        ("unique weights", lambda p: unique_list(p, rows, args.protocol_ids, protocols)),
        ("repeated weights (1,100 distinct)", lambda p: repeated_list(p, rows)),
    ):
        daylist = folder / "day.csv"
        make(daylist)
        subject = [*dc, "--protocols", str(protocols), "batch", str(daylist), "--date", DATE]
        subject += ["--format", "jsonl", "--quiet"]
        floor = [sys.executable, str(BENCH / "floor.py"), str(daylist), str(protocols)]
        keys: dict[str, dict[str, list[str]]] = {}
        timing = []
        for cmd, who in ((subject, "subject"), (floor, "floor")):
            # Timed with its output in a file: the last run's lines are the ones checked.
            out = folder / f"{who}.jsonl"
            timing += hyperfine([cmd], args.sizes.big_runs, folder, warmup=0, output=str(out))
            with open(out, "rb") as lines:
                if not produced(lines, rows):
                    raise Failure(f"{shlex.join(cmd)}: not {rows} JSON lines of produced sheets")
                lines.seek(0)
                keys[who] = {}
                for line in islice(lines, 50):
                    record = json.loads(line)
                    keys[who].setdefault(record["protocol_id"], list(record))
            out.unlink()
        drift = [p for p in keys["subject"] if keys["subject"][p] != keys["floor"].get(p)]
        (value, cpu), (baseline, baseline_cpu) = timing
        yield Figure(
            f"1. `batch --format jsonl`, {rows:,} rows, {label}",
            value,
            baseline,
            cpu,
            baseline_cpu,
            target=3.0 if label == "unique weights" else None,
            note=f"{value / rows * 1e6:.0f} vs {baseline / rows * 1e6:.1f} us/row; floor.py"
            + (f"; **floor keys differ for {', '.join(drift)}**" if drift else ", same keys"),
        )


def rss_figure(dc: list[str], args: argparse.Namespace, folder: Path) -> Iterator[Figure]:
    peak = {}
    for rows in (args.sizes.rss_small, args.sizes.rss_big):
        daylist, out = folder / "rss.csv", folder / "rss.kib"
        unique_list(daylist, rows, args.protocol_ids, Path(args.protocols))
        cmd = [*dc, "--protocols", args.protocols, "batch", str(daylist), "--date", DATE]
        cmd = [sys.executable, "-c", RSS_SHIM, str(out), *cmd, "--format", "jsonl", "--quiet"]
        started = time.perf_counter()
        streamed(cmd, folder, rows, 300 + rows * 0.01)
        peak[rows] = (int(out.read_text()) / 1024, time.perf_counter() - started)
    (big, seconds), (small, _) = peak[args.sizes.rss_big], peak[args.sizes.rss_small]
    yield Figure(
        f"1. peak RSS, batch of {args.sizes.rss_big:,} rows vs {args.sizes.rss_small:,}",
        big,
        small,
        unit="MB",
        target=1.2,
        note=f"unique weights, JSONL to a pipe; the dosecalc process's own ru_maxrss; {seconds:.0f} s",
    )


def imported(args: list[str], folder: Path) -> str:
    out = folder / "imports.txt"
    checked([sys.executable, "-c", IMPORTS_SHIM, str(out), *args], folder, lambda _: True, "exit 0")
    return out.read_text(encoding="utf-8") or "none"


def is_sheet(out: bytes) -> bool:
    try:
        return bool(json.loads(out)["schema"] == "dosecalc.sheet/1")
    except (ValueError, KeyError, TypeError):
        return False


SHEET = ["sheet", "--weight", "72 kg", "--date", DATE]
CHECK = ["check", "--weight", "72 kg", "--date", DATE, "--operator", "RN Kim"]
CHECK += ["--vial", "10 mg/mL", "--drawn", "3.6 mL", "--rate", "155.4 mL/h", "--vtbi", "103.6 mL"]


def startup_figures(dc: list[str], args: argparse.Namespace, folder: Path) -> Iterator[Figure]:
    runs = args.sizes.runs
    floors = {
        "click": [sys.executable, "-c", "import click"],
        "sheet": [sys.executable, "-c", "import click, pint, rich.console"],
    }
    cases = [
        ("`sheet`, JSON", [*SHEET, "--format", "json"], is_sheet, "a sheet object", "sheet"),
        ("`sheet`, text", SHEET, lambda o: b"155.4 mL/h" in o, "155.4 mL/h", "sheet"),
        ("`--help`", ["--help"], lambda o: b"Usage:" in o, "a usage text", "click"),
        ("`--version`", ["--version"], lambda o: o.startswith(b"dosecalc "), "a version", "click"),
        ("`protocols list`", ["protocols", "list"], lambda o: b"ketamine-iv" in o, "ids", "click"),
    ]
    for name, argv, ok, what, floor in cases:
        checked([*dc, *argv], folder, ok, what)
        heavy = imported(argv, folder)
        figure = timed_pair(f"2. {name}", [*dc, *argv], floors[floor], runs, folder, target=1.5)
        figure.note = f'baseline `python -c "{floors[floor][-1]}"`; imports: {heavy}'
        if floor == "sheet" and "pint" not in heavy:
            figure.error = "the sheet did not import pint: pint must be on the sheet path"
        yield figure


def check_figure(dc: list[str], args: argparse.Namespace, folder: Path) -> Iterator[Figure]:
    checked([*dc, *CHECK], folder, lambda o: b": matches" in o, "every value matching")
    yield timed_pair(
        "4. `check` (four values entered) vs the same `sheet`, text",
        [*dc, *CHECK],
        [*dc, *SHEET],
        args.sizes.runs,
        folder,
        target=1.5,
        note=f"imports: {imported(CHECK, folder)}",
    )


PAGE = re.compile(rb"/Type\s*/Page\b(?!s)")


def pdf_figure(dc: list[str], args: argparse.Namespace, folder: Path) -> Iterator[Figure]:
    from fpdf_alone import texts

    from dosecalc import protocols
    from dosecalc.model import Order, make_sheet

    count, protocols_file = args.sizes.patients, Path(args.protocols)
    daylist, out, alone = folder / "pdf-day.csv", folder / "pdf-out", folder / "pdf-alone"
    unique_list(daylist, count, args.protocol_ids, protocols_file)
    library = protocols.load(protocols_file)
    sheets = []
    with open(daylist, encoding="utf-8") as handle:
        for row in list(handle)[1:]:
            pid, weight, height, sex, protocol = row.rstrip("\n").split(",")
            order = Order(weight, DATE, protocol, pid, height=height or None, sex=sex or None)
            sheets.append(texts(make_sheet(library, order)))
    source = folder / "texts.json"
    source.write_text(json.dumps(sheets), encoding="utf-8")
    combined = folder / "day.pdf"
    subject = [*dc, "--protocols", str(protocols_file), "batch", str(daylist), "--date", DATE]
    subject += ["--out", str(out), "--sheets", "pdf", "--combined", str(combined)]
    subject += ["--force", "--quiet"]
    baseline = [sys.executable, str(BENCH / "fpdf_alone.py"), str(source), str(alone)]

    def pages(path: Path) -> int:
        return len(PAGE.findall(path.read_bytes()))

    # Timed first; the files of the last runs are the ones checked.
    (value, cpu), (base, base_cpu) = hyperfine([subject, baseline], args.sizes.big_runs, folder)
    written = sorted(out.glob("*.pdf"))
    if len(written) != count or sum(pages(p) for p in written) != count:
        raise Failure(f"batch --sheets pdf wrote {len(written)} PDF(s), not {count} one-page ones")
    produced = (pages(combined), pages(alone / "combined.pdf"))
    if min(produced) <= count:
        raise Failure(f"a combined PDF holds {produced} pages, not a cover and {count} sheets")
    total = count + produced[0]
    yield Figure(
        f"3. `batch --out --sheets pdf --combined`, {count} patients ({total} pages)",
        value,
        base,
        cpu,
        base_cpu,
        target=1.0,
        note=f"baseline fpdf_alone.py, one core, {count + produced[1]} pages; "
        f"{value / total * 1000:.0f} vs {base / (count + produced[1]) * 1000:.0f} ms/page",
    )


# --- report ------------------------------------------------------------------------------------


def shown(value: float | str | None, unit: str) -> str:
    if value is None or isinstance(value, str):
        return value or "-"
    return (
        f"{value:.1f} MB" if unit == "MB" else f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    )


def table(figures: Sequence[Figure]) -> str:
    out = ["| Figure | Value | Baseline | Ratio | CPU ratio | Target | Met | Note |"]
    out.append("|---|---|---|---|---|---|---|---|")
    for f in figures:
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "-"
        cpu = f"{f.cpu_ratio:.2f}x" if f.cpu_ratio is not None else "-"
        target = f"<= {f.target:g}x" if f.target is not None else "-"
        note = f"**{f.error}**" if f.error else f.note
        out.append(
            f"| {f.name} | {shown(f.value, f.unit)} | {shown(f.baseline, f.unit)} | {ratio} | "
            f"{cpu} | {target} | {f.met} | {note} |"
        )
    return "\n".join(out)


def machine(dc: list[str], label: str) -> dict[str, object]:
    import dosecalc

    versions = {}
    for package in ("click", "pint", "rich", "fpdf2"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    hyper = subprocess.run(["hyperfine", "--version"], capture_output=True, text=True).stdout
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
        "hyperfine": hyper.strip(),
        "repo_head": commit,
        "dosecalc_measured": str(Path(dosecalc.__file__).parent),
        "label": label,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="tiny sizes, well under a minute (CI)")
    mode.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    for name in Sizes.__dataclass_fields__:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, metavar="N")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(GROUPS)}")
    parser.add_argument("--protocols", default=str(ROOT / "protocols.toml"), metavar="FILE")
    parser.add_argument(
        "--protocol-ids",
        default=",".join(PROTOCOL_IDS),
        help="comma-separated protocols for the day lists (default: %(default)s)",
    )
    parser.add_argument("--json", metavar="FILE", help="also save the results as JSON")
    parser.add_argument("--label", default="", help="what is measured (recorded)")
    args = parser.parse_args(argv)
    preset = "smoke" if args.smoke else "quick" if args.quick else "full"
    given = {k: getattr(args, k) for k in Sizes.__dataclass_fields__ if getattr(args, k)}
    args.sizes = Sizes(**{**asdict(PRESETS[preset]), **given})
    args.preset = preset
    args.protocol_ids = tuple(args.protocol_ids.split(","))
    args.groups = [g for g in GROUPS if g in (args.only.split(",") if args.only else GROUPS)]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("hyperfine") is None:
        print("benchmarks need hyperfine: apt-get install hyperfine", file=sys.stderr)
        return 2
    dc = dosecalc()
    meta = machine(dc, args.label)
    print(f"dosecalc benchmarks ({args.preset}): {json.dumps(meta)}", flush=True)
    makers = {
        "batch": batch_figures,
        "rss": rss_figure,
        "startup": startup_figures,
        "pdf": pdf_figure,
        "check": check_figure,
    }
    figures: list[Figure] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dosecalc-bench-") as tmp:
        for group in args.groups:
            t0 = time.perf_counter()
            try:
                for figure in makers[group](dc, args, Path(tmp)):
                    figures.append(figure)
                    print(f"  {figure.name}: {shown(figure.value, figure.unit)}", flush=True)
            except Failure as exc:
                figures.append(Figure(group, error=str(exc)))
                print(f"  {group}: FAILED: {exc}", file=sys.stderr, flush=True)
            print(f"[{group}: {time.perf_counter() - t0:.0f} s]", flush=True)
    meta["seconds"] = round(time.perf_counter() - started, 1)
    print("\n" + table(figures))
    if args.json:
        rows = [{**asdict(f), "ratio": f.ratio, "cpu_ratio": f.cpu_ratio} for f in figures]
        record = {"meta": meta, "sizes": asdict(args.sizes), "figures": rows}
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 1 if any(f.error for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
