"""The command line: click commands only. Parse, call the core, and turn errors into exit codes here.

Imports other than click are made where they are used, so `--help`, `--version` and `protocols
list` load little beyond click (issues 6 and 14: within 1.5x of `import click`). `protocols list`
shows the file's inventory (protocols_file.inventory) without pint; every command that computes a
dose loads and checks the whole file with pint (protocols.load).

Every dosecalc error carries its exit code (errors.py) and is reported once, by `Dosecalc.invoke`;
`main` adds the codes of the process itself: 130 (Ctrl-C), 143 (SIGTERM), 141 (broken pipe) and 4
(stdout failed, or a message to stderr was lost where the run would have exited 0).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, NoReturn, TypeVar

import click

from dosecalc import __version__
from dosecalc.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_PROTOCOLS,
    EXIT_REFUSED,
    EXIT_TERMINATED,
    DosecalcError,
    InputError,
    LimitError,
    OutputError,
    Problem,
    ProtocolFileError,
    Terminated,
    stdout_failed,
)
from dosecalc.render import DEFAULT_PAPER, FORMATS, PAPERS

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_PROTOCOLS",
    "EXIT_REFUSED",
    "EXIT_TERMINATED",
    "cli",
    "main",
]
EXIT_HELP = (
    "Exit codes: 0 sheet produced; 1 refused by a limit; 2 invalid input or usage; "
    "3 invalid protocols file; 4 output incomplete (stdout or a file could not be written "
    "completely, or a message to stderr was lost); 130 interrupted (Ctrl-C); 143 terminated "
    "(SIGTERM); 141 broken pipe (the reader of stdout went away)."
)
FORMAT_KEY = "dosecalc.format"  # ctx.meta: how a command reports its errors (text, or JSON too)
F = TypeVar("F", bound=Callable[..., Any])


def fail(error: DosecalcError, fmt: str | None = None) -> NoReturn:
    """Raise a domain error, to be reported once (stderr for people, a JSON error object on stdout
    for --format json) by `Dosecalc.invoke`. Without `fmt`, as the command chose (its
    ctx.meta[FORMAT_KEY]), else text."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and fmt is not None:
        ctx.meta[FORMAT_KEY] = fmt
    raise error


def report(error: DosecalcError, fmt: str = "text") -> int:
    """Write the error's messages (made safe for a terminal) and return its exit code."""
    from dosecalc import sanitize

    for problem in error.problems:
        click.echo(f"dosecalc: {sanitize.terminal(problem.message, None)}", err=True)
    # jsonl: `batch --format jsonl`, one object on one line, for a run that stops before its
    # results (exit 2 or 3; exit 4 is stdout itself failing).
    if fmt == "json" or (fmt == "jsonl" and error.exit_code in (EXIT_INVALID, EXIT_PROTOCOLS)):
        from dosecalc.render.as_json import dumps, error_object

        click.echo(dumps(error_object(error), indent=2 if fmt == "json" else None))
    return error.exit_code


class OnceEach(click.Command):
    """A command whose options each take one value (or are one flag) and may be given once.

    click keeps the last of a repeated option (`--weight "7.2 kg" --weight "72 kg"` is 72 kg);
    dosecalc refuses the repeat (a usage error, exit 2) rather than pick one. The parser reports
    every option in the order given, repeats included (its `param_order`), so this is checked
    once for every option here instead of in a callback per option. Options declared
    `multiple=True` or `count=True` may repeat; so may --help and --version, which only exit."""

    def make_parser(self, ctx: click.Context) -> Any:
        parser = super().make_parser(ctx)
        parse = parser.parse_args

        def parse_once(args: list[str]) -> Any:
            opts, rest, order = parse(args)
            if not ctx.resilient_parsing:  # shell completion parses what is typed so far
                for param in dict.fromkeys(order):
                    if order.count(param) > 1 and _takes_one_value(param):
                        name = next((o for o in param.opts if o.startswith("--")), param.opts[0])
                        raise click.BadOptionUsage(
                            name, f"{name}: given twice; give it once", ctx=ctx
                        )
            return opts, rest, order

        parser.parse_args = parse_once  # type: ignore[method-assign]
        return parser


def _takes_one_value(param: click.Parameter) -> bool:
    return (
        isinstance(param, click.Option)
        and param.expose_value
        and not param.multiple
        and not param.count
    )


class OnceEachGroup(OnceEach, click.Group):
    """A group whose options, and whose commands' and subgroups' options, may each be given once."""

    command_class = OnceEach
    group_class: type[click.Group | type] | None = type  # a subgroup is of the same class


class Dosecalc(OnceEachGroup):
    """The group: the one place a DosecalcError becomes its messages and its exit code."""

    group_class = OnceEachGroup  # a subgroup reports through this group, never on its own

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DosecalcError as error:
            ctx.exit(report(error, ctx.meta.get(FORMAT_KEY, "text")))
        except BrokenPipeError as exc:  # click itself would exit 1 ("refused by a limit")
            raise ReaderGone from exc


class ReaderGone(Exception):
    """The reader of stdout went away: `main` exits 141 (as a shell reports SIGPIPE)."""


def is_interactive() -> bool:
    """A person at a terminal (prompts allowed): stdin and stderr, where prompts are written, are
    a terminal (with `2>/dev/null` a prompt would wait unseen, as if hung). Tests replace this."""
    return (
        sys.stdin is not None
        and sys.stdin.isatty()
        and sys.stderr is not None
        and sys.stderr.isatty()
    )


