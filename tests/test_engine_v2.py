"""Engine v2 (issue 9): what the nurse reads is what is checked, and pint checks every formula.

Each case the issue quotes is a regression test here. Expected numbers are worked out by hand in the
comments; the property tests compute their invariants from the printed JSON numbers, independently
of the verifier's code.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dosecalc import protocols, quantities, units
from dosecalc.cli import cli
from dosecalc.dosing import calculate
from dosecalc.errors import InputError, LimitError
from dosecalc.model import Order, make_sheet
from dosecalc.model import _figures as model_figures
from dosecalc.protocols import Library
from dosecalc.quantities import Formula, FormulaError, compile_formula
from dosecalc.render.as_json import sheet_json
from dosecalc.verify import verify

DATA = Path(__file__).parent / "data"
TEST_PROTOCOLS = DATA / "test_protocols.toml"
SHIPPED = Path(__file__).resolve().parent.parent / "protocols.toml"
BASE = TEST_PROTOCOLS.read_text(encoding="utf-8")
D = Decimal


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "protocols.toml"
    path.write_text(text, encoding="utf-8")
    return path


def in_block(block: str, old: str, new: str) -> str:
    """BASE with `old` replaced by `new` inside the [protocols.<block>] table only."""
    head = f"[protocols.{block}]"
    start = BASE.index(head)
    end = BASE.find("\n[", start + len(head))
    end = len(BASE) if end == -1 else end
    part = BASE[start:end]
    assert old in part, (block, old)
    return BASE[:start] + part.replace(old, new, 1) + BASE[end:]


def check(runner: CliRunner, path: Path) -> tuple[int, str]:
    result = runner.invoke(cli, ["protocols", "check", str(path)])
    return result.exit_code, result.stderr


def bypass(library: Library, pid: str, **changes: object) -> Library:
    """The library with one protocol changed past the loader: to show the verifier, the second
    line of defence, refuses what the loader would already have refused."""
    changed = dataclasses.replace(library.protocols[pid], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(library, protocols={**library.protocols, pid: changed})


def codes(error: LimitError) -> set[str]:
    return {p.code for p in error.problems}


# --- 2. the loader refuses rounding steps that cannot be safe ------------------------------------


@pytest.mark.parametrize(
    ("block", "old", "new", "key", "code"),
    [
        # a mcg/kg protocol with ketamine's "0.1 mg" step: 72 mcg printed as 100 mcg
        ("dex-load.round", 'dose = "1 mcg"', 'dose = "0.1 mg"', "dex-load.round.dose",
         "step_unit_mismatch"),
        # "0.1 g" for mg (55 mg given as 100 mg, 36 mg as 0 mg): a step in another unit than
        # the protocol's dose unit is refused
        ("ketamine-iv.round", 'dose = "0.1 mg"', 'dose = "0.1 g"', "ketamine-iv.round.dose",
         "step_unit_mismatch"),
        # and a 100 mg step written in mg rounds the 2 mg hard minimum to zero
        ("ketamine-iv.round", 'dose = "0.1 mg"', 'dose = "100 mg"', "ketamine-iv.round.dose",
         "step_rounds_to_zero"),
        # 1 mL steps for the drug volume: 0.1 mL (the hard minimum) rounds to 0
        ("ketamine-iv.round", 'drug_volume = "0.01 mL"', 'drug_volume = "1 mL"',
         "ketamine-iv.round.drug_volume", "step_rounds_to_zero"),
        # 1 L for volumes (100.2 mL +- 500 mL): a step is written in the unit it is printed in
        ("ketamine-iv.round", 'volume = "0.1 mL"', 'volume = "1 L"', "ketamine-iv.round.volume",
         "step_unit_mismatch"),
        # and 1000 mL rounds the smallest total, 100.2 mL, to zero
        ("ketamine-iv.round", 'volume = "0.1 mL"', 'volume = "1000 mL"',
         "ketamine-iv.round.volume", "step_rounds_to_zero"),
        # a weight step in lb (0.45359237 kg) or a duration step in s (1/60 min)
        ("ketamine-iv.round", 'weight = "0.1 kg"', 'weight = "1 lb"', "ketamine-iv.round.weight",
         "step_unit_mismatch"),
        ("ketamine-iv.round", 'rate = "0.1 mL/h"', 'rate = "0.1 mL/h"\nduration = "1 s"',
         "ketamine-iv.round.duration", "step_unit_mismatch"),
        # checkpoints every 2 min: 2 mg over 120 min is 0.033 mg at the first, printed 0 mg
        ("ketamine-iv", 'checkpoint_every = "10 min"', 'checkpoint_every = "2 min"',
         "ketamine-iv.checkpoint_every", "checkpoint_rounds_to_zero"),
        # 10 min for durations: 20 min (the hard minimum) +- 5 min is 25%
        ("ketamine-iv.round", 'rate = "0.1 mL/h"', 'rate = "0.1 mL/h"\nduration = "10 min"',
         "ketamine-iv.round.duration", "step_too_coarse"),
        # 10 mL/min for rates: a step in another unit than mL/h
        ("ketamine-iv.round", 'rate = "0.1 mL/h"', 'rate = "10 mL/min"', "ketamine-iv.round.rate",
         "step_unit_mismatch"),
        # 600 mL/h: the slowest rate, 100.2 mL over 120 min = 50.1 mL/h, rounds to 0
        ("ketamine-iv.round", 'rate = "0.1 mL/h"', 'rate = "600 mL/h"', "ketamine-iv.round.rate",
         "step_rounds_to_zero"),
        # a coarse concentration: 2 mg in 100.2 mL = 0.01996 mg/mL, +- 0.005 mg/mL is 25%
        ("ketamine-iv.round", 'concentration = "0.001 mg/mL"', 'concentration = "0.01 mg/mL"',
         "ketamine-iv.round.concentration", "step_too_coarse"),
    ],
)  # fmt: skip
def test_the_loader_refuses_a_rounding_step_that_cannot_be_safe(
    runner: CliRunner, tmp_path: Path, block: str, old: str, new: str, key: str, code: str
) -> None:
    path = write(tmp_path, in_block(block, old, new))
    exit_code, stderr = check(runner, path)
    assert exit_code == 3, stderr
    with pytest.raises(protocols.ProtocolFileError) as raised:
        protocols.load(path)
    found = {(p.field, p.code) for p in raised.value.problems}
    assert (f"protocols.{key}", code) in found, found


def test_a_too_coarse_step_message_names_the_smallest_value_and_the_largest_safe_step(
    tmp_path: Path,
) -> None:
    # ketamine-iv: the smallest dose inside the hard limits is 2 mg (20 kg x 0.1 mg/kg); a 1 mg
    # step moves it by 0.5 mg = 25%; at most 5% of 2 mg x 2 = 0.2 mg.
    path = write(tmp_path, in_block("ketamine-iv.round", 'dose = "0.1 mg"', 'dose = "1 mg"'))
    with pytest.raises(protocols.ProtocolFileError) as raised:
        protocols.load(path)
    (message,) = [p.message for p in raised.value.problems if p.field.endswith("round.dose")]
    assert "by 25%" in message
    assert "the smallest dose inside the hard limits is 2 mg" in message
    assert "use a step of at most 0.2 mg" in message


def test_max_rounding_change_allows_a_coarser_step_up_to_its_ceiling(tmp_path: Path) -> None:
    # dose step 0.2 mg: 0.1 mg of 2 mg is 5%: accepted at the default 5%.
    path = write(tmp_path, in_block("ketamine-iv.round", 'dose = "0.1 mg"', 'dose = "0.2 mg"'))
    assert "ketamine-iv" in protocols.load(path).protocols
    # 0.3 mg: 0.15 mg of 2 mg is 7.5%: refused at 5%, accepted with max_rounding_change = "10%".
    coarse = in_block("ketamine-iv.round", 'dose = "0.1 mg"', 'dose = "0.3 mg"')
    with pytest.raises(protocols.ProtocolFileError):
        protocols.load(write(tmp_path, coarse))
    allowed = coarse.replace(
        'checkpoint_every = "10 min"', 'checkpoint_every = "10 min"\nmax_rounding_change = "10%"', 1
    )
    loaded = protocols.load(write(tmp_path, allowed)).protocols["ketamine-iv"]
    assert loaded.max_rounding_change == D("0.1")


@pytest.mark.parametrize("value", ['"0%"', '"11%"', '"5"', "5", '"5.0001%"', '"-5%"', '"nan%"'])
def test_max_rounding_change_accepts_only_a_percentage_above_0_and_at_most_10(
    tmp_path: Path, value: str
) -> None:
    text = BASE.replace(
        'checkpoint_every = "10 min"',
        f'checkpoint_every = "10 min"\nmax_rounding_change = {value}',
        1,
    )
    with pytest.raises(protocols.ProtocolFileError) as raised:
        protocols.load(write(tmp_path, text))
    assert any(p.field.endswith("max_rounding_change") for p in raised.value.problems)


def test_the_shipped_and_test_protocols_load_under_the_rule() -> None:
    assert protocols.load(SHIPPED).protocols
    assert protocols.load(TEST_PROTOCOLS).protocols


# --- 1. the printed figures are verified --------------------------------------------------------


def test_drawn_up_volume_above_the_hard_dose_limit_is_refused(library: Library) -> None:
    # Stock 30 mg/mL, 1 mL drug-volume steps, 200 kg at 1 mg/kg (with an override): 200 mg is
    # 6.667 mL, printed 7 mL, which holds 7 x 30 = 210 mg: above the 200 mg hard limit.
    changed = bypass(
        library,
        "ketamine-iv",
        stock=(units.parse_quantity("30 mg/mL", "stock", "concentration"),),
        steps={**library.protocols["ketamine-iv"].steps, "drug_volume": D(1)},
    )
    order = Order(
        weight="200 kg",
        date="2026-11-25",
        dose="1 mg/kg",
        override_reason="consultant",
        operator="RN Lee",
    )
    with pytest.raises(LimitError) as raised:
        make_sheet(changed, order)
    assert "printed_hard_limit" in codes(raised.value)
    message = next(p.message for p in raised.value.problems if p.code == "printed_hard_limit")
    assert message == "dose drawn up 210 mg is above the hard limit 200 mg for dose"


def test_a_duration_printed_coarser_than_it_runs_is_refused(library: Library) -> None:
    # 10 min duration steps, --duration 45 min: printed 50 min (45 rounds half-up to 50), while
    # the rate is 103.6 x 60 / 45 = 138.133 -> 138.1 mL/h; 138.1 x 50 / 60 = 115.08 mL, not the
    # 103.6 mL VTBI (one 0.1 mL/h rate step explains 0.083 mL, the VTBI's rounding 0.05 mL).
    changed = bypass(
        library, "ketamine-iv", steps={**library.protocols["ketamine-iv"].steps, "duration": D(10)}
    )
    protocol = changed.protocols["ketamine-iv"]
    # The input is refused first: a duration the sheet would print otherwise is never rounded.
    with pytest.raises(InputError) as refused:
        make_sheet(changed, Order(weight="72 kg", date="2026-11-25", duration="45 min"))
    assert [p.code for p in refused.value.problems] == ["off_step"]
    # And the verifier, behind it, refuses such figures.
    result = calculate(protocol, units.parse_quantity("72 kg", "weight", "weight"),
                       duration=units.parse_quantity("45 min", "duration", "duration"))  # fmt: skip
    figures = model_figures(protocol, result)
    with pytest.raises(LimitError) as raised:
        verify(protocol, result, figures.values)
    assert "printed_rate_vtbi" in codes(raised.value)
    assert "printed_rounding" in codes(raised.value)  # 45 -> 50 min is 11%


@pytest.mark.parametrize("typed", ["40.05 min", "2403 s", "0.334 h"])
def test_a_duration_off_the_protocols_step_is_refused_as_input(
    runner: CliRunner, typed: str
) -> None:
    # 2403 s = 40.05 min and 0.334 h = 20.04 min: printed to 0.1 min they would differ from the
    # duration the rate is worked out from.
    args = ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "72 kg", "--duration", typed]
    result = runner.invoke(cli, [*args, "--override", "x", "--operator", "y"])
    assert result.exit_code == 2
    assert "Accepted: a whole number of 0.1 min steps" in result.stderr


def test_a_duration_on_the_step_in_seconds_is_accepted(runner: CliRunner) -> None:
    # 2700 s = 45 min
    args = [
        "--protocols",
        str(TEST_PROTOCOLS),
        "sheet",
        "--weight",
        "72 kg",
        "--duration",
        "2700 s",
    ]
    result = runner.invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["duration_min"] == 45


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('duration = { soft = ["40 min", "60 min"], hard = ["20 min", "120 min"] }',
         'duration = { soft = ["40 min", "60 min"], hard = ["1201 s", "120 min"] }',
         "ketamine-iv.limits.duration.hard[0]"),
    ],
)  # fmt: skip
def test_a_limit_that_is_no_exact_number_of_its_unit_is_refused(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    # 1201 s = 20.01666... min: it would print with 60 decimals in every message.
    with pytest.raises(protocols.ProtocolFileError) as raised:
        protocols.load(write(tmp_path, in_block("ketamine-iv.limits", old, new)))
    assert (f"protocols.{key}", "not_exact") in {(p.field, p.code) for p in raised.value.problems}


def test_printed_drug_volume_larger_than_the_final_volume_is_refused(library: Library) -> None:
    # dex-load made up to 0.74 mL: 72 kg x 1 mcg/kg = 72 mcg = 0.72 mL; with 1 mL drug-volume
    # steps the sheet would say "draw up 1 mL ... make up to 0.7 mL".
    p = library.protocols["dex-load"]
    changed = bypass(
        library,
        "dex-load",
        diluent_volume=units.parse_quantity("0.74 mL", "x", "volume"),
        steps={**p.steps, "drug_volume": D(1)},
        limits={k: v for k, v in p.limits.items() if k != "concentration"},
    )
    with pytest.raises(LimitError) as raised:
        make_sheet(changed, Order(weight="72 kg", date="2026-11-25", protocol_id="dex-load"))
    assert "printed_preparation" in codes(raised.value)


def test_a_make_up_to_diluent_of_a_few_hundredths_of_a_ml_is_not_refused(library: Library) -> None:
    # dex-load made up to 0.71 mL: 70 mcg = 0.7 mL drawn up, 0.01 mL diluent printed 0 mL (the
    # syringe is filled to its mark); 0.7 + 0 = 0.7 mL, the final volume printed to 0.1 mL.
    p = library.protocols["dex-load"]
    changed = bypass(
        library,
        "dex-load",
        diluent_volume=units.parse_quantity("0.71 mL", "x", "volume"),
        limits={k: v for k, v in p.limits.items() if k != "concentration"},
    )
    sheet = make_sheet(changed, Order(weight="70 kg", date="2026-11-25", protocol_id="dex-load"))
    assert sheet.figures.diluent_volume.text == "0 mL"
    assert sheet.figures.total_volume.text == "0.7 mL"


def test_a_printed_hard_limit_message_never_shows_the_value_equal_to_the_edge(
    library: Library,
) -> None:
    # 30 mg/mL, drug-volume steps of 0.0001 mL: 200 mg is 6.66667 mL (6.6667 printed), which
    # holds 200.001 mg, above the 200 mg hard limit: the message must not say "200 mg".
    p = library.protocols["ketamine-iv"]
    changed = bypass(
        library,
        "ketamine-iv",
        stock=(units.parse_quantity("30 mg/mL", "stock", "concentration"),),
        steps={**p.steps, "drug_volume": D("0.0001"), "dose": D(1)},
    )
    order = Order(weight="200 kg", date="2026-11-25", dose="1 mg/kg", override_reason="x",
                  operator="RN Lee")  # fmt: skip
    with pytest.raises(LimitError) as raised:
        make_sheet(changed, order)
    (message,) = [m.message for m in raised.value.problems if m.code == "printed_hard_limit"]
    assert message.startswith("dose drawn up 200.001 mg is above the hard limit 200 mg")


def test_a_rate_step_that_rounds_the_rate_to_zero_is_refused_without_a_traceback(
    library: Library,
) -> None:
    # 10 mL/min = 600 mL/h steps: 155.4 mL/h rounds to 0 mL/h (before: DivisionByZero).
    changed = bypass(
        library, "ketamine-iv", steps={**library.protocols["ketamine-iv"].steps, "rate": D(600)}
    )
    with pytest.raises(LimitError) as raised:
        make_sheet(changed, Order(weight="72 kg", date="2026-11-25"))
    assert codes(raised.value) == {"printed_zero"}


def test_a_mcg_dose_printed_with_a_mg_step_is_refused(library: Library) -> None:
    # dex-load with a 100 mcg dose step: 72 mcg is printed 100 mcg (39% more), and 0.72 mL x
    # 100 mcg/mL = 72 mcg drawn up is not what the sheet says.
    changed = bypass(
        library, "dex-load", steps={**library.protocols["dex-load"].steps, "dose": D(100)}
    )
    with pytest.raises(LimitError) as raised:
        make_sheet(changed, Order(weight="72 kg", date="2026-11-25", protocol_id="dex-load"))
    # The first checkpoint (36 mcg at 5 min) already prints 0 mcg, which stops the check there.
    assert codes(raised.value) == {"printed_zero"}
    with pytest.raises(LimitError) as raised:
        make_sheet(changed, Order(weight="150 kg", date="2026-11-25", protocol_id="dex-load"))
    # 150 mcg is printed 200 mcg: 33% more.
    assert "printed_rounding" in codes(raised.value)


def test_a_coarse_concentration_that_misstates_the_bag_is_refused(library: Library) -> None:
    # Concentration steps of 1 mg/mL: 36 mg in 103.6 mL (0.347 mg/mL) is printed 0 mg/mL.
    changed = bypass(
        library,
        "ketamine-iv",
        steps={**library.protocols["ketamine-iv"].steps, "concentration": D(1)},
    )
    with pytest.raises(LimitError) as raised:
        make_sheet(changed, Order(weight="72 kg", date="2026-11-25"))
    assert codes(raised.value) == {"printed_zero"}


def test_a_batch_row_refused_by_the_verifier_does_not_end_the_run(
    runner: CliRunner, tmp_path: Path
) -> None:
    # A hard dose minimum of 2.04 mg, not a multiple of the 0.1 mg step (the loader accepts it:
    # 0.05 mg is 2.5% of 2.04 mg). 20.4 kg x 0.1 mg/kg = 2.04 mg exactly, inside the limit, but
    # printed 2 mg, and 0.204 mL is drawn up as 0.2 mL = 2 mg: both below the printed limit. The
    # row is refused by the verifier; the next row is still computed.
    protocols_file = write(
        tmp_path,
        in_block(
            "ketamine-iv.limits",
            'dose = { soft = ["10 mg", "75 mg"], hard = ["2 mg", "200 mg"] }',
            'dose = { soft = ["10 mg", "75 mg"], hard = ["2.04 mg", "200 mg"] }',
        ),
    )
    day = tmp_path / "day.csv"
    day.write_text(
        "patient_id,weight,dose,override_reason,operator\n"
        "A1,20.4 kg,0.1 mg/kg,small adult,RN Lee\n"
        "A2,72 kg,,,\n",
        encoding="utf-8",
    )
    result = runner.invoke(cli, ["--protocols", str(protocols_file), "batch", str(day)])
    assert result.exit_code == 1
    _header, refused, good = result.stdout.strip().splitlines()
    assert ",A1,," in refused
    assert ",refused," in refused
    assert "printed dose 2 mg is below the hard limit 2.04 mg for dose" in refused
    assert "dose drawn up 2 mg is below the hard limit 2.04 mg" in refused
    assert ",A2,," in good
    assert ",ok,72,36,mg,3.6,103.6,155.4," in good


def test_every_printed_arithmetic_line_is_true_with_the_numbers_shown(library: Library) -> None:
    # 154 lb over 45 min (not a multiple of anything): the rate line shows the duration as used.
    sheet = make_sheet(library, Order(weight="154 lb", date="2026-11-25", duration="45 min"))
    from dosecalc.render.content import calculation

    lines = {line.label: line.text for line in calculation(sheet)}
    # 103.492661249 mL / 45 min x 60 = 137.99 mL/h -> 138 mL/h
    assert lines["Rate"] == "103.493 mL / 45 min x 60 min/h = 137.99 mL/h, given as 138 mL/h"
    assert lines["Dose"] == ("0.5 mg/kg x 69.853 kg (154 lb) = 34.927 mg, given as 34.9 mg")


def test_the_reverse_check_is_computed_from_the_printed_numbers(library: Library) -> None:
    # 154 lb: rate 155.2 mL/h x 40 min / 60 = 103.4667 mL; drawn 3.49 mL x 10 mg/mL = 34.9 mg in
    # the 103.5 mL VTBI; 103.4667 x 34.9 / 103.5 = 34.8888 mg; / 69.9 kg = 0.49913 mg/kg.
    sheet = make_sheet(library, Order(weight="154 lb", date="2026-11-25"))
    assert sheet.reverse.volume.exact_text == "103.467 mL"
    assert sheet.reverse.drawn_dose.text == "34.9 mg"
    assert sheet.reverse.dose.exact_text == "34.889 mg"
    assert sheet.reverse.dose_per_kg.exact_text == "0.499 mg/kg"  # two decimals more than 0.5
    assert sheet.reverse.agrees


# --- 3. the sheet says what was prescribed ------------------------------------------------------


def test_a_changed_dose_and_duration_are_on_the_header_and_in_json(runner: CliRunner) -> None:
    args = ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "72 kg"]
    args += ["--dose", "0.75 mg/kg", "--duration", "1 h"]
    text = runner.invoke(cli, args)
    assert text.exit_code == 0, text.stderr
    words = " ".join(text.stdout.split())
    assert "0.75 mg/kg over 60 min" in words
    assert "CHANGED FROM PROTOCOL: the protocol says dose per kg 0.5 mg/kg; duration 40" in words
    data = json.loads(runner.invoke(cli, [*args, "--format", "json"]).stdout)
    assert data["changed_from_protocol"] == [
        {"field": "dose_per_kg", "protocol": "0.5 mg/kg", "used": "0.75 mg/kg"},
        {"field": "duration", "protocol": "40 min", "used": "1 h = 60 min"},
    ]
    assert "CHANGED_FROM_PROTOCOL" in [w["code"] for w in data["warnings"]]
    # 0.75 x 72 = 54 mg, over 60 min
    assert (data["dose"], data["duration_min"]) == (54, 60)


def test_the_same_values_in_other_units_are_not_a_change(library: Library) -> None:
    sheet = make_sheet(
        library, Order(weight="72 kg", date="2026-11-25", dose="500 mcg/kg", duration="2400 s")
    )
    assert sheet.changes == ()


def test_a_second_stock_from_the_list_is_flagged(library: Library) -> None:
    sheet = make_sheet(library, Order(weight="72 kg", date="2026-11-25", stock="50 mg/mL"))
    assert [(c.field, c.protocol, c.used) for c in sheet.changes] == [
        ("stock", "10 mg/mL", "50 mg/mL")
    ]


# --- 6. limit messages never contradict themselves ----------------------------------------------


def test_a_soft_breach_is_labelled_soft_in_a_json_refusal(runner: CliRunner) -> None:
    # 350 kg: above the 300 kg hard weight limit; 175 mg is above the 75 mg soft dose limit.
    args = ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "350 kg", "--format", "json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    found = {(e["field"], e["code"]) for e in json.loads(result.stdout)["errors"]}
    assert ("weight", "hard_limit") in found
    assert ("dose", "soft_limit") in found
    assert ("dose", "hard_limit") not in found


def test_a_value_just_below_a_limit_is_never_printed_equal_to_it(runner: CliRunner) -> None:
    # 44.0924524 lb x 0.45359237 = 19.999999978... kg: below 20 kg, and must not read "20 kg".
    args = ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "44.0924524 lb"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert "weight 20 kg is below" not in result.stderr
    assert "weight 19.99999998" in result.stderr


# --- 4. pint checks the units of every formula, at run time --------------------------------------


def test_pint_tells_a_dose_per_kg_from_a_plain_ratio() -> None:
    assert units.dimensionality("mg/kg") == "[mass] / [body_mass]"
    assert units.dimensionality("mL/L") == "dimensionless"
    assert units.dimensionality("mg/kg") != units.dimensionality("lb/kg")


def test_conversion_factors_come_from_pint_and_are_exact() -> None:
    # By definition: 1 lb = 0.45359237 kg; 1 h = 60 min; 1 mg = 1000 mcg; 1 s = 1/60 min.
    assert units.factor("lb", "kg", "weight") == (D("0.45359237"), D(1))
    assert units.factor("h", "min") == (D(60), D(1))
    assert units.factor("mg", "mcg") == (D(1000), D(1))
    assert units.factor("s", "min") == (D(1), D(60))
    assert units.factor("g", "kg", "weight") == (D("0.001"), D(1))


def test_a_patients_kilograms_never_convert_into_a_drugs_milligrams() -> None:
    import pint

    with pytest.raises(pint.DimensionalityError):
        units.factor("kg", "mg")


def test_a_formula_with_the_wrong_dimension_fails_at_load() -> None:
    # A volume computed as dose x strength: mg x mg/mL is mg^2/mL, not mL.
    wrong = Formula("drug_volume", ("dose", "stock"), lambda dose, stock: dose * stock)
    with pytest.raises(FormulaError, match=r"formula for drug_volume .* gives .*\[volume\]"):
        compile_formula(wrong, "mg")


def test_a_formula_with_a_hand_written_factor_fails_at_load() -> None:
    # A rate with its own 60: pint supplies every factor, so a bare number is refused.
    wrong = Formula("rate", ("total_volume", "duration"), lambda v, t: v / t * 60)
    with pytest.raises(FormulaError, match="bare number 60"):
        compile_formula(wrong, "mg")


def test_a_formula_adding_a_mass_to_a_volume_fails_at_load() -> None:
    wrong = Formula("total_volume", ("diluent_volume", "dose"), lambda v, dose: v + dose)
    with pytest.raises(FormulaError, match="mixes dimensions"):
        compile_formula(wrong, "mg")


def test_the_loader_reports_a_broken_formula_with_its_key_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = Formula("rate", ("total_volume", "duration"), lambda v, t: v * t)
    table = {**quantities._PREPARATION}
    add = tuple(broken if f.target == "rate" else f for f in quantities._COMMON_TAIL)
    monkeypatch.setattr(quantities, "_COMMON_TAIL", add)
    monkeypatch.setattr(quantities, "_PREPARATION", table)
    quantities.compiled.cache_clear()
    try:
        with pytest.raises(protocols.ProtocolFileError) as raised:
            protocols.load(TEST_PROTOCOLS)
        assert any(p.code == "formula_dimension" for p in raised.value.problems)
    finally:
        monkeypatch.undo()
        quantities.compiled.cache_clear()


PROTOCOL_IDS = [("test", pid) for pid in protocols.load(TEST_PROTOCOLS).protocols] + [
    ("shipped", pid) for pid in protocols.load(SHIPPED).protocols
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.sampled_from(PROTOCOL_IDS),
    weight=st.integers(min_value=0, max_value=10**6),
    dpk=st.integers(min_value=0, max_value=10**6),
    minutes=st.integers(min_value=0, max_value=10**6),
)
def test_pint_and_the_decimal_path_agree_on_every_formula(
    which: tuple[str, str], weight: int, dpk: int, minutes: int
) -> None:
    """Over every shipped and test protocol, and values across their hard limits, each formula
    evaluated with pint Quantities (at 100 digits, converted by pint into the working unit) equals
    the engine's Decimal value (pint's factor applied at 60 digits) to 50 significant digits."""
    library = protocols.load(SHIPPED if which[0] == "shipped" else TEST_PROTOCOLS)
    p = library.protocols[which[1]]
    d = p.dose_unit

    def across(name: str, fraction: int) -> Decimal:
        bounds = p.limits[name].hard
        assert bounds is not None
        return bounds.low + (bounds.high - bounds.low) * D(fraction) / D(10**6)

    values = {
        "weight_kg": across("weight", weight),
        "dose_per_kg": across("dose_per_kg", dpk),
        "duration": across("duration", minutes),
        "stock": p.stock[0].to(p.unit("{d}/mL")),
        "container_volume": p.diluent_volume.to("mL"),
    }
    checked = quantities.compiled(p.preparation, d)
    reg = units.registry()
    for formula in quantities.formulas(p.preparation):
        engine = checked[formula.target].value(values)
        with localcontext() as context:
            context.prec = 100
            operands = [
                reg.Quantity(values[name], units.pint_unit(*_unit(name, d)))
                for name in formula.operands
            ]
            kind, template = quantities.OPERANDS[formula.target]
            by_pint = formula.fn(*operands).to(units.pint_unit(template.format(d=d), kind))
            magnitude = Decimal(by_pint.magnitude)
        assert abs(magnitude - engine) <= abs(engine) * D("1e-50"), formula.target
        values[formula.target] = engine


def _unit(name: str, dose_unit: str) -> tuple[str, str]:
    kind, template = quantities.OPERANDS[name]
    return template.format(d=dose_unit), kind


# --- the printed-figure property ----------------------------------------------------------------

STEPS = {
    "weight": ["0.1 kg", "1 kg"],
    "dose": ["0.1 mg", "0.5 mg", "1 mg"],
    "drug_volume": ["0.01 mL", "0.1 mL"],
    "volume": ["0.1 mL", "1 mL"],
    "rate": ["0.1 mL/h", "1 mL/h"],
    "concentration": ["0.001 mg/mL", "0.01 mg/mL"],
    "dose_rate": ["0.1 mg/h", "1 mg/h"],
    "dose_rate_per_kg": ["0.001 mg/kg/h", "0.01 mg/kg/h"],
    "duration": ["0.1 min", "1 min"],
}


def protocol_text(
    steps: dict[str, str], stock: str, volume: str, preparation: str, change: str
) -> str:
    rounding = "\n".join(f'{k} = "{v}"' for k, v in steps.items())
    return f"""format = 1
