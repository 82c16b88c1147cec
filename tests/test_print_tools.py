"""Printed sheets as a person sees them: real headless Chromium and poppler's pdftotext/pdfinfo.

Locally, a missing tool skips these tests with the Debian package to install; with CI set they fail
instead, so CI never passes by skipping them.
"""

from __future__ import annotations

import json
import re
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import TEST_PROTOCOLS, need, pages
from helpers import run_tool as run

from dosecalc.cli import cli

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pdf-header-footer",
)
HOSTILE = "Zoë <script>alert(1)</script> </td> & \"double\" 'single' [red]x[/red] × ≥"


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return need(name, "chromium")
    return need("chromium", "chromium")


def sheet_files(
    runner: CliRunner, tmp_path: Path, fmt: str, *args: str, paper: str = "a4"
) -> tuple[Path, dict[str, Any]]:
    """Write the sheet in `fmt` and return it with the JSON sheet of the same order."""
    base = ["sheet", "--protocols", str(TEST_PROTOCOLS), "--date", "2026-11-21", *args]
    as_json = runner.invoke(cli, [*base, "--format", "json"])
    assert as_json.exit_code == 0, as_json.stderr
    out = tmp_path / f"sheet.{fmt}"
    result = runner.invoke(cli, [*base, "--format", fmt, "--paper", paper, "--output", str(out)])
    assert result.exit_code == 0, result.stderr
    return out, json.loads(as_json.stdout, parse_float=Decimal)


def print_with_chromium(html: Path, tmp_path: Path, screenshot: bool = True) -> tuple[Path, Path]:
    """Print `html` to PDF (and take a PNG screenshot), each run with a fresh browser profile."""
    browser = chromium()
    pdf, png = tmp_path / "chromium.pdf", tmp_path / "chromium.png"
    run(browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile-pdf'}",
        f"--print-to-pdf={pdf}", html.as_uri())  # fmt: skip
    if screenshot:
        run(browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile-png'}",
            "--window-size=794,1123", f"--screenshot={png}", html.as_uri())  # fmt: skip
    return pdf, png


def page_text(pdf: Path) -> str:
    """The PDF's text as pdftotext shows it, one line per printed line, spaces collapsed."""
    text = run(need("pdftotext", "poppler-utils"), "-layout", pdf, "-")
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def number(value: Decimal | int) -> str:
    """A JSON number as the sheet prints it (these cases are all below 1,000: no grouping)."""
    return str(value)


def assert_numbers_match_json(text: str, js: dict[str, Any]) -> None:
    """Dose, drug volume, VTBI, rate, patient id and every checkpoint as in the JSON sheet."""
    unit = js["dose_unit"]
    assert f"RATE {number(js['rate_ml_per_h'])} mL/h" in text
    assert f"VTBI {number(js['total_volume_ml'])} mL" in text
    assert f"DURATION {number(js['duration_min'])} min" in text
    assert f"= {number(js['dose'])} {unit}" in text
    assert f"Draw up {number(js['drug_volume_ml'])} mL" in text
    assert f"Patient ID {js['patient_id']}" in text
    for c in js["checkpoints"]:
        for shown, suffix in ((c["minute"], "min"), (c["volume_ml"], "mL"), (c["dose"], unit)):
            assert re.search(rf"(?<![\d.]){re.escape(number(shown))} {suffix}\b", text), shown