def own_files(audit_log: str | None, library: Any, fmt: str, output: str | None = None) -> None:
    """The audit log and the sheet's --output are files of their own: never the protocols file,
    nor each other (the sheet replaced the log, or, with --force, the protocols file; the log's
    records broke the protocols file). Refused, exit 2."""
    from dosecalc.files import refuse_clash

    try:
        if output:
            refuse_clash("output", output, [("protocols file", library.path)])
        if audit_log:
            others = [("protocols file", library.path)] + ([("output", output)] if output else [])
            refuse_clash("audit_log", audit_log, others)
    except OutputError as exc:
        fail(exc, fmt)


class EndOfInput(Exception):
    """Ctrl-D (end of input) at a prompt: no answer, not an interrupt."""


def ask(prompt: str, check: Callable[[str], object] | None = None, *, yes_no: bool = False) -> Any:
    """click.prompt (or, `yes_no`, click.confirm, default no) on stderr. `check` refuses an answer
    (InputError): its message is shown and the question asked again. Ctrl-D raises EndOfInput,
    after a line end (so the next message starts on its own line)."""

    def checked(text: str) -> str:
        if check is not None:
            try:
                check(text)
            except InputError as exc:
                raise click.UsageError("; ".join(p.message for p in exc.problems)) from None
        return text

    def y_or_n(text: str) -> bool:  # click.confirm says only "Error: invalid input"
        answer = text.strip().lower()
        if answer not in ("y", "yes", "n", "no", ""):
            raise click.UsageError("answer y (yes) or n (no); just Enter is no")
        return answer in ("y", "yes")

    try:
        if yes_no:
            return click.prompt(
                f"{prompt} [y/N]", default="", show_default=False, err=True, value_proc=y_or_n
            )
        return click.prompt(prompt, err=True, value_proc=checked)
    except click.exceptions.Abort as exc:
        click.echo("", err=True)  # Ctrl-D or Ctrl-C: the next message on a line of its own
        if isinstance(exc.__context__, EOFError):
            raise EndOfInput from None
        raise


def required_or_asked(
    value: str | None,
    missing: Problem,
    prompt: str,
    fmt: str,
    check: Callable[[str], object] | None = None,
) -> str:
    """A required option: as given, else asked for at a terminal (again after an answer `check`
    refuses), else refused (exit 2); Ctrl-D at the prompt is the option missing (exit 2)."""
    if value is not None:
        return value
    if not is_interactive():
        fail(InputError(missing), fmt)
    try:
        return str(ask(prompt, check))
    except EndOfInput:
        fail(InputError(missing), fmt)


def a_weight(text: str) -> object:
    """The weight's grammar and unit, for the prompt: a bad answer is asked again."""
    from dosecalc.units import parse_quantity

    return parse_quantity(text, "weight", "weight")


# --- shared options -----------------------------------------------------------------------------


class Setting(click.Option):
    """An option that may also come from its environment variable: a variable that is set but
    empty is refused, naming it (click reads it as unset, which would silently fall back on the
    settings file or the default: no audit log, another operator), and an error in a value from
    the environment names the variable, not the option."""

    def value_from_envvar(self, ctx: click.Context) -> Any:
        empty = isinstance(self.envvar, str) and os.environ.get(self.envvar) == ""
        if empty and not ctx.resilient_parsing:
            raise click.BadParameter(
                "is set but empty: give a value, or unset it", ctx, self, self._from_environment()
            )
        return super().value_from_envvar(ctx)

    def get_error_hint(self, ctx: click.Context | None) -> str:
        source = ctx.get_parameter_source(str(self.name)) if ctx is not None else None
        if source == click.core.ParameterSource.ENVIRONMENT:
            return self._from_environment()
        return super().get_error_hint(ctx)

    def _from_environment(self) -> str:
        return f"'{self.envvar}' (the environment variable for '{self.opts[0]}')"


def protocols_option(func: F) -> F:
    return click.option(
        "--protocols",
        "protocols_file",
        metavar="FILE",
        help="Protocols file (default: $DOSECALC_PROTOCOLS, else the settings file's `protocols`, "
        "else the shipped protocols.toml).",
    )(func)


