"""Issue 11: preparation and delivery, as worked examples computed by hand, and the refusals.

Strengths as labelled (20%, 250 mg/5 mL, 400 mg/250 mL), neat doses, dilution to a target
concentration, diluent volumes per kg, continuous infusions with a titration table, a maximum dose
rate that lengthens the duration, gravity drip rates and a line flush. Every expected number is a
literal worked out by hand in the comment beside it, never computed by calling dosecalc. The
protocols are written here as TOML text into pytest's tmp_path, so the shared test data stay
unchanged; examples/protocols-more.toml is checked at the end.

JSON numbers are read as exact Decimals (parse_float=Decimal), so 15 and 15.0 compare equal.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dosecalc.cli import cli

DATE = "2026-11-25"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "protocols-more.toml"


# --- building protocols files -------------------------------------------------------------------


def protocol(pid: str, body: str, steps: str, limits: str) -> str:
    """One protocol table: the keys every test protocol shares, then the test's own."""
    return (
        f'[protocols.{pid}]\nname = "{pid}"\n'
        'indication = "Test only: not a clinical protocol"\nversion = "test"\n'
        'advisory = "Test protocol."\nmonitoring = ["Observations"]\n'
        f"{body.strip()}\n\n[protocols.{pid}.round]\n{steps.strip()}\n\n"
        f"[protocols.{pid}.limits]\n{limits.strip()}\n"
    )


def write(tmp_path: Path, *bodies: str, name: str = "protocols.toml") -> Path:
    first = bodies[0].split("]")[0].removeprefix("[protocols.")
    path = tmp_path / name
    path.write_text(f'format = 1\ndefault = "{first}"\n\n' + "\n".join(bodies), encoding="utf-8")
    return path


def number(text: str) -> Decimal:
    return Decimal(text)


def sheet(runner: CliRunner, path: Path, pid: str, weight: str, *extra: str) -> dict[str, Any]:
    """The JSON sheet (exit 0 required), numbers as exact Decimals."""
    args = ["--protocols", str(path), "sheet", "--protocol", pid, "--weight", weight]
    result = runner.invoke(cli, [*args, "--date", DATE, "--format", "json", *extra])
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.stdout)
    data: dict[str, Any] = json.loads(result.stdout, parse_float=Decimal, parse_int=Decimal)
    return data


def refused(runner: CliRunner, path: Path, pid: str, weight: str, *extra: str) -> Result:
    args = ["--protocols", str(path), "sheet", "--protocol", pid, "--weight", weight]
    return runner.invoke(cli, [*args, "--date", DATE, "--format", "json", *extra])


def check(runner: CliRunner, path: Path) -> Result:
    return runner.invoke(cli, ["protocols", "check", str(path)])


def codes(data: dict[str, Any]) -> list[str]:
    return [w["code"] for w in data["warnings"]]


# Strengths and concentrations in a stated unit, to one unit for comparison: a sheet may print a
# dopamine concentration as 1,600 mcg/mL or 1.6 mg/mL; both are the same hand-computed value.
PER_ML_IN_MG = {"mg/mL": Decimal(1), "mcg/mL": Decimal("0.001"), "g/mL": Decimal(1000)}


def mg_per_ml(value: Decimal, unit: str) -> Decimal:
    return value * PER_ML_IN_MG[unit]


# --- the protocols ------------------------------------------------------------------------------

# Acetylcysteine 20% (200 mg/mL), first bag of the Acetadote label's table for 5 to 20 kg:
# 150 mg/kg in 3 mL/kg of diluent over 60 min.
NAC_BODY = """
drug = "acetylcysteine"
dose = "150 mg/kg"
duration = "60 min"
stock = ["20%"]
diluent = "5% dextrose"
diluent_volume_per_kg = "3 mL/kg"
preparation = "add"
checkpoint_every = "15 min"
"""
NAC_STEPS = """
weight = "0.1 kg"
dose = "1 mg"
drug_volume = "0.01 mL"
volume = "0.1 mL"
rate = "0.1 mL/h"
concentration = "0.1 mg/mL"
dose_rate = "1 mg/h"
dose_rate_per_kg = "0.1 mg/kg/h"
"""
NAC_LIMITS = """
weight = { hard = ["5 kg", "20 kg"] }
dose_per_kg = { hard = ["100 mg/kg", "150 mg/kg"] }
dose = { hard = ["500 mg", "3000 mg"] }
duration = { hard = ["60 min", "90 min"] }
rate = { hard = ["1 mL/h", "999 mL/h"] }
"""
NAC = protocol("nac", NAC_BODY, NAC_STEPS, NAC_LIMITS)
# The same with a 1 mL volume step, to see the diluent rounded half-up.
NAC_1ML = protocol("nac-1ml", NAC_BODY, NAC_STEPS.replace('volume = "0.1 mL"', 'volume = "1 mL"'),
                   NAC_LIMITS)  # fmt: skip
# The same, the diluent held between 20 mL and 50 mL.
NAC_HELD = protocol(
    "nac-held",
    NAC_BODY + 'diluent_volume_min = "20 mL"\ndiluent_volume_max = "50 mL"\n',
    NAC_STEPS,
    NAC_LIMITS,
)

# Ceftriaxone from a strength written as labelled, 250 mg/5 mL (50 mg/mL), made up to 50 mL.
CEFTRIAXONE = protocol(
    "ceftriaxone",
    """
drug = "ceftriaxone"
dose = "50 mg/kg"
duration = "30 min"
stock = ["250 mg/5 mL"]
diluent = "0.9% sodium chloride"
diluent_volume = "50 mL"
preparation = "make-up-to"
checkpoint_every = "10 min"
""",
    """
weight = "0.1 kg"
dose = "1 mg"
drug_volume = "0.1 mL"
volume = "0.1 mL"
rate = "0.1 mL/h"
concentration = "0.1 mg/mL"
dose_rate = "1 mg/h"
dose_rate_per_kg = "0.1 mg/kg/h"
""",
    """
weight = { hard = ["10 kg", "40 kg"] }
dose_per_kg = { hard = ["25 mg/kg", "50 mg/kg"] }
dose = { hard = ["250 mg", "2000 mg"] }
duration = { hard = ["30 min", "60 min"] }
rate = { hard = ["1 mL/h", "999 mL/h"] }
""",
)