# Hand-computed cases (JSON numbers must equal these, and the printed numbers the JSON's):
# ketamine-iv 72 kg: 0.5 x 72 = 36 mg; 36 / 10 = 3.6 mL; 100 + 3.6 = 103.6 mL;
#   103.6 / 40 x 60 = 155.4 mL/h; every 10 min a quarter: 25.9/51.8/77.7/103.6 mL, 9/18/27/36 mg.
# dex-load 80 kg: 1 x 80 = 80 mcg; 80 / 100 = 0.8 mL; made up to 50 mL; 50 / 10 x 60 = 300 mL/h;
#   5 min: 25 mL, 40 mcg; 10 min: 50 mL, 80 mcg.
# ketamine-iv 154 kg (soft limits overridden): 77 mg; 7.7 mL; 107.7 mL; 107.7 x 1.5 = 161.55
#   -> 161.6 mL/h; 10 min: 26.925 -> 26.9 mL, 19.25 -> 19.3 mg; 20: 53.85 -> 53.9, 38.5; 30: 80.775
#   -> 80.8, 57.75 -> 57.8; 40: 107.7 mL, 77 mg.
# ketamine-undiluted 70 kg: 0.75 x 70 = 52.5 mg; 5.25 mL; + 0.1 mL = 5.35 mL, shown 5.4 mL (0.1 mL
#   step, half up); rate from the exact 5.35: x 1.5 = 8.025 -> 8 mL/h; 20 min: 2.675 -> 2.7 mL,
#   26.25 -> 26.5 mg (0.5 mg step, half up); 40 min: 5.4 mL, 52.5 mg.
CASES = {
    "ketamine-72": (
        ["--weight", "72 kg", "--patient-id", "K72"],
        {
            "dose": "36",
            "drug_volume_ml": "3.6",
            "total_volume_ml": "103.6",
            "rate_ml_per_h": "155.4",
        },
        [("10", "25.9", "9"), ("20", "51.8", "18"), ("30", "77.7", "27"), ("40", "103.6", "36")],
    ),
    "dex-load-80": (
        ["--weight", "80 kg", "--patient-id", "D80", "--protocol", "dex-load"],
        {"dose": "80", "drug_volume_ml": "0.8", "total_volume_ml": "50", "rate_ml_per_h": "300"},
        [("5", "25", "40"), ("10", "50", "80")],
    ),
    "ketamine-154-override": (
        [
            "--weight",
            "154 kg",
            "--patient-id",
            "K154",
            "--override",
            "Weighed twice today",
            "--operator",
            "Ann Lee",
        ],
        {
            "dose": "77",
            "drug_volume_ml": "7.7",
            "total_volume_ml": "107.7",
            "rate_ml_per_h": "161.6",
        },
        [
            ("10", "26.9", "19.3"),
            ("20", "53.9", "38.5"),
            ("30", "80.8", "57.8"),
            ("40", "107.7", "77"),
        ],
    ),
    "undiluted-70": (
        ["--weight", "70 kg", "--patient-id", "U70", "--protocol", "ketamine-undiluted"],
        {"dose": "52.5", "drug_volume_ml": "5.25", "total_volume_ml": "5.4", "rate_ml_per_h": "8"},
        # What the pump shows at 8 mL/h: 8 x 20 / 60 = 2.667 mL (2.7), holding 52.5 mg x 2.667 /
        # 5.35 mL = 26.17 mg (26 at a 0.5 mg step); 8 x 40 / 60 = 5.333 mL (5.3; the VTBI of
        # 5.4 mL is reached at 40.5 min), 52.34 mg (52.5).
        [("20", "2.7", "26"), ("40", "5.3", "52.5")],
    ),
}


def assert_hand_computed(js: dict[str, Any], case: str) -> None:
    _, numbers, checkpoints = CASES[case]
    assert {k: Decimal(v) for k, v in numbers.items()} == {k: js[k] for k in numbers}
    got = [(c["minute"], c["volume_ml"], c["dose"]) for c in js["checkpoints"]]
    assert got == [tuple(Decimal(x) for x in row) for row in checkpoints]


@pytest.mark.parametrize("case", list(CASES))
def test_pdftotext_of_the_pdf_shows_the_json_sheets_numbers(
    runner: CliRunner, tmp_path: Path, case: str
) -> None:
    paper = "letter" if "override" in case else "a4"  # Letter: the shorter page, the longer sheet
    pdf, js = sheet_files(runner, tmp_path, "pdf", *CASES[case][0], paper=paper)
    assert_hand_computed(js, case)
    assert pages(pdf) == 1
    text = page_text(pdf)
    assert_numbers_match_json(text, js)
    assert "page 1 of 1" in text
    fonts = run(need("pdffonts", "poppler-utils"), pdf)
    assert "DejaVuSans" in fonts
    assert all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:])  # embedded


