"""The unit table dosecalc reads at run time is exactly what pint says about units.txt."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal, localcontext
from pathlib import Path

from dosecalc import unit_table, units

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gen_unit_table.py"


def test_the_table_equals_a_live_pint_registry() -> None:
    dimensions, factors = units.pint_table()
    assert dimensions == unit_table.DIMENSIONS
    assert factors == unit_table.FACTORS


def test_the_generated_module_is_up_to_date() -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import gen_unit_table
    finally:
        sys.path.remove(str(SCRIPT.parent))
    assert gen_unit_table.TARGET.read_text(encoding="utf-8") == gen_unit_table.source()


def test_known_factors_by_hand() -> None:
    # 1 lb = 0.45359237 kg exactly; 1 mcg/mL = 0.001 mg/mL; 1 mL/min = 60 mL/h; 1 h = 60 min;
    # 1 s = 1/60 min, kept as a division so that it stays exact.
    assert units.factor("lb", "kg") == (Decimal("0.45359237"), 1)
    assert units.factor("mcg/mL", "mg/mL") == (Decimal("0.001"), 1)
    assert units.factor("mL/min", "mL/h") == (60, 1)
    assert units.factor("h", "min") == (60, 1)
    assert units.factor("s", "min") == (1, 60)


def test_seconds_convert_to_minutes_exactly_in_any_context() -> None:
    # 7200 s = 120 min exactly: a rounded 1/60 factor would give 120.000...024 min, just past a
    # 120 min hard limit. The conversion must not depend on the caller's decimal context.
    with localcontext() as ctx:
        ctx.prec = 28
        assert units.parse_quantity("7200 s", "duration", "duration").to("min") == 120
    assert units.parse_quantity("90 s", "duration", "duration").to("min") == Decimal("1.5")


def test_a_unit_outside_the_table_is_still_checked_by_pint() -> None:
    # kg/h is on no field's list: its dimension comes from pint, and it is not a weight.
    assert not units.same_dimension("kg/h", "kg")
    assert units.same_dimension("g/mL/min", "mg/mL/h")


def test_parsing_and_listing_protocols_do_not_import_pint() -> None:
    code = (
        "import sys; from dosecalc import protocols; "
        "protocols.load(protocols.shipped_path()); "
        "from dosecalc.units import parse_quantity; parse_quantity('154 lb', 'weight', 'weight'); "
        "print('pint' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
