"""Issue 10: which weight, fixed and capped doses, per m2, per day, and unit-based drugs.

Worked examples, each computed by hand in the comments (expected numbers are literal strings, never
computed by calling dosecalc), and the refusals the issue lists. The protocols are written here, as
TOML text, so tests/data/test_protocols.toml (and the golden outputs made from it) stay unchanged.
"""

from __future__ import annotations

import json
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SHIPPED_PROTOCOLS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dosecalc import protocols
from dosecalc.cli import cli
from dosecalc.errors import InputError, ProtocolFileError
from dosecalc.model import Order, Sheet, make_sheet
from dosecalc.quantities import Config, Interval, compiled
from dosecalc.render import content
from dosecalc.render.as_json import sheet_object
from dosecalc.verify import printed_lines

DATE = "2026-11-25"

# A protocol body with the parts every test protocol shares; each test adds its own dose, stock,
# rounding steps and limits.
COMMON = """
drug = "testdrug"
indication = "Engine test only: not a clinical protocol"
version = "test"
diluent = "0.9% sodium chloride"
preparation = "add"
checkpoint_every = "10 min"
advisory = "Test protocol."
monitoring = ["Observations every 10 min"]
"""

KETAMINE_STEPS = """
weight = "0.1 kg"
dose = "0.1 mg"
drug_volume = "0.01 mL"
volume = "0.1 mL"
rate = "0.1 mL/h"
concentration = "0.001 mg/mL"
dose_rate = "0.1 mg/h"
dose_rate_per_kg = "0.001 mg/kg/h"
"""

KETAMINE_LIMITS = """
weight = { hard = ["20 kg", "300 kg"] }
dose_per_kg = { hard = ["0.1 mg/kg", "1 mg/kg"] }
dose = { hard = ["2 mg", "200 mg"] }
duration = { hard = ["20 min", "120 min"] }
rate = { hard = ["1 mL/h", "999 mL/h"] }
height = { hard = ["152.4 cm", "230 cm"] }
"""


def protocol(
    pid: str,
    body: str,
    steps: str = KETAMINE_STEPS,
    limits: str = KETAMINE_LIMITS,
    extra: str = "",
) -> str:
    return (
        f'[protocols.{pid}]\nname = "{pid}"\n{COMMON}{body}\n'
        f"[protocols.{pid}.round]\n{steps}\n[protocols.{pid}.limits]\n{limits}\n{extra}\n"
    )


def ketamine(pid: str, dosing_weight: str, limits: str = KETAMINE_LIMITS) -> str:
    body = (
        'dose = "0.5 mg/kg"\nduration = "40 min"\nstock = ["10 mg/mL"]\ndiluent_volume = "100 mL"'
    )
    extra = f"[protocols.{pid}.dosing_weight]\n{dosing_weight}\n"
    return protocol(pid, body, limits=limits, extra=extra)


IBW_AT_30 = ketamine("ibw30", 'basis = "ideal"\nuse_when_bmi_at_least = "30 kg/m2"')
IDEAL = ketamine("ideal", 'basis = "ideal"')
ADJUSTED = ketamine("adjusted", 'basis = "adjusted"')
ADJUSTED_HALF = ketamine("adjusted-half", 'basis = "adjusted"\nadjusted_factor = "0.5"')
# No height: a cap on the actual weight does not use it (a height limit would be refused).
WEIGHT_CAP = ketamine(
    "cap100",
    'max = "100 kg"',
    KETAMINE_LIMITS.replace('height = { hard = ["152.4 cm", "230 cm"] }\n', ""),
)

ACETYLCYSTEINE = protocol(
    "nac-bag1",
    'dose = "150 mg/kg"\ndose_max = "15 g"\nduration = "60 min"\nstock = ["200 mg/mL"]\n'
    'diluent_volume = "200 mL"',
    steps='weight = "0.1 kg"\ndose = "1 mg"\ndrug_volume = "0.1 mL"\nvolume = "1 mL"\n'
    'rate = "1 mL/h"\nconcentration = "0.1 mg/mL"\ndose_rate = "1 mg/h"\n'
    'dose_rate_per_kg = "0.1 mg/kg/h"',
    limits='weight = { hard = ["20 kg", "300 kg"] }\n'
    'dose_per_kg = { hard = ["100 mg/kg", "150 mg/kg"] }\n'
    'dose = { hard = ["2000 mg", "15000 mg"] }\nduration = { hard = ["30 min", "120 min"] }\n'
    'rate = { hard = ["1 mL/h", "999 mL/h"] }',
)

PER_M2_STEPS = (
    'weight = "0.1 kg"\ndose = "0.1 mg"\ndrug_volume = "0.01 mL"\nvolume = "0.1 mL"\n'
    'rate = "0.1 mL/h"\nconcentration = "0.001 mg/mL"\ndose_rate = "0.1 mg/h"\n'
    'dose_rate_per_kg = "0.001 mg/kg/h"'
)
PER_M2_LIMITS = (
    'weight = { hard = ["30 kg", "200 kg"] }\nheight = { hard = ["120 cm", "220 cm"] }\n'
    'dose = { hard = ["50 mg", "400 mg"] }\nduration = { hard = ["30 min", "120 min"] }\n'
    'rate = { hard = ["1 mL/h", "999 mL/h"] }'
)


def per_m2(pid: str, formula: str) -> str:
    return protocol(
        pid,
        f'dose = "100 mg/m2"\nbsa_formula = "{formula}"\nduration = "60 min"\n'
        'stock = ["20 mg/mL"]\ndiluent_volume = "250 mL"',
        steps=PER_M2_STEPS,
        limits=PER_M2_LIMITS,
    )


VANCOMYCIN = protocol(
    "vanc",
    'dose = "45 mg/kg/day"\ndivided_into = 3\ndaily_dose_max = "4 g/day"\n'
    'duration = "120 min"\nstock = ["50 mg/mL"]\ndiluent_volume = "250 mL"',
    steps='weight = "0.1 kg"\ndose = "0.1 mg"\ndrug_volume = "0.1 mL"\nvolume = "1 mL"\n'
    'rate = "1 mL/h"\nconcentration = "0.01 mg/mL"\ndose_rate = "1 mg/h"\n'
    'dose_rate_per_kg = "0.01 mg/kg/h"',
    limits='weight = { hard = ["30 kg", "200 kg"] }\n'
    'dose_per_kg = { hard = ["30 mg/kg/day", "60 mg/kg/day"] }\n'
    'dose = { hard = ["300 mg", "2000 mg"] }\nduration = { hard = ["60 min", "180 min"] }\n'
    'rate = { hard = ["1 mL/h", "999 mL/h"] }',
)