def test_pdftotext_shows_the_override_in_the_warning_box(runner: CliRunner, tmp_path: Path) -> None:
    pdf, js = sheet_files(runner, tmp_path, "pdf", *CASES["ketamine-154-override"][0])
    text = page_text(pdf)
    box = " ".join(text.split("WARNINGS AND OVERRIDES", 1)[1].split("CALCULATION", 1)[0].split())
    assert [o["limit"] for o in js["overrides"]] == ["weight", "dose"]
    assert "weight 154 kg is above the soft limit 150 kg" in box
    assert "dose 77 mg is above the soft limit 75 mg" in box
    assert box.count("overridden by Ann Lee: Weighed twice today") == 2


def test_a_hostile_name_is_literal_text_in_the_pdf(runner: CliRunner, tmp_path: Path) -> None:
    pdf, _ = sheet_files(runner, tmp_path, "pdf", "--weight", "72 kg", "--name", HOSTILE)
    text = run(
        need("pdftotext", "poppler-utils"), pdf, "-"
    )  # reading order: the name's lines together
    flat = " ".join(text.split())
    assert HOSTILE in flat
    assert "\x1b" not in text


@pytest.mark.parametrize(
    ("case", "paper"),
    [("ketamine-72", "a4"), ("ketamine-154-override", "letter"), ("dex-load-80", "letter")],
)
def test_chromium_prints_the_html_on_one_page_with_the_json_sheets_numbers(
    runner: CliRunner, tmp_path: Path, case: str, paper: str
) -> None:
    html, js = sheet_files(runner, tmp_path, "html", *CASES[case][0], paper=paper)
    assert_hand_computed(js, case)
    pdf, png = print_with_chromium(html, tmp_path)
    assert pages(pdf) == 1
    size = run(need("pdfinfo", "poppler-utils"), pdf)
    assert ("(A4)" if paper == "a4" else "(letter)") in size
    assert_numbers_match_json(page_text(pdf), js)
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert png.stat().st_size > 10_000  # a rendered page, not an empty image


def test_chromium_shows_a_hostile_name_as_literal_text(runner: CliRunner, tmp_path: Path) -> None:
    html, _ = sheet_files(runner, tmp_path, "html", "--weight", "72 kg", "--name", HOSTILE)
    pdf, _ = print_with_chromium(html, tmp_path, screenshot=False)
    flat = " ".join(run(need("pdftotext", "poppler-utils"), pdf, "-").split())
    assert HOSTILE in flat
    assert pages(pdf) == 1


def test_a_missing_tool_skips_naming_the_package_but_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Debian package poppler-utils"):
        need("dosecalc-no-such-tool", "poppler-utils")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="Debian package chromium"):
        need("dosecalc-no-such-tool", "chromium")


def test_a_character_the_pdf_font_lacks_is_shown_as_its_code_not_dropped(
    runner: CliRunner, tmp_path: Path
) -> None:
    pdf, _ = sheet_files(runner, tmp_path, "pdf", "--weight", "72 kg", "--name", "山田 Zoë")
    flat = " ".join(run(need("pdftotext", "poppler-utils"), pdf, "-").split())
    assert "\\u5c71\\u7530 Zoë" in flat


MORE = Path(__file__).resolve().parent.parent / "examples" / "protocols-more.toml"


def _words(pdf: Path) -> list[Any]:
    from test_pdf_one_page import words_by_page

    return words_by_page(pdf)[0]