def complete_protocol_id(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion: the protocol ids in the protocols file the command would use."""
    from click.shell_completion import CompletionItem

    try:
        from dosecalc import protocols_file

        chosen = ctx.params.get("protocols_file") or (ctx.find_root().params.get("protocols_file"))
        path, origin = _protocols_source(chosen)
        listed = protocols_file.inventory(path, origin)  # the ids, as `protocols list` shows them
    except Exception:  # completion must never print a traceback into the user's shell
        return []
    return [
        CompletionItem(e.id, help=e.name) for e in listed.entries if e.id.startswith(incomplete)
    ]


def _protocols_source(chosen: str | None) -> tuple[str, str]:
    """Which protocols file: the option, else $DOSECALC_PROTOCOLS, else the config file's, else the
    shipped one (protocols_file.resolve for all but the config file)."""
    from dosecalc import protocols_file

    if chosen is None and not os.environ.get(protocols_file.ENV_PROTOCOLS):
        configured = _config().get("protocols")
        if configured is not None:
            return configured, "config"
    return protocols_file.resolve(chosen)


def _config() -> Any:
    """The settings file (read once per command); a bad file is an input error (exit 2)."""
    from dosecalc import config

    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    if root is not None and isinstance(root.obj, dict) and "config" in root.obj:
        return root.obj["config"]
    loaded = config.load()
    if root is not None and isinstance(root.obj, dict):
        root.obj["config"] = loaded
    return loaded


class PlainCount(click.IntRange):
    """A count as ASCII digits only: click's int() also takes " 2", "２" (fullwidth) and "2_0"."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not (value.isascii() and value.isdigit()):
            self.fail(f"{value!r} is not a whole number written in the digits 0-9.", param, ctx)
        return super().convert(value, param, ctx)


def order_options(func: F) -> F:
    """Options `sheet` and `batch` share: protocol, operator, date."""
    return _order_options(
        func,
        "Who overrides a soft limit ($DOSECALC_OPERATOR, or the settings file).",
        "Date on the sheet (default: today).",
    )


def check_order_options(func: F) -> F:
    """The same options for `check`, where the operator is the checking nurse."""
    return _order_options(
        func,
        "You, the checking nurse: required ($DOSECALC_OPERATOR, or the settings file; asked for "
        "at a terminal).",
        "Date of the check, as on the sheet (default: today).",
    )


def _order_options(func: F, operator_help: str, date_help: str) -> F:
    for option in reversed(
        (
            click.option(
                "--protocol",
                "protocol_id",
                metavar="ID",
                help="Protocol id.",
                shell_complete=complete_protocol_id,
            ),
            click.option(
                "--operator",
                cls=Setting,
                envvar="DOSECALC_OPERATOR",
                metavar="NAME",
                help=operator_help,
            ),
            click.option("--date", metavar="YYYY-MM-DD", help=date_help),
        )
    ):
        func = option(func)
    return func


def vitals_options(func: F) -> F:
    """The pre-infusion vitals (the protocol's preinfusion gate checks them)."""
    for option in reversed(
        (
            click.option(
                "--bp", metavar="SYS/DIA", help="Blood pressure before the infusion: 128/82 (mmHg)."
            ),
            click.option("--hr", metavar="N", help="Heart rate before the infusion: 76 (/min)."),
            click.option("--spo2", metavar="N", help="SpO2 before the infusion: 98 or 98%."),
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
        cls=Setting,
        envvar="DOSECALC_PAPER",
        help="Page size for HTML and PDF sheets ($DOSECALC_PAPER).",
    )(func)


def load_library(protocols_file: str | None, fmt: str | None = None) -> Any:
    """The protocols library from the command's option or the group's (they must agree), loaded
    and validated in full (pint checks every unit and formula)."""
    from dosecalc import protocols

    path, origin = protocols_source(protocols_file, fmt)
    try:
        return protocols.load(path, origin)
    except ProtocolFileError as exc:
        fail(exc, fmt)


def protocols_source(protocols_file: str | None, fmt: str | None = None) -> tuple[str, str]:
    """Which protocols file the command uses, and why: the command's option or the group's (they
    must agree), never an empty one, then the environment, the settings file, the shipped file."""
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
    from dosecalc.protocols_file import ENV_PROTOCOLS

    # An empty option or variable (an unset shell variable) never means the next file in line.
    empty = "--protocols" if chosen == "" else None
    if chosen is None and os.environ.get(ENV_PROTOCOLS) == "":
        empty = ENV_PROTOCOLS
    if empty is not None:
        fail(
            ProtocolFileError(
                Problem(
                    "protocols",
                    "empty",
                    f"protocols: {empty} is empty: give the protocols file's path",
                )
            ),
            fmt,
        )
    return _protocols_source(chosen)


def today() -> str:
    return dt.date.today().isoformat()


# --- commands -----------------------------------------------------------------------------------


@click.group(
    cls=Dosecalc, epilog=EXIT_HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="dosecalc", message="%(prog)s %(version)s")
@protocols_option
@click.pass_context
def cli(ctx: click.Context, protocols_file: str | None) -> None:
    """Weight-based IV infusion dose sheets that refuse rather than guess."""
    ctx.obj = {"protocols_file": protocols_file}
    if ctx.resilient_parsing:  # shell completion: never fail on a bad settings file
        return
    try:
        settings = _config()
    except InputError as exc:
        fail(exc)
    # The settings file fills in options after the command line and the environment (click's
    # default_map comes after both), before the built-in defaults.
    given = {k: settings.get(k) for k in ("operator", "paper", "audit_log")}
    given = {k: v for k, v in given.items() if v is not None}
    ctx.default_map = {
        "sheet": given,
        "batch": {k: v for k, v in given.items() if k != "audit_log"},
        "config": given,
    }


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
    "--dose-rate",
    metavar="QUANTITY",
    help='Starting dose rate of a continuous infusion, overriding it ("7.5 mcg/kg/min").',
)
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
    "--stock",
    metavar="STRENGTH",
    help='Vial strength, equal to one on the protocol\'s list ("50 mg/mL", "250 mg/5 mL", "20%").',
)
@click.option(
    "--drop-factor",
    metavar="QUANTITY",
    help='Gravity giving set: drops per mL, "10 gtt/mL", 15, 20 or 60; adds drops per minute.',
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
    help="Write the sheet to FILE (atomically; a file, never a folder). A PDF is never written to "
    "a terminal.",
)
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
@click.option(
    "--audit-log",
    cls=Setting,
    envvar="DOSECALC_AUDIT_LOG",
    metavar="FILE",
    help="Append one JSON line per sheet or refusal ($DOSECALC_AUDIT_LOG).",
)
@vitals_options
def sheet(
    weight: str | None,
    patient_id: str | None,
    name: str | None,
    dose: str | None,
    duration: str | None,
    dose_rate: str | None,
    height: str | None,
    sex: str | None,
    stock: str | None,
    drop_factor: str | None,
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
    bp: str | None,
    hr: str | None,
    spo2: str | None,
) -> None:
    """Print the dose sheet for one patient."""
    from dosecalc.model import Order
    from dosecalc.render import render

    if fmt == "pdf" and (not output or output == "-") and _is_terminal(sys.stdout):
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
    for option, value in (("output", output), ("audit_log", audit_log)):
        if value == "":  # an unset shell variable: never stdout, never "no log"
            fail(empty_path(option), fmt)
    if fmt == "text" and output in (None, "-"):
        refuse_a_narrow_terminal(fmt)
    if force and (output is None or output == "-"):  # nothing it could replace
        raise click.UsageError("--force applies with --output FILE only (the file it replaces)")
    if output is not None and output != "-":
        refuse_a_folder("output", output, fmt)
    library = load_library(protocols_file, fmt)
    own_files(audit_log, library, fmt, output if output not in (None, "-") else None)
    weight = required_or_asked(
        weight,
        Problem("weight", "missing", 'weight: is required, for example --weight "72 kg"'),
        "Weight, with its unit (for example 72 kg)",
        fmt,
        a_weight,
    )
    order = Order(
        weight=weight,
        date=today() if date is None else date,
        protocol_id=protocol_id,
        patient_id=patient_id,
        name=name,
        dose=dose,
        duration=duration,
        stock=stock,
        override_reason=override_reason,
        operator=operator,
        bp=bp,
        hr=hr,
        spo2=spo2,
        height=height,
        sex=sex,
        drop_factor=drop_factor,
        dose_rate=dose_rate,
    )
    to_file = output is not None and output != "-"
    if to_file and not force and os.path.lexists(output):  # type: ignore[arg-type]
        from pathlib import Path

        from dosecalc.files import exists_error

        _refuse(exists_error(Path(output)), audit_log, order, library, fmt)  # type: ignore[arg-type]
    if not to_file and sys.stdout is None:
        _refuse(closed_stdout(), audit_log, order, library, fmt)
    confirm = confirm_on_terminal(operator) if is_interactive() else None
    try:
        result = calculate(library, order, confirm)
    except (InputError, LimitError) as exc:
        _refuse(exc, audit_log, order, library, fmt)
    # Rendered once, before the record is logged: a text sheet for stdout in the console's own
    # form (styled at a terminal), every other sheet as the bytes written.
    console: Any = None
    if fmt == "text" and not to_file:
        from dosecalc.render.as_text import for_console, make_console

        console = make_console(sys.stdout)
        shown = for_console(result, console)
    else:
        data = render(result, fmt, paper=paper)
    if audit_log:  # logged before the sheet is shown: never a sheet without its record
        _audit(audit_log, order, library, fmt, sheet=result)
    for warning in result.warnings:
        click.echo(f"dosecalc: warning: {warning.message}", err=True)
    if to_file:
        from pathlib import Path

        from dosecalc.files import shown_path, write_atomic

        try:
            write_atomic(Path(output), data, force=force)  # type: ignore[arg-type]
        except OutputError as exc:
            if audit_log:  # the log already says "sheet": say that it never reached its file
                _audit(audit_log, order, library, fmt, error=exc, event="output_failed")
            fail(exc, fmt)
        click.echo(f"dosecalc: sheet written to {shown_path(output)}", err=True)  # type: ignore[arg-type]
    else:
        try:
            if console is not None:
                console.file.write(shown)
                console.file.flush()
            else:
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
        except BaseException as exc:  # a full disk, a reader gone, Ctrl-C or SIGTERM mid-write
            if audit_log:  # the log already says "sheet": say that it may not have been shown
                from dosecalc.stopping import held

                with held(then_stop=False):
                    failed = stdout_failed(exc)
                    _audit(audit_log, order, library, fmt, error=failed, event="output_failed")
            raise


