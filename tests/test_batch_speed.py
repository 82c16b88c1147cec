"""Issue 14, target 1: the short cuts a batch row takes must give exactly what the plain paths give.

Each fast path is checked against the path it stands in for: the JSON Lines text (kept parts,
kept plans) against the sheet object, the quick arithmetic check against the interval check, an
operand's interval against the text printed inside the arithmetic, and the cycle collector put
back after a batch.
"""

from __future__ import annotations

import gc
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SHIPPED_PROTOCOLS, TEST_PROTOCOLS
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dosing_basis import ALL as DOSING_BASIS
from test_dosing_basis import write

from dosecalc import protocols
from dosecalc.cli import cli
from dosecalc.display import Figure, figure
from dosecalc.errors import InputError, LimitError
from dosecalc.exact import EXACT
from dosecalc.model import Order, make_sheet
from dosecalc.quantities import Compiled, Formula
from dosecalc.render.as_json import dumps, sheet_json, sheet_object
from dosecalc.verify import _true_as_shown, operand_interval, operand_point

ROOT = Path(__file__).resolve().parent.parent
FILES = [
    SHIPPED_PROTOCOLS,
    TEST_PROTOCOLS,
    ROOT / "examples" / "protocols-more.toml",
    ROOT / "tests" / "data" / "delivery_protocols.toml",
]
WEIGHTS = ["3.2 kg", "45.67 kg", "72 kg", "88.88 kg", "123.45 kg", "199.99 lb", "300.5 lb"]


def sheets(files: list[Path]):
    """A sheet of every protocol of the files at several weights (with a height and sex where the
    protocol asks), where the protocol makes one."""
    for path in files:
        library = protocols.load(str(path))
        for pid, protocol in library.protocols.items():
            for i, weight in enumerate(WEIGHTS):
                extra = {}
                if protocol.needs_height:
                    extra["height"] = f"{150 + 9 * i} cm"
                if protocol.needs_sex or protocol.needs_height:
                    extra["sex"] = ("female", "male")[i % 2]
                order = Order(
                    weight=weight, date="2026-11-25", protocol_id=pid, patient_id="P1", **extra
                )
                try:
                    yield make_sheet(library, order, confirm=None)
                except (InputError, LimitError):
                    continue


def test_json_lines_write_what_the_sheet_object_holds(tmp_path: Path) -> None:
    made = 0
    kinds = set()
    # With issue 10's protocols: per m2, per day, units, dose and daily caps, adjusted weight.
    for sheet in sheets([*FILES, write(tmp_path, *DOSING_BASIS)]):
        extra = {"status": "ok", "line": 7}
        assert sheet_json(sheet, extra=extra) == dumps({**sheet_object(sheet), **extra})
        assert sheet_json(sheet, indent=2) == dumps(sheet_object(sheet), indent=2)
        made += 1
        kinds.add((bool(sheet.protocol.continuous), sheet.result.basis, sheet.result.capped))
    assert made > 100
    # Doses and continuous infusions, each basis, capped and not: every branch of the writer.
    assert {k[0] for k in kinds} == {False, True}
    assert {"actual", "ideal", "adjusted"} <= {k[1] for k in kinds}
    assert {k[2] for k in kinds} == {False, True}


# --- the quick form of the printed-arithmetic check -----------------------------------------------

STEPS = [Decimal(s) for s in ("0.001", "0.01", "0.1", "0.5", "1", "0.25", "5")]
LINES = [
    Formula("c", ("a", "b"), lambda a, b: a * b, "{a} x {b}"),
    Formula("c", ("a", "b"), lambda a, b: a / b, "{a} / {b}"),
    Formula("c", ("a", "b"), lambda a, b: a + b, "{a} + {b}"),
    Formula("c", ("a", "b"), lambda a, b: a - b, "{a} - {b}"),
]


def amounts() -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=Decimal("0.001"), max_value=Decimal(5000), places=4)