default = "p"
[protocols.p]
name = "Generated"
drug = "ketamine"
indication = "Test"
version = "gen"
dose = "0.5 mg/kg"
duration = "40 min"
stock = ["{stock}"]
diluent = "0.9% sodium chloride"
diluent_volume = "{volume}"
preparation = "{preparation}"
checkpoint_every = "10 min"
advisory = "Test."
monitoring = ["BP"]
max_rounding_change = "{change}"
[protocols.p.round]
{rounding}
[protocols.p.limits]
weight = {{ hard = ["20 kg", "300 kg"] }}
dose_per_kg = {{ hard = ["0.1 mg/kg", "1 mg/kg"] }}
dose = {{ hard = ["2 mg", "200 mg"] }}
drug_volume = {{ hard = ["0.1 mL", "40 mL"] }}
duration = {{ hard = ["20 min", "120 min"] }}
rate = {{ hard = ["1 mL/h", "999 mL/h"] }}
concentration = {{ hard = ["0.01 mg/mL", "5 mg/mL"] }}
"""


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.fixed_dictionaries({k: st.sampled_from(v) for k, v in STEPS.items()}),
    stock=st.sampled_from(["10 mg/mL", "50 mg/mL", "30 mg/mL"]),
    volume=st.sampled_from(["50 mL", "100 mL", "250 mL"]),
    preparation=st.sampled_from(["add", "make-up-to"]),
    change=st.sampled_from(["5%", "10%"]),
    tenths=st.integers(min_value=200, max_value=3000),
    dpk_hundredths=st.integers(min_value=10, max_value=100),
    minutes=st.integers(min_value=20, max_value=120),
)
def test_a_sheet_is_refused_or_every_printed_figure_holds_up(
    tmp_path_factory: pytest.TempPathFactory,
    steps: dict[str, str],
    stock: str,
    volume: str,
    preparation: str,
    change: str,
    tenths: int,
    dpk_hundredths: int,
    minutes: int,
) -> None:
    """For protocols the loader accepts and weights inside the hard limits, the sheet is refused
    or the invariants of issue 9 item 1 hold, computed here from the printed JSON numbers."""
    folder = tmp_path_factory.mktemp("gen")
    path = folder / "p.toml"
    path.write_text(protocol_text(steps, stock, volume, preparation, change), encoding="utf-8")
    try:
        library = protocols.load(path)
    except protocols.ProtocolFileError:
        return  # the loader refused the generated file: nothing to print
    weight = D(tenths) / 10
    dpk = D(dpk_hundredths) / 100
    order = Order(
        weight=f"{weight} kg",
        date="2026-11-25",
        dose=f"{dpk} mg/kg",
        duration=f"{minutes} min",
        override_reason="test",
        operator="RN Test",
    )
    try:
        sheet = make_sheet(library, order)
    except LimitError:
        return
    data = json.loads(sheet_json(sheet), parse_float=D, parse_int=D)
    num = {k: v for k, v in data.items() if isinstance(v, Decimal)}
    limit = D(change[:-1]) / 100
    exact_dose = dpk * weight  # the prescribed dose, by hand
    strength = D(stock.split()[0])
    drawn = num["drug_volume_ml"] * strength
    delivered = num["total_volume_ml"] * num["concentration"]
    for given_dose in (num["dose"], drawn, delivered):
        assert abs(given_dose - exact_dose) <= limit * exact_dose
    rate_step = D(steps["rate"].split()[0])
    vol_step = D(steps["volume"].split()[0])
    ran = num["rate_ml_per_h"] * num["duration_min"] / 60
    assert abs(ran - num["total_volume_ml"]) <= rate_step * num["duration_min"] / 60 + vol_step / 2
    assert D(2) <= num["dose"] <= D(200)
    assert D(2) <= drawn <= D(200)
    assert D(1) <= num["rate_ml_per_h"] <= D(999)
    assert D("0.1") <= num["drug_volume_ml"] <= D(40)
    assert D(20) <= num["duration_min"] <= D(120)
    assert D("0.01") <= num["concentration"] <= D(5)
    back = ran * drawn / num["total_volume_ml"]
    assert abs(back - exact_dose) <= limit * exact_dose


def test_a_mg_strength_on_a_mcg_protocol_is_printed_as_on_the_vial(
    library: Library, tmp_path: Path
) -> None:
    # dex-load with its 100 mcg/mL stock written "0.1 mg/mL": the nurse matches the vial's label.
    text = in_block("dex-load", 'stock = ["100 mcg/mL"]', 'stock = ["0.1 mg/mL"]')
    changed = protocols.load(write(tmp_path, text))
    sheet = make_sheet(changed, Order(weight="70 kg", date="2026-11-25", protocol_id="dex-load"))
    from dosecalc.render.content import preparation

    assert preparation(sheet)[0] == (
        "Draw up 0.7 mL of dexmedetomidine 0.1 mg/mL (100 mcg/mL) (70 mcg)."
    )


def test_a_duration_past_any_checkpoint_count_names_the_hard_limit(runner: CliRunner) -> None:
    args = ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "72 kg", "--duration", "11 h"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert "duration '11 h' is above the hard limit 120 min (range 20 min to 120 min)" in (
        result.stderr
    )


# --- soft limits read on the printed figures ---------------------------------------------------

SOFT_DOSE = 'dose = { soft = ["10 mg", "75 mg"]'


def _sheet_json(runner: CliRunner, path: Path, *args: str) -> tuple[int, dict]:
    result = runner.invoke(
        cli,
        ["--protocols", str(path), "sheet", *args, "--format", "json", "--date", "2026-11-26"],
    )
    return result.exit_code, json.loads(result.stdout)


def test_a_printed_dose_above_a_soft_limit_its_exact_value_keeps_to_needs_an_override(
    runner: CliRunner, tmp_path: Path
) -> None:
    # A soft limit of 36.15 mg lies between two 0.1 mg steps. 72.3 kg x 0.5 mg/kg = 36.15 mg
    # exactly: inside (bounds are inclusive), but printed half-up as 36.2 mg, which is outside,
    # and 36.2 mg is what the nurse reads and draws up.
    limits = in_block("ketamine-iv.limits", SOFT_DOSE, 'dose = { soft = ["10 mg", "36.15 mg"]')
    path = write(tmp_path, limits)
    code, body = _sheet_json(runner, path, "--weight", "72.3 kg")
    assert code == 1
    assert [(e["field"], e["code"]) for e in body["errors"]] == [("dose", "soft_limit")]
    message = body["errors"][0]["message"]
    assert message.startswith("printed dose 36.2 mg is above the soft limit 36.15 mg")
    # With a reason and an operator it is given, and the override names the printed dose.
    code, body = _sheet_json(
        runner, path, "--weight", "72.3 kg", "--override", "pharmacist agreed", "--operator", "RN A"
    )
    assert code == 0
    assert body["dose"] == 36.2
    assert [w["code"] for w in body["warnings"]] == ["SOFT_LIMIT_OVERRIDDEN"]
    assert [(o["limit"], o["value"]) for o in body["overrides"]] == [("dose", "36.2 mg")]
    # 72.2 kg: 36.1 mg, exact and printed, inside: no override needed.
    code, body = _sheet_json(runner, path, "--weight", "72.2 kg")
    assert code == 0
    assert body["dose"] == 36.1
    assert body["warnings"] == []


def test_a_printed_dose_below_a_soft_limit_its_exact_value_keeps_to_needs_an_override(
    runner: CliRunner, tmp_path: Path
) -> None:
    # Soft low 36.11 mg: 72.22 kg x 0.5 mg/kg = 36.11 mg exactly (inside), printed 36.1 mg (below).
    limits = in_block("ketamine-iv.limits", SOFT_DOSE, 'dose = { soft = ["36.11 mg", "75 mg"]')
    code, body = _sheet_json(runner, write(tmp_path, limits), "--weight", "72.22 kg")
    assert code == 1
    assert [(e["field"], e["code"]) for e in body["errors"]] == [("dose", "soft_limit")]
    assert body["errors"][0]["message"].startswith(
        "printed dose 36.1 mg is below the soft limit 36.11 mg"
    )


def test_a_soft_limit_breached_by_the_exact_value_is_reported_once_with_the_exact_value(
    runner: CliRunner, tmp_path: Path
) -> None:
    # 72.4 kg: 36.2 mg exact and printed, above 36.15 mg: one breach, worded as before.
    limits = in_block("ketamine-iv.limits", SOFT_DOSE, 'dose = { soft = ["10 mg", "36.15 mg"]')
    code, body = _sheet_json(runner, write(tmp_path, limits), "--weight", "72.4 kg")
    assert code == 1
    assert [e["message"][:40] for e in body["errors"]] == [
        "dose 36.2 mg is above the soft limit 36."
    ]


def test_the_json_reverse_check_gives_the_numbers_the_sheet_prints(runner: CliRunner) -> None:
    # 154 lb = 69.853 kg (printed 69.9 kg); 0.5 mg/kg -> 34.93 mg, printed 34.9 mg, drawn as
    # 3.49 mL x 10 mg/mL = 34.9 mg into 100 mL: 103.5 mL at 155.2 mL/h. From the printed figures:
    # 155.2 x 40 / 60 = 103.4666... mL (printed 103.467); x 34.9 mg in 103.5 mL = 34.8888... mg
    # (34.889); / 69.9 kg = 0.49913... mg/kg (0.499). The JSON gave 103.5, 34.9 and 0.5: rounded
    # to the steps, not what the sheet prints, hiding the shortfall the check is there to show.
    args = ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "154 lb"]
    data = json.loads(runner.invoke(cli, [*args, "--format", "json"]).stdout, parse_float=D)
    assert data["reverse_check"] == {
        "volume_ml": D("103.467"),
        "drawn_dose": D("34.9"),
        "dose": D("34.889"),
        "dose_per_kg": D("0.499"),
        "agrees": True,
    }
    text = " ".join(runner.invoke(cli, args).stdout.split())
    assert "= 103.467 mL; 103.467 mL x 34.9 mg in 103.5 mL = 34.889 mg;" in text
    assert "34.889 mg / 69.9 kg = 0.499 mg/kg" in text


def test_a_checkpoint_is_what_the_pump_shows_at_the_rate_programmed(runner: CliRunner) -> None:
    """The table says "compare with the pump's volume infused", but it was the bag's proportion:
    72 kg from 50 mg/mL: 36 mg / 50 = 0.72 mL, 100.72 mL over 40 min = 151.08 mL/h, programmed
    151.1 mL/h. At 30 min the pump shows 151.1 x 30 / 60 = 75.55 mL, printed 75.6 mL; the
    proportion 100.72 x 30 / 40 = 75.54 mL printed 75.5 (found by the protocol-author check: at
    154 mL/h a vancomycin bag's 90-minute row read 232 mL where the pump shows 231)."""
    args = ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "72 kg"]
    data = json.loads(
        runner.invoke(cli, [*args, "--stock", "50 mg/mL", "--format", "json"]).stdout,
        parse_float=D,
    )
    assert data["rate_ml_per_h"] == D("151.1")
    rows = [(c["minute"], c["volume_ml"], c["dose"]) for c in data["checkpoints"]]
    # 151.1 x 10 / 60 = 25.183 (25.2), x 20 = 50.367 (50.4), x 30 = 75.55 (75.6), x 40 = 100.733:
    # the VTBI 100.7 mL is reached first (the pump stops there). Doses: 36 mg x volume / 100.72.
    assert rows == [
        (10, D("25.2"), 9),
        (20, D("50.4"), 18),
        (30, D("75.6"), 27),
        (40, D("100.7"), 36),
    ]


