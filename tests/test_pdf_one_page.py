"""One page, always: every order inside the shipped protocols' hard limits, on A4 and Letter, gives a
one-page PDF on which no two words overlap and every word is on the page (poppler's pdfinfo and
`pdftotext -bbox`). Durations every 5 min across the hard range, several weights, doses and
strengths for each; overrides everywhere, so the warning box is as full as it gets.
"""

from __future__ import annotations

import html
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import TEST_PROTOCOLS
from test_print_tools import need

from dosecalc import protocols
from dosecalc.errors import LimitError
from dosecalc.model import Order, Sheet, make_sheet
from dosecalc.render import as_pdf, render

PAPERS = {"a4": (595.28, 841.89), "letter": (612.0, 792.0)}  # points
# (weight, dose per kg, stock): the hard limits' corners and awkward values in between.
ORDERS = [
    ("20 kg", "0.1 mg/kg", "10 mg/mL"),
    ("72 kg", "0.5 mg/kg", "10 mg/mL"),
    ("661 lb", "0.65 mg/kg", "10 mg/mL"),
    ("199.9 kg", "1 mg/kg", "50 mg/mL"),
    ("44.1 lb", "0.33 mg/kg", "50 mg/mL"),
    ("150.05 kg", "0.75 mg/kg", "10 mg/mL"),
    ("123.4 kg", "0.99 mg/kg", "10 mg/mL"),
]


@dataclass(frozen=True)
class Word:
    text: str
    x0: float
    y0: float
    x1: float
    y1: float


WORD = re.compile(
    r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>'
)