@settings(max_examples=600, deadline=None)
@given(
    a=amounts(),
    b=amounts(),
    c=amounts(),
    steps=st.tuples(*[st.sampled_from(STEPS)] * 3),
    which=st.sampled_from(range(len(LINES))),
    factor=st.sampled_from([(Decimal(1), Decimal(1)), (Decimal(60), Decimal(1)), (1, 60)]),
)
def test_the_quick_check_passes_only_lines_the_interval_check_passes(
    a: Decimal,
    b: Decimal,
    c: Decimal,
    steps: tuple[Decimal, Decimal, Decimal],
    which: int,
    factor: tuple[Decimal, Decimal],
) -> None:
    line = Compiled(LINES[which], Decimal(factor[0]), Decimal(factor[1]))
    figures = {
        name: figure(value, step, "mg")
        for name, value, step in zip("abc", (a, b, c), steps, strict=True)
    }
    # A target that is right (the line's own value) and one that is anything.
    right = line.value({"a": a, "b": b})
    for target in (figure(right, steps[2], "mg"), figures["c"]):
        shown = {**figures, "c": target}
        with localcontext(EXACT):
            quick = _true_as_shown(line, "c", shown, {})
            try:
                span = line.interval({n: operand_interval(shown[n]) for n in "ab"})
            except ZeroDivisionError:
                # Only a divisor printed as 0, which verify refuses first (printed_zero).
                assert shown["b"].rounded == 0
                continue
        full = span.overlaps(operand_interval(target))
        assert not quick or full, (shown, quick, full)
    # The line computed with its own exact result and unrounded operands always passes quickly.
    exact = {n: Figure(v, v, "mg", Decimal(1), str(v)) for n, v in (("a", a), ("b", b))}
    with localcontext(EXACT):
        assert _true_as_shown(
            line, "c", {**exact, "c": Figure(right, right, "mg", Decimal(1), "")}, {}
        )


# Half a unit in the last place of an operand printed two decimals finer than its step.
HALF_PLACE = {
    "0.001": "0.000005",
    "0.01": "0.00005",
    "0.1": "0.0005",
    "0.5": "0.0005",
    "1": "0.005",
    "0.25": "0.00005",
    "5": "0.005",
}


@settings(max_examples=400, deadline=None)
@given(value=st.decimals(min_value=0, max_value=10**6, places=6), step=st.sampled_from(STEPS))
def test_an_operand_as_shown_is_the_text_printed_inside_the_arithmetic(
    value: Decimal, step: Decimal
) -> None:
    fig = figure(value, step, "mg")
    assert operand_point(fig) == Decimal(fig.operand_number.replace(",", ""))
    span = operand_interval(fig)
    if not fig.was_rounded:
        assert span.low == span.high == fig.exact
    else:
        half = Decimal(HALF_PLACE[str(step)])
        printed = fig.operand_number.partition(".")[2]
        if len(printed) > len(HALF_PLACE[str(step)].partition(".")[2]) - 1:
            # Printed with more decimals than two beyond the step, so that it rounds to the
            # figure (0.000495 beside "0 mg", not "0.0005"): half a unit in its last place.
            half = Decimal("0." + "0" * len(printed) + "5")
        assert (span.low, span.high) == (operand_point(fig) - half, operand_point(fig) + half)


# --- the cycle collector during a batch ------------------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_batch_puts_the_cycle_collector_back(tmp_path: Path, jobs: str) -> None:
    day = tmp_path / "day.csv"
    day.write_text("patient_id,weight\nA1,72 kg\nA2,80 kg\n", encoding="utf-8")
    before = gc.get_threshold()
    args = ["--protocols", str(SHIPPED_PROTOCOLS), "batch", str(day), "--format", "jsonl"]
    result = CliRunner().invoke(cli, [*args, "--quiet", "--jobs", jobs])
    assert result.exit_code == 0, result.output
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


# Text no cell or figure should break: quotes, backslashes, controls, non-ASCII, an astral character.
AWKWARD = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(AWKWARD, min_size=6, max_size=22))
def test_json_written_string_by_string_is_what_json_dumps_writes(cells: list[str]) -> None:
    """The check code's message and a spooled row's cells are written with json's C string encoder
    directly: the same text json.dumps writes (and reads back the same)."""
    import json

    from dosecalc import checkcode
    from dosecalc.batch.rows import ResultRow
    from dosecalc.batch.spool import cells_json

    row = ResultRow(*cells[: len(ResultRow._fields)])
    assert cells_json(row) == json.dumps(list(row))
    assert ResultRow(*json.loads(cells_json(row))) == row
    unit = cells[3]
    figures = {"dose": Figure(Decimal("36"), Decimal("36"), unit, Decimal("0.1"), "36")}
    protocol = (cells[0], cells[1], cells[2])
    expected = [checkcode.SCHEME, *protocol, f"dose=36 {unit}" if unit else "dose=36"]
    assert checkcode.message(protocol, figures) == json.dumps(
        expected, ensure_ascii=True, separators=(",", ":")
    ).encode("ascii")


def test_the_limit_carriers_kept_per_set_of_names_are_read_only() -> None:
    """One mapping is shared by every caller with the same names: none may change it for the rest."""
    from dosecalc.quantities import limit_carriers

    carriers = limit_carriers(("dose", "rate"))
    assert dict(carriers) == {"dose": "dose", "rate": "rate"}
    with pytest.raises(TypeError):
        carriers["dose"] = "drug_volume"  # type: ignore[index]