# Dopamine 5 mcg/kg/min from a premixed 400 mg/250 mL bag (1,600 mcg/mL), used neat. A continuous
# infusion has no dose, duration or checkpoint_every.
DOPAMINE_BODY = """
drug = "dopamine"
dose_rate = "5 mcg/kg/min"
stock = ["400 mg/250 mL"]
preparation = "neat"
titration = ["2 mcg/kg/min", "5 mcg/kg/min", "10 mcg/kg/min"]
"""
# Steps are written in the unit their figures print in: dose_rate_per_h in mcg/h, per kg in
# mcg/kg/h, and the patient's rate in the prescription's unit (round.dose_rate_per_min, mcg/min).
DOPAMINE_STEPS = """
weight = "0.1 kg"
dose = "1 mcg"
drug_volume = "0.1 mL"
volume = "0.1 mL"
rate = "0.1 mL/h"
concentration = "1 mcg/mL"
dose_rate = "1 mcg/h"
dose_rate_per_kg = "0.1 mcg/kg/h"
dose_rate_per_min = "0.1 mcg/min"
"""
DOPAMINE_LIMITS = """
weight = { hard = ["30 kg", "250 kg"] }
dose_rate_per_kg = { hard = ["2 mcg/kg/min", "20 mcg/kg/min"] }
rate = { hard = ["1 mL/h", "999 mL/h"] }
"""
DOPAMINE = protocol("dopamine", DOPAMINE_BODY, DOPAMINE_STEPS, DOPAMINE_LIMITS)
DOPAMINE_STEPPED = protocol(
    "dopamine-stepped",
    DOPAMINE_BODY.replace(
        'titration = ["2 mcg/kg/min", "5 mcg/kg/min", "10 mcg/kg/min"]',
        'titration_step = "1 mcg/kg/min"',
    ),
    DOPAMINE_STEPS,
    DOPAMINE_LIMITS,
)
# A per-mL strength used neat from a 50 mL syringe: the VTBI must be given.
DOPAMINE_SYRINGE = protocol(
    "dopamine-syringe",
    DOPAMINE_BODY.replace('stock = ["400 mg/250 mL"]', 'stock = ["1600 mcg/mL"]\nvtbi = "50 mL"'),
    DOPAMINE_STEPS,
    DOPAMINE_LIMITS,
)
# A bag made on the ward: 400 mg (10 mL of 40 mg/mL) added to, or made up to, 250 mL.
MADE_BODY = DOPAMINE_BODY.replace(
    'stock = ["400 mg/250 mL"]\npreparation = "neat"',
    'stock = ["40 mg/mL"]\ndrug_amount = "400 mg"\ndiluent = "5% dextrose"\n'
    'diluent_volume = "250 mL"\npreparation = "add"',
)
DOPAMINE_ADD = protocol("dopamine-add", MADE_BODY, DOPAMINE_STEPS, DOPAMINE_LIMITS)
DOPAMINE_MADE_UP = protocol(
    "dopamine-made-up",
    MADE_BODY.replace('preparation = "add"', 'preparation = "make-up-to"'),
    DOPAMINE_STEPS,
    DOPAMINE_LIMITS,
)

# Heparin 18 units/kg/h from a 250 mL bag of 100 units/mL (25,000 units in 250 mL), written per
# mL, so the VTBI is given.
HEPARIN = protocol(
    "heparin",
    """
drug = "heparin"
dose_rate = "18 units/kg/h"
stock = ["100 units/mL"]
vtbi = "250 mL"
preparation = "neat"
""",
    """
weight = "0.1 kg"
dose = "1 units"
drug_volume = "0.1 mL"
volume = "0.1 mL"
rate = "0.1 mL/h"
concentration = "1 units/mL"
dose_rate = "1 units/h"
dose_rate_per_kg = "0.1 units/kg/h"
""",
    """
weight = { hard = ["30 kg", "250 kg"] }
dose_rate_per_kg = { hard = ["10 units/kg/h", "30 units/kg/h"] }
rate = { hard = ["1 mL/h", "999 mL/h"] }
""",
)

# A dose rate without /kg: magnesium sulfate 2 g/h from a premixed 20 g/500 mL bag (40 mg/mL).
MAGNESIUM = protocol(
    "magnesium",
    """
drug = "magnesium sulfate"
dose_rate = "2 g/h"
stock = ["20 g/500 mL"]
preparation = "neat"
""",
    """
weight = "0.1 kg"
dose = "1 mg"
drug_volume = "0.1 mL"
volume = "0.1 mL"
rate = "0.1 mL/h"
concentration = "0.1 mg/mL"
dose_rate = "1 mg/h"
dose_rate_per_kg = "0.01 mg/kg/h"
""",
    """
weight = { hard = ["30 kg", "200 kg"] }
dose_rate = { hard = ["1000 mg/h", "3000 mg/h"] }
rate = { hard = ["1 mL/h", "999 mL/h"] }
""",
)

# A neat syringe push: ondansetron 0.1 mg/kg of 2 mg/mL over 5 min. Neat: the VTBI is the drawn
# volume, so round.volume equals round.drug_volume.
NEAT_BODY = """
drug = "ondansetron"
dose = "0.1 mg/kg"
duration = "5 min"
stock = ["2 mg/mL"]
preparation = "neat"
checkpoint_every = "1 min"
"""
NEAT_STEPS = """
weight = "0.1 kg"
dose = "0.01 mg"
drug_volume = "0.01 mL"
volume = "0.01 mL"
rate = "0.1 mL/h"
concentration = "0.01 mg/mL"
dose_rate = "0.01 mg/h"
dose_rate_per_kg = "0.01 mg/kg/h"
"""
NEAT_LIMITS = """
weight = { hard = ["3 kg", "40 kg"] }
dose_per_kg = { hard = ["0.1 mg/kg", "0.1 mg/kg"] }
dose = { hard = ["0.3 mg", "4 mg"] }
duration = { hard = ["2 min", "5 min"] }
rate = { hard = ["1 mL/h", "300 mL/h"] }
"""
NEAT = protocol("neat-push", NEAT_BODY, NEAT_STEPS, NEAT_LIMITS)

# Vancomycin 15 mg/kg of 50 mg/mL diluted to 5 mg/mL, no faster than 10 mg/min.
VANC_BODY = """
drug = "vancomycin"
dose = "15 mg/kg"
duration = "60 min"
stock = ["50 mg/mL"]
diluent = "0.9% sodium chloride"
preparation = "to-concentration"
final_concentration = "5 mg/mL"
max_dose_rate = "10 mg/min"
checkpoint_every = "30 min"
"""
VANC_STEPS = """
weight = "0.1 kg"
dose = "0.1 mg"
drug_volume = "0.01 mL"
volume = "0.1 mL"
rate = "0.1 mL/h"
concentration = "0.01 mg/mL"
dose_rate = "1 mg/h"
dose_rate_per_kg = "0.01 mg/kg/h"
"""
VANC_LIMITS = """
weight = { hard = ["30 kg", "200 kg"] }
dose_per_kg = { hard = ["10 mg/kg", "20 mg/kg"] }
dose = { hard = ["300 mg", "3000 mg"] }
duration = { hard = ["60 min", "360 min"] }
rate = { hard = ["1 mL/h", "999 mL/h"] }
concentration = { hard = ["1 mg/mL", "5 mg/mL"] }
"""
VANC = protocol("vanc", VANC_BODY, VANC_STEPS, VANC_LIMITS)
VANC_PERCENT = protocol(
    "vanc-percent",
    VANC_BODY.replace('final_concentration = "5 mg/mL"', 'final_concentration = "0.5%"'),
    VANC_STEPS,
    VANC_LIMITS,
)
VANC_FLUSH = protocol("vanc-flush", VANC_BODY + 'flush_volume = "20 mL"\n', VANC_STEPS, VANC_LIMITS)

# A fixed 1,000 mg dose (20 mL of 50 mg/mL added to 250 mL) written over 60 min, capped at
# 10 mg/min.
CAPPED_BODY = """
drug = "testdrug"
dose = "1000 mg"
duration = "60 min"
stock = ["50 mg/mL"]
diluent = "0.9% sodium chloride"
diluent_volume = "250 mL"
preparation = "add"
max_dose_rate = "10 mg/min"
checkpoint_every = "20 min"
"""
CAPPED_STEPS = """
weight = "0.1 kg"
dose = "1 mg"
drug_volume = "0.1 mL"
volume = "0.1 mL"
rate = "0.1 mL/h"
concentration = "0.01 mg/mL"
dose_rate = "1 mg/h"
dose_rate_per_kg = "0.01 mg/kg/h"
"""
CAPPED_LIMITS = """
weight = { hard = ["30 kg", "200 kg"] }
dose = { hard = ["250 mg", "1000 mg"] }
duration = { hard = ["60 min", "180 min"] }
rate = { hard = ["1 mL/h", "999 mL/h"] }
"""
CAPPED = protocol("capped", CAPPED_BODY, CAPPED_STEPS, CAPPED_LIMITS)
# The same over 90 min, never shorter than 90 min, and never faster than 10 mg/min. (A default
# duration shorter than the protocol's own min_duration is a contradiction the loader refuses.)
CAPPED_MIN = protocol(
    "capped-min",
    CAPPED_BODY.replace('duration = "60 min"', 'duration = "90 min"\nmin_duration = "90 min"'),
    CAPPED_STEPS,
    CAPPED_LIMITS,
)
# Over 90 min by default, never shorter than 75 min, no maximum dose rate.
MIN_ONLY = protocol(
    "min-only",
    CAPPED_BODY.replace(
        'duration = "60 min"', 'duration = "90 min"\nmin_duration = "75 min"'
    ).replace('max_dose_rate = "10 mg/min"\n', ""),
    CAPPED_STEPS,
    CAPPED_LIMITS,
)
CAPPED_FLUSH = protocol(
    "capped-flush", CAPPED_BODY + 'flush_volume = "20 mL"\n', CAPPED_STEPS, CAPPED_LIMITS
)