HEPARIN = protocol(
    "heparin-load",
    'dose = "80 units/kg"\ndose_max = "10000 units"\nduration = "10 min"\n'
    'stock = ["1000 units/mL"]\ndiluent_volume = "50 mL"',
    steps='weight = "0.1 kg"\ndose = "10 units"\ndrug_volume = "0.1 mL"\nvolume = "0.1 mL"\n'
    'rate = "0.1 mL/h"\nconcentration = "0.1 units/mL"\ndose_rate = "1 units/h"\n'
    'dose_rate_per_kg = "0.1 units/kg/h"',
    limits='weight = { hard = ["30 kg", "250 kg"] }\n'
    'dose_per_kg = { hard = ["60 units/kg", "80 units/kg"] }\n'
    'dose = { hard = ["1000 units", "10000 units"] }\n'
    'duration = { hard = ["5 min", "30 min"] }\nrate = { hard = ["1 mL/h", "999 mL/h"] }',
)

ALL = (
    IBW_AT_30,
    IDEAL,
    ADJUSTED,
    ADJUSTED_HALF,
    WEIGHT_CAP,
    ACETYLCYSTEINE,
    per_m2("mosteller", "mosteller"),
    per_m2("dubois", "dubois"),
    VANCOMYCIN,
    HEPARIN,
)


def write(tmp_path: Path, *bodies: str, default: str | None = None) -> Path:
    first = bodies[0].split("]")[0].removeprefix("[protocols.")
    path = tmp_path / "protocols.toml"
    path.write_text(f'format = 1\ndefault = "{default or first}"\n\n' + "\n".join(bodies))
    return path


@pytest.fixture
def library(tmp_path: Path) -> protocols.Library:
    return protocols.load(write(tmp_path, *ALL))


def sheet_for(library: protocols.Library, pid: str, weight: str, **kwargs: str) -> Sheet:
    return make_sheet(library, Order(weight=weight, date=DATE, protocol_id=pid, **kwargs))


def texts(sheet: Sheet, *names: str) -> dict[str, str]:
    return {name: sheet.figures.of(name).text for name in names}


# --- which weight ------------------------------------------------------------------------------


def test_a_70_inch_man_of_110_kg_has_ibw_73_kg_and_adjbw_87_8_kg(
    library: protocols.Library,
) -> None:
    # Devine: 50 kg + 2.3 kg/in x (70 in - 60 in) = 50 + 23 = 73 kg.
    # Adjusted: 73 + 0.4 x (110 - 73) = 73 + 0.4 x 37 = 73 + 14.8 = 87.8 kg.
    # Dose on the adjusted weight: 0.5 mg/kg x 87.8 kg = 43.9 mg.
    sheet = sheet_for(library, "adjusted", "110 kg", height="70 in", sex="male")
    assert texts(sheet, "height_cm", "ideal_weight_kg", "adjusted_weight_kg") == {
        "height_cm": "177.8 cm",  # 70 x 2.54
        "ideal_weight_kg": "73 kg",
        "adjusted_weight_kg": "87.8 kg",
    }
    assert sheet.figures.dosing_weight_kg.text == "87.8 kg"
    assert sheet.figures.dose.text == "43.9 mg"
    assert sheet.result.values["ideal_weight_kg"] == Decimal(73)
    assert sheet.result.values["adjusted_weight_kg"] == Decimal("87.8")
    # The ideal basis for the same man: 0.5 x 73 = 36.5 mg.
    ideal = sheet_for(library, "ideal", "110 kg", height="70 in", sex="male")
    assert ideal.figures.dose.text == "36.5 mg"


def test_the_adjusted_factor_comes_from_the_protocol(library: protocols.Library) -> None:
    # 73 + 0.5 x (110 - 73) = 73 + 18.5 = 91.5 kg; 0.5 mg/kg x 91.5 kg = 45.75 -> 45.8 mg.
    sheet = sheet_for(library, "adjusted-half", "110 kg", height="70 in", sex="male")
    assert texts(sheet, "adjusted_weight_kg", "dose") == {
        "adjusted_weight_kg": "91.5 kg",
        "dose": "45.8 mg",
    }


def test_a_woman_of_160_cm(library: protocols.Library) -> None:
    # 160 cm / 2.54 cm/in = 62.99212598... in; 45.5 kg + 2.3 kg/in x 2.99212598... in
    # = 45.5 + 6.88188976... = 52.38188976... kg -> 52.4 kg (step 0.1 kg). She weighs 90 kg, so
    # the ideal weight is used, exactly (not the printed 52.4): 0.5 x 52.38188976 = 26.19094488 mg
    # -> 26.2 mg.
    sheet = sheet_for(library, "ideal", "90 kg", height="160 cm", sex="female")
    assert sheet.figures.ideal_weight_kg.text == "52.4 kg"
    assert str(sheet.result.values["ideal_weight_kg"])[:12] == "52.381889763"
    assert sheet.figures.dose.text == "26.2 mg"
    assert sheet.figures.dose.exact_number == "26.191"
    line = {x.label: x.text for x in content.calculation(sheet)}["Ideal weight"]
    assert (
        line
        == "45.5 kg + 2.3 kg/in x (160 cm / 2.54 cm/in - 60 in) = 52.382 kg, given as 52.4 kg (used)"
    )


def test_an_ideal_weight_above_the_actual_uses_the_actual_and_says_so(
    library: protocols.Library,
) -> None:
    # A woman of 170 cm: 45.5 + 2.3 x (170 / 2.54 - 60) = 45.5 + 2.3 x 6.92913... = 45.5 +
    # 15.93700787... = 61.437 kg -> 61.4 kg, above her 50 kg: the actual 50 kg is used;
    # 0.5 x 50 = 25 mg.
    sheet = sheet_for(library, "ideal", "50 kg", height="170 cm", sex="female")
    assert sheet.figures.ideal_weight_kg.text == "61.4 kg"
    assert sheet.figures.dosing_weight_kg.text == "50 kg"
    assert sheet.figures.dose.text == "25 mg"
    lines = {x.label: x.text for x in content.patient(sheet)}
    assert lines["Dosing weight"] == (
        "50 kg (ideal body weight 61.4 kg is above the actual weight 50 kg: actual weight)"
    )
    assert sheet_object(sheet)["dosing_weight_basis"] == "actual"


