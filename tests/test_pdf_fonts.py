"""The PDF's fonts are read once per process (as_pdf._add_fonts): the bytes must be exactly those of
fpdf2's own add_font for every document, alone and after others, single sheets and combined."""

from __future__ import annotations

from importlib import resources

import pytest
from conftest import TEST_PROTOCOLS

from dosecalc import protocols
from dosecalc.model import Order, make_sheet
from dosecalc.render import as_pdf, content


def add_font_each_time(pdf: as_pdf.FPDF) -> None:
    fonts = resources.files("dosecalc").joinpath("fonts")
    for style, name in as_pdf.FONT_FILES.items():
        with resources.as_file(fonts.joinpath(name)) as path:
            pdf.add_font(as_pdf.FONT, style, str(path))


def documents() -> list[bytes]:
    library = protocols.load(TEST_PROTOCOLS)
    sheets = [
        make_sheet(library, Order(weight=w, date="2026-11-21", patient_id=f"F{i}", name="Zoë Ünal"))
        for i, w in enumerate(["72 kg", "154 lb", "45.55 kg"])
    ]
    cover = [content.cover_row(s, str(i + 2), "ok") for i, s in enumerate(sheets)]
    singles = [as_pdf.render(s, paper) for s in sheets for paper in ("a4", "letter")]
    return [*singles, as_pdf.render_combined(cover, sheets, title="fonts", date="2026-11-21")]


def test_fonts_read_once_give_the_bytes_of_add_font(monkeypatch: pytest.MonkeyPatch) -> None:
    shared = documents()
    monkeypatch.setattr(as_pdf, "_add_fonts", add_font_each_time)
    assert documents() == shared