# A premixed 1,000 mL bag (1,000 mg/1,000 mL) hung neat by gravity over 8 h.
GRAVITY_BODY = """
drug = "testdrug"
dose = "1000 mg"
duration = "8 h"
stock = ["1000 mg/1000 mL"]
preparation = "neat"
checkpoint_every = "60 min"
"""
GRAVITY_STEPS = """
weight = "0.1 kg"
dose = "1 mg"
drug_volume = "1 mL"
volume = "1 mL"
rate = "1 mL/h"
concentration = "0.01 mg/mL"
dose_rate = "1 mg/h"
dose_rate_per_kg = "0.01 mg/kg/h"
"""
GRAVITY_LIMITS = """
weight = { hard = ["30 kg", "200 kg"] }
dose = { hard = ["1000 mg", "1000 mg"] }
duration = { hard = ["4 h", "12 h"] }
rate = { hard = ["1 mL/h", "999 mL/h"] }
"""
GRAVITY = protocol("gravity", GRAVITY_BODY, GRAVITY_STEPS, GRAVITY_LIMITS)
GRAVITY_20 = protocol(
    "gravity-20", GRAVITY_BODY + 'drop_factor = "20 gtt/mL"\n', GRAVITY_STEPS, GRAVITY_LIMITS
)

INTERMITTENT = (
    NAC,
    NAC_1ML,
    NAC_HELD,
    CEFTRIAXONE,
    NEAT,
    VANC,
    VANC_PERCENT,
    VANC_FLUSH,
    CAPPED,
    CAPPED_MIN,
    MIN_ONLY,
    CAPPED_FLUSH,
    GRAVITY,
    GRAVITY_20,
)
CONTINUOUS = (
    DOPAMINE,
    DOPAMINE_STEPPED,
    DOPAMINE_SYRINGE,
    DOPAMINE_ADD,
    DOPAMINE_MADE_UP,
    HEPARIN,
    MAGNESIUM,
)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """The intermittent (dose over a duration) test protocols."""
    return write(tmp_path, *INTERMITTENT)


@pytest.fixture
def continuous(tmp_path: Path) -> Path:
    """The continuous-infusion (dose rate) test protocols, in a file of their own."""
    return write(tmp_path, *CONTINUOUS, name="continuous.toml")


# The protocols that exercise only what exists before issue 11 (strengths as labelled).
@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    return write(tmp_path, CEFTRIAXONE, name="labelled.toml")


# --- the test library itself --------------------------------------------------------------------


@pytest.mark.parametrize("bodies", [INTERMITTENT, CONTINUOUS], ids=["intermittent", "continuous"])
def test_every_test_protocol_passes_protocols_check(
    runner: CliRunner, tmp_path: Path, bodies: tuple[str, ...]
) -> None:
    result = check(runner, write(tmp_path, *bodies))
    assert result.exit_code == 0, result.stderr


# --- strengths as labelled ----------------------------------------------------------------------


def test_ceftriaxone_250_mg_per_5_ml_is_50_mg_per_ml_and_printed_as_written(
    runner: CliRunner, labelled: Path
) -> None:
    # 50 mg/kg x 20 kg = 1,000 mg; 250 mg/5 mL = 50 mg/mL; 1,000 / 50 = 20 mL; made up to 50 mL:
    # diluent 50 - 20 = 30 mL; 1,000 mg / 50 mL = 20 mg/mL; 50 mL over 30 min = 100 mL/h.
    data = sheet(runner, labelled, "ceftriaxone", "20 kg")
    assert (data["stock_label"], data["stock"], data["stock_unit"]) == ("250 mg/5 mL", 50, "mg/mL")
    assert data["dose"] == number("1000")
    assert data["drug_volume_ml"] == number("20")
    assert data["diluent_volume_ml"] == number("30")
    assert data["total_volume_ml"] == number("50")
    assert mg_per_ml(data["concentration"], data["concentration_unit"]) == number("20")
    assert data["rate_ml_per_h"] == number("100")


def test_ceftriaxone_stock_given_per_ml_matches_the_label_and_prints_its_wording(
    runner: CliRunner, labelled: Path
) -> None:
    # --stock "50 mg/mL" equals 250 mg/5 mL (250 / 5 = 50): the sheet prints the protocol's words.
    data = sheet(runner, labelled, "ceftriaxone", "20 kg", "--stock", "50 mg/mL")
    assert data["stock_label"] == "250 mg/5 mL"
    assert data["drug_volume_ml"] == number("20")
    # 25 mg/mL (250 mg/10 mL) is not on the list: refused as input.
    result = refused(runner, labelled, "ceftriaxone", "20 kg", "--stock", "250 mg/10 mL")
    assert result.exit_code == 2, result.stderr


def test_a_ratio_strength_in_the_protocols_file_is_refused_naming_mg_per_ml(
    runner: CliRunner, tmp_path: Path
) -> None:
    # 1:1000 is 1 g in 1,000 mL = 1 mg/mL (ISMP: write mg/mL).
    bad = CEFTRIAXONE.replace('stock = ["250 mg/5 mL"]', 'stock = ["1:1000"]')
    result = check(runner, write(tmp_path, bad))
    assert result.exit_code == 3
    assert "protocols.ceftriaxone.stock[0]" in result.stderr
    assert "1:1000 is 1 mg/mL" in result.stderr


def test_a_ratio_strength_given_as_stock_is_refused_as_input(
    runner: CliRunner, labelled: Path
) -> None:
    result = refused(runner, labelled, "ceftriaxone", "20 kg", "--stock", "1:1000")
    assert result.exit_code == 2
    assert "1:1000 is 1 mg/mL" in result.stderr


# --- diluent per kg (acetylcysteine) ------------------------------------------------------------


def test_acetylcysteine_20_percent_with_3_ml_per_kg_for_20_kg(
    runner: CliRunner, library: Path
) -> None:
    # 20% w/v = 20 g / 100 mL = 200 mg/mL. 150 mg/kg x 20 kg = 3,000 mg; 3,000 / 200 = 15 mL;
    # diluent 3 mL/kg x 20 kg = 60 mL; total 15 + 60 = 75 mL; over 60 min = 75 mL/h;
    # 3,000 mg / 75 mL = 40 mg/mL.
    data = sheet(runner, library, "nac", "20 kg")
    assert (data["stock_label"], data["stock"], data["stock_unit"]) == ("20%", 200, "mg/mL")
    assert data["preparation"] == "add"
    assert data["dose"] == number("3000")
    assert data["drug_volume_ml"] == number("15")
    assert data["diluent_volume_ml"] == number("60")
    assert data["total_volume_ml"] == number("75")
    assert data["duration_min"] == number("60")
    assert data["rate_ml_per_h"] == number("75")
    assert mg_per_ml(data["concentration"], data["concentration_unit"]) == number("40")