def test_bmi_exactly_at_the_trigger_uses_the_ideal_weight(library: protocols.Library) -> None:
    # 97.2 kg / (1.8 m)^2 = 97.2 / 3.24 = 30 kg/m2 exactly: "at or above 30" applies.
    # Devine, a man of 180 cm: 50 + 2.3 x (180 / 2.54 - 60) = 50 + 2.3 x 10.866141... = 50 +
    # 24.992125... = 74.992 kg -> 75 kg; dose 0.5 x 74.992125 = 37.496 mg -> 37.5 mg.
    sheet = sheet_for(library, "ibw30", "97.2 kg", height="180 cm", sex="male")
    assert sheet.result.values["bmi"] == Decimal(30)
    assert sheet.result.basis == "ideal"
    assert texts(sheet, "bmi", "ideal_weight_kg", "dosing_weight_kg", "dose") == {
        "bmi": "30 kg/m2",
        "ideal_weight_kg": "75 kg",
        "dosing_weight_kg": "75 kg",
        "dose": "37.5 mg",
    }
    lines = {x.label: x.text for x in content.patient(sheet)}
    assert lines["Dosing weight"] == "75 kg (BMI 30 kg/m2 >= 30 kg/m2: ideal body weight)"
    # 97.1 kg: 97.1 / 3.24 = 29.969... < 30: the actual weight; 0.5 x 97.1 = 48.55 -> 48.6 mg.
    below = sheet_for(library, "ibw30", "97.1 kg", height="180 cm", sex="male")
    assert below.result.basis == "actual"
    assert below.figures.dose.text == "48.6 mg"


def test_a_bmi_that_prints_as_the_trigger_shows_its_exact_value(
    library: protocols.Library,
) -> None:
    # 97.1 / 3.24 = 29.96913... prints as 30 kg/m2 (step 0.1): the reason shows 29.969 kg/m2 (two
    # more decimals than the step), so it never reads "BMI 30 < 30".
    below = sheet_for(library, "ibw30", "97.1 kg", height="180 cm", sex="male")
    assert {x.label: x.text for x in content.patient(below)}["Dosing weight"] == (
        "97.1 kg (BMI 29.969 kg/m2 < 30 kg/m2: actual weight)"
    )


def test_the_dosing_weight_cap(library: protocols.Library) -> None:
    # Up to 100 kg: 120 kg is dosed on 100 kg (0.5 x 100 = 50 mg); 90 kg on 90 kg (45 mg).
    capped = sheet_for(library, "cap100", "120 kg")
    assert texts(capped, "dosing_weight_kg", "dose") == {
        "dosing_weight_kg": "100 kg",
        "dose": "50 mg",
    }
    assert sheet_object(capped)["dosing_weight_basis"] == "max"
    assert "capped at the protocol's maximum 100 kg" in content.patient(capped)[-1].text
    free = sheet_for(library, "cap100", "90 kg")
    assert free.figures.dose.text == "45 mg"
    assert sheet_object(free)["dosing_weight_basis"] == "actual"


def test_the_shipped_consensus_variant_follows_bmi_30() -> None:
    shipped = protocols.load(SHIPPED_PROTOCOLS)
    assert shipped.protocols["ketamine-iv"].basis == "actual"
    ibw = shipped.protocols["ketamine-iv-ibw"]
    assert (ibw.basis, ibw.bmi_trigger and ibw.bmi_trigger.text) == ("ideal", "30 kg/m2")
    # 110 kg, 70 in: BMI 110 / 1.778^2 = 110 / 3.161284 = 34.796 -> 34.8 >= 30: IBW 73 kg;
    # 0.5 x 73 = 36.5 mg; 36.5 / 10 = 3.65 mL.
    sheet = make_sheet(
        shipped,
        Order(
            weight="110 kg", date=DATE, protocol_id="ketamine-iv-ibw", height="70 in", sex="male"
        ),
    )
    assert texts(sheet, "bmi", "dosing_weight_kg", "dose", "drug_volume") == {
        "bmi": "34.8 kg/m2",
        "dosing_weight_kg": "73 kg",
        "dose": "36.5 mg",
        "drug_volume": "3.65 mL",
    }


# --- caps, per m2, per day, units ----------------------------------------------------------------


def test_acetylcysteine_cap_reached_and_not_reached(library: protocols.Library) -> None:
    # 150 mg/kg x 110 kg = 16,500 mg, above the 15 g cap: 15,000 mg; 15,000 / 200 mg/mL = 75 mL;
    # 200 + 75 = 275 mL over 60 min = 275 mL/h.
    capped = sheet_for(library, "nac-bag1", "110 kg")
    assert texts(capped, "dose_uncapped", "dose", "drug_volume", "total_volume", "rate") == {
        "dose_uncapped": "16,500 mg",
        "dose": "15,000 mg",
        "drug_volume": "75 mL",
        "total_volume": "275 mL",
        "rate": "275 mL/h",
    }
    data = sheet_object(capped)
    assert data["dose_capped"] is True
    assert data["dose_uncapped"].json == "16500"
    line = {x.label: x.text for x in content.calculation(capped)}["Dose"]
    assert line == "lesser of 16,500 mg and 15,000 mg = 15,000 mg (capped)"
    # 150 x 90 = 13,500 mg, under the cap; 13,500 / 200 = 67.5 mL.
    free = sheet_for(library, "nac-bag1", "90 kg")
    assert texts(free, "dose", "drug_volume") == {"dose": "13,500 mg", "drug_volume": "67.5 mL"}
    assert sheet_object(free)["dose_capped"] is False
    # The reverse check of a capped dose ends at the dose (a dose per kg would not match).
    assert capped.reverse.dose_per_kg is None
    assert free.reverse.dose_per_kg is not None


def test_mosteller_from_the_paper(library: protocols.Library) -> None:
    # Mosteller (1987): BSA = sqrt(height cm x weight kg / 3600) = sqrt(170 x 70 / 3600)
    # = sqrt(3.30555...) = 1.81811868... m2 -> 1.82 m2 (step 0.01). The dose uses the exact BSA:
    # 100 mg/m2 x 1.81811868 = 181.811868 mg -> 181.8 mg (not 100 x 1.82 = 182 mg).
    sheet = sheet_for(library, "mosteller", "70 kg", height="170 cm")
    assert texts(sheet, "bsa_m2", "dose") == {"bsa_m2": "1.82 m2", "dose": "181.8 mg"}
    assert str(sheet.result.values["bsa_m2"])[:10] == "1.81811868"
    line = {x.label: x.text for x in content.calculation(sheet)}["BSA"]
    assert line == "sqrt(170 cm x 70 kg / 3,600) = 1.8181 m2, given as 1.82 m2"
    assert sheet_object(sheet)["bsa_m2"].json == "1.82"


