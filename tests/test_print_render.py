"""HTML and PDF sheets without external tools: content, escaping, determinism, paper, CLI handling."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from dosecalc import protocols
from dosecalc.cli import cli
from dosecalc.model import Order, Sheet, make_sheet
from dosecalc.render import FORMATS, content, render
from dosecalc.render.as_pdf import render_combined

TEST_PROTOCOLS = Path(__file__).parent / "data" / "test_protocols.toml"
HOSTILE = "Zoë <script>alert(1)</script> </td> & \"double\" 'single' [red]x[/red] [/]"


def _sheet(library: protocols.Library, weight: str = "72 kg", **order: str) -> Sheet:
    return make_sheet(library, Order(weight=weight, date="2026-11-21", **order))


def _page_sizes(pdf: bytes) -> list[tuple[bytes, bytes]]:
    return [(m[1], m[2]) for m in re.finditer(rb"/MediaBox \[0 0 ([0-9.]+) ([0-9.]+)\]", pdf)]


def _page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b", pdf))


# --- registry and content ------------------------------------------------------------------------


def test_html_and_pdf_are_registered_with_their_extensions() -> None:
    assert FORMATS["html"][1] == "html"
    assert FORMATS["pdf"][1] == "pdf"


def test_timeline_ticks_carry_the_hand_computed_checkpoints(library: protocols.Library) -> None:
    # ketamine-iv 72 kg: 36 mg in 103.6 mL over 40 min; a quarter of each every 10 min.
    [segment] = content.timeline(_sheet(library))
    assert segment.start == "0 min"
    assert [(t.time, t.volume, t.dose) for t in segment.ticks] == [
        ("10 min", "25.9 mL", "9 mg"),
        ("20 min", "51.8 mL", "18 mg"),
        ("30 min", "77.7 mL", "27 mg"),
        ("40 min", "103.6 mL", "36 mg"),
    ]
    assert [t.position for t in segment.ticks] == [
        Decimal("0.25"),
        Decimal("0.5"),
        Decimal("0.75"),
        Decimal(1),
    ]
    assert [t.above for t in segment.ticks] == [True, False, True, False]


def test_a_long_infusion_splits_the_timeline_into_bars_of_eight_ticks(
    library: protocols.Library,
) -> None:
    # 120 min with a checkpoint every 10 min: 12 ticks -> 8 on the first bar, 4 on the second.
    sheet = _sheet(library, duration="120 min", override_reason="Slow", operator="Ann")
    first, second = content.timeline(sheet)
    assert [t.time for t in first.ticks][-1] == "80 min"
    assert second.start == "80 min"
    assert [t.time for t in second.ticks] == ["90 min", "100 min", "110 min", "120 min"]
    assert second.ticks[0].position == Decimal("0.25")
    assert second.ticks[-1].volume == "103.6 mL"


def test_a_wide_grid_is_split_into_blocks_that_fit_across_the_page(
    library: protocols.Library,
) -> None:
    # 12 checkpoints + baseline + 2 after the end = 15 columns: 10 and 5.
    blocks = content.grid_blocks(
        _sheet(library, duration="120 min", override_reason="Slow", operator="Ann")
    )
    assert [len(b) for b in blocks] == [10, 5]
    assert blocks[1][-1] == "end + 30 min"


# --- HTML ------------------------------------------------------------------------------------------


def test_html_is_self_contained_with_no_scripts_links_or_external_resources(
    library: protocols.Library,
) -> None:
    html = render(_sheet(library, name=HOSTILE, patient_id="P-1"), "html").decode("utf-8")
    lowered = html.lower()
    for forbidden in (
        "<script",
        "<link",
        "<img",
        "<iframe",
        "@import",
        "url(",
        "http:",
        "https:",
        "src=",
    ):
        assert forbidden not in lowered
    assert "@page { size: A4; margin: 10mm; }" in html


def test_every_hostile_name_character_is_escaped_in_the_html(library: protocols.Library) -> None:
    html = render(_sheet(library, name=HOSTILE), "html").decode("utf-8")
    assert (
        "Zoë &lt;script&gt;alert(1)&lt;/script&gt; &lt;/td&gt; &amp; &quot;double&quot; "
        "&#x27;single&#x27; [red]x[/red] [/]"
    ) in html
    assert "</td> &" not in html


def test_html_letter_paper_sets_the_page_size(library: protocols.Library) -> None:
    html = render(_sheet(library), "html", paper="letter").decode("utf-8")
    assert "@page { size: letter; margin: 10mm; }" in html


def test_html_shows_the_hand_computed_numbers(library: protocols.Library) -> None:
    # Each number is joined to its unit by a no-break space (U+00A0): a browser never puts the
    # unit on the next line.
    html = render(_sheet(library), "html").decode("utf-8")
    for expected in (
        "<th>RATE</th><td>155.4\u00a0mL/h</td>",
        "<th>VTBI</th><td>103.6\u00a0mL</td>",
        "<th>DURATION</th><td>40\u00a0min</td>",
        "0.5\u00a0mg/kg x 72\u00a0kg = 36\u00a0mg",
        "36\u00a0mg / 10\u00a0mg/mL = 3.6\u00a0mL",
        "<b>10\u00a0min</b><br>25.9\u00a0mL<br>9\u00a0mg",
        "<b>40\u00a0min</b><br>103.6\u00a0mL<br>36\u00a0mg",
    ):
        assert expected in html


def test_no_number_in_the_html_can_be_broken_from_its_unit_or_a_date_at_its_hyphens(
    library: protocols.Library,
) -> None:
    sheet = _sheet(library, "154 kg", override_reason="Weighed twice", operator="RN Lee")
    html = render(sheet, "html").decode("utf-8")
    body = html.split("<body>", 1)[1]
    units = r"(?:mg|mcg|mL|kg|lb|min|h|mmHg|gtt|cm|m2)\b"
    assert not re.findall(r"\d " + units, body)
    assert re.search(r"\d\u00a0mL/h", body)
    assert '<span class="nw">2026-11-21</span>' in body
    # The page's title (not markup) names the date as it is.
    assert "<title>KETAMINE DOSE SHEET - (no patient ID) - 2026-11-21</title>" in html


def test_overrides_are_in_the_warning_box(library: protocols.Library) -> None:
    sheet = _sheet(library, "154 kg", override_reason="Weighed twice", operator="Ann <b>")
    html = render(sheet, "html").decode("utf-8")
    box = html.split('<div class="alerts" role="alert">', 1)[1].split("</ul></div>", 1)[0]
    assert "WARNINGS AND OVERRIDES" in box
    assert "SOFT_LIMIT_OVERRIDDEN: weight 154\u00a0kg is above the soft limit 150\u00a0kg" in box
    assert "SOFT_LIMIT_OVERRIDDEN: dose 77\u00a0mg is above the soft limit 75\u00a0mg" in box
    assert "overridden by Ann &lt;b&gt;: Weighed twice" in box
    assert 'class="alerts"' not in render(_sheet(library), "html").decode("utf-8")


# --- PDF -------------------------------------------------------------------------------------------


def test_pdf_bytes_are_identical_for_the_same_inputs(library: protocols.Library) -> None:
    assert render(_sheet(library), "pdf") == render(_sheet(library), "pdf")


def test_pdf_creation_date_is_the_sheet_date(library: protocols.Library) -> None:
    pdf = render(_sheet(library), "pdf")
    assert b"/CreationDate (D:20261121000000Z" in pdf
    assert b"FontFile2" in pdf  # the TrueType font is embedded


def test_pdf_metadata_holds_no_patient_name(library: protocols.Library) -> None:
    pdf = render(_sheet(library, name="Ziggy Stardust", patient_id="P7"), "pdf")
    assert b"Ziggy" not in pdf
    assert b"/Title" in pdf


@pytest.mark.parametrize(
    ("paper", "size"), [("a4", (b"595.28", b"841.89")), ("letter", (b"612.00", b"792.00"))]
)
def test_pdf_is_one_page_of_the_chosen_paper(
    library: protocols.Library, paper: str, size: tuple[bytes, bytes]
) -> None:
    pdf = render(_sheet(library), "pdf", paper=paper)
    assert _page_sizes(pdf) == [size]
    assert _page_count(pdf) == 1


def test_combined_pdf_has_a_cover_page_then_one_page_per_sheet(
    library: protocols.Library,
) -> None:
    sheets = [
        _sheet(library, patient_id="A1"),
        _sheet(library, "80 kg", patient_id="B2", protocol_id="dex-load"),
    ]
    cover = [
        content.cover_row(sheets[0], "1"),
        ("2", "C3", "refused", "", "", "", "", "weight 700 kg above the hard limit"),
        content.cover_row(sheets[1], "3"),
    ]
    pdf = render_combined(cover, sheets, title="Day list 2026-11-21", date="2026-11-21")
    assert _page_count(pdf) == 3
    assert cover[0] == ("1", "A1", "ok", "36 mg", "3.6 mL", "155.4 mL/h", "none", "")
    assert cover[2] == ("3", "B2", "ok", "80 mcg", "0.8 mL", "300 mL/h", "none", "")
    assert pdf == render_combined(cover, sheets, title="Day list 2026-11-21", date="2026-11-21")


def test_cover_row_names_the_override_reason_and_operator(library: protocols.Library) -> None:
    sheet = _sheet(
        library, "154 kg", patient_id="P2", override_reason="Weighed twice", operator="Ann"
    )
    row = content.cover_row(sheet, "4")
    assert row[:6] == ("4", "P2", "ok", "77 mg", "7.7 mL", "161.6 mL/h")
    assert row[6] == "weight: Weighed twice (Ann); dose: Weighed twice (Ann)"


# --- CLI -------------------------------------------------------------------------------------------


def test_sheet_writes_html_and_pdf_files(runner: CliRunner, tmp_path: Path) -> None:
    for fmt in ("html", "pdf"):
        out = tmp_path / f"s.{fmt}"
        result = runner.invoke(
            cli,
            [
                "sheet",
                "--protocols",
                str(TEST_PROTOCOLS),
                "--weight",
                "72 kg",
                "--date",
                "2026-11-21",
                "--format",
                fmt,
                "--paper",
                "letter",
                "--output",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
        data = out.read_bytes()
        assert data.startswith(b"%PDF-" if fmt == "pdf" else b"<!DOCTYPE html>")


def test_sheet_writes_html_to_stdout(runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        ["sheet", "--protocols", str(TEST_PROTOCOLS), "--weight", "72 kg", "--format", "html"],
    )
    assert result.exit_code == 0
    assert result.stdout.startswith("<!DOCTYPE html>")


def test_an_unknown_paper_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        [
            "sheet",
            "--protocols",
            str(TEST_PROTOCOLS),
            "--weight",
            "72 kg",
            "--format",
            "pdf",
            "--paper",
            "a3",
        ],
    )
    assert result.exit_code == 2
    assert "--paper" in result.stderr


def test_a_name_with_an_escape_character_is_refused_before_any_html_or_pdf(
    runner: CliRunner, tmp_path: Path
) -> None:
    for fmt in ("html", "pdf"):
        out = tmp_path / f"s.{fmt}"
        for name in ("a\x1b[2Jb", "a\x1b]0;title\x07b", "a\u202eb", "a\x00b"):
            result = runner.invoke(
                cli,
                [
                    "sheet",
                    "--protocols",
                    str(TEST_PROTOCOLS),
                    "--weight",
                    "72 kg",
                    "--name",
                    name,
                    "--format",
                    fmt,
                    "--output",
                    str(out),
                ],
            )
            assert result.exit_code == 2
            assert "control or escape character" in result.stderr
            assert not out.exists()


def test_pdf_is_refused_when_stdout_is_a_terminal(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSECALC_")}
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "dosecalc",
                "sheet",
                "--protocols",
                str(TEST_PROTOCOLS),
                "--weight",
                "72 kg",
                "--format",
                "pdf",
            ],
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=subprocess.PIPE,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        os.close(follower)
    terminal = b""
    try:
        while chunk := os.read(leader, 4096):
            terminal += chunk
    except OSError:
        pass
    os.close(leader)
    assert proc.returncode == 2
    assert b"a PDF is not written to a terminal" in proc.stderr
    assert b"Traceback" not in proc.stderr
    assert b"%PDF" not in terminal


def test_pdf_to_a_redirected_stdout_is_written(runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        ["sheet", "--protocols", str(TEST_PROTOCOLS), "--weight", "72 kg", "--format", "pdf"],
    )
    assert result.exit_code == 0
    assert result.stdout_bytes.startswith(b"%PDF-")