def test_acetylcysteine_for_10_kg_scales_the_diluent(runner: CliRunner, library: Path) -> None:
    # The label's 10 kg row: 150 x 10 = 1,500 mg (7.5 mL of 200 mg/mL) in 3 x 10 = 30 mL;
    # total 37.5 mL over 60 min = 37.5 mL/h.
    data = sheet(runner, library, "nac", "10 kg")
    assert data["dose"] == number("1500")
    assert data["drug_volume_ml"] == number("7.5")
    assert data["diluent_volume_ml"] == number("30")
    assert data["total_volume_ml"] == number("37.5")
    assert data["rate_ml_per_h"] == number("37.5")


def test_a_per_kg_diluent_is_rounded_half_up_to_the_volume_step(
    runner: CliRunner, library: Path
) -> None:
    # 3 mL/kg x 7.5 kg = 22.5 mL: half-up to a 1 mL step is 23 mL (half-even would give 22).
    # Drug: 150 x 7.5 = 1,125 mg / 200 = 5.625 mL; total 5.625 + 23 = 28.625 -> 29 mL.
    data = sheet(runner, library, "nac-1ml", "7.5 kg")
    assert data["diluent_volume_ml"] == number("23")
    assert data["total_volume_ml"] == number("29")


def test_a_per_kg_diluent_is_held_within_its_minimum_and_maximum(
    runner: CliRunner, library: Path
) -> None:
    # 5 kg: 3 x 5 = 15 mL, below the 20 mL minimum: 20 mL. Drug 150 x 5 = 750 mg / 200 = 3.75 mL;
    # total 3.75 + 20 = 23.75 -> 23.8 mL (0.1 mL step, half-up).
    low = sheet(runner, library, "nac-held", "5 kg")
    assert low["diluent_volume_ml"] == number("20")
    assert low["total_volume_ml"] == number("23.8")
    # 20 kg: 3 x 20 = 60 mL, above the 50 mL maximum: 50 mL; total 15 + 50 = 65 mL = 65 mL/h.
    high = sheet(runner, library, "nac-held", "20 kg")
    assert high["diluent_volume_ml"] == number("50")
    assert high["total_volume_ml"] == number("65")
    assert high["rate_ml_per_h"] == number("65")
    # 10 kg: 30 mL, inside 20..50: unchanged.
    assert sheet(runner, library, "nac-held", "10 kg")["diluent_volume_ml"] == number("30")


# --- neat ---------------------------------------------------------------------------------------


def test_a_neat_push_over_5_min_runs_the_drawn_volume(runner: CliRunner, library: Path) -> None:
    # 0.1 mg/kg x 20 kg = 2 mg; 2 mg / 2 mg/mL = 1 mL; neat: VTBI = 1 mL;
    # 1 mL / 5 min x 60 min/h = 12 mL/h. Concentration = the stock, 2 mg/mL.
    # Dose rate 2 mg / (5/60 h) = 24 mg/h; per kg 0.1 mg/kg / (1/12 h) = 1.2 mg/kg/h.
    data = sheet(runner, library, "neat-push", "20 kg")
    assert data["preparation"] == "neat"
    assert data["dose"] == number("2")
    assert data["drug_volume_ml"] == number("1")
    assert data["total_volume_ml"] == number("1")
    assert data["duration_min"] == number("5")
    assert data["rate_ml_per_h"] == number("12")
    assert mg_per_ml(data["concentration"], data["concentration_unit"]) == number("2")
    assert data["dose_rate_per_h"] == number("24")
    assert data["dose_rate_per_kg_per_h"] == number("1.2")
    assert "diluent_volume_ml" not in data


def test_a_neat_push_for_13_kg(runner: CliRunner, library: Path) -> None:
    # 0.1 x 13 = 1.3 mg; 1.3 / 2 = 0.65 mL; 0.65 mL / 5 min x 60 = 7.8 mL/h.
    data = sheet(runner, library, "neat-push", "13 kg")
    assert data["dose"] == number("1.3")
    assert data["drug_volume_ml"] == number("0.65")
    assert data["total_volume_ml"] == number("0.65")
    assert data["rate_ml_per_h"] == number("7.8")


def test_a_neat_premixed_bag_runs_its_volume(runner: CliRunner, library: Path) -> None:
    # 1,000 mg of 1,000 mg/1,000 mL (1 mg/mL) = 1,000 mL; neat: VTBI 1,000 mL;
    # over 8 h = 480 min: 1,000 / 8 = 125 mL/h.
    data = sheet(runner, library, "gravity", "70 kg")
    assert data["stock_label"] == "1000 mg/1000 mL"
    assert data["total_volume_ml"] == number("1000")
    assert data["duration_min"] == number("480")
    assert data["rate_ml_per_h"] == number("125")
    assert "diluent_volume_ml" not in data


@pytest.mark.parametrize(
    "line",
    [
        'diluent = "0.9% sodium chloride"',
        'diluent_volume = "10 mL"',
        'diluent_volume_per_kg = "3 mL/kg"',
    ],
)
def test_neat_with_a_diluent_key_is_refused_naming_the_key(
    runner: CliRunner, tmp_path: Path, line: str
) -> None:
    assert check(runner, write(tmp_path, NEAT, name="good.toml")).exit_code == 0
    key = line.split(" =")[0]
    bad = NEAT.replace('preparation = "neat"', f'preparation = "neat"\n{line}')
    result = check(runner, write(tmp_path, bad))
    assert result.exit_code == 3
    assert f"protocols.neat-push.{key}:" in result.stderr
    assert "unknown key" not in result.stderr


def test_neat_with_a_volume_step_other_than_the_drug_volume_step_is_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    # Neat: the VTBI is the drawn volume, so it cannot be rounded to another step (0.1 mL against
    # the drug volume's 0.01 mL).
    assert check(runner, write(tmp_path, NEAT, name="good.toml")).exit_code == 0
    bad = NEAT.replace('volume = "0.01 mL"\nrate', 'volume = "0.1 mL"\nrate')
    assert bad != NEAT
    result = check(runner, write(tmp_path, bad))
    assert result.exit_code == 3
    assert "protocols.neat-push.round.volume" in result.stderr or (
        "protocols.neat-push.round.drug_volume" in result.stderr
    )


# --- to a target concentration (vancomycin) -----------------------------------------------------


def test_vancomycin_15_mg_per_kg_for_68_kg_to_5_mg_per_ml_over_102_min(
    runner: CliRunner, library: Path
) -> None:
    # 15 mg/kg x 68 kg = 1,020 mg; 1,020 / 50 mg/mL = 20.4 mL of stock;
    # final volume 1,020 mg / 5 mg/mL = 204 mL (already on the 0.1 mL step);
    # diluent 204 - 20.4 = 183.6 mL; concentration 1,020 / 204 = 5 mg/mL.
    # 10 mg/min: 1,020 / 10 = 102 min, longer than the protocol's 60 min: 102 min;
    # 204 mL / 102 min x 60 = 120 mL/h. Dose rate 1,020 mg / 1.7 h = 600 mg/h (10 mg/min);
    # per kg 15 / 1.7 = 8.8235... -> 8.82 mg/kg/h.
    data = sheet(runner, library, "vanc", "68 kg")
    assert data["preparation"] == "to-concentration"
    assert data["dose"] == number("1020")
    assert data["drug_volume_ml"] == number("20.4")
    assert data["total_volume_ml"] == number("204")
    assert data["diluent_volume_ml"] == number("183.6")
    assert mg_per_ml(data["final_concentration"], data["concentration_unit"]) == number("5")
    assert mg_per_ml(data["concentration"], data["concentration_unit"]) == number("5")
    assert data["duration_min"] == number("102")
    assert data["rate_ml_per_h"] == number("120")
    assert data["dose_rate_per_h"] == number("600")
    assert data["dose_rate_per_kg_per_h"] == number("8.82")
    assert "DURATION_LENGTHENED" in codes(data)