def words_by_page(pdf: Path) -> list[list[Word]]:
    out = subprocess.run(
        [need("pdftotext", "poppler-utils"), "-bbox", str(pdf), "-"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    pages = out.split("<page ")[1:]
    return [
        [Word(html.unescape(m[5]), *(float(m[i]) for i in range(1, 5))) for m in WORD.finditer(p)]
        for p in pages
    ]


def overlaps(words: list[Word], tolerance: float = 0.05) -> list[tuple[Word, Word]]:
    """Pairs of words whose boxes intersect (a sweep down the page)."""
    found = []
    ordered = sorted(words, key=lambda w: w.y0)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if b.y0 >= a.y1 - tolerance:
                break
            if min(a.x1, b.x1) - max(a.x0, b.x0) > tolerance:
                found.append((a, b))
    return found


def pages(pdf: Path) -> int:
    info = subprocess.run([need("pdfinfo", "poppler-utils"), str(pdf)], capture_output=True,
                          text=True, timeout=120, check=True).stdout  # fmt: skip
    return int(re.search(r"^Pages:\s+(\d+)$", info, re.MULTILINE)[1])  # type: ignore[index]


def sheets(library: protocols.Library, protocol_id: str) -> Iterator[Sheet]:
    """Every 5 min of the hard duration range, each with two of ORDERS in turn."""
    p = library.get(protocol_id)
    low, high = p.limits["duration"].hard.low, p.limits["duration"].hard.high
    minutes = range(int(low), int(high) + 1, 5)
    assert Decimal(minutes[0]) == low
    assert Decimal(minutes[-1]) == high
    made = 0
    for n, minute in enumerate(minutes):
        for k in range(2):
            weight, dose, stock = ORDERS[(n + k) % len(ORDERS)]
            order = Order(weight=weight, date="2026-11-21", protocol_id=protocol_id,
                          patient_id=f"P{minute:03d}-{k}" * 4, name="Zoë " * 10, dose=dose,
                          duration=f"{minute} min", stock=stock,
                          override_reason="Prescribed as written, checked with pharmacy",
                          operator="RN Lee")  # fmt: skip
            try:
                yield make_sheet(library, order)
                made += 1
            except LimitError:  # outside a hard limit (e.g. a dose above 200 mg): not a sheet
                continue
    assert made >= 1.5 * len(minutes), "most orders must be inside the hard limits"


def check_pdf(path: Path, paper: str) -> list[str]:
    problems = []
    if (count := pages(path)) != 1:
        problems.append(f"{path.name}: {count} pages")
    for page in words_by_page(path):
        problems += check_page(path.name, page, paper)
    return problems


def check_page(name: str, page: list[Word], paper: str) -> list[str]:
    width, height = PAPERS[paper]
    problems = [
        f"{name}: {a.text!r} overlaps {b.text!r} at {a.x0:.0f},{a.y0:.0f}"
        for a, b in overlaps(page)
    ]
    problems += [
        f"{name}: {w.text!r} is off the page"
        for w in page
        if w.x0 < 0 or w.y0 < 0 or w.x1 > width or w.y1 > height
    ]
    return problems


@pytest.mark.parametrize("paper", list(PAPERS))
@pytest.mark.parametrize("protocol_id", ["ketamine-iv", "ketamine-iv-syringe"])
def test_every_order_inside_the_hard_limits_is_one_page_with_no_overlapping_words(
    shipped: protocols.Library, tmp_path: Path, protocol_id: str, paper: str
) -> None:
    # The whole sweep in one combined PDF (the layout `batch --combined` prints, and one poppler
    # run): exactly one page per sheet, each naming only its own patient.
    need("pdftotext", "poppler-utils")
    made = list(sheets(shipped, protocol_id))
    path = tmp_path / "sweep.pdf"
    cover = [("1", s.order.patient_id or "", "ok", "", "", "", "", "") for s in made]
    path.write_bytes(
        as_pdf.render_combined(cover, made, title="sweep", date="2026-11-21", paper=paper)
    )
    ids = [s.order.patient_id for s in made]
    sheet_pages = [p for p in words_by_page(path) if any(w.text == "KETAMINE" for w in p)]
    assert len(sheet_pages) == len(made)
    problems = []
    for sheet, page in zip(made, sheet_pages, strict=True):
        text = " ".join(w.text for w in page)
        named = {i for i in ids if i in text}
        name = f"{sheet.order.duration} {sheet.order.weight} {sheet.order.dose}"
        if named != {sheet.order.patient_id}:
            problems.append(f"{name}: a page names {sorted(named)}")
        problems += check_page(name, page, paper)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("paper", list(PAPERS))
@pytest.mark.parametrize("protocol_id", ["ketamine-iv", "ketamine-iv-syringe"])
def test_single_sheet_pdfs_are_one_page_across_the_range(
    shipped: protocols.Library, tmp_path: Path, protocol_id: str, paper: str
) -> None:
    # `dosecalc sheet --format pdf`: every fourth order of the sweep, each its own file.
    paths = []
    for i, sheet in enumerate(sheets(shipped, protocol_id)):
        if i % 4 == 0:
            path = tmp_path / f"{i:03d}-{sheet.order.duration.replace(' ', '')}.pdf"
            path.write_bytes(render(sheet, "pdf", paper=paper))
            paths.append(path)
    with ThreadPoolExecutor(max_workers=2) as pool:
        problems = [p for found in pool.map(lambda p: check_pdf(p, paper), paths) for p in found]
    assert not problems, "\n".join(problems[:20])


def test_the_overlap_check_finds_overlapping_words() -> None:
    a = Word("60 min", 100, 100, 130, 108)
    assert overlaps([a, Word("(end)70", 125, 101, 150, 109)]) == [
        (a, Word("(end)70", 125, 101, 150, 109))
    ]
    assert overlaps([a, Word("70 min", 131, 100, 160, 108)]) == []
    assert overlaps([a, Word("below", 100, 108, 130, 116)]) == []


def test_grid_headings_have_room_at_60_70_and_80_min(
    shipped: protocols.Library, tmp_path: Path
) -> None:
    # Issue 13: the headings ran into each other at these (soft-limit) durations.
    for minute in (60, 70, 80):
        for paper in PAPERS:
            order = Order(weight="72 kg", date="2026-11-21", duration=f"{minute} min",
                          override_reason="As prescribed", operator="RN Lee")  # fmt: skip
            path = tmp_path / f"{minute}-{paper}.pdf"
            path.write_bytes(render(make_sheet(shipped, order), "pdf", paper=paper))
            assert check_pdf(path, paper) == []
            text = " ".join(w.text for w in words_by_page(path)[0])
            assert f"{minute} min (end)" in text or f"{minute} min" in text


def test_a_sheet_that_needs_a_second_page_names_the_patient_date_and_page_on_each(
    tmp_path: Path,
) -> None:
    # Not a shipped protocol: a 5-minute checkpoint over 24 h cannot fit one page.
    source = TEST_PROTOCOLS.read_text(encoding="utf-8")
    long = source.replace('checkpoint_every = "10 min"', 'checkpoint_every = "5 min"', 1)
    long = re.sub(r'duration = \{ soft = \["40 min", "60 min"\], hard = \["20 min", "120 min"\] \}',
                  'duration = { soft = ["40 min", "60 min"], hard = ["20 min", "300 min"] }',
                  long, count=1)  # fmt: skip
    # Over 300 min a 2 mg dose is 0.03 mg at the first 5-minute checkpoint: the loader refuses a
    # protocol whose checkpoints can print 0 mg, so the smallest dose here is 10 mg.
    long = long.replace('hard = ["2 mg", "200 mg"]', 'hard = ["10 mg", "200 mg"]', 1)
    path = tmp_path / "long.toml"
    path.write_text(long, encoding="utf-8")
    library = protocols.load(path)
    order = Order(weight="72 kg", date="2026-11-21", patient_id="LONG-1", duration="295 min",
                  override_reason="Slow", operator="RN Lee")  # fmt: skip
    sheet = make_sheet(library, order)
    out = tmp_path / "long.pdf"
    out.write_bytes(as_pdf.render(sheet, paper="letter"))
    count = pages(out)
    assert count >= 2
    for n, page in enumerate(words_by_page(out), 1):
        text = " ".join(w.text for w in page)
        assert "LONG-1" in text
        assert "2026-11-21" in text
        assert f"page {n} of {count}" in text
        assert not overlaps(page)
    assert "continued, sheet page 2" in " ".join(w.text for w in words_by_page(out)[1])


def test_dose_and_volume_are_the_largest_numbers_after_the_pump_box(
    shipped: protocols.Library, tmp_path: Path
) -> None:
    sheet = make_sheet(shipped, Order(weight="72 kg", date="2026-11-21", patient_id="P1"))
    path = tmp_path / "sheet.pdf"
    path.write_bytes(render(sheet, "pdf"))
    [page] = words_by_page(path)
    numbers = [w for w in page if re.fullmatch(r"[\d.,]+", w.text)]
    size: dict[str, float] = {}
    for w in numbers:
        size[w.text] = max(size.get(w.text, 0.0), w.y1 - w.y0)
    pump = {"155.4", "103.6", "40"}
    dose, volume = "36", "3.6"
    others = [w.y1 - w.y0 for w in numbers if w.text not in pump | {dose, volume}]
    tallest_pump = max(w.y1 - w.y0 for w in numbers if w.text in pump)
    assert max(others) < size[dose] < tallest_pump
    assert max(others) < size[volume] < tallest_pump


def test_printed_sheets_have_fields_for_date_of_birth_prescriber_and_start_time(
    shipped: protocols.Library, tmp_path: Path
) -> None:
    sheet = make_sheet(shipped, Order(weight="72 kg", date="2026-11-21"))
    path = tmp_path / "sheet.pdf"
    path.write_bytes(render(sheet, "pdf"))
    text = " ".join(w.text for w in words_by_page(path)[0])
    for field in ("Date of birth:", "Prescriber:", "Start time:"):
        assert field in text
    page = render(sheet, "html").decode("utf-8")
    for field in ("Date of birth:", "Prescriber:", "Start time:"):
        assert field in page


@pytest.mark.parametrize(
    ("minutes", "paper"), [("120", "letter"), ("115", "letter"), ("115", "a4"), ("25", "letter")]
)
def test_chromium_prints_a_long_infusions_html_on_one_page_with_no_overlapping_words(
    shipped: protocols.Library, tmp_path: Path, minutes: str, paper: str
) -> None:
    from test_print_tools import print_with_chromium

    order = Order(weight="154 lb", date="2026-11-21", patient_id="P-0043", name="Zoë " * 10,
                  duration=f"{minutes} min", override_reason="As prescribed",
                  operator="RN Lee")  # fmt: skip
    html_file = tmp_path / "sheet.html"
    html_file.write_bytes(render(make_sheet(shipped, order), "html", paper=paper))
    pdf, _ = print_with_chromium(html_file, tmp_path, screenshot=False)
    assert pages(pdf) == 1
    [page] = words_by_page(pdf)
    # The HTML sets type at 1.1 to 1.2 line heights, tighter than DejaVu's full ascent-to-descent
    # box (1.164 em) that pdftotext reports, so the boxes of two lines of one label or heading
    # share up to about 1.2 pt where no glyphs are; words running into each other overlap far more.
    assert not overlaps(page, tolerance=1.3), overlaps(page, tolerance=1.3)[:5]
    # The grid's last column heads "<minutes> min (end)": on one line, or "(end)" under the time
    # (a no-break space keeps "120 min" together; the heading may wrap after it).
    text = " ".join(w.text for w in page).replace("\u00a0", " ")
    times = [w for w in page if w.text in (minutes, f"{minutes}\u00a0min")]
    ends = [w for w in page if w.text == "(end)"]
    under = any(t.y1 <= e.y0 + 1.5 and abs(t.x0 - e.x0) < 30 for t in times for e in ends)
    assert f"{minutes} min (end)" in text or under


EXAMPLES = Path(__file__).parent.parent / "examples" / "protocols-more.toml"
DELIVERY = Path(__file__).parent / "data" / "delivery_protocols.toml"
# Issue 11: each kind of sheet (per-kg diluent by gravity, a continuous infusion with its
# titration table, to a concentration with a lengthened duration and a flush, a neat push, a
# premixed bag by gravity, a bag made up on the ward with an 11-row titration table).
NEW_SHEETS = [
    (EXAMPLES, "acetylcysteine-bag1-5-20kg", "20 kg"),
    (EXAMPLES, "dopamine-premix-1600", "80 kg"),
    (EXAMPLES, "vancomycin-5mg-per-ml", "68 kg"),
    (EXAMPLES, "ondansetron-ponv-child", "20 kg"),
    (EXAMPLES, "metronidazole-premix-gravity", "70 kg"),
    (DELIVERY, "heparin", "80 kg"),
    (DELIVERY, "dopamine", "140 kg"),
]


@pytest.mark.parametrize("paper", list(PAPERS))
def test_each_kind_of_preparation_and_delivery_sheet_is_one_page(
    tmp_path: Path, paper: str
) -> None:
    need("pdftotext", "poppler-utils")
    problems = []
    for path, protocol_id, weight in NEW_SHEETS:
        library = protocols.load(path)
        order = Order(weight=weight, date="2026-11-21", protocol_id=protocol_id,
                      patient_id="P-0042", name="Zoë " * 10)  # fmt: skip
        pdf = tmp_path / f"{protocol_id}.pdf"
        pdf.write_bytes(render(make_sheet(library, order), "pdf", paper=paper))
        problems += check_pdf(pdf, paper)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize(
    ("protocol_id", "order", "together"),
    [
        ("dopamine-premix-1600", {"weight": "154 lb"}, "(1,600 mcg/mL)"),
        ("metronidazole-premix-gravity", {"weight": "72 kg"}, "500 mg/100 mL (5 mg/mL)"),
    ],
)
def test_the_pdf_never_breaks_a_strength_from_its_unit(
    tmp_path: Path, protocol_id: str, order: dict[str, str], together: str
) -> None:
    """The PREPARE box's note broke "(1,600 / mcg/mL)" and "500 mg/100 / mL" across lines (an
    outside check, with pdftotext): a number and its unit are one word on the page too."""
    sheet = make_sheet(
        protocols.load(EXAMPLES), Order(date="2026-11-25", protocol_id=protocol_id, **order)
    )
    pdf = tmp_path / "sheet.pdf"
    pdf.write_bytes(render(sheet, "pdf"))
    text = subprocess.run(
        [need("pdftotext", "poppler-utils"), str(pdf), "-"], capture_output=True, check=True,
        text=True,
    ).stdout  # fmt: skip
    broken = re.search(r"\d[\d,.]*\n(?:mcg|mg|g|kg|mL|L|min|h|gtt)\b[^\n]*", text)
    assert broken is None, broken
    assert together in text.replace("\n", " ")
    assert "\u00a0" not in text  # the no-break space is drawn as a space
