"""The one sanitiser (dosecalc/sanitize.py): each named policy, and no other sanitiser left."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dosecalc import sanitize

HOSTILE = "Ann\x1b]0;owned\x07 \u202eLee\u200b\n<b>&'\""
PACKAGE = Path(sanitize.__file__).parent


def test_terminal_shows_every_unsafe_character_as_an_escape_and_cuts() -> None:
    assert sanitize.terminal(HOSTILE, None) == (
        "Ann\\x1b]0;owned\\x07 \\u202eLee\\u200b\\x0a<b>&'\""
    )
    assert sanitize.terminal("x" * 41) == "x" * 40 + "..."
    assert sanitize.terminal("x" * 41, None) == "x" * 41


def test_a_code_point_above_ffff_is_escaped_with_eight_hex_digits() -> None:
    # U+E0041 (TAG LATIN CAPITAL LETTER A) as \ue0041 would read as U+E004 and a "1".
    assert sanitize.terminal("A\U000e0041b") == "A\\U000e0041b"
    assert sanitize.log("\U0010fffd") == "\\U0010fffd"  # private use, plane 16
    assert sanitize.terminal("\U000e0001\ufeff\x85") == "\\U000e0001\\ufeff\\x85"


def test_echo_also_shows_spaces_other_than_the_ascii_space_as_escapes() -> None:
    assert sanitize.echo("72\u00a0kg") == "72\\xa0kg"  # no-break space
    assert sanitize.echo("72 \u2009kg\x1b") == "72 \\u2009kg\\x1b"  # thin space, ESC
    assert sanitize.echo("72\u3000kg" + "x" * 40) == "72\\u3000kg" + "x" * 35 + "..."
    # terminal keeps them (a path or a name on a valid run is repeated as it is).
    assert sanitize.terminal("72\u00a0kg") == "72\u00a0kg"


def test_text_removes_unsafe_characters_keeping_newlines_only_when_asked() -> None:
    assert sanitize.text(HOSTILE) == "Ann]0;owned Lee<b>&'\""
    assert sanitize.text("a\nb\x1b", keep_newlines=True) == "a\nb"


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\tx", "x"),
        ("Jones;@SUM(1+1)", "'Jones;@SUM(1+1)"),
        ("Lee, Ann", "Lee, Ann"),
        ("a\x1b[2Jb", "a[2Jb"),
        # Spaces before a formula (found by the script-author attack).
        (' =HYPERLINK("http://x")', '\' =HYPERLINK("http://x")'),
        ("   +1", "'   +1"),
        ("Ann Lee", "Ann Lee"),
    ],
)
def test_csv_cell_is_never_a_formula_and_never_has_controls(cell: str, shown: str) -> None:
    assert sanitize.csv_cell(cell) == shown


def test_html_escapes_markup_and_both_quotes_after_removing_controls() -> None:
    assert sanitize.html("<b>\x1b&'\"") == "&lt;b&gt;&amp;&#x27;&quot;"


def test_pdf_shows_a_character_the_font_lacks_as_its_code() -> None:
    glyphs = {ord(c) for c in "Ann Le"}
    assert sanitize.pdf("Ann Le山\x1b", glyphs) == "Ann Le\\u5c71"


def test_log_escapes_bidi_and_zero_width_characters_and_never_cuts() -> None:
    assert sanitize.log("a\u202eb\u200b" + "c" * 100) == "a\\u202eb\\u200b" + "c" * 100


def test_every_policy_is_reachable_by_name() -> None:
    for name in ("terminal", "echo", "text", "csv_cell", "html", "log"):
        assert "\x1b" not in sanitize.sanitize(HOSTILE, name), name


def test_no_module_defines_its_own_sanitiser() -> None:
    """The six helpers issue 12 counted (clean, printable, safe_echo, neutralise, esc, _t with its
    own filtering) are gone: only sanitize.py decides what is unsafe."""
    for path in PACKAGE.rglob("*.py"):
        if path.name == "sanitize.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert not defined & {"clean", "printable", "safe_echo", "neutralise", "esc"}, path
        assert "unicodedata" not in path.read_text(encoding="utf-8"), path


def test_a_pdf_shows_an_astral_character_it_cannot_draw_with_eight_hex_digits() -> None:
    """'\\u1f600' read as U+1F60 and a '0'; the code is U+1F600."""
    from dosecalc.sanitize import pdf

    assert pdf("Ann \U0001f600", set(map(ord, "An "))) == "Ann \\U0001f600"
    assert pdf("\u5c71", set()) == "\\u5c71"


@pytest.mark.parametrize(
    "blank",
    ["\u2800", "\u3164", "\u115f\u1160", "\uffa0 \u3000", "\u0301", "\u3164\u0301"],
)
def test_text_that_draws_nothing_is_unreadable(blank: str) -> None:
    # The Braille blank and the Hangul fillers are a symbol and letters to Python, and a lone
    # combining mark has nothing to sit on: each passed as an operator or an override reason.
    assert sanitize.unreadable(blank) == "shows nothing: every character in it is blank"


def test_stacked_combining_marks_are_unreadable_but_a_vietnamese_name_is_not() -> None:
    import unicodedata

    # "Nguyễn" decomposed: e with two marks (circumflex, tilde); five marks draw over other lines.
    assert sanitize.unreadable(unicodedata.normalize("NFD", "Nguyễn Thị Ánh")) is None
    assert sanitize.unreadable("e" + "\u0302" * 4) is None
    assert sanitize.unreadable("e" + "\u0302" * 5) == (
        "has more than 4 combining marks on one character"
    )
    assert sanitize.unreadable("RN Lee") is None
    assert sanitize.unreadable("山田花子") is None