def test_the_final_volume_and_the_lengthened_duration_are_rounded_up(
    runner: CliRunner, library: Path
) -> None:
    # 15 mg/kg x 68.02 kg = 1,020.3 mg. Final volume 1,020.3 / 5 = 204.06 mL, UP to the 0.1 mL
    # step: 204.1 mL (half-up would give 204.1 too, but never 204.0: that would be above 5 mg/mL).
    # Concentration 1,020.3 / 204.1 = 4.99902... -> 5 mg/mL (0.01 step), not above the target.
    # Duration 1,020.3 / 10 = 102.03 min, UP to the 0.1 min step: 102.1 min (half-up would give
    # 102.0 min, 10.003 mg/min: too fast). Rate 204.1 mL / 102.1 min x 60 = 119.941... -> 119.9.
    data = sheet(runner, library, "vanc", "68.02 kg")
    assert data["dose"] == number("1020.3")
    assert data["total_volume_ml"] == number("204.1")
    assert mg_per_ml(data["concentration"], data["concentration_unit"]) == number("5")
    assert data["duration_min"] == number("102.1")
    assert data["rate_ml_per_h"] == number("119.9")


def test_a_final_concentration_volume_rounded_up_gives_a_weaker_bag(
    runner: CliRunner, library: Path
) -> None:
    # 15 mg/kg x 50.1 kg = 751.5 mg; 751.5 / 5 = 150.3 mL (on the step); 751.5 / 50 = 15.03 mL.
    # Diluent 150.3 - 15.03 = 135.27 mL -> 135.3 mL (0.1 mL step).
    # 751.5 / 10 = 75.15 min -> UP to 75.2 min (longer than 60); 150.3 / 75.2 x 60 = 119.920...
    # -> 119.9 mL/h.
    data = sheet(runner, library, "vanc", "50.1 kg")
    assert data["dose"] == number("751.5")
    assert data["drug_volume_ml"] == number("15.03")
    assert data["total_volume_ml"] == number("150.3")
    assert data["diluent_volume_ml"] == number("135.3")
    assert data["duration_min"] == number("75.2")
    assert data["rate_ml_per_h"] == number("119.9")


def test_a_final_concentration_written_as_a_percentage(runner: CliRunner, library: Path) -> None:
    # 0.5% w/v = 0.5 g / 100 mL = 5 mg/mL: the same bag as 5 mg/mL, 204 mL for 1,020 mg.
    data = sheet(runner, library, "vanc-percent", "68 kg")
    assert mg_per_ml(data["final_concentration"], data["concentration_unit"]) == number("5")
    assert data["total_volume_ml"] == number("204")
    assert data["diluent_volume_ml"] == number("183.6")
    assert data["rate_ml_per_h"] == number("120")


@pytest.mark.parametrize("target", ["100 mg/mL", "10%"])
def test_a_final_concentration_above_the_stock_is_refused(
    runner: CliRunner, tmp_path: Path, target: str
) -> None:
    # 100 mg/mL (or 10% = 100 mg/mL) from 50 mg/mL: 1,020 mg would need a final volume of 10.2 mL,
    # less than the 20.4 mL of stock it holds. Impossible: refused at load.
    assert check(runner, write(tmp_path, VANC, name="good.toml")).exit_code == 0
    bad = VANC.replace('final_concentration = "5 mg/mL"', f'final_concentration = "{target}"')
    result = check(runner, write(tmp_path, bad))
    assert result.exit_code == 3
    assert "final_concentration" in result.stderr
    assert "unknown key" not in result.stderr


# --- maximum dose rate and minimum duration -----------------------------------------------------


def test_a_10_mg_per_min_cap_turns_60_min_of_1000_mg_into_100_min(
    runner: CliRunner, library: Path
) -> None:
    # 1,000 mg / 10 mg/min = 100 min > 60 min: 100 min. 1,000 / 50 = 20 mL + 250 = 270 mL;
    # 270 mL / 100 min x 60 = 162 mL/h; 1,000 mg / (100/60 h) = 600 mg/h.
    data = sheet(runner, library, "capped", "70 kg")
    assert data["duration_min"] == number("100")
    assert data["total_volume_ml"] == number("270")
    assert data["rate_ml_per_h"] == number("162")
    assert data["dose_rate_per_h"] == number("600")
    assert "DURATION_LENGTHENED" in codes(data)


def test_a_fixed_dose_sheet_prints_as_text(runner: CliRunner, library: Path) -> None:
    # A fixed 1,000 mg dose has no dose per kg: the text sheet (and its summary) must still print.
    # 1,000 mg over 100 min, 162 mL/h (above).
    args = ["--protocols", str(library), "sheet", "--protocol", "capped", "--weight", "70 kg"]
    result = runner.invoke(cli, [*args, "--date", DATE])
    assert result.exit_code == 0, repr(result.exception)
    assert "162 mL/h" in result.stdout
    assert "100 min" in result.stdout


def test_a_dose_within_the_cap_keeps_the_protocols_duration(
    runner: CliRunner, library: Path
) -> None:
    # 500 mg / 10 mg/min = 50 min, shorter than 60 min: 60 min stays, no warning.
    # 500 / 50 = 10 mL + 250 = 260 mL over 60 min = 260 mL/h.
    data = sheet(runner, library, "capped", "70 kg", "--dose", "500 mg")
    assert data["duration_min"] == number("60")
    assert data["rate_ml_per_h"] == number("260")
    assert "DURATION_LENGTHENED" not in codes(data)


def test_a_duration_shorter_than_the_cap_allows_is_refused_too_fast(
    runner: CliRunner, library: Path
) -> None:
    # 1,000 mg over 90 min = 11.1 mg/min > 10 mg/min: hard refusal (exit 1, too_fast).
    result = refused(runner, library, "capped", "70 kg", "--duration", "90 min")
    assert result.exit_code == 1, result.stderr
    error = json.loads(result.stdout)
    assert "too_fast" in [e["code"] for e in error["errors"]]
    # Exactly 100 min (10 mg/min) is allowed.
    ok = sheet(runner, library, "capped", "70 kg", "--duration", "100 min")
    assert ok["duration_min"] == number("100")


def test_a_duration_longer_than_the_cap_needs_is_kept(runner: CliRunner, library: Path) -> None:
    # --duration 120 min: 1,000 / 120 = 8.33 mg/min, under the cap: 270 / 120 x 60 = 135 mL/h.
    data = sheet(runner, library, "capped", "70 kg", "--duration", "120 min")
    assert data["duration_min"] == number("120")
    assert data["rate_ml_per_h"] == number("135")


def test_vancomycin_given_too_fast_is_refused(runner: CliRunner, library: Path) -> None:
    # 1,020 mg over 90 min = 11.33 mg/min > 10 mg/min.
    result = refused(runner, library, "vanc", "68 kg", "--duration", "90 min")
    assert result.exit_code == 1, result.stderr
    assert "too_fast" in [e["code"] for e in json.loads(result.stdout)["errors"]]


def test_the_cap_lengthens_past_the_min_duration(runner: CliRunner, library: Path) -> None:
    # Cap: 1,000 / 10 = 100 min; min_duration and default 90 min: the longer, 100 min.
    # 270 mL / 100 min x 60 = 162 mL/h.
    data = sheet(runner, library, "capped-min", "70 kg")
    assert data["duration_min"] == number("100")
    assert data["rate_ml_per_h"] == number("162")
    assert "DURATION_LENGTHENED" in codes(data)