def test_dubois_from_the_paper(library: protocols.Library) -> None:
    # DuBois and DuBois (1916): BSA = 0.007184 x W^0.425 x H^0.725.
    # 70^0.425 = e^(0.425 x ln 70) = e^(0.425 x 4.2484952) = e^1.8056105 = 6.0836843;
    # 170^0.725 = e^(0.725 x ln 170) = e^(0.725 x 5.1357984) = e^3.7234538 = 41.408...;
    # 0.007184 x 6.0836843 x 41.408 = 1.80971 m2 -> 1.81 m2. Dose 100 x 1.80971 = 180.971 mg
    # -> 181 mg.
    sheet = sheet_for(library, "dubois", "70 kg", height="170 cm")
    assert texts(sheet, "bsa_m2", "dose") == {"bsa_m2": "1.81 m2", "dose": "181 mg"}
    assert str(sheet.result.values["bsa_m2"])[:7] == "1.80970"


def test_a_per_day_dose_divided_by_3(library: protocols.Library) -> None:
    # 45 mg/kg/day x 70 kg = 3,150 mg/day, in 3 doses: 3,150 / 3 = 1,050 mg a dose;
    # 1,050 mg / 50 mg/mL = 21 mL; 250 + 21 = 271 mL over 120 min = 135.5 -> 136 mL/h (step 1).
    sheet = sheet_for(library, "vanc", "70 kg")
    assert texts(sheet, "dose", "daily_dose", "drug_volume", "total_volume", "rate") == {
        "dose": "1,050 mg",
        "daily_dose": "3,150 mg/day",
        "drug_volume": "21 mL",
        "total_volume": "271 mL",
        "rate": "136 mL/h",
    }
    data = sheet_object(sheet)
    assert (data["divided_into"].json, data["daily_dose"].json, data["dose_unit"]) == (
        "3",
        "3150",
        "mg",
    )
    assert data["dose_capped"] is False
    lines = {x.label: x.text for x in content.calculation(sheet)}
    assert lines["Uncapped dose"] == "45 mg/kg/day x 70 kg / 3 doses/day = 1,050 mg"
    assert lines["Daily dose"] == "1,050 mg x 3 doses/day = 3,150 mg/day"
    assert content.prescription(sheet).startswith("45 mg/kg/day in 3 doses a day over 120 min")


def test_a_daily_cap_divides_the_cap(library: protocols.Library) -> None:
    # 45 x 100 kg = 4,500 mg/day, above the 4 g/day cap: 4,000 / 3 = 1,333.33... -> 1,333.3 mg a
    # dose (uncapped 1,500 mg); the day's total is then 4,000 mg/day.
    sheet = sheet_for(library, "vanc", "100 kg")
    assert texts(sheet, "dose_uncapped", "dose", "daily_dose") == {
        "dose_uncapped": "1,500 mg",
        "dose": "1,333.3 mg",
        "daily_dose": "4,000 mg/day",
    }
    assert sheet.result.capped


def test_heparin_80_units_per_kg_from_a_1000_units_per_ml_vial(
    library: protocols.Library,
) -> None:
    # 80 units/kg x 70 kg = 5,600 units; 5,600 units / 1,000 units/mL = 5.6 mL; 50 + 5.6 =
    # 55.6 mL; 5,600 / 55.6 = 100.719... -> 100.7 units/mL; 55.6 mL / 10 min x 60 = 333.6 mL/h.
    sheet = sheet_for(library, "heparin-load", "70 kg")
    assert texts(sheet, "dose", "drug_volume", "total_volume", "concentration", "rate") == {
        "dose": "5,600 units",
        "drug_volume": "5.6 mL",
        "total_volume": "55.6 mL",
        "concentration": "100.7 units/mL",
        "rate": "333.6 mL/h",
    }
    assert sheet_object(sheet)["dose_unit"] == "units"
    # 80 x 130 kg = 10,400 units: capped at 10,000 units.
    capped = sheet_for(library, "heparin-load", "130 kg")
    assert capped.figures.dose.text == "10,000 units"


def test_every_new_figure_is_verified_and_every_line_is_true(library: protocols.Library) -> None:
    cases = [
        ("adjusted", "110 kg", {"height": "70 in", "sex": "male"}),
        ("ibw30", "97.2 kg", {"height": "180 cm", "sex": "male"}),
        ("mosteller", "70 kg", {"height": "170 cm"}),
        ("dubois", "70 kg", {"height": "1.7 m"}),
        ("vanc", "100 kg", {}),
        ("nac-bag1", "110 kg", {}),
        ("heparin-load", "70 kg", {}),
    ]
    for pid, weight, extra in cases:
        sheet = sheet_for(library, pid, weight, **extra)
        p = sheet.protocol
        figures = {**sheet.figures.operands, **sheet.figures.values}
        for line in printed_lines(p, sheet.result.basis):
            operands = {n: _interval(figures[n]) for n in line.formula.operands}
            target = figures[line.formula.target]
            assert line.interval(operands).overlaps(_interval(target)), (pid, line.formula.target)


def _interval(fig: object) -> Interval:
    from dosecalc.verify import operand_interval

    return operand_interval(fig)  # type: ignore[arg-type]


# --- refusals -----------------------------------------------------------------------------------


def test_a_per_m2_protocol_without_height_is_refused(library: protocols.Library) -> None:
    with pytest.raises(InputError) as raised:
        sheet_for(library, "mosteller", "70 kg")
    problem = raised.value.problems[0]
    assert (problem.field, problem.code) == ("height", "missing")
    assert "per m2 of body surface area" in problem.message


def test_sex_given_to_a_protocol_that_does_not_use_it_is_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(
        cli, ["sheet", "--weight", "72 kg", "--sex", "male", "--date", DATE, "--format", "json"]
    )
    assert result.exit_code == 2
    error = json.loads(result.stdout)
    assert error["errors"][0]["field"] == "sex"
    assert error["errors"][0]["code"] == "not_used"
    # Nor a height.
    result = runner.invoke(cli, ["sheet", "--weight", "72 kg", "--height", "170 cm"])
    assert result.exit_code == 2
    assert "does not use the patient's height" in result.stderr