def calculate(library: Any, order: Any, confirm: Any = None) -> Any:
    """model.make_sheet (which reports an arithmetic failure of the engine as invalid input)."""
    from dosecalc.model import make_sheet

    return make_sheet(library, order, confirm)


CHECK_EXIT_HELP = (
    "Exit codes: 0 every value entered matches this computation; 1 a mismatch, or the computation "
    "is refused by a limit; 2 invalid input or usage; 3 invalid protocols file; 4 output "
    "incomplete (stdout could not be written, or a message to stderr was lost)."
)


@cli.command(epilog=CHECK_EXIT_HELP)
@click.option(
    "--weight", metavar="QUANTITY", help='The weight you confirmed, with its unit: "72 kg".'
)
@click.option("--patient-id", metavar="ID", help="1-64 letters, digits, '-' or '_' (audit log).")
@click.option("--dose", metavar="QUANTITY", help='Dose per kg, as prescribed ("0.75 mg/kg").')
@click.option("--duration", metavar="QUANTITY", help='Infusion duration ("40 min").')
@click.option("--stock", metavar="QUANTITY", help='Vial strength prescribed ("50 mg/mL").')
@click.option(
    "--dose-rate",
    metavar="QUANTITY",
    help='Dose rate of a continuous infusion, as prescribed ("7.5 mcg/kg/min").',
)
@click.option(
    "--height", metavar="QUANTITY", help='Height, where the protocol needs it ("170 cm").'
)
@click.option("--sex", metavar="female|male", help="Sex, where the protocol needs it.")
@click.option(
    "--drop-factor",
    metavar="QUANTITY",
    help='Gravity giving set, as prescribed: "10 gtt/mL", 15, 20 or 60 (the code covers it).',
)
@click.option(
    "--override", "override_reason", metavar="REASON", help="Reason to pass a soft limit."
)
@click.option(
    "--vial",
    metavar="QUANTITY",
    help='Strength on the vial in your hands: "10 mg/mL", "1000 units/mL".',
)
@click.option("--drawn", metavar="QUANTITY", help='Volume drawn up in the syringe: "3.6 mL".')
@click.option("--rate", metavar="QUANTITY", help='Rate on the pump: "155.4 mL/h".')
@click.option("--vtbi", metavar="QUANTITY", help='VTBI on the pump: "103.6 mL".')
@click.option("--code", metavar="XXXX-XXXX", help="The check code printed on the sheet.")
@check_order_options
@protocols_option
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--audit-log",
    cls=Setting,
    envvar="DOSECALC_AUDIT_LOG",
    metavar="FILE",
    help="Append one JSON line per check ($DOSECALC_AUDIT_LOG).",
)
def check(
    weight: str | None,
    patient_id: str | None,
    dose: str | None,
    duration: str | None,
    stock: str | None,
    dose_rate: str | None,
    height: str | None,
    sex: str | None,
    drop_factor: str | None,
    override_reason: str | None,
    vial: str | None,
    drawn: str | None,
    rate: str | None,
    vtbi: str | None,
    code: str | None,
    protocol_id: str | None,
    operator: str | None,
    date: str | None,
    protocols_file: str | None,
    fmt: str,
    audit_log: str | None,
) -> None:
    """Blind independent double check: recompute from the weight you confirmed and compare what is
    in your hands and on the pump, without looking at the sheet. Give at least one of --vial,
    --drawn, --rate, --vtbi or --code, and --operator (you, the checking nurse: required)."""
    from dosecalc.double_check import double_check
    from dosecalc.model import Order
    from dosecalc.render import as_check

    if audit_log == "":  # an unset shell variable: never "no log" (a check is signed and logged)
        fail(empty_path("audit_log"), fmt)
    if fmt == "text":
        refuse_a_narrow_terminal(fmt)
    library = load_library(protocols_file, fmt)
    own_files(audit_log, library, fmt)
    weight = required_or_asked(
        weight,
        Problem(
            "weight",
            "missing",
            'weight: is required: the weight you confirmed, for example --weight "72 kg"',
        ),
        "Weight you confirmed, with its unit (for example 72 kg)",
        fmt,
        a_weight,
    )
    operator = required_or_asked(
        operator,
        Problem(
            "operator",
            "operator_required",
            "operator: a double check is signed: give the checking nurse's name with "
            "--operator NAME or DOSECALC_OPERATOR",
        ),
        "Your name (the checking nurse)",
        fmt,
    )
    order = Order(
        weight=weight,
        date=today() if date is None else date,
        protocol_id=protocol_id,
        patient_id=patient_id,
        dose=dose,
        duration=duration,
        stock=stock,
        override_reason=override_reason,
        operator=operator,
        dose_rate=dose_rate,
        height=height,
        sex=sex,
        drop_factor=drop_factor,
    )
    entered = {"vial": vial, "drawn": drawn, "rate": rate, "vtbi": vtbi}
    confirm = confirm_on_terminal(operator) if is_interactive() else None
    try:
        outcome = double_check(library, order, entered, code, confirm)
    except (InputError, LimitError) as exc:
        if audit_log:
            try:
                _audit_check(audit_log, order, {**entered, "code": code}, library, error=exc)
            except OutputError as audit_error:
                fail(DosecalcError([*audit_error.problems, *exc.problems]), fmt)
        fail(exc, fmt)
    try:
        if audit_log:
            _audit_check(
                audit_log,
                order,
                {**entered, "code": code},
                library,
                outcome=as_check.check_object(outcome),
            )
    except OutputError as exc:
        fail(exc, fmt)
    for warning in outcome.sheet.warnings:
        click.echo(f"dosecalc: warning: {warning.message}", err=True)
    if fmt == "json":
        click.echo(as_check.render_json(outcome), nl=False)
    else:
        from dosecalc.render.wrap import layout_width

        click.echo(as_check.text(outcome, width=layout_width(sys.stdout)), nl=False)
    sys.exit(EXIT_OK if outcome.matches else EXIT_REFUSED)


