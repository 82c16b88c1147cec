"""The one sanitiser: every text a user or a file typed, made safe for where it goes, by named policy.

- `terminal`: text repeated to a person (messages, paths, TOML keys, bad input): unsafe characters
  shown as escapes (`\\x1b`, `\\u202e`, `\\U000e0041`), cut to a limit.
- `echo`: a value refused as bad input, repeated in its message: as `terminal`, and every space
  other than U+0020 (no-break, thin) shown as an escape too, so the message shows what was wrong.
- `text`: content shown or written as it is (a name, a protocol's text on a sheet): removed.
- `csv_cell`: a cell of results.csv / errors.csv: removed, and a formula gets a leading `'`.
- `html`: text in the HTML sheet: removed, then `& < > " '` escaped.
- `pdf`: text drawn on a PDF page: removed, and a glyph the font lacks shown as `\\uXXXX`.
- `log`: text in the audit log or the manifest (read with `less`): shown as escapes, never cut.

Unsafe: Unicode categories Cc (ESC, NUL, C1), Cf (bidi overrides, zero-width), Cs, Co, Cn, Zl, Zp.
rich strips only a few of them, and OSC sequences pass through pipes, so nothing here relies on rich.
Nothing in this module imports rich, click or fpdf2.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Collection

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# A cell starting with one of these is a formula to a spreadsheet (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# ... and so is one of these after a separator, in a locale whose spreadsheet splits cells there.
FORMULA_AFTER_SEPARATOR = ("=", "+", "-", "@")
CELL_SEPARATORS = (";", ",")
MESSAGE_LIMIT = 40  # characters of bad input repeated in a message


def is_unsafe_char(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def has_unsafe(text: str) -> bool:
    # str.isprintable() is False for every unsafe category (and for non-ASCII spaces, which are
    # allowed): a fast answer for the common, plain case.
    return not text.isprintable() and any(is_unsafe_char(ch) for ch in text)


# Characters that draw nothing but are letters or symbols to Python, so neither str.strip() nor
# the unsafe categories catch them: the Braille blank and the Hangul fillers.
_BLANK_LOOKALIKES = frozenset("\u2800\u3164\u115f\u1160\uffa0")
# Combining marks on one character: a Vietnamese name needs two, a stack that draws over the lines
# around it (and over a printed sheet's boxes) dozens.
MAX_MARKS = 4


def unreadable(text: str) -> str | None:
    """Why free text (a name, an operator, an override reason, a protocol's label) cannot be read
    as written, or None: nothing in it draws anything, or a character carries more than MAX_MARKS
    combining marks."""
    if text.isascii():  # plain text: visible where it is not all spaces (the callers check)
        return None
    visible, marks = False, 0
    for ch in text:
        category = unicodedata.category(ch)
        if category[0] == "M":
            marks += 1
            if marks > MAX_MARKS:
                return f"has more than {MAX_MARKS} combining marks on one character"
            continue
        marks = 0
        if category[0] in "LNPS" and ch not in _BLANK_LOOKALIKES:
            visible = True
    return None if visible else "shows nothing: every character in it is blank"


def _removed(text: str, keep_newlines: bool = False) -> str:
    if text.isprintable():
        return text
    return "".join(ch for ch in text if (keep_newlines and ch == "\n") or not is_unsafe_char(ch))


def _escape(ch: str) -> str:
    """Python's escape of one character: \\xhh, \\uhhhh, or \\Uhhhhhhhh above U+FFFF (four hex
    digits of U+E0041 would read as U+E004 and a '1')."""
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _escaped(text: str, spaces: bool = False) -> str:
    if text.isprintable():  # False for every unsafe character and every space but U+0020
        return text
    return "".join(
        _escape(ch)
        if is_unsafe_char(ch) or (spaces and ch != " " and unicodedata.category(ch) == "Zs")
        else ch
        for ch in text
    )


# --- the policies -------------------------------------------------------------------------------


def terminal(text: str, limit: int | None = MESSAGE_LIMIT) -> str:
    """Text repeated back to a person (bad input, a path, a TOML key): every unsafe character shown
    as an escape, so nothing is hidden and nothing acts on the terminal; cut to `limit` characters
    (then '...')."""
    if limit is None:
        return _escaped(text)
    return _escaped(text[:limit]) + ("..." if len(text) > limit else "")


def echo(text: str, limit: int | None = MESSAGE_LIMIT) -> str:
    """A refused value repeated in its message ('72\\xa0kg' has a unit '\\xa0kg'): as `terminal`,
    with every space other than U+0020 escaped too (a no-break or thin space looks like a space but
    is not one to the grammar)."""
    if limit is None:
        return _escaped(text, spaces=True)
    return _escaped(text[:limit], spaces=True) + ("..." if len(text) > limit else "")


def text(value: str, *, keep_newlines: bool = False) -> str:
    """Content shown or written as it is (a name on a sheet, a protocol's advisory): unsafe
    characters removed (newlines kept where asked)."""
    return _removed(value, keep_newlines)


def csv_cell(cell: str) -> str:
    """A CSV cell that is never a formula (OWASP) and never carries control characters: a cell
    that starts like a formula, or holds one after a ';' or ',' (a spreadsheet in a semicolon
    locale splits the cell there), gets a leading apostrophe."""
    cell = _removed(cell)
    # Spaces before the formula do not stop some spreadsheets from running it (" =HYPERLINK(").
    if cell.lstrip(" ").startswith(FORMULA_STARTS) or _formula_after_separator(cell):
        return "'" + cell
    return cell


def _formula_after_separator(cell: str) -> bool:
    for separator in CELL_SEPARATORS:
        if separator in cell:
            for part in cell.split(separator)[1:]:
                if part.lstrip(" ").startswith(FORMULA_AFTER_SEPARATOR):
                    return True
    return False


def html(value: str) -> str:
    """Text for HTML markup: unsafe characters removed, then &, <, >, and both quotes escaped."""
    import html as _html  # here, not at import: a text or JSON sheet never needs it

    return _html.escape(_removed(value), quote=True)


def pdf(value: str, glyphs: Collection[int], *, keep_newlines: bool = False) -> str:
    """Text for a PDF page: unsafe characters removed, and a character the font cannot draw shown
    as its code (\\u5c71, \\U0001f600) rather than silently left out of a patient's name."""
    return "".join(
        ch if ord(ch) in glyphs or ch == "\n" else _escape(ch)
        for ch in _removed(value, keep_newlines)
    )


def log(value: str) -> str:
    """Text in the audit log or the manifest: unsafe characters as escapes, never cut (JSON
    escapes controls, but not bidi or zero-width characters, which `less` would show)."""
    return _escaped(value)


POLICIES: dict[str, Callable[[str], str]] = {
    "terminal": terminal,
    "echo": echo,
    "text": text,
    "csv_cell": csv_cell,
    "html": html,
    "log": log,
}  # pdf needs the font's glyphs: call sanitize.pdf directly


def sanitize(value: str, policy: str) -> str:
    """`value` made safe under the named policy (one of POLICIES)."""
    return POLICIES[policy](value)
