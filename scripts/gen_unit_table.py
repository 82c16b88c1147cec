"""Regenerate dosecalc/unit_table.py from units.txt through pint (run after editing units.txt).

python scripts/gen_unit_table.py
"""

from __future__ import annotations

import json
from pathlib import Path

from dosecalc.units import pint_table

TARGET = Path(__file__).resolve().parent.parent / "dosecalc" / "unit_table.py"


def q(text: str) -> str:
    """A string literal in the project's style (double quotes)."""
    return json.dumps(text)


def source() -> str:
    dimensions, factors = pint_table()
    lines = [
        '"""pint\'s answers for dosecalc\'s allowlisted units. Generated: do not edit.',
        "",
        "Made by scripts/gen_unit_table.py from dosecalc/units.txt; tests/test_unit_table.py checks it",
        'against a live pint registry."""',
        "",
        "DIMENSIONS: dict[str, str] = {",
        *(f"    {q(unit)}: {q(dim)}," for unit, dim in dimensions.items()),
        "}",
        "",
        "# (from, to): (multiply by, divide by)",
        "FACTORS: dict[tuple[str, str], tuple[str, str]] = {",
        *(f"    ({q(a)}, {q(b)}): ({q(m)}, {q(d)})," for (a, b), (m, d) in factors.items()),
        "}",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    TARGET.write_text(source(), encoding="utf-8")
    print(f"wrote {TARGET}")