def _audit_check(
    path: str, order: Any, entered: dict[str, str | None], library: Any, **outcome: Any
) -> None:
    from pathlib import Path

    from dosecalc import audit

    audit.record_check(Path(path), order, entered, library.path, library.sha256, **outcome)


def empty_path(option: str) -> InputError:
    flag = "--" + option.replace("_", "-")
    return InputError(
        Problem(
            option, "empty", f"{option}: {flag} is empty: give a path (or leave the option out)"
        )
    )


def refuse_a_narrow_terminal(fmt: str) -> None:
    """Text for a terminal narrower than wrap.MIN_WIDTH: refused before anything is computed, as
    rich's boxes would cut its figures short (the rate "151." for 151.1 mL/h, with no unit)."""
    from dosecalc.render.wrap import MIN_WIDTH, terminal_width

    width = terminal_width(sys.stdout)
    if width is not None and width < MIN_WIDTH:
        fail(
            OutputError(
                Problem(
                    "output",
                    "terminal_too_narrow",
                    f"output: the terminal is {width} columns wide; a sheet needs at least "
                    f"{MIN_WIDTH}: widen the window, or write it to a file with --output FILE",
                )
            ),
            fmt,
        )


def refuse_a_folder(option: str, path: str, fmt: str | None = None) -> None:
    """--output, --combined: a file's path. A folder (one that exists, or a name ending in '/')
    is refused, never replaced by a file or written into."""
    from dosecalc import sanitize

    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        flag = "--" + option.replace("_", "-")
        fail(
            InputError(
                Problem(
                    option,
                    "folder",
                    f"{option}: {flag} '{sanitize.terminal(path, None)}' names a folder: give "
                    "the path of a file",
                )
            ),
            fmt,
        )


def closed_stdout() -> OutputError:
    return OutputError(
        Problem("output", "stdout_closed", "output: stdout is closed; use --output FILE")
    )


def _is_terminal(stream: Any) -> bool:
    return stream is not None and stream.isatty()


def _refuse(
    error: DosecalcError, audit_log: str | None, order: Any, library: Any, fmt: str
) -> NoReturn:
    """A refusal: logged as one (when there is a log), then reported."""
    if audit_log:
        _audit(audit_log, order, library, fmt, error=error, first=error)
    fail(error, fmt)


def _audit(
    path: str,
    order: Any,
    library: Any,
    fmt: str,
    first: DosecalcError | None = None,
    **outcome: Any,
) -> None:
    """Append the record; a log that cannot be written is an error (with `first`, the one that
    was being logged, so neither is lost)."""
    from pathlib import Path

    from dosecalc import audit

    try:
        audit.record(Path(path), order, library.path, library.sha256, **outcome)
    except OutputError as audit_error:
        problems = [*audit_error.problems, *(first.problems if first else [])]
        fail(OutputError(problems), fmt)


