"""The printable HTML dose sheet: one self-contained file (inline CSS; no scripts, fonts, images or links).

Laid out to print on one A4 or US Letter page in black and white. Every string passes `on_page`
(sanitize.html: controls removed, then html.escape; a number kept with its unit) on its way into
the markup; numbers come from content.py's sentences and the Sheet's figures only.
"""

from __future__ import annotations

import re
from decimal import Decimal

from dosecalc.model import Sheet
from dosecalc.render import DEFAULT_PAPER, PAPERS, content
from dosecalc.sanitize import html as _escaped  # the HTML policy

# Page margin (mm): the same on every paper, so A4 and Letter differ only in the page box.
MARGIN_MM = 10
# A 2-hour infusion with 10-minute checkpoints fits one timeline bar and one grid (15 columns).
TICKS_PER_BAR = 12
GRID_COLUMNS = 15

_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def on_page(text: str) -> str:
    """Text for the page: escaped (sanitize.html), a number kept on one line with its unit (a
    no-break space, as on the PDF: a browser never breaks "299.8 / kg"), and a date never broken
    at its hyphens."""
    escaped = _escaped(content.keep_together(text, content.NO_BREAK_SPACE))
    return _DATE.sub(lambda found: f'<span class="nw">{found.group()}</span>', escaped)


CSS = """
@page { size: %(page)s; margin: %(margin)dmm; }
* { box-sizing: border-box; }
html { background: #fff; color: #000; }
body { margin: 0; font-family: "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif;
  font-size: 7.6pt; line-height: 1.2; }
.sheet { max-width: %(width)smm; margin: 0 auto; }
.nw { white-space: nowrap; }
@media screen { .sheet { padding: %(margin)dmm 0; } }
h1 { font-size: 13pt; margin: 0 0 1.2mm; padding: 1mm 2mm; border: 2px solid #000;
  display: flex; flex-wrap: wrap; column-gap: 4mm; justify-content: space-between; }
h1 span { overflow-wrap: anywhere; }
h2 { font-size: 8.4pt; margin: 1.5mm 0 0.5mm; border-bottom: 1px solid #000;
  text-transform: uppercase; letter-spacing: 0.03em; break-after: avoid; }
table { border-collapse: collapse; }
table.lines th { text-align: left; padding: 0 3mm 0 0; white-space: nowrap; vertical-align: top; }
table.lines td { padding: 0; vertical-align: top; overflow-wrap: anywhere; }
table.lines tr { break-inside: avoid; }
.cols { display: flex; flex-wrap: wrap; gap: 4mm; align-items: flex-start; }
.cols > div { flex: 1 1 45mm; min-width: 45mm; }
.cols > div.box { flex: 0 1 auto; min-width: 0; max-width: 100%%; }
.pump { border: 3px solid #000; padding: 1mm 3mm; font-weight: bold; font-size: 12pt; }
.pump table th { text-align: left; padding-right: 6mm; }
.pump .title, .prepare .title { font-size: 8.6pt; letter-spacing: 0.1em; }
.prepare { border: 2px solid #000; padding: 1mm 3mm; margin-bottom: 1mm; font-size: 10.5pt; }
.prepare table th { text-align: left; padding-right: 5mm; }
.prepare .note { font-size: 8pt; }
.writeins { display: flex; gap: 4mm; margin: 1.5mm 0 0.5mm; }
.writeins div { flex: 1 1 0; border-bottom: 1px solid #000; padding-top: 2mm; font-weight: bold; }
.alerts { border: 3px double #000; padding: 1mm 2mm; margin: 1.5mm 0; font-weight: bold; }
.alerts .title { font-size: 10pt; letter-spacing: 0.05em; }
.alerts ul { margin: 0.5mm 0 0; padding-left: 4mm; }
ol, ul { margin: 0; padding-left: 5mm; }
.small { font-size: 7.4pt; }
.timeline { position: relative; height: 24.5mm; margin: 0 9mm 1mm 6mm; break-inside: avoid; }
.bar { position: absolute; left: 0; right: 0; top: 10.5mm; height: 3mm; border: 1.5px solid #000;
  background: repeating-linear-gradient(90deg, #fff 0, #fff 2mm, #ccc 2mm, #ccc 2.4mm); }
.tick { position: absolute; top: 9mm; width: 0; height: 6mm; border-left: 1.5px solid #000; }
.label { position: absolute; white-space: nowrap; font-size: 7.4pt; line-height: 1.1;
  text-align: center; transform: translateX(-50%%); }
.label.up { bottom: 15.2mm; }
.label.down { top: 15.5mm; }
.label.left { transform: none; text-align: left; }
.label.right { transform: translateX(-100%%); text-align: right; }
.label b { font-size: 7.8pt; }
table.grid { width: 100%%; margin-bottom: 1mm; table-layout: auto; break-inside: avoid; }
table.grid th, table.grid td { border: 1px solid #000; padding: 0.3mm 0.6mm; font-size: 7.2pt;
  line-height: 1.1; }
table.grid th { text-align: center; }
table.grid th.row { text-align: left; width: 24mm; font-weight: normal; }
table.grid td { height: 5mm; }
.signatures { display: flex; gap: 4mm; margin-top: 1.5mm; break-inside: avoid; }
.signature { flex: 1 1 0; border: 1.5px solid #000; padding: 1mm 2mm; display: flex;
  flex-wrap: wrap; column-gap: 2mm; }
.signature b { flex: 1 0 100%%; }
.signature .field { flex: 1 1 0; }
.signature .field { border-bottom: 1px solid #000; height: 4.6mm; padding-top: 1.6mm;
  font-size: 7.4pt; }
footer { margin-top: 1.5mm; font-size: 6.8pt; border-top: 1px solid #000; padding-top: 0.5mm; }
"""


