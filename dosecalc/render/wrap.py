"""Text for a terminal of a given width: broken at spaces, never between a number and its unit.

A terminal breaks a line that is too long at its last column, whatever is there ("(range 10 mg to
7" / "5 mg)"). Text printed line by line (the double check, messages on stderr) is broken here
instead: messages at their terminal's width (left as they are in a file), the double check at
layout_width (its terminal's; piped, the width of the terminal a person is at, up to 80).
"""

from __future__ import annotations

import os
import textwrap
from typing import IO

_JOIN = "\ue000"  # private use: never in the text (sanitize removes it from user and file text)


def fill(line: str, width: int, indent: int = 0) -> str:
    """`line` broken at spaces into lines of at most `width` columns (a word longer than that
    stays whole), the continuation lines indented by `indent` spaces; a number and its unit are
    one word."""
    if len(line) <= width:
        return line
    from dosecalc.render.content import keep_together  # only for a line to break: not at start-up

    wrapped = textwrap.wrap(
        keep_together(line, _JOIN),
        width=width,
        subsequent_indent=" " * indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    trailing = line[len(line.rstrip(" ")) :]  # a prompt's "...: " keeps its space
    return "\n".join(wrapped).replace(_JOIN, " ") + trailing


def is_terminal(stream: IO[str] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):  # a closed or fake stream
        return False


# The narrowest terminal a sheet or a double check is laid out for (the terminal tests use it):
# narrower, rich's boxes cut figures short ("151." for 151.1 mL/h).
MIN_WIDTH = 40
WIDTH = 80  # a sheet written to a file, or piped where no one is at a terminal


def layout_width(stream: IO[str] | None) -> int:
    """The width to lay a sheet or a double check out at for `stream`: its terminal's; piped or
    redirected while a person is at a terminal (stderr), that terminal's, up to WIDTH, so that
    `dosecalc sheet | less` in a 60-column window is never broken by the terminal mid-number
    ("given as 3." / "49 mL"); else WIDTH."""
    width = terminal_width(stream)
    if width is not None:
        return width
    import sys

    seen = terminal_width(sys.stderr)  # $COLUMNS or its size, where stderr is a terminal
    return WIDTH if seen is None else max(MIN_WIDTH, min(WIDTH, seen))


def terminal_width(stream: IO[str] | None) -> int | None:
    """The width of the terminal `stream` writes to ($COLUMNS where set), or None when it is not a
    terminal (a pipe, a file: text is left unbroken)."""
    if not is_terminal(stream):
        return None
    assert stream is not None
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns or None
    except (AttributeError, ValueError, OSError):
        return None