def test_an_ideal_weight_protocol_needs_sex_and_height(runner: CliRunner) -> None:
    args = ["sheet", "--protocol", "ketamine-iv-ibw", "--weight", "110 kg", "--date", DATE]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert "needs the patient's height" in result.stderr
    assert "needs the patient's sex" in result.stderr
    result = runner.invoke(cli, [*args, "--height", "5 ft", "--sex", "male"])
    assert result.exit_code == 2
    result = runner.invoke(cli, [*args, "--height", "70 in", "--sex", "Male"])
    assert result.exit_code == 2
    assert "Accepted: female, male" in result.stderr
    ok = runner.invoke(cli, [*args, "--height", "70 in", "--sex", "male", "--format", "json"])
    assert ok.exit_code == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert (data["height_cm"], data["bmi"], data["ideal_weight_kg"], data["dose"]) == (
        177.8,
        34.8,
        73,
        36.5,
    )
    assert (data["sex"], data["dosing_weight_basis"]) == ("male", "ideal")


def _refused(tmp_path: Path, body: str) -> list[tuple[str, str]]:
    with pytest.raises(ProtocolFileError) as raised:
        protocols.load(write(tmp_path, body))
    return [(p.field, p.code) for p in raised.value.problems]


def test_mg_and_units_mixed_in_one_protocol_are_refused(tmp_path: Path) -> None:
    mixed = HEPARIN.replace('stock = ["1000 units/mL"]', 'stock = ["10 mg/mL"]')
    assert ("protocols.heparin-load.stock[0]", "wrong_dimension") in _refused(tmp_path, mixed)
    step = HEPARIN.replace('dose = "10 units"', 'dose = "1 mg"')
    assert ("protocols.heparin-load.round.dose", "wrong_dimension") in _refused(tmp_path, step)


def test_meq_is_never_converted_to_mmol(tmp_path: Path) -> None:
    potassium = (
        HEPARIN.replace('"80 units/kg"', '"1 mEq/kg"')
        .replace('"10000 units"', '"40 mEq"')
        .replace('["1000 units/mL"]', '["2 mmol/mL"]')
    )
    assert ("protocols.heparin-load.stock[0]", "wrong_dimension") in _refused(tmp_path, potassium)


def test_mmol_dose_from_a_mmol_stock_and_a_mmol_override_refused_on_a_meq_protocol(
    tmp_path: Path,
) -> None:
    meq = protocol(
        "kcl",
        'dose = "20 mEq"\nduration = "60 min"\nstock = ["2 mEq/mL"]\ndiluent_volume = "100 mL"',
        steps='weight = "0.1 kg"\ndose = "0.1 mEq"\ndrug_volume = "0.1 mL"\nvolume = "1 mL"\n'
        'rate = "1 mL/h"\nconcentration = "0.001 mEq/mL"\ndose_rate = "0.1 mEq/h"\n'
        'dose_rate_per_kg = "0.001 mEq/kg/h"',
        limits='weight = { hard = ["30 kg", "200 kg"] }\ndose = { hard = ["10 mEq", "40 mEq"] }\n'
        'duration = { hard = ["60 min", "120 min"] }\nrate = { hard = ["1 mL/h", "999 mL/h"] }',
    )
    library = protocols.load(write(tmp_path, meq))
    # 20 mEq / 2 mEq/mL = 10 mL; 100 + 10 = 110 mL over 60 min = 110 mL/h.
    sheet = sheet_for(library, "kcl", "70 kg")
    assert texts(sheet, "dose", "drug_volume", "rate") == {
        "dose": "20 mEq",
        "drug_volume": "10 mL",
        "rate": "110 mL/h",
    }
    with pytest.raises(InputError) as raised:
        sheet_for(library, "kcl", "70 kg", dose="20 mmol")
    assert raised.value.problems[0].code == "wrong_dimension"


def test_a_cap_in_the_wrong_dimension_is_refused(tmp_path: Path) -> None:
    volume = ACETYLCYSTEINE.replace('dose_max = "15 g"', 'dose_max = "15 mL"')
    assert ("protocols.nac-bag1.dose_max", "wrong_dimension") in _refused(tmp_path, volume)
    units = ACETYLCYSTEINE.replace('dose_max = "15 g"', 'dose_max = "15000 units"')
    assert ("protocols.nac-bag1.dose_max", "wrong_dimension") in _refused(tmp_path, units)
    weight = WEIGHT_CAP.replace('max = "100 kg"', 'max = "100 mg"')
    assert ("protocols.cap100.dosing_weight.max", "wrong_dimension") in _refused(tmp_path, weight)


def test_protocol_rules_for_the_new_keys(tmp_path: Path) -> None:
    no_split = VANCOMYCIN.replace("divided_into = 3\n", "")
    assert ("protocols.vanc.divided_into", "missing") in _refused(tmp_path, no_split)
    float_split = VANCOMYCIN.replace("divided_into = 3", "divided_into = 3.0")
    assert ("protocols.vanc.divided_into", "wrong_type") in _refused(tmp_path, float_split)
    float_factor = ADJUSTED_HALF.replace('"0.5"', "0.5")
    assert ("protocols.adjusted-half.dosing_weight.adjusted_factor", "bad_factor") in _refused(
        tmp_path, float_factor
    )
    short = IDEAL.replace('"152.4 cm", "230 cm"', '"140 cm", "230 cm"')
    assert ("protocols.ideal.limits.height.hard", "below_devine") in _refused(tmp_path, short)
    no_height = IDEAL.replace('height = { hard = ["152.4 cm", "230 cm"] }\n', "")
    assert ("protocols.ideal.limits.height", "missing") in _refused(tmp_path, no_height)
    low_cap = ACETYLCYSTEINE.replace('dose_max = "15 g"', 'dose_max = "1 g"')
    assert ("protocols.nac-bag1.dose_max", "cap_below_hard_limit") in _refused(tmp_path, low_cap)
    unused = ACETYLCYSTEINE.replace(
        "[protocols.nac-bag1.limits]",
        '[protocols.nac-bag1.limits]\nbsa = { hard = ["1 m2", "2 m2"] }',
    )
    assert ("protocols.nac-bag1.limits.bsa", "unused_limit") in _refused(tmp_path, unused)


def test_existing_protocols_keep_their_configuration(tmp_path: Path) -> None:
    shipped = protocols.load(SHIPPED_PROTOCOLS)
    p = shipped.protocols["ketamine-iv"]
    assert p.config() == Config(p.preparation, "mg")
    assert compiled(p.config()) is compiled(p.preparation, "mg")


# --- the rounding-step rule, the verifier and pint cover the new figures ---------------------------