def test_chromium_never_prints_a_long_patient_id_or_name_over_the_prepare_box(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A premixed bag's wide boxes left the PATIENT column about 14 mm: a 15-digit id printed over
    "DOSE 500 mg" and a long surname over "HANG 100 mL" (found with Chromium by the print check)."""
    html = tmp_path / "sheet.html"
    args = ["--protocols", str(MORE), "sheet", "--protocol", "metronidazole-premix-gravity"]
    args += ["--weight", "70 kg", "--patient-id", "123456789012345", "--date", "2026-11-21"]
    args += ["--name", "Anna Wolfeschlegelsteinhausenbergerdorff", "--format", "html"]
    result = runner.invoke(cli, [*args, "--output", str(html)])
    assert result.exit_code == 0, result.stderr
    pdf, _ = print_with_chromium(html, tmp_path, screenshot=False)
    words = _words(pdf)
    box = next(w for w in words if w.text == "PREPARE")
    code = next(w for w in words if re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}", w.text))
    left = box.x0 - 3 * 72 / 25.4  # the box's 3 mm padding
    beside = [w for w in words if w.x0 < left and box.y0 <= w.y0 <= code.y1]
    assert beside  # the PATIENT column's words are found
    assert [w.text for w in beside if w.x1 > left] == []
    text = page_text(pdf)
    assert "123456789012345" in text
    assert "Anna Wolfeschlegelsteinhausenbergerdorff" in text


def test_chromium_reflows_the_html_on_a_page_half_as_wide_cutting_no_figure(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Printed at 200 % (a page half as wide for the layout), the fixed 190 mm sheet was cut at the
    page edge: "DOSE 36 mg RATE" with the rate gone. The sheet now reflows: every figure of the
    PREPARE and PUMP boxes is on the page (72 kg: 36 mg, 3.6 mL, 155.4 mL/h, 103.6 mL, 40 min)."""
    html, _ = sheet_files(runner, tmp_path, "html", "--weight", "72 kg")
    page = html.read_text(encoding="utf-8")
    assert page.count("size: A4;") == 1
    html.write_text(page.replace("size: A4;", "size: 105mm 297mm;"), encoding="utf-8")
    pdf, _ = print_with_chromium(html, tmp_path, screenshot=False)
    text = page_text(pdf)
    for figure in ("DOSE 36 mg", "DRAW UP 3.6 mL", "RATE 155.4 mL/h", "VTBI 103.6 mL"):
        assert figure in text
    assert "DURATION 40 min" in text
    size = re.search(r"Page size:\s+([\d.]+)", run(need("pdfinfo", "poppler-utils"), pdf))
    assert size is not None
    assert all(w.x1 <= float(size[1]) for w in _words(pdf))


SHIPPED = Path(__file__).resolve().parent.parent / "protocols.toml"
LONG_ID = "PABCDEFGHIJ_0123456789-KLMNOPQRSTUVWXYZ_abcdefghij-0123456789xyzw"[:64]


def test_a_64_character_patient_id_stays_on_the_pdf_page_and_off_the_title(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A patient id of 24 characters or more was drawn right-aligned from the page's right edge
    leftwards over the title, a 64-character one from off the page."""
    from test_pdf_one_page import words_by_page

    pdf = tmp_path / "sheet.pdf"
    args = ["--protocols", str(SHIPPED), "sheet", "--weight", "72 kg", "--patient-id", LONG_ID]
    result = runner.invoke(cli, [*args, "--date", "2026-11-21", "--format", "pdf", "-o", str(pdf)])
    assert result.exit_code == 0, result.stderr
    first = words_by_page(pdf)[0]
    assert [w.text for w in first if w.x0 < 0 or w.x1 > 595.28] == []
    title = [w for w in first if w.text in ("KETAMINE", "DOSE", "SHEET")][:3]
    ident = next(w for w in first if w.text == LONG_ID)
    assert all(ident.y0 >= t.y1 or ident.x0 >= t.x1 for t in title)  # below or beside, not over
    assert f"{LONG_ID} · 2026-11-21" in page_text(pdf)


def test_a_continuation_header_with_a_64_character_id_keeps_its_page_number_on_the_page(
    tmp_path: Path,
) -> None:
    """The header of a sheet's second page ran past the right edge: "· 20" and nothing after."""
    from test_pdf_one_page import words_by_page

    from dosecalc.render import as_pdf

    pdf = as_pdf._document("letter", "2026-11-21", "test")
    pdf.continued_text = f"KETAMINE DOSE SHEET | Patient {LONG_ID} · 2026-11-21"
    pdf.add_page()
    pdf.add_page()
    path = tmp_path / "two.pdf"
    path.write_bytes(bytes(pdf.output()))
    second = words_by_page(path)[1]
    assert [w.text for w in second if w.x0 < 0 or w.x1 > 612] == []
    header = " ".join(w.text for w in second if w.y1 < 50)
    assert header == (
        f"KETAMINE DOSE SHEET | Patient {LONG_ID} · 2026-11-21 | continued, sheet page 2"
    )