def _lines(lines: list[content.Line]) -> str:
    rows = "".join(f"<tr><th>{on_page(x.label)}</th><td>{on_page(x.text)}</td></tr>" for x in lines)
    return f'<table class="lines">{rows}</table>'


def _percent(position: Decimal) -> str:
    """A tick's place along the bar as a CSS percentage (layout only)."""
    return f"{(position * 100).quantize(Decimal('0.01'))}%"


def _timeline(sheet: Sheet) -> str:
    parts = []
    for segment in content.timeline(sheet, TICKS_PER_BAR):
        ticks = [
            f'<div class="tick" style="left:0"></div>'
            f'<div class="label down left" style="left:0"><b>{on_page(segment.start)}</b><br>'
            f"{'start' if segment.start == '0 min' else 'continued'}</div>"
        ]
        for tick in segment.ticks:
            where = _percent(tick.position)
            side = "up" if tick.above else "down"
            anchor = " right" if tick.position > Decimal("0.93") else ""
            ticks.append(
                f'<div class="tick" style="left:{where}"></div>'
                f'<div class="label {side}{anchor}" style="left:{where}">'
                f"<b>{on_page(tick.time)}</b><br>{on_page(tick.volume)}<br>{on_page(tick.dose)}</div>"
            )
        parts.append(f'<div class="timeline"><div class="bar"></div>{"".join(ticks)}</div>')
    return "".join(parts)


def _course(sheet: Sheet) -> list[str]:
    """The timeline of a dose; a continuous infusion's titration table instead (issue 11)."""
    if not sheet.protocol.continuous:
        return [f"<h2>{on_page(content.TIMELINE_TITLE)}</h2>", _timeline(sheet)]
    rows = "".join(
        f"<tr><th>{on_page(dose_rate)}</th><td>{on_page(f'{rate} {note}'.strip())}</td></tr>"
        for dose_rate, rate, note in content.titration_rows(sheet)
    )
    return [f"<h2>{on_page(content.TITRATION_TITLE)}</h2>", f'<table class="lines">{rows}</table>']


def _grid(sheet: Sheet) -> str:
    tables = []
    for block in content.grid_blocks(sheet, GRID_COLUMNS):
        head = '<th class="row">Time</th>' + "".join(f"<th>{on_page(c)}</th>" for c in block)
        body = "".join(
            f'<tr><th class="row">{on_page(row)}</th>' + "<td></td>" * len(block) + "</tr>"
            for row in content.grid_rows(sheet)
        )
        tables.append(f'<table class="grid"><tr>{head}</tr>{body}</table>')
    return "".join(tables)


