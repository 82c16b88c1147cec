"""The PDF dose sheet, drawn with fpdf2: one page per sheet, DejaVu Sans embedded, text extractable.

The same sentences as the HTML sheet (content.py) and the Sheet's rounded figures only. Bytes are
deterministic: the creation date is the sheet's date and the file id is a hash of the content.
`render_combined` puts a cover page and several sheets into one PDF (for `batch --combined`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from dosecalc import __version__
from dosecalc.display import clean
from dosecalc.model import Sheet
from dosecalc.render import DEFAULT_PAPER, PAPERS, content

FONT = "DejaVu"
MARGIN = 10.0  # mm, every side
BODY = 8.2  # pt
SMALL = 7.2
LINE = 3.5  # mm per body line
SMALL_LINE = 3.0
LABEL_WIDTH = 27.0


def _date(text: str) -> dt.datetime:
    """The sheet date as the PDF's creation date (midnight UTC), so the same inputs give the same bytes."""
    return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=dt.UTC)


FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}


@cache
def _glyphs() -> frozenset[int]:
    """Code points both embedded fonts can draw."""
    from fontTools.ttLib import TTFont

    fonts = resources.files("dosecalc").joinpath("fonts")
    sets = []
    for name in FONT_FILES.values():
        with resources.as_file(fonts.joinpath(name)) as path:
            sets.append(frozenset(TTFont(str(path), lazy=True).getBestCmap()))
    return frozenset.intersection(*sets)


def _t(text: str, keep_newlines: bool = False) -> str:
    """Text for the page: control and format characters removed, and a character the font cannot
    draw shown as its code (\\u5c71) rather than silently left out of a patient's name."""
    glyphs = _glyphs()
    return "".join(
        ch if ord(ch) in glyphs or ch == "\n" else f"\\u{ord(ch):04x}"
        for ch in clean(text, keep_newlines=keep_newlines)
    )


class _Document(FPDF):
    """FPDF with a footer on every page: what made the page, and "page n of N" so none goes missing."""

    footer_text = ""

    def footer(self) -> None:
        width = self.w - 2 * MARGIN
        y = self.h - MARGIN - 5.5
        self.set_line_width(0.2)
        self.line(MARGIN, y, MARGIN + width, y)
        self.set_font(FONT, "", 6.6)
        self.set_xy(MARGIN + width - 20, y + 0.3)
        self.cell(20, 2.6, f"page {self.page_no()} of {{nb}}", align="R")
        self.set_xy(MARGIN, y + 0.3)
        self.multi_cell(width - 22, 2.6, _t(self.footer_text), align="L")