def confirm_on_terminal(operator: str | None) -> Callable[[Sequence[Any]], tuple[str, str] | None]:
    """Show each soft-limit breach, ask to confirm, and ask for a reason (and operator)."""

    def confirm(breaches: Sequence[Any]) -> tuple[str, str] | None:
        for breach in breaches:
            click.echo(f"dosecalc: SOFT LIMIT: {breach.message}", err=True)
        try:  # Ctrl-D at any of these questions: not confirmed (exit 1), as a "no"
            if not ask("Override the soft limit?", yes_no=True):
                return None
            reason = ask("Reason for the override")
            who = operator or ask("Your name (operator)")
        except EndOfInput:
            return None
        return reason, who

    return confirm


@cli.command("config")
@protocols_option
@click.option(
    "--operator", cls=Setting, envvar="DOSECALC_OPERATOR", metavar="NAME", help="As for sheet."
)
@paper_option
@click.option(
    "--audit-log", cls=Setting, envvar="DOSECALC_AUDIT_LOG", metavar="FILE", help="As for sheet."
)
def config_command(
    protocols_file: str | None, operator: str | None, paper: str, audit_log: str | None
) -> None:
    """Show each effective setting and where it came from.

    Precedence: command-line option, then environment variable, then the settings file
    (config.toml in the app directory, or $DOSECALC_CONFIG), then the built-in default.
    """
    from click.core import ParameterSource

    from dosecalc import config
    from dosecalc.protocols_file import shipped_path
    from dosecalc.sanitize import terminal

    printable = partial(terminal, limit=None)  # paths and values in full, escaped

    ctx = click.get_current_context()
    settings = _config()
    protocols_source(protocols_file)  # refused as every command refuses it (empty, given twice)
    group_value = (ctx.find_root().obj or {}).get("protocols_file")
    given: dict[str, tuple[str | None, str]] = {
        "protocols": (protocols_file or group_value, "--protocols")
    }
    for key, option, value in (
        ("operator", "--operator", operator),
        ("paper", "--paper", paper),
        ("audit_log", "--audit-log", audit_log),
    ):
        from_command_line = ctx.get_parameter_source(key) == ParameterSource.COMMANDLINE
        given[key] = (value if from_command_line else None, option)
    where = settings.path or f"none (${config.ENV_CONFIG} is empty)"
    state = "" if not settings.path else (" (found)" if settings.found else " (not found)")
    click.echo(f"{'config file':<11}  {printable(where)}{state}")
    for key, value, source in config.effective(settings, given, shipped_path()):
        click.echo(f"{key:<11}  {printable(value)}  [{printable(source)}]")


@cli.group()
def protocols() -> None:
    """List, show and check protocols files."""


@protocols.command("list")
@protocols_option
def protocols_list(protocols_file: str | None) -> None:
    """List the protocols in the file in use: id, name, version, and the file's SHA-256.

    A list, not a validation: the file is read and its ids, names and versions checked, as every
    sheet reads it; its units, formulas and limits are checked by every sheet and by `protocols
    check`."""
    from dosecalc import protocols_file as source
    from dosecalc import sanitize

    path, origin = protocols_source(protocols_file)
    try:
        listed = source.inventory(path, origin)
    except ProtocolFileError as exc:
        fail(exc)
    click.echo(f"{sanitize.terminal(listed.path, None)} (sha256 {listed.sha256}, {listed.origin})")
    ids = max((len(pid) for pid, _, _ in listed.entries), default=0)
    width = None
    if _is_terminal(sys.stdout):  # broken at its width, never inside "50 mL" (not imported else)
        from dosecalc.render.wrap import fill, terminal_width

        width = terminal_width(sys.stdout)
    for pid, name, version in listed.entries:
        marker = "*" if pid == listed.default else " "
        line = f"{marker} {pid:<{ids}}  {sanitize.text(name)}  (version {sanitize.text(version)})"
        click.echo(line if width is None else fill(line, width, indent=ids + 4))


