"""The baseline of issue 14's PDF figure: fpdf2 alone drawing and saving a day's pages on one core.

    python benchmarks/fpdf_alone.py TEXTS.json OUT_DIR

TEXTS.json holds each sheet's words, taken once from dosecalc (`texts`, untimed, by run.py). For
each sheet this draws an A4 page with the same strings, boxes, timeline marks and monitoring grid,
DejaVu Sans embedded, and saves it as its own PDF; then one combined PDF of a cover page listing
every sheet and a page per sheet: the pages `batch --out --sheets pdf --combined` writes.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

FONTS = Path(__file__).resolve().parent.parent / "dosecalc" / "fonts"


def texts(sheet: Any) -> dict[str, Any]:
    """One sheet's words as plain JSON values, through dosecalc's content module."""
    from dosecalc.render import content

    def pairs(lines: Any) -> list[tuple[str, str]]:
        return [(line.label, line.text) for line in lines]

    return {
        "title": content.title(sheet),
        "header": pairs(content.header(sheet)),
        "patient": pairs(content.patient(sheet)),
        "calculation": pairs(content.calculation(sheet)),
        "pump": pairs(content.pump(sheet)),
        "preparation": list(content.preparation(sheet)),
        "alerts": list(content.alerts(sheet)),
        "dose_rate": content.dose_rate(sheet),
        "reverse_check": content.reverse_check(sheet),
        "timeline": [
            (seg.start, [(float(t.position), t.time, t.volume, t.dose, t.above) for t in seg.ticks])
            for seg in content.timeline(sheet)
        ],
        "grid_blocks": [list(block) for block in content.grid_blocks(sheet)],
        "grid_rows": list(content.GRID_ROWS),
        "advisory": content.advisory(sheet),
        "monitoring": list(content.monitoring(sheet)),
        "signatures": list(content.SIGNATURES),
        "footer": content.footer(sheet),
    }


def document() -> Any:
    from fpdf import FPDF

    pdf = FPDF(unit="mm", format="A4")
    pdf.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_margins(10, 10, 10)
    pdf.set_auto_page_break(True, 17)
    pdf.set_creation_date(dt.datetime(2026, 11, 21, tzinfo=dt.UTC))
    return pdf


def page(pdf: Any, t: dict[str, Any]) -> None:
    """One sheet's page: the same strings, boxes and marks as dosecalc's PDF sheet."""
    from fpdf.enums import XPos, YPos

    pdf.add_page()
    width = pdf.w - 20
    nxt = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}

    def heading(text: str) -> None:
        pdf.set_font("DejaVu", "B", 8.6)
        pdf.cell(width, 3.9, text.upper(), **nxt)
        pdf.line(10, pdf.get_y(), 10 + width, pdf.get_y())

    def lines(rows: list[tuple[str, str]]) -> None:
        for label, text in rows:
            y = pdf.get_y()
            pdf.set_font("DejaVu", "B", 8.2)
            pdf.set_xy(10, y)
            pdf.cell(27, 3.5, label)
            pdf.set_font("DejaVu", "", 8.2)
            pdf.set_xy(37, y)
            pdf.multi_cell(width - 27, 3.5, text, **nxt)

    def paragraph(text: str, size: float = 8.2) -> None:
        pdf.set_font("DejaVu", "", size)
        pdf.multi_cell(width, 3.5, text, **nxt)

    pdf.set_line_width(0.6)
    pdf.rect(10, pdf.get_y(), width, 8)
    pdf.set_font("DejaVu", "B", 13)
    pdf.cell(width, 8, t["title"], **nxt)
    lines(t["header"])
    heading("Patient")
    lines(t["patient"])
    pdf.rect(10, pdf.get_y(), width / 2, 4 + 6 * len(t["pump"]) + 2)
    for label, text in t["pump"]:
        pdf.set_font("DejaVu", "B", 12)
        pdf.cell(28, 6, label)
        pdf.cell(width / 2 - 34, 6, text, **nxt)
    paragraph(f"Dose rate: {t['dose_rate']}")
    for alert in t["alerts"]:
        paragraph(f"- {alert}")
    heading("Calculation")
    lines(t["calculation"])
    heading("Preparation")
    for i, step in enumerate(t["preparation"], 1):
        paragraph(f"{i}. {step}")
    heading("Reverse check")
    paragraph(t["reverse_check"])
    heading("Infusion timeline")
    for start, ticks in t["timeline"]:
        y = pdf.get_y()
        pdf.rect(16, y + 10.5, width - 15, 3)
        pdf.set_font("DejaVu", "", 7.2)
        pdf.set_xy(16, y + 15.5)
        pdf.cell(30, 2.9, start)
        for position, *labels, above in ticks:
            x = 16 + position * (width - 15)
            pdf.line(x, y + 9, x, y + 15)
            for j, label in enumerate(labels):
                pdf.set_xy(x - 15, y + (0.0 if above else 15.5) + 2.9 * j)
                pdf.cell(30, 2.9, label, align="C")
        pdf.set_y(y + 27)
    heading("Monitoring (fill in by hand)")
    pdf.set_font("DejaVu", "", 7.2)
    for block in t["grid_blocks"]:
        cell = (width - 38) / max(len(block), 5)
        pdf.cell(38, 4.5, "Time", border=1)
        for column in block:
            pdf.cell(cell, 4.5, column, border=1, align="C")
        pdf.ln(4.5)
        for row in t["grid_rows"]:
            pdf.cell(38, 5.8, row, border=1)
            for _ in block:
                pdf.cell(cell, 5.8, "", border=1)
            pdf.ln(5.8)
    heading("Advisory")
    paragraph(t["advisory"], 7.2)
    heading("Monitoring")
    for item in t["monitoring"]:
        paragraph(f"- {item}", 7.2)
    for who in t["signatures"]:
        paragraph(f"{who}: name, signature, date / time")
    pdf.set_auto_page_break(False)  # the footer sits in the bottom margin
    pdf.set_y(-15)
    paragraph(t["footer"], 6.6)
    pdf.set_auto_page_break(True, 17)


def main(source: Path, out: Path) -> None:
    sheets = json.loads(source.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    for i, t in enumerate(sheets):
        pdf = document()
        page(pdf, t)
        pdf.output(str(out / f"{i:04d}.pdf"))
    combined = document()
    combined.add_page()
    combined.set_font("DejaVu", "", 7.2)
    for t in sheets:  # the cover: a line per sheet
        combined.cell(0, 3.5, f"{t['patient'][0][1]}  {t['title']}", new_x="LMARGIN", new_y="NEXT")
    for t in sheets:
        page(combined, t)
    combined.output(str(out / "combined.pdf"))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