def test_the_min_duration_holds_when_the_cap_would_allow_shorter(
    runner: CliRunner, library: Path
) -> None:
    # 500 mg: the cap allows 500 / 10 = 50 min, but min_duration is 90 min: the default 90 min
    # stays; 500 / 50 = 10 mL + 250 = 260 mL over 90 min = 173.333... -> 173.3 mL/h.
    data = sheet(runner, library, "capped-min", "70 kg", "--dose", "500 mg")
    assert data["duration_min"] == number("90")
    assert data["rate_ml_per_h"] == number("173.3")
    assert "DURATION_LENGTHENED" not in codes(data)
    # --duration 80 min: slower than 10 mg/min (6.25 mg/min) but shorter than 90 min: too_fast.
    result = refused(
        runner, library, "capped-min", "70 kg", "--dose", "500 mg", "--duration", "80 min"
    )
    assert result.exit_code == 1, result.stderr
    assert "too_fast" in [e["code"] for e in json.loads(result.stdout)["errors"]]


def test_a_duration_below_the_min_duration_is_refused_too_fast(
    runner: CliRunner, library: Path
) -> None:
    # min_duration 75 min: --duration 75 min is allowed, 270 mL / 75 min x 60 = 216 mL/h;
    # --duration 70 min is refused (exit 1, too_fast); the default 90 min: 270 / 90 x 60 = 180.
    assert sheet(runner, library, "min-only", "70 kg")["rate_ml_per_h"] == number("180")
    data = sheet(runner, library, "min-only", "70 kg", "--duration", "75 min")
    assert data["duration_min"] == number("75")
    assert data["rate_ml_per_h"] == number("216")
    result = refused(runner, library, "min-only", "70 kg", "--duration", "70 min")
    assert result.exit_code == 1, result.stderr
    assert "too_fast" in [e["code"] for e in json.loads(result.stdout)["errors"]]


# --- continuous infusions -----------------------------------------------------------------------


def test_dopamine_5_mcg_per_kg_per_min_for_80_kg_from_400_mg_per_250_ml(
    runner: CliRunner, continuous: Path
) -> None:
    # 5 mcg/kg/min x 80 kg = 400 mcg/min = 24,000 mcg/h; per kg 5 x 60 = 300 mcg/kg/h.
    # 400 mg / 250 mL = 1.6 mg/mL = 1,600 mcg/mL; 24,000 / 1,600 = 15 mL/h.
    # VTBI: the bag, 250 mL; it lasts 250 / 15 h = 16.667 h = 1,000 min.
    data = sheet(runner, continuous, "dopamine", "80 kg")
    assert data["preparation"] == "neat"
    assert data["stock_label"] == "400 mg/250 mL"
    assert mg_per_ml(data["stock"], data["stock_unit"]) == number("1.6")
    assert (data["dose_rate_per_kg"], data["dose_rate_per_kg_unit"]) == (5, "mcg/kg/min")
    assert (data["dose_rate"], data["dose_rate_unit"]) == (400, "mcg/min")
    assert data["dose_rate_per_h"] == number("24000")
    assert data["dose_rate_per_kg_per_h"] == number("300")
    assert mg_per_ml(data["concentration"], data["concentration_unit"]) == number("1.6")
    assert data["rate_ml_per_h"] == number("15")
    assert data["total_volume_ml"] == number("250")
    assert data["bag_duration_min"] == number("1000")
    assert "dose" not in data
    assert "duration_min" not in data


def test_the_dopamine_titration_table(runner: CliRunner, continuous: Path) -> None:
    # Rate = dose rate x 80 kg x 60 min/h / 1,600 mcg/mL = dose rate x 3:
    # 2 -> 9,600 / 1,600 = 6 mL/h; 5 -> 15 mL/h; 10 -> 48,000 / 1,600 = 30 mL/h.
    data = sheet(runner, continuous, "dopamine", "80 kg")
    table = [(row["dose_rate"], row["rate_ml_per_h"]) for row in data["titration"]]
    assert table == [(2, 6), (5, 15), (10, 30)]


def test_a_titration_step_lists_every_step_between_the_hard_limits(
    runner: CliRunner, continuous: Path
) -> None:
    # 1 mcg/kg/min steps from the hard low 2 to the hard high 20: 2, 3, ..., 20 = 19 rows; at
    # 80 kg each is dose rate x 3 mL/h (see above): 2 -> 6, 3 -> 9, 20 -> 60 mL/h.
    data = sheet(runner, continuous, "dopamine-stepped", "80 kg")
    table = [(row["dose_rate"], row["rate_ml_per_h"]) for row in data["titration"]]
    assert len(table) == 19
    assert table[0] == (2, 6)
    assert table[1] == (3, 9)
    assert table[-1] == (20, 60)


def test_the_starting_dose_rate_can_be_overridden(runner: CliRunner, continuous: Path) -> None:
    # 7.5 mcg/kg/min x 80 kg = 600 mcg/min = 36,000 mcg/h; / 1,600 = 22.5 mL/h;
    # 250 mL / 22.5 mL/h = 11.111 h = 666.67 min -> 666.7 min (0.1 min step).
    data = sheet(runner, continuous, "dopamine", "80 kg", "--dose-rate", "7.5 mcg/kg/min")
    assert data["dose_rate_per_kg"] == number("7.5")
    assert data["dose_rate"] == number("600")
    assert data["rate_ml_per_h"] == number("22.5")
    assert data["bag_duration_min"] == number("666.7")


def test_a_dose_rate_override_outside_the_hard_limits_is_refused(
    runner: CliRunner, continuous: Path
) -> None:
    # 25 mcg/kg/min is above the hard 20 mcg/kg/min.
    result = refused(runner, continuous, "dopamine", "80 kg", "--dose-rate", "25 mcg/kg/min")
    assert result.exit_code == 1
    assert "hard_limit" in [e["code"] for e in json.loads(result.stdout)["errors"]]


def test_a_per_ml_strength_used_neat_runs_the_given_vtbi(
    runner: CliRunner, continuous: Path
) -> None:
    # 1,600 mcg/mL: 24,000 mcg/h / 1,600 = 15 mL/h; VTBI 50 mL lasts 50 / 15 h = 200 min.
    data = sheet(runner, continuous, "dopamine-syringe", "80 kg")
    assert data["rate_ml_per_h"] == number("15")
    assert data["total_volume_ml"] == number("50")
    assert data["bag_duration_min"] == number("200")


def test_a_bag_made_by_adding_400_mg_to_250_ml(runner: CliRunner, continuous: Path) -> None:
    # 400 mg / 40 mg/mL = 10 mL added to 250 mL: 260 mL; 400 mg / 260 mL = 1.53846 mg/mL.
    # Rate 24,000 mcg/h / (400,000 mcg / 260 mL) = 24,000 x 260 / 400,000 = 15.6 mL/h;
    # the bag lasts 260 / 15.6 h = 16.667 h = 1,000 min.
    data = sheet(runner, continuous, "dopamine-add", "80 kg")
    assert data["drug_volume_ml"] == number("10")
    assert data["diluent_volume_ml"] == number("250")
    assert data["total_volume_ml"] == number("260")
    assert data["rate_ml_per_h"] == number("15.6")
    assert data["bag_duration_min"] == number("1000")


def test_a_bag_made_up_to_250_ml(runner: CliRunner, continuous: Path) -> None:
    # 10 mL of 40 mg/mL made up to 250 mL (240 mL of diluent): 400 / 250 = 1.6 mg/mL; 15 mL/h;
    # 250 / 15 h = 1,000 min.
    data = sheet(runner, continuous, "dopamine-made-up", "80 kg")
    assert data["drug_volume_ml"] == number("10")
    assert data["diluent_volume_ml"] == number("240")
    assert data["total_volume_ml"] == number("250")
    assert mg_per_ml(data["concentration"], data["concentration_unit"]) == number("1.6")
    assert data["rate_ml_per_h"] == number("15")
    assert data["bag_duration_min"] == number("1000")