def test_a_coarse_step_for_a_new_figure_is_refused_at_load(tmp_path: Path) -> None:
    # BMI inside the limits: 20 kg / (2.3 m)^2 = 3.78 kg/m2 at the smallest; half of a 1 kg/m2
    # step is 13% of that: refused. BSA: 30 kg, 120 cm: sqrt(120 x 30 / 3600) = 1 m2; a 0.5 m2
    # step moves it by up to 25%.
    bmi = IBW_AT_30.replace(
        'dose_rate_per_kg = "0.001 mg/kg/h"', 'dose_rate_per_kg = "0.001 mg/kg/h"\nbmi = "1 kg/m2"'
    )
    assert ("protocols.ibw30.round.bmi", "step_too_coarse") in _refused(tmp_path, bmi)
    bsa = per_m2("m", "mosteller").replace(
        'dose_rate_per_kg = "0.001 mg/kg/h"', 'dose_rate_per_kg = "0.001 mg/kg/h"\nbsa = "0.5 m2"'
    )
    assert ("protocols.m.round.bsa", "step_too_coarse") in _refused(tmp_path, bsa)
    unused = ACETYLCYSTEINE.replace('weight = "0.1 kg"', 'weight = "0.1 kg"\nbsa = "0.01 m2"', 1)
    assert ("protocols.nac-bag1.round.bsa", "unused_key") in _refused(tmp_path, unused)


def test_a_false_printed_line_for_a_new_figure_is_refused(library: protocols.Library) -> None:
    from dosecalc.display import figure
    from dosecalc.verify import _arithmetic

    sheet = sheet_for(library, "adjusted", "110 kg", height="70 in", sex="male")
    figures = {**sheet.figures.operands, **sheet.figures.values}
    assert _arithmetic(sheet.protocol, figures, sheet.result.basis) == []
    wrong = {**figures, "ideal_weight_kg": figure(Decimal(80), Decimal("0.1"), "kg")}
    found = {p.field for p in _arithmetic(sheet.protocol, wrong, sheet.result.basis)}
    assert "ideal_weight_kg" in found


def test_a_printed_new_figure_outside_its_hard_limit_is_refused(tmp_path: Path) -> None:
    # A dosing-weight hard limit of 60-100 kg with the ideal basis: a 170 cm woman weighing 200 kg
    # has IBW 61.437 kg (inside); a 152.4 cm woman: IBW 45.5 kg, below 60 kg: refused (exit 1).
    limited = IDEAL.replace(
        'height = { hard = ["152.4 cm", "230 cm"] }',
        'height = { hard = ["152.4 cm", "230 cm"] }\ndosing_weight = { hard = ["40 kg", "100 kg"] }',
    )
    library = protocols.load(write(tmp_path, limited))
    assert sheet_for(library, "ideal", "200 kg", height="170 cm", sex="female")
    from dosecalc.errors import LimitError

    with pytest.raises(LimitError) as raised:
        make_sheet(
            library,
            Order(weight="39 kg", date=DATE, protocol_id="ideal", height="170 cm", sex="female"),
        )
    assert raised.value.problems[0].field == "dosing_weight"


def test_a_dose_override_without_a_hard_limit_on_it_is_refused(library: protocols.Library) -> None:
    # The per m2 test protocols have no dose_per_m2 limit: only the protocol's own dose.
    with pytest.raises(InputError) as raised:
        sheet_for(library, "mosteller", "70 kg", height="170 cm", dose="120 mg/m2")
    assert raised.value.problems[0].code == "override_not_allowed"
    assert sheet_for(library, "mosteller", "70 kg", height="170 cm", dose="100 mg/m2")


PROPERTY_CASES = [
    ("ibw30", True, True),
    ("ideal", True, True),
    ("adjusted", True, True),
    ("cap100", False, False),
    ("nac-bag1", False, False),
    ("mosteller", True, False),
    ("dubois", True, False),
    ("vanc", False, False),
    ("heparin-load", False, False),
]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=st.sampled_from(PROPERTY_CASES),
    weight_tenths=st.integers(min_value=300, max_value=2000),
    height_mm=st.integers(min_value=1524, max_value=2200),
    sex=st.sampled_from(["female", "male"]),
)
def test_every_new_formula_agrees_with_pint_and_every_sheet_is_refused_or_verified(
    tmp_path_factory: pytest.TempPathFactory,
    case: tuple[str, bool, bool],
    weight_tenths: int,
    height_mm: int,
    sex: str,
) -> None:
    """Random patients inside the test protocols' limits: every formula the sheet ran gives the same
    value with pint Quantities (pint converting each term, at 60 digits) as the Decimal path, and
    the sheet is either refused by a limit or made (the verifier passed), its dose within
    max_rounding_change of the dose recomputed here by hand from the printed JSON."""
    import pint

    from dosecalc import units
    from dosecalc.errors import LimitError
    from dosecalc.quantities import OPERANDS, formulas

    pid, height, sex_needed = case
    library = _shared_library(tmp_path_factory)
    kwargs = {}
    if height:
        kwargs["height"] = f"{Decimal(height_mm) / 10} cm"
    if sex_needed:
        kwargs["sex"] = sex
    weight = f"{Decimal(weight_tenths) / 10} kg"
    try:
        sheet = sheet_for(library, pid, weight, **kwargs)
    except LimitError:
        return
    p = sheet.protocol
    values = {**_fixed_all(p, sex), **sheet.result.values}
    reg = units.registry()
    config = p.config(sheet.result.basis)
    checked = compiled(config)
    for formula in formulas(config):
        with localcontext() as context:
            context.prec = 60
            operands = []
            for name in formula.operands:
                kind, template = OPERANDS[name]
                unit = units.pint_unit(template.format(d=p.dose_unit), kind)
                operands.append(reg.Quantity(values[name], unit))
            kind, template = OPERANDS[formula.target]
            target = units.pint_unit(template.format(d=p.dose_unit), kind)
            try:
                by_pint = Decimal(formula.fn(*operands).to(target).magnitude)
            except pint.DimensionalityError:  # pragma: no cover - a formula error
                raise
        engine = checked[formula.target].value(values)
        assert abs(by_pint - engine) <= abs(engine) * Decimal("1e-40"), formula.target
    # The printed figures against the dose worked out here from the papers' formulas, independently
    # of the engine: the printed dose, the dose drawn up and the dose the VTBI delivers are each
    # within max_rounding_change (5%) of it.
    data = json.loads(sheet_object_json(sheet), parse_float=Decimal, parse_int=Decimal)
    expected = _by_hand(pid, Decimal(weight_tenths) / 10, Decimal(height_mm) / 10, sex)
    stock = Decimal(p.stock[0].text.split()[0])
    for printed in (
        data["dose"],
        data["drug_volume_ml"] * stock,
        data["total_volume_ml"] * data["concentration"],
    ):
        assert abs(printed - expected) <= Decimal("0.05") * expected, (pid, printed, expected)