@protocols.command("show")
@click.argument("protocol_id", metavar="ID")
@protocols_option
def protocols_show(protocol_id: str, protocols_file: str | None) -> None:
    """Show one protocol in full."""
    from dosecalc import sanitize
    from dosecalc.display import format_number, format_quantity
    from dosecalc.protocols import SETTINGS
    from dosecalc.render.wrap import fill, terminal_width

    clean = sanitize.text  # protocol text shown as it is, unsafe characters removed

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
        ("dose rate" if p.continuous else "dose", p.dose.text),
        *_settings(p, ("duration",)),
        ("stock", ", ".join(s.text for s in p.stock)),
        ("preparation", p.preparation),
        *_settings(p, SETTINGS),
    ]
    if p.titration:
        rows.append(("titration", ", ".join(t.text for t in p.titration)))
    rows += _settings(p, ("checkpoint_every",))
    rows.append(("max rounding change", f"{format_number(p.max_rounding_change * 100)}%"))
    rows += _basis_rows(p)
    rows += [(f"round {k}", format_quantity(v, _step_unit(p, k))) for k, v in p.steps.items()]
    rows += _limit_rows(p.limits)
    rows += _preinfusion_rows(p)
    rows.append(("advisory", clean(p.advisory, keep_newlines=True).strip()))
    rows += [("monitoring", clean(item)) for item in p.monitoring]
    if p.monitoring_grid:
        rows.append(("monitoring grid", ", ".join(clean(r) for r in p.monitoring_grid)))
    if p.monitoring_times:
        rows.append(("monitoring times", ", ".join(clean(t) for t in p.monitoring_times)))
    click.echo(f"{sanitize.terminal(library.path, None)} (sha256 {library.sha256})")
    width = terminal_width(sys.stdout)  # at a terminal, long values are broken at its width
    for key, value in rows:
        line = f"{key:>20}: " + value.replace("\n", "\n" + " " * 22)  # paragraphs line up
        if width:
            line = "\n".join(fill(part, width, min(22, width // 2)) for part in line.split("\n"))
        click.echo(line)


def _limit_rows(limits: Any, prefix: str = "") -> list[tuple[str, str]]:
    """'soft dose: 10 mg to 75 mg' rows, soft before hard, for each limit that has them."""
    from dosecalc.display import format_quantity

    rows = []
    for name, limit in limits.items():
        for level, bounds in (("soft", limit.soft), ("hard", limit.hard)):
            if bounds is not None:
                low = format_quantity(bounds.low, limit.unit)
                high = format_quantity(bounds.high, limit.unit)
                rows.append((f"{prefix}{level} {name}", f"{low} to {high}"))
    return rows


def _preinfusion_rows(p: Any) -> list[tuple[str, str]]:
    """The pre-infusion gate (vitals' limits, whether they are required, the checklist), which a
    pharmacist reviewing the protocol needs to see as much as the dose limits."""
    from dosecalc.sanitize import text

    gate = p.preinfusion
    if gate is None:
        return [("pre-infusion gate", "none")]
    required = "vitals required" if gate.required else "vitals optional (NOT CHECKED if not given)"
    rows = [("pre-infusion gate", required)]
    rows += _limit_rows(gate.limits, "gate ")
    rows += [("gate checklist", text(item)) for item in gate.checklist]
    return rows


def _settings(p: Any, keys: tuple[str, ...]) -> list[tuple[str, str]]:
    """The protocol's settings among `keys` that it has, as (label, text) rows."""
    from dosecalc.sanitize import text

    rows = []
    for key in keys:
        value = getattr(p, key)
        if value:
            rows.append(
                (key.replace("_", " "), text(value) if isinstance(value, str) else value.text)
            )
    return rows


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
    """Validate a protocols file: every key, and a sheet tried from each protocol across its weight
    limits (one no patient can have a sheet from is invalid). Exit 0 when valid, 3 with every
    problem listed."""
    from dosecalc import protocols as protocols_module
    from dosecalc.files import shown_path

    try:
        library = protocols_module.load(file, "option")
    except ProtocolFileError as exc:
        click.echo(f"dosecalc: {len(exc.problems)} problem(s) in {shown_path(file)}", err=True)
        fail(exc)
    # Each protocol must give a sheet to some patient: tried across its weight limits.
    from dosecalc.model import trial_refusals

    problems = []
    for pid, protocol in library.protocols.items():
        refusals = trial_refusals(library, protocol, today())
        if refusals:
            problems.append(
                Problem(
                    f"protocols.{pid}",
                    "no_sheet",
                    f"protocols.{pid}: no sheet can be made from it in {len(refusals)} tries "
                    f"across its soft and hard weight limits; {refusals[0]}",
                )
            )
    if problems:
        click.echo(f"dosecalc: {len(problems)} problem(s) in {shown_path(file)}", err=True)
        fail(ProtocolFileError(problems))
    ids = ", ".join(library.protocols)
    click.echo(
        f"{shown_path(file)}: valid; {len(library.protocols)} protocol(s): {ids}; sha256 {library.sha256}"
    )


BATCH_EXIT_HELP = (
    "Exit codes: 0 every non-blank line produced a sheet; 1 a line was refused or invalid (the "
    "good rows are still written unless --strict); 2 bad header, a quoted field over several "
    "lines, a day list that cannot be read or changed while it was read, usage, output folder or "
    "audit log (nothing written); 3 invalid protocols file; 4 a write failed part-way (this run's "
    "files removed, or an INCOMPLETE marker left), the results could not be written to stdout, or "
    "the summary on stderr was lost (the files are complete); 130 interrupted (Ctrl-C; this run's "
    "files removed); 143 terminated (SIGTERM; the same; a stop after the run is complete is "
    "ignored); 141 broken pipe."
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
    help="With --out only: comma-separated sheet formats to write, each once (e.g. text,json).",
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
    help="Also write one PDF (a name ending in .pdf): a cover page listing every line, then a page "
    "per sheet.",
)
@paper_option
@click.option("--strict", is_flag=True, help="Write nothing at all if any row fails.")
@click.option("--force", is_flag=True, help="Replace existing files in --out and --combined.")
@click.option(
    "--audit-log",
    cls=Setting,
    envvar="DOSECALC_AUDIT_LOG",
    metavar="FILE",
    help="Append one JSON line per row and one for the run ($DOSECALC_AUDIT_LOG).",
)
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress display on stderr (shown at a terminal only)."
)
@click.option(
    "--jobs",
    type=PlainCount(1, 64),
    metavar="N",
    help="Processes computing rows (default: the CPUs, for a long list); the output is the same.",
)
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
    audit_log: str | None,
    quiet: bool,
    jobs: int | None,
    protocol_id: str | None,
    operator: str | None,
    date: str | None,
    protocols_file: str | None,
) -> None:
    """Dose sheets for a day list (CSV or JSON Lines; '-' reads stdin)."""
    from pathlib import Path

    from click.core import ParameterSource

    from dosecalc import batch as core
    from dosecalc import sanitize

    if out is not None and fmt is not None:
        raise click.UsageError("--format applies without --out only (results go to stdout)")
    ctx = click.get_current_context()
    # A run that stops (exit 2 or 3) writes its reason to stdout too, as one dosecalc.error/1
    # line, where stdout is JSON Lines: a script reading only stdout sees why it has no rows.
    ctx.meta[FORMAT_KEY] = "jsonl" if fmt == "jsonl" else "text"
    if out is None and ctx.get_parameter_source("sheets") != ParameterSource.DEFAULT:
        raise click.UsageError("--sheets applies with --out only (sheets are written there)")
    if force and out is None and combined is None:  # nothing it could replace
        raise click.UsageError("--force applies with --out or --combined only (files it replaces)")
    for option, value in (("out", out), ("combined", combined), ("audit_log", audit_log)):
        if value == "":  # an unset shell variable: never the current folder, never "no log"
            fail(empty_path(option))
    if combined is not None:
        refuse_a_folder("combined", combined)
        if not combined.lower().endswith(".pdf"):  # it is a PDF, whatever its name says
            fail(
                InputError(
                    Problem(
                        "combined",
                        "not_pdf",
                        f"combined: --combined '{sanitize.terminal(combined, None)}' does not end "
                        "in .pdf: the combined file is a PDF; give it a name ending in .pdf",
                    )
                )
            )
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
        audit_log=Path(audit_log) if audit_log else None,
        quiet=quiet,
        jobs=jobs,
    )
    report = core.run(
        library,
        daylist,
        options,
        stdin=sys.stdin.buffer if sys.stdin is not None else None,
        stdout=sys.stdout.buffer if sys.stdout is not None else None,
        stderr=sys.stderr,
        progress=_is_terminal(sys.stderr),
    )
    sys.exit(EXIT_REFUSED if report.failed else EXIT_OK)