def _signatures() -> str:
    boxes = []
    for who in content.SIGNATURES:
        fields = "".join(
            f'<div class="field">{on_page(f)}:</div>' for f in content.SIGNATURE_FIELDS
        )
        boxes.append(f'<div class="signature"><b>{on_page(who)}</b>{fields}</div>')
    return f'<div class="signatures">{"".join(boxes)}</div>'


def document(sheet: Sheet, paper: str = DEFAULT_PAPER) -> str:
    """The whole HTML document as text."""
    page, width_mm, _height = PAPERS[paper]
    css = CSS % {"page": page, "margin": MARGIN_MM, "width": f"{width_mm - 2 * MARGIN_MM:g}"}
    o = sheet.order
    who = o.patient_id or "(no patient ID)"
    title = content.title(sheet)
    alerts = content.alerts(sheet)
    prepare, prepare_note = content.prepare_box(sheet)
    pump = "".join(
        f"<tr><th>{on_page(x.label)}</th><td>{on_page(x.text)}</td></tr>"
        for x in content.pump(sheet)
    )
    body = [
        f"<h1><span>{on_page(title)}</span><span>{on_page(who)} &middot; {on_page(o.date)}</span></h1>",
        # The check code is in the PREPARE box (as on the PDF): one header line less on the page.
        _lines([line for line in content.header(sheet) if line.label != "Check code"]),
        '<div class="cols"><div>',
        "<h2>Patient</h2>",
        _lines(content.patient(sheet)),
        '</div><div class="box">',
        '<div class="prepare"><div class="title">PREPARE</div><table>'
        + "".join(
            f"<tr><th>{on_page(label)}</th><td>{on_page(value)}</td></tr>"
            for label, value in prepare
        )
        + f'</table><div class="note">{on_page(prepare_note)}</div>'
        f'<div class="note">check code <b>{on_page(sheet.check_code)}</b></div></div>',
        '</div><div class="box">',
        f'<div class="pump"><div class="title">PUMP</div><table>{pump}</table></div>',
        "".join(f"<div>{on_page(note)}</div>" for note in content.pump_notes(sheet)),
        "</div></div>",
        '<div class="writeins">'
        + "".join(f"<div>{on_page(field)}:</div>" for field in content.WRITE_INS)
        + "</div>",
    ]
    # The gate in its compact form (as on the PDF): the page stays one page.
    body += [
        f'<div class="small">{on_page(line)}</div>' for line in content.preinfusion_compact(sheet)
    ]
    if alerts:
        items = "".join(f"<li>{on_page(a)}</li>" for a in alerts)
        body.append(
            '<div class="alerts" role="alert"><div class="title">'
            f"&#9888; WARNINGS AND OVERRIDES</div><ul>{items}</ul></div>"
        )
    steps = "".join(f"<li>{on_page(step)}</li>" for step in content.preparation(sheet))
    monitoring = "".join(f"<li>{on_page(m)}</li>" for m in content.monitoring(sheet))
    advisory = "<br>".join(on_page(line) for line in content.advisory(sheet).splitlines())
    body += [
        "<h2>Calculation and reverse check</h2>",
        _lines(
            [
                *content.calculation(sheet),
                content.Line("Reverse check", content.reverse_check(sheet)),
            ]
        ),
        "<h2>Preparation</h2>",
        f"<ol>{steps}</ol>",
        *_course(sheet),
        f"<h2>{on_page(content.GRID_TITLE)}</h2>",
        _grid(sheet),
        '<div class="cols small"><div>',
        "<h2>Advisory</h2>",
        f"<div>{advisory}</div>",
        "</div><div>",
        "<h2>Monitoring</h2>",
        f"<ul>{monitoring}</ul>",
        "</div></div>",
        _signatures(),
        f"<footer>{on_page(content.footer(sheet))}</footer>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_escaped(f'{title} - {who} - {o.date}')}</title>\n"
        f"<style>{css}</style>\n</head>\n<body>\n"
        f'<main class="sheet">\n' + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
    )


def render(sheet: Sheet, paper: str = DEFAULT_PAPER) -> bytes:
    return document(sheet, paper).encode("utf-8")