def _by_hand(pid: str, w: Decimal, h: Decimal, sex: str) -> Decimal:
    """The exact dose of each property-test protocol, from the published formulas."""
    with localcontext() as context:
        context.prec = 50
        ibw = (Decimal(50) if sex == "male" else Decimal("45.5")) + Decimal("2.3") * (
            h / Decimal("2.54") - 60
        )
        bmi = w / (h / 100) ** 2
        if pid in ("ideal", "ibw30"):
            basis = min(ibw, w) if pid == "ideal" or bmi >= 30 else w
            return Decimal("0.5") * basis
        if pid == "adjusted":
            return Decimal("0.5") * min(ibw + Decimal("0.4") * (w - ibw), w)
        if pid == "cap100":
            return Decimal("0.5") * min(w, Decimal(100))
        if pid == "nac-bag1":
            return min(150 * w, Decimal(15000))
        if pid == "mosteller":
            return 100 * (h * w / 3600).sqrt()
        if pid == "dubois":
            return 100 * Decimal("0.007184") * w ** Decimal("0.425") * h ** Decimal("0.725")
        if pid == "vanc":
            return min(45 * w / 3, Decimal(4000) / 3)
        assert pid == "heparin-load"
        return min(80 * w, Decimal(10000))


def _fixed_all(p: protocols.Protocol, sex: str) -> dict[str, Decimal]:
    return protocols.fixed_values(p, sex if p.needs_sex else None)


_SHARED: list[protocols.Library] = []


def _shared_library(factory: pytest.TempPathFactory) -> protocols.Library:
    if not _SHARED:
        _SHARED.append(protocols.load(write(factory.mktemp("basis"), *ALL)))
    return _SHARED[0]


def sheet_object_json(sheet: Sheet) -> str:
    from dosecalc.render.as_json import sheet_json

    return sheet_json(sheet)


FIXED_STEPS = (
    'weight = "0.1 kg"\ndose = "1 mg"\ndrug_volume = "0.1 mL"\nvolume = "1 mL"\nrate = "1 mL/h"\n'
    'concentration = "0.01 mg/mL"\ndose_rate = "1 mg/h"\ndose_rate_per_kg = "0.01 mg/kg/h"'
)
FIXED_LIMITS = (
    'weight = { hard = ["30 kg", "200 kg"] }\ndose = { hard = ["500 mg", "2000 mg"] }\n'
    'duration = { hard = ["30 min", "120 min"] }\nrate = { hard = ["1 mL/h", "999 mL/h"] }'
)


def test_a_fixed_dose_and_a_fixed_daily_dose(tmp_path: Path) -> None:
    # "1 g": 1,000 mg (a dose in g is reported in mg) / 100 mg/mL = 10 mL; 100 + 10 = 110 mL over
    # 60 min = 110 mL/h, whatever the weight. "4 g/day" in 2 doses: 4,000 / 2 = 2,000 mg a dose,
    # 20 mL, 120 mL, 120 mL/h; the day's total 2,000 x 2 = 4,000 mg/day.
    fixed = protocol(
        "fixed",
        'dose = "1 g"\nduration = "60 min"\nstock = ["100 mg/mL"]\ndiluent_volume = "100 mL"',
        steps=FIXED_STEPS,
        limits=FIXED_LIMITS,
    )
    daily = protocol(
        "daily",
        'dose = "4 g/day"\ndivided_into = 2\nduration = "60 min"\nstock = ["100 mg/mL"]\n'
        'diluent_volume = "100 mL"',
        steps=FIXED_STEPS,
        limits=FIXED_LIMITS,
    )
    library = protocols.load(write(tmp_path, fixed, daily))
    one = sheet_for(library, "fixed", "70 kg")
    assert texts(one, "dose", "drug_volume", "total_volume", "rate") == {
        "dose": "1,000 mg",
        "drug_volume": "10 mL",
        "total_volume": "110 mL",
        "rate": "110 mL/h",
    }
    assert sheet_for(library, "fixed", "150 kg").figures.dose.text == "1,000 mg"
    assert one.reverse.dose_per_kg is None
    two = sheet_for(library, "daily", "70 kg")
    assert texts(two, "dose", "daily_dose", "drug_volume", "rate") == {
        "dose": "2,000 mg",
        "daily_dose": "4,000 mg/day",
        "drug_volume": "20 mL",
        "rate": "120 mL/h",
    }
    # A dose per kg written without its /kg, where limits.dose_per_kg is set, is refused.
    typo = ACETYLCYSTEINE.replace('dose = "150 mg/kg"', 'dose = "150 mg"')
    assert ("protocols.nac-bag1.dose", "wrong_dimension") in _refused(tmp_path, typo)


def test_results_csv_gives_the_dosing_weight_and_basis(runner: CliRunner, tmp_path: Path) -> None:
    # A day list with height and sex columns; the shipped file has ketamine-iv-ibw, so results.csv
    # carries dosing_weight_kg and dosing_weight_basis (before message), as every day list does.
    daylist = tmp_path / "day.csv"
    daylist.write_text(
        "patient_id,weight,protocol,height,sex\n"
        "A1,110 kg,ketamine-iv-ibw,70 in,male\n"  # BMI 34.8: IBW 73 kg
        "A2,72 kg,ketamine-iv,,\n"  # actual weight
        "A3,72 kg,ketamine-iv,170 cm,\n"  # a height the protocol does not use: invalid
    )
    result = runner.invoke(cli, ["batch", str(daylist), "--date", DATE])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert ",rate_ml_per_h,dosing_weight_kg,dosing_weight_basis," in lines[0]
    assert lines[0].endswith(",message")
    assert ",155.5,73,ideal," in lines[1]
    assert ",155.4,72,actual," in lines[2]
    # An invalid row: every figure column empty (8 before dosing_weight_basis, 7 after it).
    assert ",invalid,,,,,,,,,,,,,,,,height: protocol ketamine-iv does not use" in lines[3]