class Messages:
    """stderr, where a message that cannot be written (`2>/dev/full`, a full disk) is dropped and
    remembered instead of raised: a failing stderr never changes a refusal's exit code, never
    cuts short what goes to stdout, and never ends in a traceback. `main` exits 4 where the run
    would have exited 0, so that a script sees that a warning or the summary was lost."""

    def __init__(self, stream: Any) -> None:
        from dosecalc.render.wrap import terminal_width

        self.stream = stream
        self.failed = False
        # At a terminal, lines are broken at its width here, at spaces: a terminal breaks a long
        # line at its last column, whatever is there ("(range 10 mg to 7" / "5 mg)").
        self.width = terminal_width(stream)

    def write(self, text: str) -> int:
        if self.width is not None and "\x1b" not in text and "\r" not in text:
            from dosecalc.render.wrap import fill

            # Not a progress bar's redrawn line (\r) or styled text: plain messages and prompts.
            text = "\n".join(fill(line, self.width, 2) for line in text.split("\n"))
        try:
            return int(self.stream.write(text))
        except OSError:
            self._lost()
            return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError:
            self._lost()

    def _lost(self) -> None:
        # What is still buffered would fail again at every write and at exit: let it go nowhere.
        self.failed = True
        _to_devnull(self.stream)
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, isatty, ...
        return getattr(self.stream, name)


def main() -> None:
    """Console-script entry point: the process-level exit codes (130, 143, 141, 4) are decided
    here."""
    if sys.stderr is None:  # `2>&-`: messages go nowhere, but the exit code must still be right
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    messages = Messages(sys.stderr)
    sys.stderr = messages
    code: str | int | None
    try:
        code = _run()
    except SystemExit as stop:  # sys.exit in a command (check, batch)
        code = stop.code
    finally:
        messages.flush()
        sys.stderr = messages.stream
    if messages.failed and code in (None, EXIT_OK):
        code = EXIT_INCOMPLETE
    sys.exit(code)


def _run() -> int:
    """The command's exit code, with the process-level ones (130, 143, 141, 4 for stdout)."""
    from dosecalc import stopping

    try:
        replaced = stopping.install()
        try:
            code = cli.main(prog_name="dosecalc", standalone_mode=False)
        finally:  # a late SIGTERM ends the process as by default (143), or after a complete batch
            # run (stopping.finished) is ignored: the process is only exiting
            stopping.restore(replaced)
        _flush_stdout()
    except click.exceptions.Exit as stop:
        _flush_stdout()
        code = stop.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        # Ctrl-C, or SIGTERM (Terminated); click turns either into an Abort raised in its handler.
        if isinstance(exc, Terminated) or isinstance(exc.__context__, Terminated):
            click.echo("dosecalc: terminated (SIGTERM); nothing more was written", err=True)
            code = EXIT_TERMINATED
        else:
            click.echo("dosecalc: interrupted; nothing more was written", err=True)
            code = EXIT_INTERRUPTED
    except (BrokenPipeError, ReaderGone):
        code = _broken_pipe()
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            code = _broken_pipe()
        elif exc.errno not in STDOUT_ERRNOS:
            raise
        else:
            _silence_stdout()
            click.echo(f"dosecalc: cannot write the output: {exc.strerror}", err=True)
            code = EXIT_INCOMPLETE
    except UnicodeEncodeError as exc:
        _silence_stdout()
        encoding = getattr(sys.stdout, "encoding", None) or exc.encoding
        click.echo(
            f"dosecalc: the output's encoding ({encoding}) cannot show every character of "
            "it; set PYTHONIOENCODING=utf-8 or write to a file with --output (always UTF-8)",
            err=True,
        )
        code = EXIT_INCOMPLETE
    return code if isinstance(code, int) else EXIT_OK


# Errors writing stdout that mean "the output is incomplete" (disk full, stdout closed, I/O error).
STDOUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EBADF, errno.EIO})


def _flush_stdout() -> None:
    if sys.stdout is not None:
        sys.stdout.flush()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail again."""
    if sys.stdout is not None:
        _to_devnull(sys.stdout)


def _to_devnull(stream: Any) -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a file (io.UnsupportedOperation is both)
        pass


def _broken_pipe() -> int:
    """The reader went away (`| head`): stop quietly, with the shell's code for SIGPIPE."""
    _silence_stdout()
    return EXIT_BROKEN_PIPE
