"""Renderers: one Sheet in, bytes out. Each format lives in its own module, imported on demand.

Every renderer reads the numbers from the Sheet's figures (rounded once) and the sentences from
content.py, so a printed sheet, a text sheet and a JSON sheet can never disagree.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dosecalc.model import Sheet

# format name -> (module, file extension). HTML and PDF register here too.
FORMATS: dict[str, tuple[str, str]] = {
    "text": ("dosecalc.render.as_text", "txt"),
    "json": ("dosecalc.render.as_json", "json"),
}


def render(sheet: Sheet, fmt: str) -> bytes:
    """The sheet in `fmt`, as the bytes written to a file or stdout."""
    module = import_module(FORMATS[fmt][0])
    data: bytes = module.render(sheet)
    return data


def extension(fmt: str) -> str:
    return FORMATS[fmt][1]
