"""The optional `monitoring_times` protocol key: strict grammar, key paths in errors, grid columns."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_print_tools import need

from dosecalc import protocols
from dosecalc.errors import ProtocolFileError
from dosecalc.model import Order, make_sheet
from dosecalc.render import as_html, as_pdf, content

TEST_PROTOCOLS = Path(__file__).parent / "data" / "test_protocols.toml"
KEY = "protocols.dex-load.monitoring_times"


def _with_key(tmp_path: Path, key: str, value: str) -> Path:
    """The test protocols with `<key> = <value>` added to dex-load."""
    text = TEST_PROTOCOLS.read_text(encoding="utf-8")
    marker = 'monitoring = ["BP, HR and SpO2 every 5 min"]\n'
    assert text.count(marker) == 1
    path = tmp_path / "protocols.toml"
    path.write_text(text.replace(marker, marker + f"{key} = {value}\n"), "utf-8")
    return path


def _with_times(tmp_path: Path, value: str) -> Path:
    return _with_key(tmp_path, "monitoring_times", value)


def _problems(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ProtocolFileError) as caught:
        protocols.load(path)
    return [(p.field, p.code) for p in caught.value.problems]


def test_monitoring_times_are_optional_and_default_to_empty(library: protocols.Library) -> None:
    assert library.get("dex-load").monitoring_times == ()


def test_valid_monitoring_times_are_kept_as_written(tmp_path: Path) -> None:
    path = _with_times(tmp_path, '["0 min", "5 min", "10 min", "end + 15 min", "end + 60 min"]')
    p = protocols.load(path).get("dex-load")
    assert p.monitoring_times == ("0 min", "5 min", "10 min", "end + 15 min", "end + 60 min")


@pytest.mark.parametrize(
    "bad",
    [
        "10min",
        "10 mins",
        "10 Min",
        "010 min",
        "-5 min",
        "1.5 min",
        "10 min ",
        " 10 min",
        "end+15 min",
        "end + 0 min",
        "end - 15 min",
        "END + 15 min",
        "end",
        "1 h",
        "٧ min",
        "10000 min",
        "",
        "10 min\x1b[2J",
    ],
)
def test_each_time_outside_the_grammar_is_refused_with_its_key_path(
    tmp_path: Path, bad: str
) -> None:
    escaped = bad.replace("\\", "\\\\").replace('"', '\\"').replace("\x1b", "\\u001b")
    path = _with_times(tmp_path, f'["5 min", "{escaped}"]')
    assert _problems(path) == [(f"{KEY}[1]", "bad_time")]


def test_a_bad_time_message_repeats_it_safely_and_says_what_is_accepted(tmp_path: Path) -> None:
    path = _with_times(tmp_path, '["10 min\\u001b[2J"]')
    with pytest.raises(ProtocolFileError) as caught:
        protocols.load(path)
    message = caught.value.problems[0].message
    assert "\x1b" not in message
    assert "\\x1b" in message
    assert '"end + 15 min"' in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"10 min"', [(KEY, "wrong_type")]),
        ("[]", [(KEY, "wrong_type")]),
        ("[10]", [(f"{KEY}[0]", "wrong_type")]),
        ('["10 min", 20]', [(f"{KEY}[1]", "wrong_type")]),
        ('["10 min", "5 min"]', [(f"{KEY}[1]", "out_of_order")]),
        ('["10 min", "10 min"]', [(f"{KEY}[1]", "out_of_order")]),
        ('["end + 15 min", "10 min"]', [(f"{KEY}[1]", "out_of_order")]),
        ('["end + 30 min", "end + 15 min"]', [(f"{KEY}[1]", "out_of_order")]),
        ("[" + ", ".join(f'"{m} min"' for m in range(25)) + "]", [(KEY, "too_many")]),
    ],
)
def test_wrong_types_order_and_length_are_refused(
    tmp_path: Path, value: str, expected: list[tuple[str, str]]
) -> None:
    assert _problems(_with_times(tmp_path, value)) == expected


def test_twenty_four_times_are_accepted(tmp_path: Path) -> None:
    value = "[" + ", ".join(f'"{m} min"' for m in range(24)) + "]"
    assert len(protocols.load(_with_times(tmp_path, value)).get("dex-load").monitoring_times) == 24


def test_grid_columns_default_to_checkpoints_then_end_plus_15_and_30(
    library: protocols.Library,
) -> None:
    sheet = make_sheet(library, Order(weight="72 kg", date="2026-11-21"))
    assert content.grid_columns(sheet) == [
        "Baseline",
        "10 min",
        "20 min",
        "30 min",
        "40 min (end)",
        "end + 15 min",
        "end + 30 min",
    ]


def test_grid_columns_follow_the_protocols_monitoring_times(tmp_path: Path) -> None:
    library = protocols.load(_with_times(tmp_path, '["0 min", "10 min", "end + 20 min"]'))
    sheet = make_sheet(library, Order(weight="80 kg", date="2026-11-21", protocol_id="dex-load"))
    assert content.grid_columns(sheet) == ["Baseline", "0 min", "10 min", "end + 20 min"]


# --- monitoring_grid: the printed grid's rows --------------------------------------------------

GRID_KEY = "protocols.dex-load.monitoring_grid"


def _with_grid(tmp_path: Path, value: str) -> Path:
    return _with_key(tmp_path, "monitoring_grid", value)


def test_grid_rows_default_to_the_four_vital_and_sedation_rows(library: protocols.Library) -> None:
    sheet = make_sheet(library, Order(weight="72 kg", date="2026-11-21"))
    assert content.grid_rows(sheet) == (
        "Blood pressure (mmHg)",
        "Heart rate (/min)",
        "SpO2 (%)",
        "Sedation / dissociation",
    )


def test_grid_rows_follow_the_protocols_monitoring_grid(tmp_path: Path) -> None:
    path = _with_grid(tmp_path, '["Heart rate (/min)", "Infusion site (phlebitis)"]')
    library = protocols.load(path)
    sheet = make_sheet(library, Order(weight="80 kg", date="2026-11-21", protocol_id="dex-load"))
    assert content.grid_rows(sheet) == ("Heart rate (/min)", "Infusion site (phlebitis)")
    # Another protocol of the same file keeps the default rows.
    other = make_sheet(library, Order(weight="80 kg", date="2026-11-21"))
    assert "Sedation / dissociation" in content.grid_rows(other)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"Heart rate"', [(GRID_KEY, "wrong_type")]),
        ("[]", [(GRID_KEY, "wrong_type")]),
        ("[1]", [(f"{GRID_KEY}[0]", "wrong_type")]),
        ('["HR", ""]', [(f"{GRID_KEY}[1]", "empty")]),
        ('["HR", "HR"]', [(GRID_KEY, "duplicate")]),
        ('["HR", "' + "x" * 61 + '"]', [(f"{GRID_KEY}[1]", "too_long")]),
        ("[" + ", ".join(f'"row {i}"' for i in range(9)) + "]", [(GRID_KEY, "too_many")]),
        ('["HR\\u001b[2J"]', [(f"{GRID_KEY}[0]", "control_character")]),
    ],
)
def test_bad_grid_rows_are_refused_with_their_key_path(
    tmp_path: Path, value: str, expected: list[tuple[str, str]]
) -> None:
    assert _problems(_with_grid(tmp_path, value)) == expected


def test_eight_grid_rows_of_sixty_characters_are_accepted(tmp_path: Path) -> None:
    value = "[" + ", ".join(f'"{i}' + "x" * 59 + '"' for i in range(8)) + "]"
    assert len(protocols.load(_with_grid(tmp_path, value)).get("dex-load").monitoring_grid) == 8


def test_html_and_pdf_grids_print_the_protocols_rows(tmp_path: Path) -> None:
    path = _with_grid(tmp_path, '["Heart rate (/min)", "Infusion site (phlebitis)"]')
    sheet = make_sheet(
        protocols.load(path), Order(weight="80 kg", date="2026-11-21", protocol_id="dex-load")
    )
    page = as_html.render(sheet).decode("utf-8")
    assert '<th class="row">Infusion site (phlebitis)</th>' in page
    assert "Sedation" not in page
    assert "SpO2 (%)" not in page
    pdf = tmp_path / "sheet.pdf"
    pdf.write_bytes(as_pdf.render(sheet))
    text = subprocess.run(
        [need("pdftotext", "poppler-utils"), "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    grid = text[text.index("MONITORING (FILL IN BY HAND)") :]
    assert "Infusion site (phlebitis)" in grid
    assert "Sedation" not in text
    assert "SpO2 (%)" not in grid