def test_heparin_18_units_per_kg_per_h_from_100_units_per_ml(
    runner: CliRunner, continuous: Path
) -> None:
    # 18 units/kg/h x 80 kg = 1,440 units/h; 1,440 / 100 units/mL = 14.4 mL/h;
    # 250 mL / 14.4 mL/h = 17.3611 h = 1,041.67 min -> 1,041.7 min.
    data = sheet(runner, continuous, "heparin", "80 kg")
    assert (data["dose_rate_per_kg"], data["dose_rate_per_kg_unit"]) == (18, "units/kg/h")
    assert (data["dose_rate"], data["dose_rate_unit"]) == (1440, "units/h")
    assert data["dose_rate_per_h"] == number("1440")
    assert data["dose_rate_per_kg_per_h"] == number("18")
    assert data["rate_ml_per_h"] == number("14.4")
    assert data["bag_duration_min"] == number("1041.7")


def test_a_dose_rate_not_per_kg(runner: CliRunner, continuous: Path) -> None:
    # 2 g/h = 2,000 mg/h; 20 g / 500 mL = 40 mg/mL; 2,000 / 40 = 50 mL/h; 500 / 50 = 10 h = 600 min.
    data = sheet(runner, continuous, "magnesium", "70 kg")
    to_mg_per_h = {"g/h": Decimal(1000), "mg/h": Decimal(1), "mg/min": Decimal(60)}
    assert data["dose_rate"] * to_mg_per_h[data["dose_rate_unit"]] == number("2000")
    assert "dose_rate_per_kg" not in data
    assert data["rate_ml_per_h"] == number("50")
    assert data["total_volume_ml"] == number("500")
    assert data["bag_duration_min"] == number("600")


@pytest.mark.parametrize("entry", ["25 mcg/kg/min", "1 mcg/kg/min"])
def test_a_titration_entry_outside_the_hard_limits_is_refused(
    runner: CliRunner, tmp_path: Path, entry: str
) -> None:
    assert check(runner, write(tmp_path, DOPAMINE, name="good.toml")).exit_code == 0
    bad = DOPAMINE.replace('"10 mcg/kg/min"]', f'"10 mcg/kg/min", "{entry}"]')
    assert bad != DOPAMINE
    result = check(runner, write(tmp_path, bad))
    assert result.exit_code == 3
    assert "protocols.dopamine.titration" in result.stderr
    assert "unknown key" not in result.stderr


def test_a_per_ml_strength_used_neat_without_a_vtbi_is_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    assert check(runner, write(tmp_path, DOPAMINE_SYRINGE, name="good.toml")).exit_code == 0
    bad = DOPAMINE_SYRINGE.replace('vtbi = "50 mL"\n', "")
    result = check(runner, write(tmp_path, bad))
    assert result.exit_code == 3
    assert "vtbi" in result.stderr
    assert "unknown key" not in result.stderr


def test_a_continuous_protocol_without_a_hard_dose_rate_limit_is_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    assert check(runner, write(tmp_path, DOPAMINE, name="good.toml")).exit_code == 0
    bad = DOPAMINE.replace('dose_rate_per_kg = { hard = ["2 mcg/kg/min", "20 mcg/kg/min"] }\n', "")
    assert bad != DOPAMINE
    result = check(runner, write(tmp_path, bad))
    assert result.exit_code == 3
    assert "protocols.dopamine.limits.dose_rate_per_kg" in result.stderr


# --- gravity infusions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factor", "drops"),
    [
        # 1,000 mL over 8 h = 125 mL/h; drops/min = 125 x factor / 60, half-up to whole drops:
        ("10", "21"),  # 125 x 10 / 60 = 20.83 -> 21
        ("15", "31"),  # 125 x 15 / 60 = 31.25 -> 31
        ("20", "42"),  # 125 x 20 / 60 = 41.67 -> 42
        ("60", "125"),  # 125 x 60 / 60 = 125
    ],
)
def test_1000_ml_over_8_h_in_drops_per_minute(
    runner: CliRunner, library: Path, factor: str, drops: str
) -> None:
    data = sheet(runner, library, "gravity", "70 kg", "--drop-factor", f"{factor} gtt/mL")
    assert data["rate_ml_per_h"] == number("125")
    assert data["drop_factor"] == number(factor)
    assert data["drops_per_min"] == number(drops)


def test_drops_come_from_the_exact_rate_not_the_printed_one(
    runner: CliRunner, library: Path
) -> None:
    # 1,000 mL over 330 min = 181.818... mL/h, printed 182 mL/h (1 mL/h step).
    # Exact: 181.818 x 15 / 60 = 45.45 -> 45 gtt/min. From the printed 182: 45.5 -> 46 (wrong).
    data = sheet(
        runner, library, "gravity", "70 kg", "--duration", "330 min", "--drop-factor", "15 gtt/mL"
    )
    assert data["rate_ml_per_h"] == number("182")
    assert data["drops_per_min"] == number("45")


def test_the_protocols_drop_factor(runner: CliRunner, library: Path) -> None:
    # 20 gtt/mL from the protocol: 125 x 20 / 60 = 41.67 -> 42 gtt/min.
    data = sheet(runner, library, "gravity-20", "70 kg")
    assert data["drop_factor"] == number("20")
    assert data["drops_per_min"] == number("42")


def test_a_drop_factor_not_on_the_list_is_refused(runner: CliRunner, library: Path) -> None:
    # Accepted: 10, 15, 20, 60 gtt/mL. 15 works; 13 is refused as input (exit 2).
    assert sheet(runner, library, "gravity", "70 kg", "--drop-factor", "15 gtt/mL")
    result = refused(runner, library, "gravity", "70 kg", "--drop-factor", "13 gtt/mL")
    assert result.exit_code == 2
    assert "13" in result.stderr


def test_a_drop_factor_not_on_the_list_in_the_file_is_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    assert check(runner, write(tmp_path, GRAVITY_20, name="good.toml")).exit_code == 0
    bad = GRAVITY_20.replace('drop_factor = "20 gtt/mL"', 'drop_factor = "13 gtt/mL"')
    result = check(runner, write(tmp_path, bad))
    assert result.exit_code == 3
    assert "protocols.gravity-20.drop_factor" in result.stderr
    assert "unknown key" not in result.stderr


# --- the line flush -----------------------------------------------------------------------------


def test_a_20_ml_flush_at_the_vancomycin_rate(runner: CliRunner, library: Path) -> None:
    # 120 mL/h (vancomycin, 68 kg, above): 20 mL / 120 mL/h = 1/6 h = 10 min.
    data = sheet(runner, library, "vanc-flush", "68 kg")
    assert data["rate_ml_per_h"] == number("120")
    assert data["flush_volume_ml"] == number("20")
    assert data["flush_minutes"] == number("10")


def test_a_20_ml_flush_at_162_ml_per_h(runner: CliRunner, library: Path) -> None:
    # 20 mL / 162 mL/h x 60 = 7.407 min -> 7.4 min (0.1 min step, half-up).
    data = sheet(runner, library, "capped-flush", "70 kg")
    assert data["rate_ml_per_h"] == number("162")
    assert data["flush_volume_ml"] == number("20")
    assert data["flush_minutes"] == number("7.4")


def test_no_flush_keys_without_a_flush_volume(runner: CliRunner, library: Path) -> None:
    data = sheet(runner, library, "vanc", "68 kg")
    assert "flush_volume_ml" not in data
    # And the vancomycin sheet with a flush differs from this one only by the flush.
    flushed = sheet(runner, library, "vanc-flush", "68 kg")
    assert flushed["rate_ml_per_h"] == data["rate_ml_per_h"]


# --- examples/protocols-more.toml ---------------------------------------------------------------


def test_the_example_protocols_file_passes_protocols_check(runner: CliRunner) -> None:
    result = check(runner, EXAMPLES)
    assert result.exit_code == 0, result.stderr


