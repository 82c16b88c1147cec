"""The PDF dose sheet, drawn with fpdf2: one page per sheet, DejaVu Sans embedded, text extractable.

The same sentences as the HTML sheet (content.py) and the Sheet's rounded figures only. Bytes are
deterministic: the creation date is the sheet's date and the file id is a hash of the content.
`render_combined` puts a cover page and several sheets into one PDF (for `batch --combined`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, cast

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from dosecalc import __version__, sanitize
from dosecalc.model import Sheet
from dosecalc.render import DEFAULT_PAPER, PAPERS, content

FONT = "DejaVu"
MARGIN = 10.0  # mm, every side
FOOTER = 7.0  # mm kept free above the bottom margin for the footer
LABEL_WIDTH = 27.0


LEADING = (
    0.42  # mm of line per pt of type: a little more than DejaVu's 1.164 em, so lines never touch
)


@dataclass(frozen=True)
class Style:
    """Type sizes (pt) and spacing (mm). A sheet is drawn in the first style that fits one page."""

    body: float = 8.2
    small: float = 7.2
    heading_gap: float = 1.6
    grid_row: float = 5.8
    grid_cell: float = 13.0  # narrowest grid column: room to write a blood pressure
    grid_first: float = 40.0  # widest first column before its row labels wrap
    signature_row: float = 6.5
    signature_columns: int = 1  # fields side by side in each signature box

    @property
    def line(self) -> float:
        return self.body * LEADING

    @property
    def small_line(self) -> float:
        return (self.small + 0.4) * LEADING  # room for the bold first line of a timeline label


STYLES = (
    Style(),
    Style(body=7.8, small=7.0, heading_gap=1.2, grid_row=5.4, grid_cell=12.5, signature_row=5.8),
    Style(
        body=7.4,
        small=6.6,
        heading_gap=0.9,
        grid_row=5.0,
        grid_cell=11.0,
        grid_first=22.0,
        signature_row=5.2,
    ),
    # The last resort for the longest orders (a long infusion with every warning) on Letter.
    Style(
        body=6.9,
        small=6.2,
        heading_gap=0.6,
        grid_row=4.8,
        grid_cell=10.5,
        grid_first=22.0,
        signature_row=5.0,
        signature_columns=2,
    ),
    # Past that (a long infusion with a changed prescription, a gate and every warning, on Letter).
    Style(
        body=6.5,
        small=5.9,
        heading_gap=0.4,
        grid_row=4.5,
        grid_cell=10.0,
        grid_first=20.0,
        signature_row=4.7,
        signature_columns=2,
    ),
)
SMALL = STYLES[0].small  # the cover page of a combined PDF


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
    """Text for the page: the PDF policy, with this font's glyphs; a number and its unit joined
    by a no-break space, which fpdf2 never breaks a line at and draws as a space."""
    return content.keep_together(
        sanitize.pdf(text, _glyphs(), keep_newlines=keep_newlines), content.NO_BREAK_SPACE
    )


def _fitting(pdf: FPDF, text: str, width: float, largest: float, smallest: float = 8) -> float:
    """The largest bold size, in half points from `largest` down to `smallest`, at which `text` fits
    in `width` mm on one line (`smallest` where none does: the caller wraps it)."""
    size = largest
    while size > smallest:
        pdf.set_font(FONT, "B", size)
        if pdf.get_string_width(text) <= width:
            return size
        size -= 0.5
    return smallest


def _height(pdf: FPDF, width: float, line: float, text: str) -> float:
    """How tall `text` will be as a paragraph `width` mm wide (fpdf2's dry run)."""
    return cast(float, pdf.multi_cell(width, line, text, dry_run=True, output="HEIGHT"))


class _Document(FPDF):
    """FPDF with a footer on every page (what made the page, and "page n of N" so none goes missing)
    and, on a sheet's continuation pages, a header naming the patient, date and sheet page."""

    footer_text = ""
    continued_text = ""  # the sheet's title line, patient id and date
    sheet_first_page = 1

    def header(self) -> None:
        if not self.continued_text or self.page_no() <= self.sheet_first_page:
            return
        width = self.w - 2 * MARGIN
        sheet_page = self.page_no() - self.sheet_first_page + 1
        text = _t(f"{self.continued_text} | continued, sheet page {sheet_page}")
        # As large as fits on the line, down to 6 pt; a longer one (a 64-character patient id)
        # goes on to a second line rather than off the page.
        self.set_font(FONT, "B", _fitting(self, text, width - 2 * self.c_margin, 9, smallest=6))
        self.set_xy(MARGIN, MARGIN)
        self.multi_cell(width, 3.4, text)
        bottom = max(self.get_y(), MARGIN + 4.5) + 0.5
        self.set_line_width(0.4)
        self.line(MARGIN, bottom, MARGIN + width, bottom)
        self.set_y(bottom + 1.5)

    def footer(self) -> None:
        width = self.w - 2 * MARGIN
        y = self.h - MARGIN - 5.5
        self.set_line_width(0.2)
        self.line(MARGIN, y, MARGIN + width, y)
        self.set_font(FONT, "", 6.6)
        self.set_xy(MARGIN + width - 20, y + 0.3)
        self.cell(20, 2.6, f"page {self.page_no()} of {{nb}}", align="R")
        self.set_xy(MARGIN, y + 0.3)
        self.multi_cell(width - 22, 2.8, _t(self.footer_text), align="L")


class _Page:
    """A small drawing vocabulary over FPDF: headings, label/text lines, boxes, the timeline, grids."""

    def __init__(self, pdf: FPDF, style: Style = STYLES[0]) -> None:
        self.pdf = pdf
        self.style = style
        self.width = pdf.w - 2 * MARGIN

    def ensure(self, height: float) -> None:
        """Start a new page unless `height` mm still fit: boxes and columns are never cut in two."""
        if self.pdf.get_y() + height > self.pdf.page_break_trigger:
            self.pdf.add_page()

    def height(self, text: str, width: float, size: float, line: float) -> float:
        """How tall `text` will be as a paragraph `width` mm wide."""
        self.font(size)
        return _height(self.pdf, width, line, _t(text, keep_newlines=True))

    def font(self, size: float, bold: bool = False) -> None:
        self.pdf.set_font(FONT, "B" if bold else "", size)

    def gap(self, mm: float) -> None:
        self.pdf.set_y(self.pdf.get_y() + mm)

    def heading(self, text: str, x: float = MARGIN, width: float | None = None) -> None:
        pdf, st = self.pdf, self.style
        width = width or self.width
        self.gap(st.heading_gap)
        self.ensure(st.line * 3)  # a heading never ends a page alone
        self.font(st.body + 0.4, bold=True)
        pdf.set_x(x)
        pdf.cell(width, st.line + 0.4, _t(text.upper()), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_line_width(0.25)
        pdf.line(x, pdf.get_y(), x + width, pdf.get_y())
        self.gap(0.6)

    def text(self, text: str, x: float = MARGIN, width: float | None = None, **style: Any) -> None:
        st = self.style
        self.font(style.get("size", st.body), style.get("bold", False))
        self.pdf.set_x(x)
        self.pdf.multi_cell(
            width or self.width,
            style.get("line", st.line),
            _t(text, keep_newlines=True),
            align="L",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )

    def lines(
        self, lines: Sequence[content.Line], x: float = MARGIN, width: float | None = None
    ) -> None:
        st = self.style
        width = width or self.width
        for line in lines:
            self.ensure(st.line)
            y = self.pdf.get_y()
            self.font(st.body, bold=True)
            self.pdf.set_xy(x, y)
            self.pdf.cell(LABEL_WIDTH, st.line, _t(line.label))
            self.font(st.body)
            self.pdf.set_xy(x + LABEL_WIDTH, y)
            self.pdf.multi_cell(
                width - LABEL_WIDTH,
                st.line,
                _t(line.text),
                align="L",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )

    def title(self, left: str, right: str) -> None:
        """The drug's title on the left, the patient id and date on the right; where the id is too
        long for both on one line (a 64-character id ran off the page over the title), the id and
        date go on a second line of the box, as large as fits."""
        pdf = self.pdf
        top = pdf.get_y()
        self.font(13, bold=True)
        left_width = pdf.get_string_width(_t(left)) + 1
        right_width = pdf.get_string_width(_t(right)) + 1
        inside = self.width - 4  # 2 mm inside the box's rule on each side
        if left_width + 4 + right_width <= inside:
            pdf.set_line_width(0.6)
            pdf.rect(MARGIN, top, self.width, 8)
            pdf.set_xy(MARGIN + 2, top + 1)
            pdf.cell(inside - right_width - 4, 6, _t(left))
            pdf.set_xy(MARGIN + 2 + inside - right_width, top + 1)
            pdf.cell(right_width, 6, _t(right), align="R")
            pdf.set_y(top + 9.5)
            return
        # 64 characters of id and the date fit at 8 pt on either paper.
        size = _fitting(pdf, _t(right), inside - 2 * pdf.c_margin, 11)
        pdf.set_line_width(0.6)
        pdf.rect(MARGIN, top, self.width, 13)
        pdf.set_xy(MARGIN + 2, top + 1)
        pdf.cell(inside, 6, _t(left))
        self.font(size, bold=True)
        pdf.set_xy(MARGIN + 2, top + 7)
        pdf.cell(inside, 5, _t(right), align="R")
        pdf.set_y(top + 14.5)

    def wrapped(self, text: str, width: float) -> list[str]:
        """`text` in body type broken at spaces into lines no wider than `width` (a box's note:
        "of metronidazole 500 mg/100 mL (5 mg/mL)" must not run into the next box)."""
        self.font(self.style.body)
        lines: list[str] = []
        for word in content.keep_together(text, content.NO_BREAK_SPACE).split(" "):
            joined = f"{lines[-1]} {word}" if lines else word
            if lines and self.pdf.get_string_width(_t(joined)) <= width:
                lines[-1] = joined
            else:
                lines.append(word)
        fitted: list[str] = []
        for line in lines:  # a word wider than the box (no space to break at) is cut to fit it
            while len(line) > 1 and self.pdf.get_string_width(_t(line)) > width:
                cut = len(line) - 1
                while cut > 1 and self.pdf.get_string_width(_t(line[:cut])) > width:
                    cut -= 1
                fitted.append(line[:cut])
                line = line[cut:]
            fitted.append(line)
        return fitted

    def box_width(self, rows: Sequence[tuple[str, str]], size: float) -> float:
        """The width a box needs for its label/value rows at `size` pt."""
        self.font(size, bold=True)
        labels = max(self.pdf.get_string_width(_t(label)) for label, _ in rows) + 3
        values = max(self.pdf.get_string_width(_t(value)) for _, value in rows)
        return labels + values + 2 * self.pdf.c_margin + 7

    def boxed(
        self,
        x: float,
        width: float,
        title: str,
        rows: Sequence[tuple[str, str]],
        size: float,
        border: float,
        notes: Sequence[str] = (),
    ) -> float:
        """A ruled box: a small title, bold label/value rows at `size` pt, and optional notes in
        body type under them, a line each. Returns its bottom."""
        pdf = self.pdf
        top = pdf.get_y()
        row = size * 0.5
        self.font(size, bold=True)
        label_width = max(pdf.get_string_width(_t(label)) for label, _ in rows) + 3
        height = 4 + row * len(rows) + 1.5 + self.style.line * len(notes)
        pdf.set_line_width(border)
        pdf.rect(x, top, width, height)
        self.font(self.style.body + 0.4, bold=True)
        pdf.set_xy(x + 3, top + 1)
        pdf.cell(width - 6, 3.5, _t(title))
        for i, (label, value) in enumerate(rows):
            self.font(size, bold=True)
            pdf.set_xy(x + 3, top + 4.5 + row * i)
            pdf.cell(label_width, row, _t(label))
            pdf.cell(width - 6 - label_width, row, _t(value))
        self.font(self.style.body)
        for i, note in enumerate(notes):
            pdf.set_xy(x + 3, top + 4.5 + row * len(rows) + self.style.line * i)
            pdf.cell(width - 6, self.style.line, _t(note))
        return top + height

    def alerts(self, alerts: Sequence[str]) -> None:
        """A double-ruled box, bold, with a heading: warnings and overrides cannot be missed."""
        pdf, st = self.pdf, self.style
        inner = self.width - 8
        self.font(st.body, bold=True)
        body = [_t(f"- {a}") for a in alerts]
        height = 5.5 + sum(_height(pdf, inner, st.line, b) for b in body)
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
        self.font(st.body, bold=True)
        for b in body:
            pdf.set_x(MARGIN + 4)
            pdf.multi_cell(inner, st.line, b, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_y(top + height + 4)

    def write_ins(self, fields: Sequence[str]) -> None:
        """Fields a person fills in by hand: a label and a line to write on, side by side."""
        pdf, st = self.pdf, self.style
        self.gap(1.0)
        self.ensure(6)
        y = pdf.get_y()
        width = (self.width - 4 * (len(fields) - 1)) / len(fields)
        for i, name in enumerate(fields):
            x = MARGIN + i * (width + 4)
            self.font(st.body, bold=True)
            label = _t(f"{name}:")
            label_width = pdf.get_string_width(label) + 1.5
            pdf.set_xy(x, y + 1.5)
            pdf.cell(label_width, st.line, label)
            pdf.set_line_width(0.25)
            pdf.line(x + label_width, y + 1.5 + st.line, x + width, y + 1.5 + st.line)
        pdf.set_y(y + 2.5 + st.line)

    # --- the infusion timeline ---

    def _label_size(self, texts: Sequence[str]) -> float:
        """The width (mm) of a tick's three-line label."""
        widths = []
        for i, text in enumerate(texts):
            self.font(self.style.small + 0.4 if i == 0 else self.style.small, bold=i == 0)
            widths.append(self.pdf.get_string_width(_t(text)))
        return max(widths) + 1.0

    def _placed(
        self, segment: content.Segment, left: float, length: float
    ) -> list[tuple[content.Tick | None, float, float]] | None:
        """(tick, label start x, width) for every label of a bar (None: the bar's start label), or
        None when they cannot all sit over their own ticks without touching a neighbour."""
        lo, hi = MARGIN, MARGIN + self.width
        start_texts = [segment.start, "start" if segment.start == "0 min" else "continued"]
        placed: list[tuple[content.Tick | None, float, float]] = []
        for above in (True, False):
            side: list[tuple[content.Tick | None, float, float, float]] = []
            if not above:
                side.append((None, left, left, self._label_size(start_texts)))
            for tick in segment.ticks:
                if tick.above == above:
                    x = left + float(tick.position) * length
                    width = self._label_size([tick.time, tick.volume, tick.dose])
                    side.append((tick, x, x - width / 2, width))
            starts = [min(max(s, lo), hi - w) for _, _, s, w in side]
            for i in range(1, len(side)):  # push right, then back left from the page edge
                starts[i] = max(starts[i], starts[i - 1] + side[i - 1][3] + 1.0)
            for i in range(len(side) - 1, -1, -1):
                limit = hi if i == len(side) - 1 else starts[i + 1] - 1.0
                starts[i] = min(starts[i], limit - side[i][3])
            for (label, x, _, width), start in zip(side, starts, strict=True):
                if start < lo - 0.01 or not start - 0.01 <= x <= start + width + 0.01:
                    return None
                placed.append((label, start, width))
            for i in range(1, len(starts)):
                if starts[i] < starts[i - 1] + side[i - 1][3] + 0.99:
                    return None
        return placed

    def timeline_segments(self, sheet: Sheet) -> list[tuple[content.Segment, list[Any]]]:
        """The checkpoints on as few bars as their labels allow (one bar for a usual infusion)."""
        left, right = MARGIN + 6, MARGIN + self.width - 9
        count = len(sheet.figures.checkpoints)
        for per_segment in range(count, 0, -1):
            segments = content.timeline(sheet, per_segment)
            placements = [self._placed(s, left, right - left) for s in segments]
            if all(p is not None for p in placements):
                return list(zip(segments, placements, strict=True))  # type: ignore[arg-type]
        raise AssertionError("a single tick always has room")  # pragma: no cover

    def timeline(self, sheet: Sheet) -> None:
        pdf, st = self.pdf, self.style
        left, right = MARGIN + 6, MARGIN + self.width - 9
        length = right - left
        label = 3 * st.small_line
        bar_height = 2.6
        for segment, placements in self.timeline_segments(sheet):
            self.ensure(2 * label + bar_height + 5)
            top = pdf.get_y()
            bar = top + label + 1.8
            pdf.set_line_width(0.4)
            pdf.rect(left, bar, length, bar_height)
            pdf.set_line_width(0.1)
            x = left + 2.0
            while x < right:  # light hatching inside the bar: reads as a bar in black and white
                pdf.line(x, bar, x, bar + bar_height)
                x += 2.0
            pdf.set_line_width(0.4)
            pdf.line(left, bar - 1.5, left, bar + bar_height + 1.5)
            for tick in segment.ticks:
                x = left + float(tick.position) * length
                pdf.line(x, bar - 1.5, x, bar + bar_height + 1.5)
            for tick, start, width in placements:
                if tick is None:
                    texts = [segment.start, "start" if segment.start == "0 min" else "continued"]
                    y = bar + bar_height + 1.7
                else:
                    texts = [tick.time, tick.volume, tick.dose]
                    y = bar - 1.7 - label if tick.above else bar + bar_height + 1.7
                self._label(start, y, width, texts)
            pdf.set_y(bar + bar_height + 1.7 + label + 0.8)

    def _label(self, start: float, y: float, width: float, texts: Sequence[str]) -> None:
        pdf, st = self.pdf, self.style
        step = st.small_line
        for i, text in enumerate(texts):
            self.font(st.small + 0.4 if i == 0 else st.small, bold=i == 0)
            pdf.set_xy(start, y + step * i)
            pdf.cell(width, step, _t(text), align="C")

    # --- the monitoring grid ---

    def grid(self, sheet: Sheet, rows: Sequence[str]) -> None:
        pdf, st = self.pdf, self.style
        pad = 2 * pdf.c_margin + 0.6
        line = st.small_line
        pdf.set_line_width(0.25)
        # The row labels may wrap onto two lines in a narrower first column.
        self.font(st.small)
        longest = max(pdf.get_string_width(_t(r)) for r in rows) + pad
        longest_word = max(pdf.get_string_width(w) for r in rows for w in _t(r).split()) + pad
        first = max(min(longest, st.grid_first), longest_word)
        self.font(st.small, bold=True)
        # Each heading may wrap at its spaces: a column holds its longest word, and never less than
        # room to write a blood pressure. As many columns to a block as fit across the page.
        available = self.width - first
        blocks: list[list[tuple[str, float]]] = [[]]
        for column in content.grid_columns(sheet):
            longest_word = max(pdf.get_string_width(w) for w in _t(column).split()) + pad
            narrowest = min(max(st.grid_cell, longest_word), available)
            if blocks[-1] and sum(w for _, w in blocks[-1]) + narrowest > available:
                blocks.append([])
            blocks[-1].append((column, narrowest))
        # Widen the columns to fill the page (every block by the first block's factor).
        factor = available / sum(w for _, w in blocks[0])
        for block in blocks:
            widths = [w * factor for _, w in block]
            self.font(st.small, bold=True)
            heights = [
                _height(pdf, w, line, _t(c)) for (c, _), w in zip(block, widths, strict=True)
            ]
            head = max(heights) + 1.0
            self.font(st.small)
            row_heights = [max(st.grid_row, _height(pdf, first, line, _t(r))) for r in rows]
            self.ensure(head + sum(row_heights) + 1)
            top = pdf.get_y()
            self.font(st.small, bold=True)
            pdf.rect(MARGIN, top, first, head)
            pdf.set_xy(MARGIN, top + (head - line) / 2)
            pdf.cell(first, line, "Time")
            x = MARGIN + first
            for (column, _), width, h in zip(block, widths, heights, strict=True):
                pdf.rect(x, top, width, head)
                pdf.set_xy(x, top + (head - h) / 2)
                pdf.multi_cell(width, line, _t(column), align="C")
                x += width
            y = top + head
            self.font(st.small)
            for row, row_height in zip(rows, row_heights, strict=True):
                pdf.rect(MARGIN, y, first, row_height)
                h = _height(pdf, first, line, _t(row))
                pdf.set_xy(MARGIN, y + (row_height - h) / 2)
                pdf.multi_cell(first, line, _t(row), align="L")
                x = MARGIN + first
                for width in widths:
                    pdf.rect(x, y, width, row_height)
                    x += width
                y += row_height
            pdf.set_y(y + 1)

    def signatures(self) -> None:
        pdf, st = self.pdf, self.style
        self.gap(1.5)
        fields = content.SIGNATURE_FIELDS
        per_row = st.signature_columns
        rows = -(-len(fields) // per_row)
        height = 5 + st.signature_row * rows + 0.8
        self.ensure(height + 1)
        top = pdf.get_y()
        box = (self.width - 4) / 2
        for i, who in enumerate(content.SIGNATURES):
            x = MARGIN + i * (box + 4)
            pdf.set_line_width(0.4)
            pdf.rect(x, top, box, height)
            self.font(st.body, bold=True)
            pdf.set_xy(x + 2, top + 1)
            pdf.cell(box - 4, st.line, _t(who))
            pdf.set_line_width(0.2)
            field_width = (box - 4 - 3 * (per_row - 1)) / per_row
            for j, field in enumerate(fields):
                y = top + 5 + st.signature_row * (j // per_row)
                fx = x + 2 + (j % per_row) * (field_width + 3)
                self.font(st.small)
                pdf.set_xy(fx, y + st.signature_row - 3.4)
                pdf.cell(field_width, 3, _t(f"{field}:"))
                bottom = y + st.signature_row - 0.3
                pdf.line(fx, bottom, fx + field_width, bottom)
        pdf.set_y(top + height + 1)


@cache
def _font_template(style: str) -> Any:
    """fpdf2's TTFFont for one of our fonts, made once per process: reading the character widths
    and glyph ids of DejaVu (several thousand characters) is most of what add_font costs."""
    fonts = resources.files("dosecalc").joinpath("fonts")
    with resources.as_file(fonts.joinpath(FONT_FILES[style])) as path:
        scratch = FPDF()
        scratch.add_font(FONT, style, str(path))
    font: Any = next(iter(scratch.fonts.values()))
    if font.color_font is not None or font.is_compressed or font.is_cff:  # pragma: no cover
        raise AssertionError("the embedded fonts are plain TrueType")
    return font


def _add_fonts(pdf: FPDF) -> None:
    """pdf.add_font for each of our fonts, from the per-process template: the widths, glyph ids
    and metrics are shared (read only); everything a document changes is its own: a fresh
    fontTools font (output subsets it in place; opening it lazily costs nothing), the font
    descriptor (output fills it in), the widths (a defaultdict: reading adds keys), the subset
    and the missing glyphs. The bytes are those of add_font (tests/test_pdf_fonts.py)."""
    import copy

    from fontTools import ttLib
    from fpdf.fonts import SubsetMap

    for style in FONT_FILES:
        template = _font_template(style)
        font = copy.copy(template)
        font.i = len(pdf.fonts) + 1
        tt = ttLib.TTFont(template.ttffile, recalcTimestamp=False, fontNumber=0, lazy=True)
        font.ttfont = tt
        font.desc = copy.copy(template.desc)
        font.cw = copy.copy(template.cw)
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font._hbfont = None
        font.subset = SubsetMap(font)
        pdf.fonts[f"{FONT.lower()}{style}"] = font


def _document(paper: str, date: str, title: str) -> _Document:
    """An empty PDF with the fonts, metadata and deterministic dates set."""
    _, width, height = PAPERS[paper]
    pdf = _Document(unit="mm", format=(width, height))
    _add_fonts(pdf)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    # Overflow continues on a new page rather than being clipped (the layout fits one page).
    pdf.set_auto_page_break(True, MARGIN + FOOTER)
    pdf.set_creation_date(_date(date))
    pdf.set_producer(f"dosecalc {__version__} with fpdf2")
    pdf.set_creator(f"dosecalc {__version__}")
    pdf.set_title(title)  # no patient name in the metadata: file managers and indexers show it
    pdf.set_lang("en")
    return pdf


def _sheet_page(pdf: _Document, sheet: Sheet, style: Style = STYLES[0]) -> None:
    """One sheet from a new page: everything on the text sheet, then timeline, grid, signatures."""
    # No continuation header on this sheet's first page (add_page draws the header), and the
    # previous page's footer with its own text (add_page draws that footer first).
    pdf.continued_text = ""
    pdf.add_page()
    o = sheet.order
    who = f"{o.patient_id or '(no patient ID)'} · {o.date}"
    pdf.footer_text = content.footer(sheet)
    pdf.continued_text = f"{content.title(sheet)} | Patient {who}"
    pdf.sheet_first_page = pdf.page_no()
    page = _Page(pdf, style)
    st = style
    page.title(content.title(sheet), who)
    # The check code goes in the PREPARE box (beside the patient block, which is taller): the line it
    # takes in the header of the text sheet is a line this page needs for the grid.
    page.lines([line for line in content.header(sheet) if line.label != "Check code"])
    # Patient on the left; the DOSE box (what to draw up) and the PUMP box (what to program) on the
    # right, the PUMP box in the largest type and the heaviest rule.
    top = pdf.get_y()
    pump_rows = [(line.label, line.text) for line in content.pump(sheet)]
    dose_rows, dose_note = content.prepare_box(sheet)
    pump_width = max(58.0, page.box_width(pump_rows, 12))
    dose_width = max(50.0, page.box_width(dose_rows, 10.5))
    left_width = page.width - pump_width - dose_width - 8
    page.heading("Patient", width=left_width)
    page.lines(content.patient(sheet), width=left_width)
    left_end = pdf.get_y()
    x_dose = MARGIN + left_width + 4
    x_pump = x_dose + dose_width + 4
    pdf.set_y(top + st.heading_gap)
    dose_end = page.boxed(
        x_dose,
        dose_width,
        "PREPARE",
        dose_rows,
        size=10.5,
        border=0.6,
        notes=(*page.wrapped(dose_note, dose_width - 6), f"check code {sheet.check_code}"),
    )
    pdf.set_y(top + st.heading_gap)
    pump_end = page.boxed(
        x_pump,
        pump_width,
        "PUMP",
        pump_rows,
        size=12,
        border=1.0,
    )
    pdf.set_y(pump_end + 0.6)
    for note in content.pump_notes(sheet):
        page.text(note, x=x_pump, width=pump_width)
    pdf.set_y(max(left_end, dose_end, pdf.get_y()))
    page.write_ins(content.WRITE_INS)
    gate = content.preinfusion_compact(sheet)
    if gate:
        page.gap(1.2)
        for line in gate:
            page.text(line, size=st.small, line=st.small_line)
    alerts = content.alerts(sheet)
    if alerts:
        page.alerts(alerts)
    page.heading("Calculation and reverse check")
    page.lines(
        [*content.calculation(sheet), content.Line("Reverse check", content.reverse_check(sheet))]
    )
    page.heading("Preparation")
    for i, step in enumerate(content.preparation(sheet), 1):
        page.text(f"{i}. {step}")
    if sheet.protocol.continuous:
        page.heading(content.TITRATION_TITLE)
        page.lines(
            [
                content.Line(dose_rate, f"{rate} {note}".strip())
                for dose_rate, rate, note in content.titration_rows(sheet)
            ]
        )
    else:
        page.heading(content.TIMELINE_TITLE)
        page.timeline(sheet)
    page.heading(content.GRID_TITLE)
    page.grid(sheet, content.grid_rows(sheet))
    half = (page.width - 4) / 2
    advisory, monitoring = content.advisory(sheet), content.monitoring(sheet)
    tallest = max(
        page.height(advisory, half, st.small, st.small_line),
        sum(page.height(f"- {m}", half, st.small, st.small_line) for m in monitoring),
    )
    page.ensure(st.heading_gap + 5 + tallest)
    top = pdf.get_y()
    page.heading("Advisory", width=half)
    page.text(advisory, width=half, size=st.small, line=st.small_line)
    left_end = pdf.get_y()
    pdf.set_y(top)
    page.heading("Monitoring", x=MARGIN + half + 4, width=half)
    for item in monitoring:
        page.text(f"- {item}", x=MARGIN + half + 4, width=half, size=st.small, line=st.small_line)
    pdf.set_y(max(left_end, pdf.get_y()))
    page.signatures()


def _fitted(pdf: _Document, sheet: Sheet) -> Style:
    """Lay the sheet out in `pdf` (a scratch document) in each style until one fits one page."""
    for style in STYLES:
        start = pdf.page_no()
        _sheet_page(pdf, sheet, style)
        if pdf.page_no() == start + 1:
            return style
    return STYLES[-1]  # more than one page: each carries the patient, date and page number


def render(sheet: Sheet, paper: str = DEFAULT_PAPER) -> bytes:
    """One sheet as a PDF: one page for every order inside the shipped protocols' hard limits."""
    return render_fitted(sheet, paper)[0]


def render_fitted(sheet: Sheet, paper: str = DEFAULT_PAPER) -> tuple[bytes, int]:
    """The sheet as a PDF, and the index in STYLES of the style it was drawn in: the style that
    `_fitted` would choose for the same sheet and paper (a combined PDF given it draws the page
    once, not once to fit and once to keep)."""
    title = " ".join(
        f"{content.title(sheet)} {sheet.order.patient_id or ''} {sheet.order.date}".split()
    )
    index = 0
    while True:  # usually the first style fits, and this is the only document made
        pdf = _document(paper, sheet.order.date, title)
        _sheet_page(pdf, sheet, STYLES[index])
        if pdf.page_no() == 1 or index == len(STYLES) - 1:
            return bytes(pdf.output()), index
        index += 1


def render_combined(
    cover: Sequence[Sequence[str]],
    sheets: Sequence[Sheet],
    *,
    title: str,
    date: str,
    paper: str = DEFAULT_PAPER,
    styles: Sequence[int | None] | None = None,
) -> bytes:
    """A cover page listing every day-list line (content.COVER_COLUMNS), then one page per sheet.

    `cover` holds one tuple per input line in input order, refused lines included (build a produced
    sheet's with content.cover_row); `sheets` the produced sheets in the same order; `styles`, where
    known, the index in STYLES each sheet fitted in on `paper` (render_fitted), else None.
    """
    pdf = _document(paper, date[:10], _t(title))  # "2026-11-21 to 2026-11-22": the first
    pdf.footer_text = f"dosecalc {__version__} | {title} | {date}"
    pdf.add_page()
    page = _Page(pdf)
    page.title(title, date)
    page.text(
        f"{len(cover)} line(s); {len(sheets)} sheet(s) follow, one page each, in input order."
    )
    page.gap(2)
    fixed = (9.0, 24.0, 15.0, 18.0, 19.0, 19.0, 34.0)
    widths = (*fixed, page.width - sum(fixed))
    page.font(SMALL, bold=True)
    for heading, width in zip(content.COVER_COLUMNS, widths, strict=True):
        pdf.cell(width, 4.5, heading, border=1)
    pdf.ln(4.5)
    page.font(SMALL)
    for row in cover:
        cells = [_t(cell) for cell in row]
        heights = [_height(pdf, w, 3.4, c) for c, w in zip(cells, widths, strict=True)]
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
    known = list(styles) if styles is not None else [None] * len(sheets)
    scratch = _document(paper, date, "") if None in known else None
    for sheet, index in zip(sheets, known, strict=True):
        if index is None:
            assert scratch is not None
            style = _fitted(scratch, sheet)
        else:
            style = STYLES[index]
        _sheet_page(pdf, sheet, style)
    return bytes(pdf.output())
