"""Renderers: one Sheet in, bytes out. Each format lives in its own module, imported on demand.

Every renderer reads the numbers from the Sheet's figures (rounded once) and the sentences from
content.py, so a printed sheet, a text sheet and a JSON sheet can never disagree.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dosecalc.model import Sheet

# format name -> (module, file extension).
FORMATS: dict[str, tuple[str, str]] = {
    "text": ("dosecalc.render.as_text", "txt"),
    "json": ("dosecalc.render.as_json", "json"),
    "html": ("dosecalc.render.as_html", "html"),
    "pdf": ("dosecalc.render.as_pdf", "pdf"),
}
# Formats laid out on paper: their render() also takes the paper size.
PAGED = frozenset({"html", "pdf"})
# Paper name -> (CSS page size keyword, width mm, height mm).
PAPERS: dict[str, tuple[str, float, float]] = {
    "a4": ("A4", 210.0, 297.0),
    "letter": ("letter", 215.9, 279.4),
}
DEFAULT_PAPER = "a4"


def render(sheet: Sheet, fmt: str, *, paper: str = DEFAULT_PAPER) -> bytes:
    """The sheet in `fmt`, as the bytes written to a file or stdout (`paper` for HTML and PDF)."""
    module = import_module(FORMATS[fmt][0])
    data: bytes = module.render(sheet, paper=paper) if fmt in PAGED else module.render(sheet)
    return data


def extension(fmt: str) -> str:
    return FORMATS[fmt][1]
