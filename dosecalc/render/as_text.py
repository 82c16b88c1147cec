"""The text dose sheet, laid out with rich. Plain (no escape codes) unless writing to a terminal.

All content arrives as rich.text.Text built from plain strings: nothing is parsed as markup.
A number and its unit are laid out as one word ("155.4 mL/h" never wraps as "155.4" / "mL/h"), and
the sheet ends with a short summary, so the last screen at a terminal holds the numbers.
"""

from __future__ import annotations

import io
import os
from typing import IO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dosecalc.model import Sheet
from dosecalc.render import content
from dosecalc.render.wrap import WIDTH, is_terminal, layout_width

# rich wraps at any whitespace, the no-break space included, so a number and its unit are joined
# for layout by a private-use character (one cell wide, never in sheet text: sanitize.text removes
# private-use characters from user and file text), turned back into a space once laid out.
JOIN = "\ue000"
# Summary rows in bold besides the pump settings (upper case): the dose and what to draw up or hang.
BOLD = frozenset({"Dose", "Draw up", "Hang"})


def keep_together(text: str) -> str:
    """`text` with the space inside every "number unit" made unbreakable for rich's wrapping."""
    return content.keep_together(text, JOIN)


def _text(text: str, **style: object) -> Text:
    return Text(keep_together(text), **style)  # type: ignore[arg-type]


def make_console(
    file: IO[str], *, terminal: bool | None = None, width: int | None = None
) -> Console:
    """The one console factory: colour only on a real terminal without NO_COLOR (or TERM=dumb);
    laid out for the terminal's width on a terminal, with or without colour (a plain sheet laid out
    for 80 columns on a 40-column screen is cut mid-number by the terminal); else 80 columns."""
    tty = is_terminal(file)
    if terminal is None:
        terminal = tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
    if width is None and not terminal:  # plain: a terminal's width, or a pipe's viewer's
        width = layout_width(file)
    return Console(
        file=file,
        width=width or (None if terminal else WIDTH),
        force_terminal=terminal,
        color_system="auto" if terminal else None,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=False,
        legacy_windows=False,
        _environ={} if not terminal else None,
    )


def _lines(lines: list[content.Line]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True, overflow="fold")
    table.add_column(overflow="fold")  # a long path wraps; it is never cut short
    for line in lines:
        table.add_row(Text(line.label), _text(line.text))
    return table


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def build(sheet: Sheet) -> Group:
    parts: list[RenderableType] = [
        Text(content.title(sheet), style="bold reverse"),
        _lines(content.header(sheet)),
        _section("PATIENT"),
        _lines(content.patient(sheet)),
    ]
    gate = content.preinfusion(sheet)
    if gate:
        parts += [_section(content.PREINFUSION_TITLE.upper()), _lines(gate)]
        parts += [Text(item) for item in content.checklist(sheet)]
    alerts = content.alerts(sheet)
    if alerts:
        parts.append(
            Panel(
                _text("\n".join(f"! {a}" for a in alerts)),
                title=Text("WARNINGS AND OVERRIDES"),
                box=box.DOUBLE,
                style="bold",
            )
        )
    parts += [_section("CALCULATION"), _lines(content.calculation(sheet))]
    parts.append(_section("PREPARATION"))
    parts += [_text(f"{i}. {step}") for i, step in enumerate(content.preparation(sheet), 1)]
    pump = Table.grid(padding=(0, 3))
    pump.add_column(style="bold", no_wrap=True, overflow="fold")
    pump.add_column(style="bold", no_wrap=True, overflow="fold")
    for line in content.pump(sheet):
        pump.add_row(Text(line.label), _text(line.text))
    parts += [
        Text(""),
        Panel(pump, title=Text("PUMP"), box=box.HEAVY, expand=False, padding=(0, 2)),
        *(_text(note) for note in content.pump_notes(sheet)),
    ]
    checkpoints = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    if sheet.protocol.continuous:
        parts.append(_section(content.TITRATION_TITLE))
        for heading in ("Dose rate", "Rate"):
            checkpoints.add_column(Text(heading), justify="right", overflow="fold")
        checkpoints.add_column(Text(""), justify="left", overflow="fold")
        for row in content.titration_rows(sheet):
            checkpoints.add_row(*(_text(cell) for cell in row))
    else:
        parts.append(_section("CHECKPOINTS (cumulative, compare with the pump's volume infused)"))
        for heading in ("Time", "Volume infused", "Dose delivered"):
            checkpoints.add_column(Text(heading), justify="right", overflow="fold")
        for row in content.checkpoint_rows(sheet):
            checkpoints.add_row(*(_text(cell) for cell in row))
    parts += [
        checkpoints,
        _section("REVERSE CHECK"),
        _text(content.reverse_check(sheet)),
        _section("ADVISORY"),
        _text(content.advisory(sheet)),
        _section("MONITORING"),
    ]
    parts += [_text(f"- {m}") for m in content.monitoring(sheet)]
    parts.append(Text(""))
    parts += [Text(f"{who}: ______________________  Time: ________") for who in content.SIGNATURES]
    parts += [Text(""), summary(sheet)]
    return Group(*parts)


def summary(sheet: Sheet) -> Panel:
    """The last lines of the sheet: at a terminal they stay on screen when the command ends."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True, overflow="fold")
    table.add_column(overflow="fold")
    for line in content.summary(sheet):
        bold = line.label.isupper() or line.label in BOLD  # pump settings, dose, what to give
        table.add_row(Text(line.label), _text(line.text, style="bold" if bold else ""))
    title = Text(f"{content.SUMMARY_TITLE}: check it against the full sheet above")
    return Panel(table, title=title, title_align="left", box=box.HEAVY, padding=(0, 1))


def for_console(sheet: Sheet, console: Console) -> str:
    """The sheet for `console`: styled at a terminal, else the plain text `render` writes to
    files (laid out at the console's width)."""
    if console.is_terminal:
        with console.capture() as captured:
            console.print(build(sheet))
        return captured.get().replace(JOIN, " ")
    return plain(sheet, console.width)


def plain(sheet: Sheet, width: int = WIDTH) -> str:
    """The sheet as plain text: 80 columns (or `width`), no escape codes, no trailing spaces."""
    buffer = io.StringIO()
    make_console(buffer, terminal=False, width=width).print(build(sheet))
    text = buffer.getvalue().replace(JOIN, " ")
    return "".join(line.rstrip() + "\n" for line in text.splitlines())


def render(sheet: Sheet) -> bytes:
    return plain(sheet).encode("utf-8")
