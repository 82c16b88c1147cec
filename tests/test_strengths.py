"""Strengths as labelled (issue 11, first part): a stock is written as on the vial or bag.

Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from dosecalc import protocols
from dosecalc.cli import cli
from dosecalc.errors import InputError
from dosecalc.model import Order, make_sheet
from dosecalc.render.content import preparation
from dosecalc.units import STRENGTH, parse_quantity

TEST_PROTOCOLS = Path(__file__).parent / "data" / "test_protocols.toml"
BASE = TEST_PROTOCOLS.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("label", "per_ml"),
    [
        ("20%", "200"),  # acetylcysteine 20% w/v: 20 g / 100 mL = 200 mg/mL
        ("250 mg/5 mL", "50"),  # ceftriaxone: 250 / 5 = 50 mg/mL
        ("400 mg/250 mL", "1.6"),  # a premixed dopamine bag: 400 / 250 = 1.6 mg/mL
        ("0.5 g/10 mL", "50"),  # 500 mg / 10 mL
        ("10 mg/mL", "10"),
        ("1 mg/1 mL", "1"),
    ],
)
def test_a_strength_as_labelled_has_its_exact_strength_per_ml(label: str, per_ml: str) -> None:
    q = parse_quantity(label, "stock", STRENGTH)
    assert q.text == label
    assert q.to("mg/mL") == Decimal(per_ml)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("1:1000", "1:1000 is 1 mg/mL"),  # 1 g in 1000 mL
        ("1:10000", "1:10000 is 0.1 mg/mL"),
        ("100 mg/3 mL", "has no exact strength per mL"),  # 33.333... mg/mL
        ("5 mg/0 mL", "has a zero amount or volume"),
        ("0%", "is zero"),
        ("120%", "more than 100%"),
        ("-5%", "has a sign"),
        ("5,5%", "comma"),
        ("10 kg/mL", "is in kg/mL, not a concentration"),
        ("10 kg/5 mL", "is not an amount per volume"),
    ],
)
def test_a_strength_that_is_not_accepted_is_refused_with_its_reason(text: str, says: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_quantity(text, "stock", STRENGTH)
    assert says in raised.value.problems[0].message


def test_a_ratio_strength_is_refused_naming_its_mg_per_ml_form(runner: CliRunner) -> None:
    args = ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "72 kg", "--stock", "1:100"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    # 1 g in 100 mL = 10 mg/mL
    assert "'1:100' is a ratio strength" in result.stderr
    assert "1:100 is 10 mg/mL; write the strength in mg/mL" in result.stderr


def labelled(tmp_path: Path) -> protocols.Library:
    text = BASE.replace('stock = ["10 mg/mL", "50 mg/mL"]', 'stock = ["50 mg/5 mL", "5%"]', 1)
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    return protocols.load(path)


def test_the_sheet_prints_the_label_and_its_strength_per_ml(tmp_path: Path) -> None:
    # 72 kg x 0.5 mg/kg = 36 mg; 50 mg/5 mL = 10 mg/mL: 3.6 mL.
    sheet = make_sheet(labelled(tmp_path), Order(weight="72 kg", date="2026-11-25"))
    assert preparation(sheet)[0] == "Draw up 3.6 mL of ketamine 50 mg/5 mL (10 mg/mL) (36 mg)."


def test_stock_matches_any_equal_strength_and_prints_the_protocols_wording(tmp_path: Path) -> None:
    # 50 mg/mL = 5% (5 g / 100 mL): 36 mg / 50 mg/mL = 0.72 mL, printed as the protocol words it.
    library = labelled(tmp_path)
    sheet = make_sheet(library, Order(weight="72 kg", date="2026-11-25", stock="50 mg/mL"))
    assert sheet.result.chosen_stock.text == "5%"
    assert preparation(sheet)[0] == "Draw up 0.72 mL of ketamine 5% (50 mg/mL) (36 mg)."
    same = make_sheet(library, Order(weight="72 kg", date="2026-11-25", stock="500 mg/10 mL"))
    assert same.result.chosen_stock.text == "5%"


def test_two_labels_of_one_strength_are_a_duplicate(tmp_path: Path) -> None:
    text = BASE.replace('stock = ["10 mg/mL", "50 mg/mL"]', 'stock = ["10 mg/mL", "1%"]', 1)
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(protocols.ProtocolFileError) as raised:
        protocols.load(path)
    assert any(p.code == "duplicate" for p in raised.value.problems)


def test_the_json_sheet_carries_the_label(runner: CliRunner, tmp_path: Path) -> None:
    import json

    text = BASE.replace('stock = ["10 mg/mL", "50 mg/mL"]', 'stock = ["50 mg/5 mL"]', 1)
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(cli, ["--protocols", str(path), "sheet", "--weight", "72 kg",
                                 "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["stock_label"], data["stock"], data["stock_unit"]) == ("50 mg/5 mL", 10, "mg/mL")


def test_a_protocols_units_print_as_every_sheet_spells_them(
    runner: CliRunner, tmp_path: Path
) -> None:
    # SAFETY.md: print "mcg", never "µg" (a handwritten µ is read as m: 1000-fold). A file's
    # "10000 µg/mL" printed on the sheet as written; its value is 10 mg/mL either way.
    shipped = Path(__file__).parent.parent / "protocols.toml"
    text = shipped.read_text(encoding="utf-8").replace(
        'stock = ["10 mg/mL", "50 mg/mL"]', 'stock = ["10000 \u00b5g/mL", "50 MG/ML"]', 1
    )
    assert "\u00b5g" in text
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    base = ["--protocols", str(path), "sheet", "--weight", "72 kg", "--date", "2026-11-25"]
    sheet = runner.invoke(cli, base)
    assert sheet.exit_code == 0, sheet.output
    assert "Draw up 3.6 mL of ketamine 10000 mcg/mL (10 mg/mL) (36 mg)." in sheet.stdout
    as_json = runner.invoke(cli, [*base, "--format", "json"])
    assert '"stock_label": "10000 mcg/mL"' in as_json.stdout
    other = runner.invoke(cli, [*base, "--stock", "50 mg/mL"])
    assert "the protocol says 10000 mcg/mL" in other.stderr
    for out in (sheet.stdout, as_json.stdout, other.stdout, other.stderr):
        assert "\u00b5" not in out
        assert "MG/ML" not in out