def test_no_checkpoint_shows_more_than_the_bag_holds(runner: CliRunner) -> None:
    """205.23 lb = 93.0908 kg: 46.545 mg in 4.6545 mL + 100 mL = 104.6545 mL, programmed 157 mL/h
    and VTBI 104.7 mL. At 40 min the pump shows 157 x 40 / 60 = 104.667 mL, more than the bag's
    104.6545 mL: the dose in it is the whole dose, 46.5 mg, not 46.6 (the proportion past the
    bag's end, printed above the dose on 146 rows of the 20,000-row list)."""
    args = ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "205.23 lb"]
    data = json.loads(runner.invoke(cli, [*args, "--format", "json"]).stdout, parse_float=D)
    assert (data["dose"], data["total_volume_ml"], data["rate_ml_per_h"]) == (
        D("46.5"),
        D("104.7"),
        157,
    )
    assert data["checkpoints"][-1] == {"minute": 40, "volume_ml": D("104.7"), "dose": D("46.5")}
    # And across weights: no row above the dose or the VTBI the sheet prints.
    base = ["--protocols", str(TEST_PROTOCOLS), "sheet", "--format", "json"]
    for kg in range(40, 151, 3):
        out = runner.invoke(cli, [*base, "--weight", f"{kg}.37 kg"]).stdout
        sheet = json.loads(out, parse_float=D)
        for row in sheet["checkpoints"]:
            assert row["dose"] <= sheet["dose"], (kg, row)
            assert row["volume_ml"] <= sheet["total_volume_ml"], (kg, row)


def test_a_formula_outside_the_sixty_digit_context_is_refused_even_under_python_o() -> None:
    # It was an assert: `python -O` drops asserts, and the arithmetic would run at 28 digits.
    from dosecalc.exact import EXACT

    dose = quantities.compiled("add")["dose"]
    values = {"dose_per_kg": Decimal("0.5"), "dosing_weight_kg": Decimal(72)}
    with localcontext(EXACT):
        assert dose.within(values) == 36
    with localcontext(prec=28), pytest.raises(RuntimeError, match="needs localcontext"):
        dose.within(values)
