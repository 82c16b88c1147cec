"""The words of a dose sheet, written once for every human-readable renderer (text, HTML, PDF).

Text from a user or a file passes sanitize.text (imported as `clean`) here; numbers come only
from the Sheet's figures.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dosecalc.protocols import Protocol

from dosecalc.display import Figure, figure, format_percent, format_quantity
from dosecalc.exact import EXACT
from dosecalc.model import BASIS_NAMES, Sheet, dosing_basis, titration_outside
from dosecalc.protocols import prescription as prescribed_operand
from dosecalc.quantities import BY_NAME
from dosecalc.sanitize import text as clean
from dosecalc.units import UNIT_WORDS, factor, label_volume
from dosecalc.verify import RateCheck, Reverse, printed_lines

# A number and its unit ("155.4 mL/h", "30 kg/m2", "33 gtt/min", "120 /min", "500 mg/100 mL"):
# one word for every renderer's line breaking (keep_together), so a number never wraps away from
# its unit.
# Every unit of the quantity grammar (units.UNIT_WORDS: units, mmol, mEq and day too), and the
# vitals' and BSA's; the longest first.
_UNIT = "(?:" + "|".join(sorted(UNIT_WORDS | {"mmHg", "cm2"}, key=len, reverse=True)) + ")"
_PER = rf"/(?:{_UNIT}|\d+ {_UNIT})"
_NUMBER_UNIT = re.compile(
    rf"(?<![\w.,])\d[\d,]*(?:\.\d+)? (?:{_UNIT}(?:{_PER})*|(?:{_PER})+)(?![\w/])"
)


# The joiner of the printed sheets (HTML and PDF): a browser and fpdf2 never break a line there,
# and both draw it as a space.
NO_BREAK_SPACE = "\u00a0"


def keep_together(text: str, join: str) -> str:
    """`text` with the spaces inside every number and unit replaced by `join`, a character the
    renderer never breaks a line at (and prints as a space)."""
    return _NUMBER_UNIT.sub(lambda found: found.group().replace(" ", join), text)


@dataclass(frozen=True)
class Line:
    label: str
    text: str


def amount(fig: Figure) -> str:
    """An amount of drug in a bag as a vial is labelled: 1,000 mcg or more in mg ("400 mg", not
    "400,000 mcg", an error-prone form on ISMP's list), by pint's factor; else as the figure."""
    if fig.unit != "mcg" or fig.rounded < 1000:
        return fig.text
    multiply, divide = factor("mcg", "mg", "dose")
    return format_quantity(EXACT.divide(EXACT.multiply(fig.rounded, multiply), divide), "mg")


def shown(fig: Figure) -> str:
    """'34.927 mg, given as 34.9 mg' when rounding changed the value, else '36 mg'."""
    if fig.was_rounded and fig.exact_number != fig.number:
        return f"{fig.exact_text}, given as {fig.text}"
    return fig.text


def operand(fig: Figure) -> str:
    """A value inside a calculation: the unrounded value, so the arithmetic checks with a pencil."""
    return fig.operand_text


def title(sheet: Sheet) -> str:
    kind = "INFUSION" if sheet.protocol.continuous else "DOSE"
    return f"{clean(sheet.protocol.drug).upper()} {kind} SHEET"


def container(sheet: Sheet) -> str:
    """What runs: the strength (a premixed bag or syringe run neat), or the bag made up on the ward
    ('400 mg in 250 mL')."""
    f = sheet.figures
    if "drug_amount" in f.values:
        return f"{amount(f.drug_amount)} in {f.total_volume.text} ({f.concentration.text})"
    return stock(sheet)


def prescription(sheet: Sheet) -> str:
    """What was actually prescribed: dose per kg, duration and stock used, and what changed."""
    f, p = sheet.figures, sheet.protocol
    rx = f.of(prescription_operand(p))
    divided = f" in {f.divided_into.number} doses a day" if p.per_day else ""
    if p.continuous:
        text = f"{rx.text} continuous infusion, {clean(p.drug)} {container(sheet)}"
    else:
        text = f"{rx.text}{divided} over {f.duration.text}, {clean(p.drug)} {stock(sheet)}"
    if sheet.changes:
        changed = "; ".join(f"{c.field.replace('_', ' ')} {c.protocol}" for c in sheet.changes)
        text += f" (CHANGED FROM PROTOCOL: the protocol says {changed})"
    return text


def protocols_file(sheet: Sheet) -> str:
    """The protocols file as a sheet shows it: its name and short hash. The full path is in the JSON
    sheet and the audit log; on paper it only wraps, and can be mistaken for something to read."""
    lib = sheet.library
    return f"{clean(os.path.basename(lib.path)) or clean(lib.path)} (sha256 {lib.short_hash})"


def header(sheet: Sheet) -> list[Line]:
    p = sheet.protocol
    return [
        Line("Protocol", f"{clean(p.name)} ({p.id}), version {clean(p.version)}"),
        Line("Prescribed", prescription(sheet)),
        Line("Indication", clean(p.indication)),
        Line("Protocols file", protocols_file(sheet)),
        Line("Check code", check_code(sheet)),
    ]


SUMMARY_TITLE = "SUMMARY"


def summary(sheet: Sheet) -> list[Line]:
    """What must be on the nurse's screen when the command ends: who, what to draw up, what to
    program, and whether anything needs reading first. Short enough for the last lines of a 24-line
    terminal, with room for one more line (the check code)."""
    o = sheet.order
    # The patient ID, else the name (the full sheet above shows both): one line for the usual ID.
    who = o.patient_id or (clean(o.name) if o.name else "") or "(no patient ID)"
    codes = [w.code for w in sheet.warnings]
    named = ", ".join(
        code if codes.count(code) == 1 else f"{code} x{codes.count(code)}"
        for code in dict.fromkeys(codes)
    )
    warnings = f"YES, {len(codes)}: {named}" if codes else "none"
    return [
        Line("Patient", f"{who} | {o.date}"),
        Line("Weight", weight_text(sheet)),
        Line("Protocol", f"{sheet.protocol.id}, version {clean(sheet.protocol.version)}"),
        *_what(sheet),
        *pump(sheet),
        Line("Warnings", warnings),
        Line("Check code", sheet.check_code),
    ]


def _what(sheet: Sheet) -> list[Line]:
    """The summary's dose (or dose rate) and what to draw up or hang."""
    f, drug = sheet.figures, clean(sheet.protocol.drug)
    if not sheet.protocol.continuous:
        rx = f.of(prescription_operand(sheet.protocol)).text
        if sheet.protocol.per == "kg" and (basis := dosing_basis(sheet)[0]) != "actual":
            # Not per kg of the weight on the line above: say which weight it is per kg of.
            rx += f" x {f.dosing_weight_kg.text} {BASIS_NAMES[basis]}"
        if sheet.result.capped:  # not the prescription times the weight: never "corrected" to it
            rx += ", capped"
        return [
            Line("Dose", f.dose.text if rx == f.dose.text else f"{f.dose.text} ({rx})"),
            Line(
                "Hang" if whole_container(sheet) else "Draw up",
                f"{f.drug_volume.text} of {drug} {stock(sheet)}",
            ),
        ]
    if "drug_volume" in f.values:
        made = Line("Draw up", f"{f.drug_volume.text} of {drug} {stock(sheet)} into the bag")
    else:
        made = Line("Hang", f"{drug} {stock(sheet)}, undiluted")
    return [Line("Dose rate", dose_rate(sheet)), made]


def prepare_box(sheet: Sheet) -> tuple[list[tuple[str, str]], str]:
    """The PREPARE box of a printed sheet: its rows, and the note under them (what it is of)."""
    f, drug = sheet.figures, clean(sheet.protocol.drug)
    if not sheet.protocol.continuous:
        give = "HANG" if whole_container(sheet) else "DRAW UP"
        return [("DOSE", f.dose.text), (give, f.drug_volume.text)], f"of {drug} {stock(sheet)}"
    rx = f.of(prescription_operand(sheet.protocol))
    if "drug_volume" in f.values:
        rows = [("DOSE RATE", rx.text), ("DRAW UP", f.drug_volume.text)]
        return rows, f"of {drug} {stock(sheet)} into the bag"
    return [("DOSE RATE", rx.text), ("HANG", f.total_volume.text)], f"of {drug} {stock(sheet)}"


def whole_container(sheet: Sheet) -> bool:
    """A neat dose run by gravity that is a whole labelled container as supplied (100 mL of a
    500 mg/100 mL premixed bag, a gravity set): hung, not drawn up. A vial's whole volume on a
    pump is still drawn up."""
    p = sheet.protocol
    if (
        p.preparation != "neat"
        or p.drop_factor is None
        or "drug_volume" not in sheet.figures.values
    ):
        return False
    volume = label_volume(sheet.result.chosen_stock)
    return volume is not None and sheet.figures.drug_volume.rounded == volume


def weight_text(sheet: Sheet) -> str:
    """The weight as typed, then in kg where it was converted ('154 lb = 69.853 kg, given as
    69.9 kg'), or as given where it was only rounded ('72.04 kg, given as 72 kg')."""
    typed = clean(sheet.order.weight.strip())
    fig = sheet.figures.weight_kg
    if sheet.result.weight.unit != "kg":
        return f"{typed} = {shown(fig)}"
    if fig.was_rounded:
        return f"{typed}, given as {fig.text}"
    return typed if typed == fig.text else f"{typed} = {fig.text}"


def stock(sheet: Sheet) -> str:
    """The strength as listed in the protocol (as on the vial), with its strength per mL in the
    dose unit beside it where that reads differently ('250 mg/5 mL (50 mg/mL)', '20% (200 mg/mL)',
    '1 mg/mL (1,000 mcg/mL)')."""
    listed, fig = sheet.result.chosen_stock, sheet.figures.stock
    label = clean(listed.text.strip())
    same = label.replace(",", "") == fig.text.replace(",", "")  # "1000 units/mL" is 1,000 units/mL
    return label if same else f"{label} ({fig.text})"


CHECK_CODE_NOTE = "compare with the double check: dosecalc check"


def check_code(sheet: Sheet) -> str:
    """The check code with what it is for (checkcode.py)."""
    return f"{sheet.check_code} ({CHECK_CODE_NOTE})"


def patient(sheet: Sheet) -> list[Line]:
    o, f = sheet.order, sheet.figures
    weight = weight_text(sheet)
    if sheet.protocol.basis != "actual" and dosing_basis(sheet)[0] == "actual":
        weight += " (used)"  # rather than the ideal or adjusted weight computed below
    lines = [
        Line("Patient ID", o.patient_id or "(none given)"),
        Line("Name", clean(o.name) if o.name else "(none given)"),
        Line("Date", o.date),
        Line("Weight", weight),
    ]
    lines += body(sheet)
    lines.append(Line("Dosing weight", f"{f.dosing_weight_kg.text} ({dosing_basis(sheet)[1]})"))
    return lines


def prescription_operand(protocol: Protocol) -> str:
    return prescribed_operand(protocol)[0]


def body(sheet: Sheet) -> list[Line]:
    """Height and sex as entered, where the protocol uses them (the measures computed from them are
    calculation lines)."""
    o, f = sheet.order, sheet.figures
    lines = []
    if o.height is not None and "height_cm" in f.values:
        height = clean(o.height.strip())
        if f.height_cm.text != height:
            height = f"{height} = {shown(f.height_cm)}"
        lines.append(Line("Height", height))
    if o.sex is not None:
        lines.append(Line("Sex", o.sex))
    return lines


PREINFUSION_TITLE = "Pre-infusion check"


def preinfusion(sheet: Sheet) -> list[Line]:
    """The vitals before the infusion and the verdict; empty when the protocol has no gate and no
    vitals were given (the sheet then has no such section)."""
    gate = sheet.gate
    if gate is None:
        return []
    lines = [Line(r.label, f"{r.value}: {r.verdict}") for r in gate.readings]
    lines.append(Line("Verdict", gate.verdict))
    return lines


def preinfusion_compact(sheet: Sheet) -> list[str]:
    """The gate in as few lines as it takes (for the one-page PDF): the readings given with short
    verdicts, the overall verdict (naming any vital not given), and the checklist boxes side by
    side. Override reasons are in the alerts box."""
    gate = sheet.gate
    if gate is None:
        return []
    given = [r for r in gate.readings if r.verdict != "NOT CHECKED"]
    readings = "".join(f"{r.label} {r.value}: {_short(r.verdict)}; " for r in given)
    lines = [f"{PREINFUSION_TITLE.upper()}: {readings}{gate.verdict}"]
    if gate.checklist:
        lines.append("CHECKLIST: " + "   ".join(checklist(sheet)))
    return lines


def _short(verdict: str) -> str:
    """'within limits (90 mmHg to 140 mmHg)' -> 'within limits'; an override without its reason."""
    for short in ("within limits", "OUTSIDE SOFT LIMITS, overridden"):
        if verdict.startswith(short):
            return short
    return verdict


def checklist(sheet: Sheet) -> list[str]:
    """The protocol's pre-infusion checklist, as boxes to tick by hand."""
    if sheet.gate is None:
        return []
    return [f"[ ] {clean(item)}" for item in sheet.gate.checklist]


def calculation(sheet: Sheet) -> list[Line]:
    """The printed arithmetic: each line is one of the protocol's formulas with the operands as
    printed (verify.py checks that every line is true with these numbers)."""
    f = sheet.figures
    entered = "" if sheet.result.weight.unit == "kg" else f" ({clean(sheet.order.weight.strip())})"
    lines = []
    for line in printed_lines(sheet.protocol, sheet.result.basis, sheet.result.config):
        target = line.formula.target
        operands = {name: operand(f.of(name)) for name in line.formula.operands}
        if "dosing_weight_kg" in operands:
            operands["dosing_weight_kg"] += entered
        result = shown(f.values[target])
        if target == "dose" and sheet.result.capped:
            result += " (capped)"
        elif target == "dosing_weight_kg":
            result += f" ({dosing_basis(sheet)[1]})"
        elif target == f"{dosing_basis(sheet)[0]}_weight_kg":
            result += " (used)"
        lines.append(Line(BY_NAME[target].label, f"{line.text(operands)} = {result}"))
    return lines


def preparation(sheet: Sheet) -> list[str]:
    f, p = sheet.figures, sheet.protocol
    drug, diluent = clean(p.drug), clean(p.diluent)
    if p.continuous:
        return _continuous_preparation(sheet)
    # What the volume drawn up holds, as printed (printed volume x strength, exactly): the dose
    # figure itself can differ where the dose step is coarser than the volume's (675 mg drawn up,
    # printed "given as 680 mg" with a 10 mg step).
    held = (
        sheet.reverse.drawn_dose.exact_text if isinstance(sheet.reverse, Reverse) else f.dose.text
    )
    if whole_container(sheet):  # a premixed bag: the dose is the whole container
        steps = [f"Use the {drug} {stock(sheet)} container as supplied ({held})."]
    else:
        steps = [f"Draw up {f.drug_volume.text} of {drug} {stock(sheet)} ({held})."]
    if p.preparation == "neat":
        steps.append("Give it undiluted (neat): do not dilute.")
    elif p.preparation == "add":
        steps.append(f"Add it to {f.diluent_volume.text} {diluent}{_volume_rule(sheet)}.")
    else:
        steps.append(
            f"Make up to {f.total_volume.text} with {_diluent_about(sheet)} of {diluent}"
            f"{_volume_rule(sheet)}."
        )
    steps.append(
        f"Total {f.total_volume.text}, {f.concentration.text}: label with the patient, drug, "
        "dose, concentration and time, and check against this sheet."
    )
    return steps


def _continuous_preparation(sheet: Sheet) -> list[str]:
    f, p = sheet.figures, sheet.protocol
    drug, diluent = clean(p.drug), clean(p.diluent)
    label = (
        "label with the patient, drug, concentration, rate and time, and check against this sheet."
    )
    if p.preparation == "neat":
        if label_volume(sheet.result.chosen_stock) is not None:
            first = f"Use the {drug} {stock(sheet)} container as supplied: do not dilute."
        else:
            first = f"Draw up {f.total_volume.text} of {drug} {stock(sheet)}, undiluted."
        return [first, f"VTBI {f.total_volume.text} at {f.concentration.text}: {label}"]
    steps = [f"Draw up {f.drug_volume.text} of {drug} {stock(sheet)} ({amount(f.drug_amount)})."]
    if p.preparation == "add":
        steps.append(f"Add it to {f.diluent_volume.text} {diluent}.")
    else:
        steps.append(f"Make up to {f.total_volume.text} with {_diluent_about(sheet)} of {diluent}.")
    steps.append(f"Total {f.total_volume.text}, {f.concentration.text}: {label}")
    return steps


def _diluent_about(sheet: Sheet) -> str:
    """The diluent of a bag made up to a volume: the final volume is what the nurse fills to. Each
    figure is rounded once, so the printed drug volume and diluent need not add up to it (20.4 mL
    and 184 mL for 204 mL): then the diluent is "about" its figure."""
    f = sheet.figures
    if f.drug_volume.rounded + f.diluent_volume.rounded == f.total_volume.rounded:
        return f.diluent_volume.text
    return f"about {f.diluent_volume.text}"


def _volume_rule(sheet: Sheet) -> str:
    """Where the diluent or final volume comes from, when a rule gives it (issue 11)."""
    f, p = sheet.figures, sheet.protocol
    volume = f.total_volume if p.preparation != "add" else f.diluent_volume
    if p.final_concentration is not None:
        # The amount the volume was worked out from: the most the bag holds as printed (the
        # drawn-up amount, or the dose), as the duration's reason names it (dosing.py).
        most = sheet.result.dose_as_drawn
        assert most is not None  # the engine keeps it where a final concentration applies
        held = figure(most, p.steps["dose"], p.dose_unit).exact_text
        return (
            f" ({held} at no more than {f.final_concentration.text}: "
            f"{volume.text}, rounded up to the {format_quantity(p.steps['volume'], 'mL')} step)"
        )
    if p.diluent_volume_per_kg is not None:
        bounds = [
            f"{word} {format_quantity(q.to('mL'), 'mL')}"
            for word, q in (("at least", p.diluent_volume_min), ("at most", p.diluent_volume_max))
            if q is not None
        ]
        held = f", {' and '.join(bounds)}" if bounds else ""
        return (
            f" ({f.diluent_volume_per_kg.text} x {f.dosing_weight_kg.text}, to the nearest "
            f"{format_quantity(p.steps['volume'], 'mL')}{held})"
        )
    return ""


def pump(sheet: Sheet) -> list[Line]:
    f = sheet.figures
    lines = [Line("RATE", f.rate.text), Line("VTBI", f.total_volume.text)]
    if sheet.protocol.continuous:
        lines.append(Line("BAG LASTS", hours(f.bag_duration)))
    else:
        lines.append(Line("DURATION", f.duration.text))
    if "drops_per_min" in f.values:
        lines.append(Line("DRIP RATE", f.drops_per_min.text))
    if "flush_volume" in f.values:
        lines.append(Line("THEN FLUSH", f.flush_volume.text))
    return lines


def pump_notes(sheet: Sheet) -> list[str]:
    """The lines under the PUMP box: the dose rate, the giving set, and the flush step."""
    f = sheet.figures
    notes = [f"Dose rate: {dose_rate(sheet)}"]
    lengthened = sheet.result.lengthened_from
    if lengthened is not None:
        notes.append(
            f"Duration LENGTHENED from {format_quantity(lengthened, 'min')} (see the warning)"
        )
    if "drops_per_min" in f.values:
        notes.append(
            f"Gravity: {f.drops_per_min.text} with a {f.drop_factor.text} giving set "
            f"({f.rate.text})"
        )
    if "flush_volume" in f.values:
        notes.append(
            f"Then flush the line: {f.flush_volume.text} at {f.rate.text} ({f.flush_minutes.text})"
        )
    return notes


def dose_rate(sheet: Sheet) -> str:
    """The patient's dose rate and per kg: in the prescription's unit where it is per minute
    (continuous infusions: '400 mcg/min (5 mcg/kg/min)'), else per hour."""
    f = sheet.figures.values
    if "dose_rate_per_min" in f and "dose_rate_per_kg_per_min" not in f:
        # Prescribed per minute, not per kg (norepinephrine 8 mcg/min): a per kg figure per hour
        # beside it ("6.86 mcg/kg/h") is read as per minute, 60 times too much.
        return f["dose_rate_per_min"].text
    rate = f.get("dose_rate_per_min") or f["dose_rate"]
    per_kg = f.get("dose_rate_per_kg_per_min") or f["dose_rate_per_kg"]
    return f"{rate.text} ({per_kg.text})"


def hours(fig: Figure) -> str:
    """A duration in h and min from an hour up ('16 h 40 min' for 1,000 min; the calculation line
    shows the minutes): the time the container lasts, as a nurse plans the next bag."""
    minutes = fig.rounded
    if minutes < 60:
        return fig.text
    whole, rest = divmod(minutes, 60)
    part = f" {format_quantity(rest, 'min')}" if rest else ""
    return f"{format_quantity(whole, 'h')}{part}"


TITRATION_TITLE = "TITRATION (pump rate for each dose rate)"


def titration_rows(sheet: Sheet) -> list[tuple[str, str, str]]:
    """Each dose rate of the protocol's titration table with its rate in mL/h, as a pump's drug
    library lists them; the starting rate marked; a rate outside the rate hard limits is not one
    to run."""
    rows = []
    rx = sheet.figures.of(prescription_operand(sheet.protocol))
    outside = titration_outside(sheet)
    for (dose_rate_fig, rate), names in zip(sheet.figures.titration, outside, strict=True):
        note = ""
        if names == ("rate",):
            note = "OUTSIDE THE RATE HARD LIMITS: do not run"
        elif names:
            limits = ", ".join(n.replace("_", " ") for n in names)
            note = f"OUTSIDE THE HARD LIMITS ({limits}): do not run"
        elif dose_rate_fig.exact == rx.exact:
            note = "(this sheet)"
        # The note in a column of its own: a rate column with notes in it is misaligned.
        rows.append((dose_rate_fig.text, rate.text, note))
    return rows


def checkpoint_rows(sheet: Sheet) -> list[tuple[str, str, str]]:
    return [(c.minute.text, c.volume.text, c.dose.text) for c in sheet.figures.checkpoints]


def reverse_check(sheet: Sheet) -> str:
    """Computed from the printed figures (verify.py): rate x duration -> volume -> dose -> per kg."""
    f, r = sheet.figures, sheet.reverse
    percent = format_percent(sheet.protocol.max_rounding_change)
    if isinstance(r, RateCheck):
        rx = f.of(prescription_operand(sheet.protocol))
        text = f"{f.rate.text} x {f.concentration.text} = {r.dose_rate.exact_text}"
        if r.dose_rate_per_kg is not None:
            text += f"; / {f.dosing_weight_kg.text} = {r.dose_rate_per_kg.exact_text}"
        if r.prescribed_unit.unit != (r.dose_rate_per_kg or r.dose_rate).unit:
            text += f" = {r.prescribed_unit.exact_text}"
        return f"{text}: agrees with the prescribed {rx.text} (within {percent})"
    if r.dose_per_kg is None:
        return (
            f"{f.rate.text} x {f.duration.text} / 60 min/h = {r.volume.exact_text}; "
            f"{r.volume.exact_text} x {r.drawn_dose.exact_text} in {f.total_volume.text} = "
            f"{r.dose.exact_text}: agrees with the dose {f.dose.text} (within {percent})"
        )
    return (
        f"{f.rate.text} x {f.duration.text} / 60 min/h = {r.volume.exact_text}; "
        f"{r.volume.exact_text} x {r.drawn_dose.exact_text} in {f.total_volume.text} = "
        f"{r.dose.exact_text}; {r.dose.exact_text} / {f.dosing_weight_kg.text} = "
        f"{r.dose_per_kg.exact_text}: agrees with the prescribed {f.dose_per_kg.text} "
        f"(within {percent})"
    )


def alerts(sheet: Sheet) -> list[str]:
    """Warnings and overrides, for the box that cannot be missed."""
    return [f"{w.code}: {clean(w.message)}" for w in sheet.warnings]


def advisory(sheet: Sheet) -> str:
    return clean(sheet.protocol.advisory, keep_newlines=True).strip()


def monitoring(sheet: Sheet) -> list[str]:
    return [clean(m) for m in sheet.protocol.monitoring]


SIGNATURES = ("Prepared by", "Independent double check by")


# --- printed sheets (HTML and PDF) -------------------------------------------------------------

TIMELINE_TITLE = "INFUSION TIMELINE (cumulative, compare with the pump's volume infused)"
GRID_TITLE = "MONITORING (fill in by hand)"
GRID_ROWS = (
    "Blood pressure (mmHg)",
    "Heart rate (/min)",
    "SpO2 (%)",
    "Sedation / dissociation",
)
GRID_FIRST_COLUMN = "Baseline"


def grid_rows(sheet: Sheet) -> tuple[str, ...]:
    """The protocol's monitoring_grid rows, else the default rows (written for ketamine: a
    protocol for another drug names its own)."""
    return tuple(clean(r) for r in sheet.protocol.monitoring_grid) or GRID_ROWS


DEFAULT_AFTER_END = ("end + 15 min", "end + 30 min")
SIGNATURE_FIELDS = ("Name", "Signature", "Date / time")
# Filled in by hand on a printed sheet: a second patient identifier, who prescribed, when it started.
WRITE_INS = ("Date of birth", "Prescriber", "Start time")
TICKS_PER_SEGMENT = 8
GRID_COLUMNS_PER_BLOCK = 10


@dataclass(frozen=True)
class Tick:
    """One checkpoint on the timeline: where it sits (0 to 1 along its bar) and its three labels."""

    position: Decimal
    time: str
    volume: str
    dose: str
    # Labels alternate above and below the bar (the first above, clear of the start label below),
    # so neighbouring ticks never overlap.
    above: bool


@dataclass(frozen=True)
class Segment:
    """One bar of the timeline: from `start` (text) to its last tick. Long infusions get several."""

    start: str
    ticks: tuple[Tick, ...]


def timeline(sheet: Sheet, per_segment: int = TICKS_PER_SEGMENT) -> list[Segment]:
    """The checkpoints as bars of at most `per_segment` ticks, so every label has room on paper.

    Positions are layout only (minute / bar length); the labels are the Sheet's rounded figures.
    """
    points = sheet.figures.checkpoints
    segments: list[Segment] = []
    begin, begin_text = Decimal(0), "0 min"
    for first in range(0, len(points), per_segment):
        chunk = points[first : first + per_segment]
        end = chunk[-1].minute.exact
        span = end - begin
        ticks = tuple(
            Tick(
                (c.minute.exact - begin) / span,
                c.minute.text,
                c.volume.text,
                c.dose.text,
                above=i % 2 == 0,
            )
            for i, c in enumerate(chunk)
        )
        segments.append(Segment(begin_text, ticks))
        begin, begin_text = end, chunk[-1].minute.text
    return segments


def grid_columns(sheet: Sheet) -> list[str]:
    """Baseline, then the protocol's monitoring_times, else every checkpoint and end + 15, + 30 min."""
    times = sheet.protocol.monitoring_times
    if sheet.protocol.continuous:
        # Hourly while the container runs (at most the first 8 h; a new sheet for the next bag).
        last = min(8, int(sheet.figures.bag_duration.rounded // 60))
        times = tuple(f"{h} h" for h in range(1, max(last, 1) + 1))
    elif not times:
        points = sheet.figures.checkpoints
        times = (
            tuple(
                f"{c.minute.text} (end)" if i == len(points) - 1 else c.minute.text
                for i, c in enumerate(points)
            )
            + DEFAULT_AFTER_END
        )
    return [GRID_FIRST_COLUMN, *times]


def grid_blocks(sheet: Sheet, per_block: int = GRID_COLUMNS_PER_BLOCK) -> list[list[str]]:
    """The grid's columns in blocks that fit across a page (each block is printed as one table)."""
    columns = grid_columns(sheet)
    return [columns[i : i + per_block] for i in range(0, len(columns), per_block)]


def footer(sheet: Sheet) -> str:
    """Whose sheet, made from what: at the foot of every page, so a spilled page is never anonymous."""
    from dosecalc import __version__

    return (
        f"Patient {sheet.order.patient_id or '(no patient ID)'} | {sheet.order.date}"
        f" | protocol {sheet.protocol.id} version {clean(sheet.protocol.version)}"
        f" | {protocols_file(sheet)} | dosecalc {__version__}"
    )


COVER_COLUMNS = (
    "Line",
    "Patient ID",
    "Status",
    "Dose",
    "Drug volume",
    "Rate",
    "Override",
    "Warnings / problems",
)


def cover_row(
    sheet: Sheet, line: str, status: str = "ok"
) -> tuple[str, str, str, str, str, str, str, str]:
    """One produced sheet ("ok", or "warning" where it has one) as a line of a combined PDF's cover
    page: its overrides (reason and operator) and its warnings in their own columns. Lines without
    a sheet are built by batch, with their problem in the last column."""
    f = sheet.figures
    continuous = sheet.protocol.continuous
    override = "; ".join(
        f"{o.limit}: {clean(o.reason)} ({clean(o.operator)})" for o in sheet.overrides
    )
    warnings = "; ".join(f"{w.code}: {clean(w.message)}" for w in sheet.warnings)
    return (
        line,
        sheet.order.patient_id or "",
        status,
        dose_rate(sheet) if continuous else f.dose.text,
        f.drug_volume.text if "drug_volume" in f.values else "neat",
        f.rate.text,
        override or "none",
        warnings,
    )
