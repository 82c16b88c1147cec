"""Properties of the double check and the gate, over generated inputs (issue 13).

- For every shipped and test protocol and weights, doses and durations inside the hard limits: a
  second computation with the same inputs gives the same code, and the values a nurse reads off that
  sheet (vial, drawn up, rate, VTBI) match; one printed step off in any of them is a mismatch.
- `dosecalc check` and the vitals options, driven with generated text: exit 0, 1 or 2 only, never
  a traceback, never a control character in the output, and JSON that is always one of the
  documented objects.
"""

from __future__ import annotations

import json
import unicodedata
from decimal import Decimal

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dosecalc import protocols
from dosecalc.cli import cli
from dosecalc.display import format_number
from dosecalc.double_check import ENTRIES, double_check
from dosecalc.errors import LimitError
from dosecalc.model import Order, make_sheet
from tests.conftest import SHIPPED_PROTOCOLS, TEST_PROTOCOLS

LIBRARIES = (protocols.load(TEST_PROTOCOLS), protocols.load(SHIPPED_PROTOCOLS, "shipped"))
# Protocols that need a height (ideal body weight) are left out: the orders here give none.
CASES = [(lib, pid) for lib in LIBRARIES for pid, p in lib.protocols.items() if not p.needs_height]
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
UNITS = {"vial": "{d}/mL", "drawn": "mL", "rate": "mL/h", "vtbi": "mL"}


def _fraction(low: Decimal, high: Decimal, t: float, places: int) -> Decimal:
    value = low + (high - low) * Decimal(str(t))
    return max(value.quantize(Decimal(1).scaleb(-places)), low)


@st.composite
def orders(draw: st.DrawFn) -> tuple[protocols.Library, Order]:
    library, pid = draw(st.sampled_from(CASES))
    p = library.protocols[pid]
    limits = p.limits
    weight = _fraction(*limits["weight"].hard, draw(st.floats(0, 1)), 1)
    dpk = _fraction(*limits["dose_per_kg"].hard, draw(st.floats(0, 1)), 3)
    minutes = _fraction(*limits["duration"].hard, draw(st.floats(0, 1)), 0)
    stock = draw(st.sampled_from(p.stock))
    order = Order(
        weight=f"{format_number(weight, grouping=False)} kg",
        date="2026-11-25",
        protocol_id=pid,
        dose=f"{format_number(dpk, grouping=False)} {p.unit('{d}/kg')}",
        duration=f"{format_number(minutes, grouping=False)} min",
        stock=stock.text,
        override_reason="property test",
        operator="RN Test",
    )
    return library, order


@SETTINGS
@given(orders(), st.sampled_from(sorted(ENTRIES)))
def test_a_second_computation_matches_the_sheet_and_one_step_off_does_not(
    case: tuple[protocols.Library, Order], off: str
) -> None:
    library, order = case
    try:
        sheet = make_sheet(library, order)
    except LimitError:
        return  # refused (a limit or the printed-figure verifier): nothing to check
    f = sheet.figures
    d = sheet.protocol.dose_unit
    printed = {field: f.values[name] for field, (_, name, _) in ENTRIES.items()}
    entered = {field: f"{fig.json} {UNITS[field].format(d=d)}" for field, fig in printed.items()}
    check = double_check(library, order, entered)
    assert check.matches, [e for e in check.entries if not e.matches]
    assert check.check_code == sheet.check_code
    # One printed step off (the vial: a strength not on the sheet) is a mismatch with what it means.
    fig = printed[off]
    step = fig.step if off != "vial" else fig.rounded
    wrong = {**entered, off: f"{format_number(fig.rounded + step, grouping=False)} "
             f"{UNITS[off].format(d=d)}"}  # fmt: skip
    again = double_check(library, order, wrong)
    assert not again.matches
    [bad] = [e for e in again.entries if not e.matches]
    assert bad.field == off
    assert f" {d} (" in bad.implies  # the dose it delivers, with its dose per kg


UNSAFE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
texts = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,3})? ?(mg/mL|mcg/mL|mL|L|mL/h|mL/min|mg|kg)?", fullmatch=True),
    st.from_regex(r"[0-9A-Za-z]{4}-?[0-9A-Za-z]{4}", fullmatch=True),
)  # fmt: skip
vitals = st.one_of(
    st.text(max_size=20),
    st.from_regex(r"[0-9]{1,3}(/[0-9]{1,3})?( mmHg| /min|%)?", fullmatch=True),
)


def _clean(text: str) -> bool:
    return all(ch == "\n" or unicodedata.category(ch) not in UNSAFE for ch in text)


@SETTINGS
@given(
    st.dictionaries(st.sampled_from(["vial", "drawn", "rate", "vtbi", "code"]), texts, max_size=5)
)
def test_a_generated_check_exits_0_1_or_2_with_a_documented_object(
    entries: dict[str, str],
) -> None:
    args = ["--protocols", str(TEST_PROTOCOLS), "check", "--weight", "72 kg", "--operator", "A"]
    for key, value in entries.items():
        args += [f"--{key}", value]
    result = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code in (0, 1, 2), result.stderr
    assert _clean(result.stdout)
    assert _clean(result.stderr)
    body = json.loads(result.stdout)
    if result.exit_code == 2:
        assert body["schema"] == "dosecalc.error/1"
    else:
        assert body["schema"] == "dosecalc.check/1"
        assert body["status"] == ("match" if result.exit_code == 0 else "mismatch")


@SETTINGS
@given(st.dictionaries(st.sampled_from(["bp", "hr", "spo2"]), vitals, max_size=3))
def test_generated_vitals_exit_0_1_or_2_without_a_traceback(given_vitals: dict[str, str]) -> None:
    args = ["--protocols", str(SHIPPED_PROTOCOLS), "sheet", "--weight", "72 kg"]
    for key, value in given_vitals.items():
        args += [f"--{key}", value]
    result = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code in (0, 1, 2), result.stderr
    assert _clean(result.stdout)
    assert _clean(result.stderr)
    body = json.loads(result.stdout)
    assert body["schema"] == ("dosecalc.sheet/1" if result.exit_code == 0 else "dosecalc.error/1")