def test_example_acetylcysteine_first_bag_for_20_kg(runner: CliRunner) -> None:
    # 150 mg/kg x 20 kg = 3,000 mg = 15 mL of 20%; 3 mL/kg x 20 = 60 mL; 75 mL over 60 min.
    data = sheet(runner, EXAMPLES, "acetylcysteine-bag1-5-20kg", "20 kg")
    assert data["stock_label"] == "20%"
    assert data["drug_volume_ml"] == number("15")
    assert data["diluent_volume_ml"] == number("60")
    assert data["rate_ml_per_h"] == number("75")


def test_example_dopamine_premix_for_80_kg(runner: CliRunner) -> None:
    # 5 x 80 x 60 / 1,600 = 15 mL/h; 250 mL lasts 1,000 min; the label's 2 mcg/kg/min for 60 kg:
    # 2 x 60 x 60 / 1,600 = 4.5 mL/h.
    data = sheet(runner, EXAMPLES, "dopamine-premix-1600", "80 kg", "--dose-rate", "5 mcg/kg/min")
    assert data["rate_ml_per_h"] == number("15")
    assert data["bag_duration_min"] == number("1000")
    label = sheet(runner, EXAMPLES, "dopamine-premix-1600", "60 kg", "--dose-rate", "2 mcg/kg/min")
    assert label["rate_ml_per_h"] == number("4.5")


def test_example_vancomycin_for_68_kg(runner: CliRunner) -> None:
    # 1,020 mg; 20.4 mL of 50 mg/mL; 204 mL at 5 mg/mL; 102 min; 120 mL/h; flush 20 mL = 10 min.
    # Diluent 204 - 20.4 = 183.6 mL, on this protocol's 1 mL volume step: 184 mL.
    data = sheet(runner, EXAMPLES, "vancomycin-5mg-per-ml", "68 kg")
    assert data["drug_volume_ml"] == number("20.4")
    assert data["total_volume_ml"] == number("204")
    assert data["diluent_volume_ml"] == number("184")
    assert mg_per_ml(data["final_concentration"], data["concentration_unit"]) == number("5")
    assert data["duration_min"] == number("102")
    assert data["rate_ml_per_h"] == number("120")
    assert data["flush_minutes"] == number("10")
    assert "DURATION_LENGTHENED" in codes(data)


def test_example_ondansetron_push_for_20_kg(runner: CliRunner) -> None:
    # 0.1 mg/kg x 20 kg = 2 mg = 1 mL of 2 mg/mL over 5 min = 12 mL/h.
    data = sheet(runner, EXAMPLES, "ondansetron-ponv-child", "20 kg")
    assert data["total_volume_ml"] == number("1")
    assert data["rate_ml_per_h"] == number("12")


def test_example_metronidazole_by_gravity(runner: CliRunner) -> None:
    # 500 mg/100 mL bag over 60 min = 100 mL/h; 100 x 20 / 60 = 33.3 -> 33 gtt/min.
    data = sheet(runner, EXAMPLES, "metronidazole-premix-gravity", "70 kg")
    assert data["total_volume_ml"] == number("100")
    assert data["rate_ml_per_h"] == number("100")
    assert data["drops_per_min"] == number("33")


@pytest.mark.parametrize(
    ("pid", "weight"),
    [
        ("acetylcysteine-bag1-5-20kg", "20 kg"),
        ("dopamine-premix-1600", "80 kg"),
        ("vancomycin-5mg-per-ml", "68 kg"),
        ("ondansetron-ponv-child", "20 kg"),
        ("metronidazole-premix-gravity", "70 kg"),
    ],
)
def test_every_example_protocol_prints_a_text_sheet(
    runner: CliRunner, pid: str, weight: str
) -> None:
    args = ["--protocols", str(EXAMPLES), "sheet", "--protocol", pid, "--weight", weight]
    result = runner.invoke(cli, [*args, "--date", DATE])
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert pid in result.stdout


# --- what the volume drawn up holds (outside worked-example check) -----------------------------


def test_the_draw_up_step_names_what_the_printed_volume_holds(runner: CliRunner) -> None:
    """vancomycin-5mg-per-ml, 45 kg: 15 mg/kg x 45 kg = 675 mg, printed "given as 680 mg" (a
    10 mg dose step); 675 mg / 50 mg/mL = 13.5 mL, and 13.5 mL x 50 mg/mL = 675 mg. The step said
    "(680 mg)", which 13.5 mL of 50 mg/mL does not hold."""
    result = runner.invoke(
        cli, ["--protocols", str(EXAMPLES), "sheet", "--weight", "45 kg", "--date", "2026-11-25"]
    )
    assert result.exit_code == 0, result.output
    assert "1. Draw up 13.5 mL of vancomycin 50 mg/mL (675 mg)." in result.stdout
    assert "given as 680 mg" in result.stdout


def test_the_draw_up_step_at_50_mg_per_ml_names_what_0_72_ml_holds(runner: CliRunner) -> None:
    """ketamine-iv, 72.3 kg, 50 mg/mL: 36.15 mg printed 36.2 mg; 0.723 mL printed 0.72 mL, which
    holds 0.72 x 50 = 36 mg."""
    result = runner.invoke(
        cli, ["sheet", "--weight", "72.3 kg", "--stock", "50 mg/mL", "--date", "2026-11-25"]
    )
    assert result.exit_code == 0, result.output
    assert "1. Draw up 0.72 mL of ketamine 50 mg/mL (36 mg)." in result.stdout


def test_a_premixed_bag_given_whole_is_hung_not_drawn_up(runner: CliRunner) -> None:
    """metronidazole-premix-gravity: 500 mg is the whole 500 mg/100 mL bag (100 mL x 5 mg/mL =
    500 mg). The sheet said "Draw up 100 mL" of a bag and DRAW UP in the printed box."""
    args = ["--protocols", str(EXAMPLES), "sheet", "--protocol", "metronidazole-premix-gravity",
            "--weight", "72 kg", "--date", "2026-11-25"]  # fmt: skip
    text = runner.invoke(cli, args).stdout
    assert (
        "1. Use the metronidazole 500 mg/100 mL (5 mg/mL) container as supplied (500 mg)." in text
    )
    assert "Draw up" not in text
    assert "┃ Hang        100 mL of metronidazole 500 mg/100 mL (5 mg/mL)" in text
    page = runner.invoke(cli, [*args, "--format", "html"]).stdout
    assert "HANG" in page
    assert "DRAW UP" not in page


def test_a_neat_dose_of_part_of_a_vial_is_still_drawn_up(runner: CliRunner) -> None:
    """ondansetron-ponv-child, 17 kg: 0.1 mg/kg x 17 kg = 1.7 mg, 1.7 / 2 mg/mL = 0.85 mL."""
    args = ["--protocols", str(EXAMPLES), "sheet", "--protocol", "ondansetron-ponv-child",
            "--weight", "17 kg", "--date", "2026-11-25"]  # fmt: skip
    assert "1. Draw up 0.85 mL of ondansetron 2 mg/mL (1.7 mg)." in runner.invoke(cli, args).stdout


def test_a_whole_vial_on_a_pump_is_drawn_up_not_hung(runner: CliRunner, tmp_path: Path) -> None:
    """ondansetron-ponv-child from a 4 mg/2 mL vial, 40 kg: 0.1 mg/kg x 40 kg = 4 mg = the whole
    2 mL vial, on a pump: drawn up (only a gravity bag is hung)."""
    vial = tmp_path / "protocols.toml"
    vial.write_text(EXAMPLES.read_text().replace('stock = ["2 mg/mL"]', 'stock = ["4 mg/2 mL"]'))
    args = ["--protocols", str(vial), "sheet", "--protocol", "ondansetron-ponv-child",
            "--weight", "40 kg", "--date", "2026-11-25"]  # fmt: skip
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "1. Draw up 2 mL of ondansetron 4 mg/2 mL (2 mg/mL) (4 mg)." in result.stdout
    assert "Hang" not in result.stdout