def test_the_dose_key_accepts_every_form_and_refuses_the_rest(tmp_path: Path) -> None:
    # The grammar as before ("0.5mg/kg" without a space is the same dose); a dose rate, a volume or
    # a dose per kg in g is not a dose.
    same = IDEAL.replace('dose = "0.5 mg/kg"', 'dose = "0.5mg/kg"')
    assert protocols.load(write(tmp_path, same)).protocols["ideal"].dose.to("mg/kg") == Decimal(
        "0.5"
    )
    for bad in ('"0.5 mg/kg/h"', '"40 mL"', '"0.5 g/kg"'):
        body = IDEAL.replace('dose = "0.5 mg/kg"', f"dose = {bad}")
        assert ("protocols.ideal.dose", "bad_dose") in _refused(tmp_path, body), bad


def test_a_height_typed_in_the_wrong_unit_is_caught_by_its_hard_limit(
    library: protocols.Library,
) -> None:
    # "67 cm" for 67 in: below the 152.4 cm hard minimum (Devine's 60 in), refused, never guessed.
    from dosecalc.errors import LimitError

    with pytest.raises(LimitError) as raised:
        sheet_for(library, "ibw30", "110 kg", height="67 cm", sex="male")
    problem = raised.value.problems[0]
    assert (problem.field, problem.code) == ("height", "hard_limit")
    assert "height 67 cm is below the hard limit 152.4 cm" in problem.message


def test_an_implausible_height_is_refused_on_its_own_before_any_dose_is_computed(
    runner: CliRunner,
) -> None:
    # 0.001 m = 0.1 cm: Devine's ideal weight for a man would be 50 + 2.3 x (0.1 / 2.54 - 60)
    # = -87.9 kg, and the dose, drug volume and concentration negative. Only the height is named.
    args = ["sheet", "--protocol", "ketamine-iv-ibw", "--date", DATE]
    result = runner.invoke(
        cli, [*args, "--weight", "100 kg", "--height", "0.001 m", "--sex", "male"]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "dosecalc: height 0.1 cm is below the hard limit 152.4 cm (range 152.4 cm to 230 cm)\n"
    )
    # A weight outside its hard limits too is named beside it (both are inputs), nothing derived.
    # 1000 lb x 0.45359237 = 453.59237 kg; 10 in x 2.54 = 25.4 cm.
    result = runner.invoke(
        cli, [*args, "--weight", "1000 lb", "--height", "10 in", "--sex", "female"]
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "dosecalc: weight 453.59237 kg is above the hard limit 300 kg (range 20 kg to 300 kg)\n"
        "dosecalc: height 25.4 cm is below the hard limit 152.4 cm (range 152.4 cm to 230 cm)\n"
    )


@pytest.mark.parametrize(
    ("pid", "weight", "height", "sex", "says"),
    [
        ("adjusted", "110 kg", "1 cm", "male", "height 1 cm is below the hard limit 152.4 cm"),
        ("ideal", "300 kg", "0.01 in", "female", "height 0.0254 cm is below the hard limit 152.4"),
        ("mosteller", "70 kg", "0.1 cm", None, "height 0.1 cm is below the hard limit 120 cm"),
        ("dubois", "30 kg", "100 m", None, "height 10,000 cm is above the hard limit 220 cm"),
    ],
)
def test_a_height_outside_its_hard_limits_is_the_only_problem_named(
    library: protocols.Library, pid: str, weight: str, height: str, sex: str | None, says: str
) -> None:
    from dosecalc.errors import LimitError

    with pytest.raises(LimitError) as raised:
        make_sheet(
            library,
            Order(weight=weight, date=DATE, protocol_id=pid, height=height, sex=sex),
        )
    assert [(p.field, p.code) for p in raised.value.problems] == [("height", "hard_limit")]
    assert says in raised.value.problems[0].message


def test_the_summary_says_what_weight_a_dose_is_per_kg_of_and_when_it_is_capped(
    library: protocols.Library,
) -> None:
    # The summary's "Dose 36.5 mg (0.5 mg/kg)" under "Weight 110 kg" invites 0.5 x 110 = 55 mg:
    # the weight the dose is per kg of is named where it is not the actual weight, and a capped
    # dose says so (80 units/kg x 130 kg = 10,400 units, capped at 10,000).
    def dose_line(sheet: Sheet) -> str:
        return {x.label: x.text for x in content.summary(sheet)}["Dose"]

    # Devine, male, 70 in: 50 + 2.3 x 10 = 73 kg; 0.5 x 73 = 36.5 mg.
    ideal = sheet_for(library, "ideal", "110 kg", height="70 in", sex="male")
    assert dose_line(ideal) == "36.5 mg (0.5 mg/kg x 73 kg ideal body weight)"
    # Adjusted: 73 + 0.4 x (110 - 73) = 87.8 kg; 0.5 x 87.8 = 43.9 mg.
    adjusted = sheet_for(library, "adjusted", "110 kg", height="70 in", sex="male")
    assert dose_line(adjusted) == "43.9 mg (0.5 mg/kg x 87.8 kg adjusted body weight)"
    # The dosing weight capped at 100 kg: 0.5 x 100 = 50 mg.
    most = sheet_for(library, "cap100", "120 kg")
    assert dose_line(most) == "50 mg (0.5 mg/kg x 100 kg maximum dosing weight)"
    assert dose_line(sheet_for(library, "cap100", "90 kg")) == "45 mg (0.5 mg/kg)"
    capped = sheet_for(library, "heparin-load", "130 kg")
    assert dose_line(capped) == "10,000 units (80 units/kg, capped)"
    # 80 x 70 = 5,600 units: not capped, on the actual weight.
    assert dose_line(sheet_for(library, "heparin-load", "70 kg")) == "5,600 units (80 units/kg)"


def test_the_double_check_gives_a_capped_dose_per_kg_of_the_dose_itself(
    library: protocols.Library,
) -> None:
    # 80 units/kg x 130 kg = 10,400 units, capped at 10,000 units: 10,000 / 130 = 76.923 units/kg
    # for this patient. 10.4 mL of 1,000 units/mL holds 10,400 units (10,400 / 130 = 80 units/kg).
    # The prescribed dose was given per kg as the prescription (80 units/kg), beside an amount
    # that is not 80 units/kg of this patient.
    from dosecalc.double_check import double_check

    order = Order(weight="130 kg", date="2026-11-25", protocol_id="heparin-load", operator="RN K")
    outcome = double_check(library, order, {"drawn": "10.4 mL"})
    (entry,) = outcome.entries
    assert entry.implies == (
        "10.4 mL of 1,000 units/mL holds 10,400 units (80 units/kg), not the 10,000 units "
        "(76.923 units/kg) prescribed"
    )
