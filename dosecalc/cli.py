"""The command line: click commands only. Parse, call the core, and map errors to exit codes here.

Imports other than click are made where they are used, so `--help`, `--version` and `protocols
list` load little beyond click (issue 6: within 1.5x of `import click`).

Exit codes: 0 sheet produced; 1 refused by a limit; 2 invalid input or usage; 3 invalid protocols file.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import click

from dosecalc import __version__
from dosecalc.errors import (
    DosecalcError,
    InputError,
    LimitError,
    OutputError,
    Problem,
    ProtocolFileError,
)
from dosecalc.render import DEFAULT_PAPER, FORMATS, PAPERS

EXIT_OK, EXIT_REFUSED, EXIT_INVALID, EXIT_PROTOCOLS = 0, 1, 2, 3
EXIT_CODES: dict[type[DosecalcError], int] = {
    LimitError: EXIT_REFUSED,
    InputError: EXIT_INVALID,
    OutputError: EXIT_INVALID,
    ProtocolFileError: EXIT_PROTOCOLS,
}
EXIT_HELP = (
    "Exit codes: 0 sheet produced; 1 refused by a limit; 2 invalid input or usage; "
    "3 invalid protocols file."
)
F = TypeVar("F", bound=Callable[..., Any])


def exit_code(error: DosecalcError) -> int:
    for kind, code in EXIT_CODES.items():
        if isinstance(error, kind):
            return code
    return EXIT_INVALID


def fail(error: DosecalcError, fmt: str = "text") -> NoReturn:
    """Report a domain error (stderr for people; a JSON error object on stdout for scripts) and exit."""
    for problem in error.problems:
        click.echo(f"dosecalc: {problem.message}", err=True)
    if fmt == "json":
        from dosecalc.render.as_json import dumps, error_object

        click.echo(dumps(error_object(error), indent=2))
    sys.exit(exit_code(error))


def is_interactive() -> bool:
    """A person at a terminal (prompts allowed). Tests replace this."""
    return sys.stdin.isatty()


# --- shared options -----------------------------------------------------------------------------


def protocols_option(func: F) -> F:
    return click.option(
        "--protocols",
        "protocols_file",
        metavar="FILE",
        help="Protocols file (default: $DOSECALC_PROTOCOLS, else the shipped protocols.toml).",
    )(func)


def order_options(func: F) -> F:
    """Options `sheet` and `batch` share: protocol, operator, date."""
    for option in reversed(
        (
            click.option("--protocol", "protocol_id", metavar="ID", help="Protocol id."),
            click.option(
                "--operator",
                envvar="DOSECALC_OPERATOR",
                metavar="NAME",
                help="Who overrides a soft limit ($DOSECALC_OPERATOR).",
            ),
            click.option(
                "--date", metavar="YYYY-MM-DD", help="Date on the sheet (default: today)."
            ),
        )
    ):
        func = option(func)
    return func


def paper_option(func: F) -> F:
    return click.option(
        "--paper",
        type=click.Choice(list(PAPERS)),
        default=DEFAULT_PAPER,
        show_default=True,
        help="Page size for HTML and PDF sheets.",
    )(func)


def load_library(protocols_file: str | None, fmt: str = "text") -> Any:
    """The protocols library from the command's option or the group's (they must agree)."""
    from dosecalc import protocols

    ctx = click.get_current_context()
    group_value = (ctx.find_root().obj or {}).get("protocols_file")
    if protocols_file and group_value and protocols_file != group_value:
        fail(
            InputError(
                Problem(
                    "protocols",
                    "conflicting_protocols",
                    "protocols: --protocols was given twice with different files",
                )
            ),
            fmt,
        )
    chosen = protocols_file if protocols_file is not None else group_value
    if chosen == "":  # an empty option (an unset shell variable) never means the shipped file
        fail(
            ProtocolFileError(
                Problem(
                    "protocols",
                    "empty",
                    "protocols: --protocols is empty: give the protocols file's path",
                )
            ),
            fmt,
        )
    path, origin = protocols.resolve(chosen)
    try:
        return protocols.load(path, origin)
    except ProtocolFileError as exc:
        fail(exc, fmt)


def today() -> str:
    return dt.date.today().isoformat()


# --- commands -----------------------------------------------------------------------------------


@click.group(epilog=EXIT_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dosecalc", message="%(prog)s %(version)s")
@protocols_option
@click.pass_context
def cli(ctx: click.Context, protocols_file: str | None) -> None:
    """Weight-based IV infusion dose sheets that refuse rather than guess."""
    ctx.obj = {"protocols_file": protocols_file}


@cli.command(epilog=EXIT_HELP)
@click.option(
    "--weight", metavar="QUANTITY", help='Patient weight with its unit: "72 kg", "158 lb".'
)
@click.option("--patient-id", metavar="ID", help="1-64 letters, digits, '-' or '_'.")
@click.option("--name", metavar="TEXT", help="Patient name (shown on the sheet, never logged).")
@click.option(
    "--dose",
    metavar="QUANTITY",
    help='Dose in the protocol\'s form, overriding it ("0.75 mg/kg", "1.5 mg/m2").',
)
@click.option("--duration", metavar="QUANTITY", help='Infusion duration ("40 min").')
@click.option(
    "--height",
    metavar="QUANTITY",
    help='Height, where the protocol needs it ("170 cm", "1.7 m", "67 in").',
)
@click.option(
    "--sex",
    metavar="female|male",
    help="Sex, where the protocol needs it (ideal body weight).",
)
@click.option(
    "--stock", metavar="QUANTITY", help='Vial strength from the protocol list ("50 mg/mL").'
)
@click.option(
    "--override", "override_reason", metavar="REASON", help="Reason to pass a soft limit."
)
@order_options
@protocols_option
@click.option(
    "--format", "fmt", type=click.Choice(list(FORMATS)), default="text", show_default=True
)
@paper_option
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    help="Write the sheet to FILE (atomically). A PDF is never written to a terminal.",
)
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
@click.option(
    "--audit-log",
    envvar="DOSECALC_AUDIT_LOG",
    metavar="FILE",
    help="Append one JSON line per sheet or refusal ($DOSECALC_AUDIT_LOG).",
)
def sheet(
    weight: str | None,
    patient_id: str | None,
    name: str | None,
    dose: str | None,
    duration: str | None,
    height: str | None,
    sex: str | None,
    stock: str | None,
    override_reason: str | None,
    protocol_id: str | None,
    operator: str | None,
    date: str | None,
    protocols_file: str | None,
    fmt: str,
    paper: str,
    output: str | None,
    force: bool,
    audit_log: str | None,
) -> None:
    """Print the dose sheet for one patient."""
    from dosecalc.model import Order, make_sheet
    from dosecalc.render import render

    if fmt == "pdf" and (not output or output == "-") and sys.stdout.isatty():
        # Binary PDF bytes would garble the terminal: ask for a file (or a redirect) instead.
        fail(
            InputError(
                Problem(
                    "output",
                    "pdf_to_terminal",
                    "output: a PDF is not written to a terminal; use --output FILE.pdf "
                    "or redirect stdout to a file",
                )
            ),
            fmt,
        )
    library = load_library(protocols_file, fmt)
    if weight is None:
        if not is_interactive():
            fail(
                InputError(
                    Problem(
                        "weight", "missing", 'weight: is required, for example --weight "72 kg"'
                    )
                ),
                fmt,
            )
        weight = click.prompt("Weight, with its unit (for example 72 kg)", err=True)
    order = Order(
        weight=weight or "",
        date=today() if date is None else date,
        protocol_id=protocol_id,
        patient_id=patient_id,
        name=name,
        dose=dose,
        duration=duration,
        stock=stock,
        override_reason=override_reason,
        operator=operator,
        height=height,
        sex=sex,
    )
    confirm = confirm_on_terminal(operator) if is_interactive() else None
    try:
        result = make_sheet(library, order, confirm)
    except (InputError, LimitError) as exc:
        if audit_log:
            try:
                _audit(audit_log, order, library, error=exc)
            except OutputError as audit_error:
                fail(DosecalcError([*audit_error.problems, *exc.problems]), fmt)
        fail(exc, fmt)
    try:
        if audit_log:
            _audit(audit_log, order, library, sheet=result)
        for warning in result.warnings:
            click.echo(f"dosecalc: warning: {warning.message}", err=True)
        if output and output != "-":
            from pathlib import Path

            from dosecalc.files import write_atomic

            write_atomic(Path(output), render(result, fmt, paper=paper), force=force)
            click.echo(f"dosecalc: sheet written to {output}", err=True)
        elif fmt == "text":
            from dosecalc.render.as_text import make_console, print_sheet

            print_sheet(result, make_console(sys.stdout))
        else:
            sys.stdout.buffer.write(render(result, fmt, paper=paper))
            sys.stdout.flush()
    except OutputError as exc:
        fail(exc, fmt)


def _audit(path: str, order: Any, library: Any, **outcome: Any) -> None:
    from pathlib import Path

    from dosecalc import audit

    audit.record(Path(path), order, library.path, library.sha256, **outcome)


def confirm_on_terminal(operator: str | None) -> Callable[[Sequence[Any]], tuple[str, str] | None]:
    """Show each soft-limit breach, ask to confirm, and ask for a reason (and operator)."""

    def confirm(breaches: Sequence[Any]) -> tuple[str, str] | None:
        for breach in breaches:
            click.echo(f"dosecalc: SOFT LIMIT: {breach.message}", err=True)
        if not click.confirm("Override the soft limit?", default=False, err=True):
            return None
        reason = click.prompt("Reason for the override", err=True)
        who = operator or click.prompt("Your name (operator)", err=True)
        return reason, who

    return confirm


@cli.group()
def protocols() -> None:
    """List, show and check protocols files."""


@protocols.command("list")
@protocols_option
def protocols_list(protocols_file: str | None) -> None:
    """List the protocols in the file in use."""
    from dosecalc.display import clean

    library = load_library(protocols_file)
    click.echo(f"{clean(library.path)} (sha256 {library.sha256}, {library.origin})")
    for pid, p in library.protocols.items():
        marker = "*" if pid == library.default else " "
        click.echo(f"{marker} {pid}  {clean(p.name)}  (version {clean(p.version)})")


@protocols.command("show")
@click.argument("protocol_id", metavar="ID")
@protocols_option
def protocols_show(protocol_id: str, protocols_file: str | None) -> None:
    """Show one protocol in full."""
    from dosecalc.display import clean, format_quantity

    library = load_library(protocols_file)
    try:
        p = library.get(protocol_id)
    except InputError as exc:
        fail(exc)
    rows = [
        ("id", p.id),
        ("name", clean(p.name)),
        ("drug", clean(p.drug)),
        ("indication", clean(p.indication)),
        ("version", clean(p.version)),
        ("dose", p.dose.text),
        ("duration", p.duration.text),
        ("stock", ", ".join(s.text for s in p.stock)),
        ("diluent", f"{clean(p.diluent)}, {p.diluent_volume.text}"),
        ("preparation", p.preparation),
        ("checkpoint every", p.checkpoint_every.text),
    ]
    rows += _basis_rows(p)
    rows += [(f"round {k}", format_quantity(v, _step_unit(p, k))) for k, v in p.steps.items()]
    for name, limit in p.limits.items():
        for level, bounds in (("soft", limit.soft), ("hard", limit.hard)):
            if bounds is not None:
                rows.append(
                    (
                        f"{level} {name}",
                        f"{format_quantity(bounds.low, limit.unit)} to "
                        f"{format_quantity(bounds.high, limit.unit)}",
                    )
                )
    click.echo(f"{clean(library.path)} (sha256 {library.sha256})")
    for key, value in rows:
        click.echo(f"{key:>20}: {value}")
    click.echo(f"{'advisory':>20}: {clean(p.advisory, keep_newlines=True).strip()}")
    for item in p.monitoring:
        click.echo(f"{'monitoring':>20}: {clean(item)}")


def _basis_rows(p: Any) -> list[tuple[str, str]]:
    """The dosing basis keys (issue 10), where the protocol sets them."""
    rows = []
    if p.divided_into is not None:
        rows.append(("divided into", f"{p.divided_into} doses a day"))
    for label, cap in (("dose max", p.dose_max), ("daily dose max", p.daily_dose_max)):
        if cap is not None:
            rows.append((label, cap.text))
    if p.per == "m2":
        rows.append(("bsa formula", p.bsa_formula))
    if p.basis != "actual" or p.weight_max is not None:
        rows.append(("dosing weight", p.basis))
        if p.basis == "adjusted":
            rows.append(("adjusted factor", str(p.adjusted_factor)))
        if p.bmi_trigger is not None:
            rows.append(("use when BMI at least", p.bmi_trigger.text))
        if p.weight_max is not None:
            rows.append(("dosing weight max", p.weight_max.text))
    return rows


def _step_unit(p: Any, key: str) -> str:
    from dosecalc.protocols import OPTIONAL_ROUNDED, ROUNDED

    return p.unit((ROUNDED | OPTIONAL_ROUNDED)[key][1])


@protocols.command("check")
@click.argument("file", metavar="FILE")
def protocols_check(file: str) -> None:
    """Validate a protocols file: exit 0 when valid, 3 with every problem listed."""
    from dosecalc import protocols as protocols_module

    try:
        library = protocols_module.load(file, "option")
    except ProtocolFileError as exc:
        click.echo(f"dosecalc: {len(exc.problems)} problem(s) in {file}", err=True)
        fail(exc)
    ids = ", ".join(library.protocols)
    click.echo(
        f"{file}: valid; {len(library.protocols)} protocol(s): {ids}; sha256 {library.sha256}"
    )


BATCH_EXIT_HELP = (
    "Exit codes: 0 every non-blank row produced a sheet; 1 a row was refused or invalid (the good "
    "rows are still written unless --strict); 2 bad header, usage or output folder (nothing "
    "written); 3 invalid protocols file."
)


@cli.command(epilog=BATCH_EXIT_HELP)
@click.argument("daylist", metavar="DAYLIST")
@click.option(
    "--out",
    metavar="DIR",
    help="Write <date>_<patient_id> sheets, results.csv, errors.csv and manifest.json here.",
)
@click.option(
    "--sheets",
    default="text",
    show_default=True,
    metavar="FORMATS",
    help="Comma-separated sheet formats to write with --out (e.g. text,json).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    help="Without --out: results on stdout as CSV (default) or JSON Lines.",
)
@click.option(
    "--input-format",
    type=click.Choice(["csv", "jsonl"]),
    help="Day list format (default: from the extension; csv for '-').",
)
@click.option(
    "--combined",
    metavar="FILE.pdf",
    help="Also write one PDF: a cover page listing every line, then a page per sheet.",
)
@paper_option
@click.option("--strict", is_flag=True, help="Write nothing at all if any row fails.")
@click.option("--force", is_flag=True, help="Replace existing files in --out and --combined.")
@order_options
@protocols_option
def batch(
    daylist: str,
    out: str | None,
    sheets: str,
    fmt: str | None,
    input_format: str | None,
    combined: str | None,
    paper: str,
    strict: bool,
    force: bool,
    protocol_id: str | None,
    operator: str | None,
    date: str | None,
    protocols_file: str | None,
) -> None:
    """Dose sheets for a day list (CSV or JSON Lines; '-' reads stdin)."""
    from pathlib import Path

    from dosecalc import batch as core

    if out is not None and fmt is not None:
        raise click.UsageError("--format applies without --out only (results go to stdout)")
    library = load_library(protocols_file)
    options = core.Options(
        date=today() if date is None else date,  # an empty --date is refused, not replaced
        protocol_id=protocol_id,
        operator=operator,
        out=Path(out) if out is not None else None,
        sheets=tuple(s.strip() for s in sheets.split(",")),
        output_format=fmt or "csv",
        input_format=input_format,
        strict=strict,
        force=force,
        paper=paper,
        combined=Path(combined) if combined is not None else None,
    )
    try:
        report = core.run(
            library,
            daylist,
            options,
            stdin=sys.stdin.buffer,
            stdout=sys.stdout.buffer,
            stderr=sys.stderr,
            progress=sys.stderr.isatty(),
        )
    except (InputError, OutputError) as exc:
        fail(exc)
    sys.exit(EXIT_REFUSED if report.failed else EXIT_OK)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="dosecalc")
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, without a traceback.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_REFUSED)