class _Page:
    """A small drawing vocabulary over FPDF: headings, label/text lines, boxes, the timeline, grids."""

    def __init__(self, pdf: FPDF) -> None:
        self.pdf = pdf
        self.width = pdf.w - 2 * MARGIN

    def ensure(self, height: float) -> None:
        """Start a new page unless `height` mm still fit: boxes and columns are never cut in two."""
        if self.pdf.get_y() + height > self.pdf.page_break_trigger:
            self.pdf.add_page()

    def height(self, text: str, width: float, size: float = BODY, line: float = LINE) -> float:
        """How tall `text` will be as a paragraph `width` mm wide."""
        self.font(size)
        height: float = self.pdf.multi_cell(
            width, line, _t(text, keep_newlines=True), dry_run=True, output="HEIGHT"
        )
        return height

    def font(self, size: float, bold: bool = False) -> None:
        self.pdf.set_font(FONT, "B" if bold else "", size)

    def gap(self, mm: float) -> None:
        self.pdf.set_y(self.pdf.get_y() + mm)

    def heading(self, text: str, x: float = MARGIN, width: float | None = None) -> None:
        pdf = self.pdf
        width = width or self.width
        self.gap(1.6)
        self.font(BODY + 0.4, bold=True)
        pdf.set_x(x)
        pdf.cell(width, LINE + 0.4, _t(text.upper()), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_line_width(0.25)
        pdf.line(x, pdf.get_y(), x + width, pdf.get_y())
        self.gap(0.6)

    def text(self, text: str, x: float = MARGIN, width: float | None = None, **style: Any) -> None:
        self.font(style.get("size", BODY), style.get("bold", False))
        self.pdf.set_x(x)
        self.pdf.multi_cell(
            width or self.width,
            style.get("line", LINE),
            _t(text, keep_newlines=True),
            align="L",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )

    def lines(
        self, lines: Sequence[content.Line], x: float = MARGIN, width: float | None = None
    ) -> None:
        width = width or self.width
        for line in lines:
            y = self.pdf.get_y()
            self.font(BODY, bold=True)
            self.pdf.set_xy(x, y)
            self.pdf.cell(LABEL_WIDTH, LINE, _t(line.label))
            self.font(BODY)
            self.pdf.set_xy(x + LABEL_WIDTH, y)
            self.pdf.multi_cell(
                width - LABEL_WIDTH,
                LINE,
                _t(line.text),
                align="L",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )

    def title(self, left: str, right: str) -> None:
        pdf = self.pdf
        pdf.set_line_width(0.6)
        pdf.rect(MARGIN, pdf.get_y(), self.width, 8)
        self.font(13, bold=True)
        y = pdf.get_y() + 1
        pdf.set_xy(MARGIN + 2, y)
        pdf.cell(self.width / 2, 6, _t(left))
        pdf.set_xy(MARGIN + self.width / 2, y)
        pdf.cell(self.width / 2 - 2, 6, _t(right), align="R")
        pdf.set_y(y + 8.5)

    def pump(self, x: float, width: float, lines: Sequence[content.Line], under: str) -> None:
        pdf = self.pdf
        top = pdf.get_y()
        height = 4 + 6 * len(lines) + 2
        pdf.set_line_width(1.0)
        pdf.rect(x, top, width, height)
        self.font(BODY + 0.4, bold=True)
        pdf.set_xy(x + 3, top + 1)
        pdf.cell(width - 6, 4, "PUMP")
        for i, line in enumerate(lines):
            self.font(12, bold=True)
            pdf.set_xy(x + 3, top + 5 + 6 * i)
            pdf.cell(28, 6, _t(line.label))
            pdf.cell(width - 34, 6, _t(line.text))
        pdf.set_y(top + height + 0.8)
        self.text(under, x=x, width=width)

    def alerts(self, alerts: Sequence[str]) -> None:
        """A double-ruled box, bold, with a heading: warnings and overrides cannot be missed."""
        pdf = self.pdf
        inner = self.width - 8
        self.font(BODY, bold=True)
        body = [_t(f"- {a}") for a in alerts]
        height = 5.5 + sum(
            pdf.multi_cell(inner, LINE, b, dry_run=True, output="HEIGHT") for b in body
        )
        self.gap(1.2)
        self.ensure(height + 4)
        top = pdf.get_y()
        pdf.set_line_width(0.8)
        pdf.rect(MARGIN, top, self.width, height + 3)
        pdf.set_line_width(0.3)
        pdf.rect(MARGIN + 1.1, top + 1.1, self.width - 2.2, height + 0.8)
        pdf.set_xy(MARGIN + 4, top + 2)
        self.font(10, bold=True)
        pdf.cell(inner, 4.5, "WARNINGS AND OVERRIDES", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.font(BODY, bold=True)
        for b in body:
            pdf.set_x(MARGIN + 4)
            pdf.multi_cell(inner, LINE, b, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_y(top + height + 4)

    def timeline(self, segments: Sequence[content.Segment]) -> None:
        pdf = self.pdf
        left, right = MARGIN + 6, MARGIN + self.width - 9
        length = right - left
        for segment in segments:
            self.ensure(27)
            top = pdf.get_y()
            bar = top + 10.5
            pdf.set_line_width(0.4)
            pdf.rect(left, bar, length, 3)
            pdf.set_line_width(0.1)
            x = left + 2.0
            while x < right:  # light hatching inside the bar: reads as a bar in black and white
                pdf.line(x, bar, x, bar + 3)
                x += 2.0
            pdf.set_line_width(0.4)
            pdf.line(left, bar - 1.5, left, bar + 4.5)
            start = "start" if segment.start == "0 min" else "continued"
            self._label(left, bar + 5, [segment.start, start], "L")
            for tick in segment.ticks:
                x = left + float(tick.position) * length
                pdf.line(x, bar - 1.5, x, bar + 4.5)
                texts = [tick.time, tick.volume, tick.dose]
                align = "R" if tick.position > Decimal("0.93") else "C"
                y = bar - 1.8 - 3 * 2.9 if tick.above else bar + 5
                self._label(x, y, texts, align)
            pdf.set_y(top + 27)

    def _label(self, x: float, y: float, texts: Sequence[str], align: str) -> None:
        pdf = self.pdf
        width = 30.0
        start = {"L": x, "C": x - width / 2, "R": x - width}[align]
        for i, text in enumerate(texts):
            self.font(SMALL + 0.4 if i == 0 else SMALL, bold=i == 0)
            pdf.set_xy(start, y + 2.9 * i)
            pdf.cell(width, 2.9, _t(text), align=align)

    def grid(self, blocks: Sequence[Sequence[str]], rows: Sequence[str]) -> None:
        pdf = self.pdf
        first = 38.0
        pdf.set_line_width(0.25)
        for block in blocks:
            self.ensure(4.5 + 5.8 * len(rows) + 1)
            cell = (self.width - first) / max(len(block), content.GRID_COLUMNS_PER_BLOCK // 2)
            self.font(SMALL, bold=True)
            pdf.set_x(MARGIN)
            pdf.cell(first, 4.5, "Time", border=1)
            for column in block:
                pdf.cell(cell, 4.5, _t(column), border=1, align="C")
            pdf.ln(4.5)
            for row in rows:
                self.font(SMALL)
                pdf.set_x(MARGIN)
                pdf.cell(first, 5.8, _t(row), border=1)
                for _ in block:
                    pdf.cell(cell, 5.8, "", border=1)
                pdf.ln(5.8)
            self.gap(1)

    def signatures(self) -> None:
        pdf = self.pdf
        self.gap(1.5)
        self.ensure(26)
        top = pdf.get_y()
        box = (self.width - 4) / 2
        for i, who in enumerate(content.SIGNATURES):
            x = MARGIN + i * (box + 4)
            pdf.set_line_width(0.4)
            pdf.rect(x, top, box, 25)
            self.font(BODY, bold=True)
            pdf.set_xy(x + 2, top + 1)
            pdf.cell(box - 4, LINE, _t(who))
            pdf.set_line_width(0.2)
            for j, field in enumerate(content.SIGNATURE_FIELDS):
                y = top + 5 + 6.5 * j
                self.font(SMALL)
                pdf.set_xy(x + 2, y + 2.4)
                pdf.cell(box - 4, 3, _t(f"{field}:"))
                pdf.line(x + 2, y + 6, x + box - 2, y + 6)
        pdf.set_y(top + 26)


def _document(paper: str, date: str, title: str) -> _Document:
    """An empty PDF with the fonts, metadata and deterministic dates set."""
    _, width, height = PAPERS[paper]
    pdf = _Document(unit="mm", format=(width, height))
    fonts = resources.files("dosecalc").joinpath("fonts")
    for style, name in FONT_FILES.items():
        with resources.as_file(fonts.joinpath(name)) as path:
            pdf.add_font(FONT, style, str(path))
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    # Overflow continues on a new page rather than being clipped (the layout fits one page).
    pdf.set_auto_page_break(True, MARGIN + 7)
    pdf.set_creation_date(_date(date))
    pdf.set_producer(f"dosecalc {__version__} with fpdf2")
    pdf.set_creator(f"dosecalc {__version__}")
    pdf.set_title(title)  # no patient name in the metadata: file managers and indexers show it
    pdf.set_lang("en")
    return pdf


def _sheet_page(pdf: _Document, sheet: Sheet) -> None:
    """One sheet on a new page: everything on the text sheet, then timeline, grid, signatures."""
    pdf.add_page()  # first: add_page draws the previous page's footer with its own text
    pdf.footer_text = content.footer(sheet)
    page = _Page(pdf)
    o = sheet.order
    page.title(content.title(sheet), f"{o.patient_id or '(no patient ID)'} · {o.date}")
    page.lines(content.header(sheet))
    top = pdf.get_y()
    half = (page.width - 4) / 2
    page.heading("Patient", width=half)
    page.lines(content.patient(sheet), width=half)
    left_end = pdf.get_y()
    pdf.set_y(top + 1.6)
    page.pump(
        MARGIN + half + 4, half, content.pump(sheet), f"Dose rate: {content.dose_rate(sheet)}"
    )
    pdf.set_y(max(left_end, pdf.get_y()))
    gate = content.preinfusion_compact(sheet)
    if gate:
        page.gap(1.2)
        for line in gate:
            page.text(line, size=SMALL, line=SMALL_LINE)
    alerts = content.alerts(sheet)
    if alerts:
        page.alerts(alerts)
    page.heading("Calculation")
    page.lines(content.calculation(sheet))
    page.heading("Preparation")
    for i, step in enumerate(content.preparation(sheet), 1):
        page.text(f"{i}. {step}")
    page.heading("Reverse check")
    page.text(content.reverse_check(sheet))
    page.heading(content.TIMELINE_TITLE)
    page.timeline(content.timeline(sheet))
    page.heading(content.GRID_TITLE)
    page.grid(content.grid_blocks(sheet), content.GRID_ROWS)
    advisory, monitoring = content.advisory(sheet), content.monitoring(sheet)
    tallest = max(
        page.height(advisory, half, SMALL, SMALL_LINE),
        sum(page.height(f"- {m}", half, SMALL, SMALL_LINE) for m in monitoring),
    )
    page.ensure(6.5 + tallest)
    top = pdf.get_y()
    page.heading("Advisory", width=half)
    page.text(advisory, width=half, size=SMALL, line=SMALL_LINE)
    left_end = pdf.get_y()
    pdf.set_y(top)
    page.heading("Monitoring", x=MARGIN + half + 4, width=half)
    for item in monitoring:
        page.text(f"- {item}", x=MARGIN + half + 4, width=half, size=SMALL, line=SMALL_LINE)
    pdf.set_y(max(left_end, pdf.get_y()))
    page.signatures()


def render(sheet: Sheet, paper: str = DEFAULT_PAPER) -> bytes:
    """One sheet as a one-page PDF."""
    title = f"{content.title(sheet)} {sheet.order.patient_id or ''} {sheet.order.date}"
    pdf = _document(paper, sheet.order.date, " ".join(title.split()))
    _sheet_page(pdf, sheet)
    return bytes(pdf.output())


def render_combined(
    cover: Sequence[Sequence[str]],
    sheets: Sequence[Sheet],
    *,
    title: str,
    date: str,
    paper: str = DEFAULT_PAPER,
) -> bytes:
    """A cover page listing every day-list line (content.COVER_COLUMNS), then one page per sheet.

    `cover` holds one tuple per input line in input order, refused lines included (build a produced
    sheet's with content.cover_row); `sheets` the produced sheets in the same order.
    """
    pdf = _document(paper, date, _t(title))
    pdf.footer_text = f"dosecalc {__version__} | {title} | {date}"
    pdf.add_page()
    page = _Page(pdf)
    page.title(title, date)
    page.text(
        f"{len(cover)} line(s); {len(sheets)} sheet(s) follow, one page each, in input order."
    )
    page.gap(2)
    widths = (10.0, 30.0, 18.0, 22.0, 22.0, 22.0)
    widths += (page.width - sum(widths),)
    page.font(SMALL, bold=True)
    for heading, width in zip(content.COVER_COLUMNS, widths, strict=True):
        pdf.cell(width, 4.5, heading, border=1)
    pdf.ln(4.5)
    page.font(SMALL)
    for row in cover:
        cells = [_t(cell) for cell in row]
        heights = [
            pdf.multi_cell(w, 3.4, c, dry_run=True, output="HEIGHT")
            for c, w in zip(cells, widths, strict=True)
        ]
        height = max(heights)
        if pdf.get_y() + height > pdf.h - MARGIN - 6:
            pdf.add_page()
        y, x = pdf.get_y(), MARGIN
        for cell, width in zip(cells, widths, strict=True):
            pdf.rect(x, y, width, height)
            pdf.set_xy(x, y)
            pdf.multi_cell(width, 3.4, cell, align="L")
            x += width
        pdf.set_xy(MARGIN, y + height)
    for sheet in sheets:
        _sheet_page(pdf, sheet)
    return bytes(pdf.output())
