"""The blind independent double check (`dosecalc check`): a second nurse's own computation, and
what they have in their hands and on the pump compared with it, value by value.

The second nurse gives the weight they confirmed and the protocol (with the same options as a
sheet); the sheet is recomputed with the same engine (model.make_sheet), never read. Each value
entered (vial strength, volume drawn up, pump rate, VTBI) must equal, exactly after unit conversion,
the figure this computation prints. A mismatch is shown with what the entries would deliver: the
dose drawn up, and the dose, dose per kg and time the pump's rate and VTBI give. No click, no rich.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from dosecalc.checkcode import FORMAT
from dosecalc.display import figure, format_quantity, text_apart
from dosecalc.errors import InputError, LimitError, Problem
from dosecalc.exact import EXACT
from dosecalc.model import Confirm, Order, Sheet, make_sheet, stock_kind
from dosecalc.protocols import Library
from dosecalc.quantities import compiled, formulas
from dosecalc.sanitize import echo
from dosecalc.units import STRENGTH, Quantity, parse_quantity
from dosecalc.verify import pump_gives

# Entry field -> (units.KINDS kind, the printed figure it is compared with, label).
ENTRIES: dict[str, tuple[str, str, str]] = {
    # As labelled (10 mg/mL, 250 mg/5 mL, 20%); per mL in a units, mmol or mEq protocol (_kind).
    "vial": (STRENGTH, "stock", "Vial strength"),
    "drawn": ("volume", "drug_volume", "Volume drawn up"),
    "rate": ("rate", "rate", "Pump rate"),
    "vtbi": ("volume", "total_volume", "Pump VTBI"),
}
PER_KG_STEP = Decimal("0.001")


@dataclass(frozen=True)
class Entry:
    """One value the second nurse entered, against the figure their own computation prints."""

    field: str
    label: str
    entered: str  # as typed (it passed the quantity grammar, or the check-code grammar)
    printed: str  # the figure as printed: "3.6 mL"
    matches: bool
    implies: str = ""  # for a mismatch: what the entries would deliver


@dataclass(frozen=True)
class DoubleCheck:
    sheet: Sheet  # the second nurse's own computation (never shown whole)
    entries: tuple[Entry, ...]

    @property
    def matches(self) -> bool:
        return all(e.matches for e in self.entries)

    @property
    def check_code(self) -> str:
        return self.sheet.check_code


def parse_code(text: str, field: str = "code") -> str:
    """A check code as typed: 8 characters of Crockford's alphabet, with or without the hyphen, in
    either case ('mv2t-xbkg'); anything else is refused, never corrected (no O read as 0)."""
    shown = text.strip(" ")
    if len(text) > 16 or not FORMAT.fullmatch(shown.upper()):
        raise InputError(
            Problem(
                field,
                "bad_check_code",
                f"{field}: '{echo(text)}' is not a check code. Accepted: 8 characters of "
                "0-9 and A-Z without I, L, O and U, as printed on the sheet (XXXX-XXXX).",
            )
        )
    plain = shown.upper().replace("-", "")
    return f"{plain[:4]}-{plain[4:]}"


def _kind(library: Library, order: Order, field: str) -> str:
    """The grammar of an entry: a vial in the protocol's own amount, as `sheet --stock` takes it
    (50 units/mL for heparin; a mass strength as labelled for a drug dosed in mg)."""
    if field != "vial":
        return ENTRIES[field][0]
    try:
        return stock_kind(library.get(order.protocol_id))
    except InputError:  # an unknown protocol: make_sheet reports it, with the entries' problems
        return STRENGTH


def double_check(
    library: Library,
    order: Order,
    entered: Mapping[str, str | None],
    code: str | None = None,
    confirm: Confirm | None = None,
) -> DoubleCheck:
    """Recompute the sheet for `order` and compare each entered value with its printed figure.
    Raises InputError (bad or no entries, bad order) or LimitError (the computation refuses)."""
    problems: list[Problem] = []
    parsed: dict[str, Quantity] = {}
    for field, text in entered.items():
        if text is None:
            continue
        try:
            parsed[field] = parse_quantity(text, field, _kind(library, order, field))
        except InputError as exc:
            problems.extend(exc.problems)
    typed_code = None
    if code is not None:
        try:
            typed_code = parse_code(code)
        except InputError as exc:
            problems.extend(exc.problems)
    if not parsed and code is None and not problems:
        problems.append(
            Problem(
                "check",
                "nothing_to_check",
                "check: nothing to compare: give what you have in your hands and on the pump "
                '(--vial "10 mg/mL", --drawn "3.6 mL", --rate "155.4 mL/h", --vtbi "103.6 mL") '
                "or the sheet's --code",
            )
        )
    if problems:
        try:
            make_sheet(library, order, gate=False)
        except InputError as exc:
            problems = [*exc.problems, *problems]
        except LimitError:
            pass
        raise InputError(problems)
    sheet = make_sheet(library, order, confirm, gate=False)
    entries = _compare(sheet, parsed)
    if typed_code is not None:
        same = typed_code == sheet.check_code
        entries.append(
            Entry(
                "code",
                "Check code",
                code.strip(" ") if code else "",
                sheet.check_code,
                same,
                ""
                if same
                else "the two computations differ: compare the protocol, the protocols file, "
                "the weight and every prescribed figure with the first nurse",
            )
        )
    return DoubleCheck(sheet, tuple(entries))


def _compare_continuous(sheet: Sheet, parsed: Mapping[str, Quantity]) -> list[Entry]:
    """A continuous infusion (issue 11): what the entries would give, as a dose rate in the
    prescription's unit and as the time the container lasts."""
    figs, p, r = sheet.figures, sheet.protocol, sheet.result
    assert r.config is not None
    checked = compiled(r.config)
    d = p.dose_unit
    if "drawn" in parsed and "drug_volume" not in figs.values:
        raise InputError(
            Problem(
                "drawn",
                "not_used",
                f"drawn: protocol {p.id} runs its container neat: nothing is drawn up (compare "
                "--vial, --rate and --vtbi)",
            )
        )

    def used(field: str, unit: str) -> Decimal:
        q = parsed.get(field)
        return q.to(unit) if q is not None else figs.values[ENTRIES[field][1]].rounded

    rx = figs.of(r.config.prescribed)
    with localcontext(EXACT):
        vial, rate, vtbi = used("vial", f"{d}/mL"), used("rate", "mL/h"), used("vtbi", "mL")
        if "drug_volume" in figs.values:
            drawn = used("drawn", "mL")
            amount = checked["drawn_dose"].value({"drug_volume": drawn, "stock": vial})
            concentration = checked["concentration"].value(
                {"drug_amount": amount, "total_volume": r.values["total_volume"]}
            )
        else:
            concentration = checked["concentration"].value({"stock": vial})
        _, _, gives = pump_gives(
            p, r.config, rate, concentration, r.values["dosing_weight_kg"], rx.unit
        )
        minutes = checked["pump_minutes"].value({"total_volume": vtbi, "rate": rate})
    gives_text = figure(gives, rx.step, rx.unit).exact_text
    rate_text, vtbi_text = format_quantity(rate, "mL/h"), format_quantity(vtbi, "mL")
    at_rate = (
        f"{rate_text} of {format_quantity(concentration, f'{d}/mL')} gives {gives_text}, not the "
        f"{rx.text} prescribed"
    )
    lasts = figure(minutes, p.steps["duration"], "min").exact_text
    with_vtbi = f"a VTBI of {vtbi_text} at {rate_text} runs {lasts}, not {figs.bag_duration.text}"
    if vtbi > r.values["total_volume"]:
        with_vtbi += f"; only {figs.total_volume.text} is in the bag: the pump would run it dry"
    implied = {"vial": at_rate, "drawn": at_rate, "rate": at_rate, "vtbi": with_vtbi}
    return _entries(figs, parsed, implied)


def _entries(figs: Any, parsed: Mapping[str, Quantity], implied: Mapping[str, str]) -> list[Entry]:
    entries = []
    for field, q in parsed.items():
        _, name, label = ENTRIES[field]
        printed = figs.values[name]
        same = q.to(printed.unit) == printed.rounded
        entries.append(
            Entry(
                field, label, q.text.strip(" "), printed.text, same, "" if same else implied[field]
            )
        )
    return entries


def _compare(sheet: Sheet, parsed: Mapping[str, Quantity]) -> list[Entry]:
    if sheet.protocol.continuous:
        return _compare_continuous(sheet, parsed)
    figs, p, r = sheet.figures, sheet.protocol, sheet.result
    d = p.dose_unit
    s = p.steps
    checked = compiled(p.preparation, d)
    weight = r.values["dosing_weight_kg"]

    def used(field: str, unit: str) -> Decimal:
        q = parsed.get(field)
        return q.to(unit) if q is not None else figs.values[ENTRIES[field][1]].rounded

    with localcontext(EXACT):
        vial, drawn = used("vial", f"{d}/mL"), used("drawn", "mL")
        rate, vtbi = used("rate", "mL/h"), used("vtbi", "mL")
        drawn_dose = checked["drawn_dose"].value({"drug_volume": drawn, "stock": vial})
        # The bag as the sheet prepares it (issue 11: a neat dose has none; a volume per kg or to
        # a concentration was settled for this patient), with the volume actually drawn up.
        bag = {"drug_volume": drawn}
        if p.preparation != "neat":
            bag["container_volume"] = r.values[
                "diluent_volume" if p.preparation == "add" else "total_volume"
            ]
        for f in formulas(p.preparation):
            if f.target in ("diluent_volume", "total_volume"):
                bag[f.target] = checked[f.target].value(bag)
        bag_volume = bag["total_volume"]
        concentration = checked["concentration"].value(
            {"dose": drawn_dose, "total_volume": bag_volume}
        )
        # A pump delivers what the bag holds, however large its VTBI (it runs the bag dry).
        delivered = checked["delivered_dose"].value(
            {"total_volume": min(vtbi, bag_volume), "concentration": concentration}
        )
        minutes = checked["pump_minutes"].value({"total_volume": vtbi, "rate": rate})
        dry = checked["pump_minutes"].value({"total_volume": bag_volume, "rate": rate})
        in_time = min(
            vtbi,
            bag_volume,
            checked["reverse_volume"].value({"rate": rate, "duration": r.duration}),
        )
        delivered_in_time = checked["delivered_dose"].value(
            {"total_volume": in_time, "concentration": concentration}
        )
        dose_rate = checked["pump_dose_rate"].value({"rate": rate, "concentration": concentration})
        dose_rate_kg = checked["dose_rate_per_kg"].value(
            {"dose_rate": dose_rate, "dosing_weight_kg": weight}
        )

        def per_kg(dose: Decimal) -> str:
            value = checked["reverse_dose_per_kg"].value(
                {"reverse_dose": dose, "dosing_weight_kg": weight}
            )
            shown = figure(value, PER_KG_STEP, f"{d}/kg")
            if value and not shown.rounded:  # never "0 mg/kg" for an amount that is not 0
                return text_apart(value, Decimal(0), f"{d}/kg", PER_KG_STEP)
            return shown.text

    # Per kg where the protocol prescribes per kg; a fixed dose (or per m2, per day) has no dose
    # per kg figure, and its amounts are shown in the dose unit alone.
    per_kg_rx = "dose_per_kg" in figs.values

    def dose_text(value: Decimal) -> str:
        text = text_apart(value, Decimal(0), d, s["dose"])  # a non-zero amount never reads "0 mg"
        return f"{text} ({per_kg(value)})" if per_kg_rx else text

    def minutes_text(value: Decimal) -> str:
        return figure(value, s["duration"], "min").exact_text

    # The prescribed dose unrounded: "11.5 mL holds 460 mg, not the 460 mg prescribed" read as a
    # contradiction where the dose printed as 460 mg was 463.71 mg.
    # Per kg of the dose itself, as the entries' amounts are: a capped dose (10,000 units at
    # 130 kg) is 76.923 units/kg, not the 80 units/kg prescribed before the cap.
    dose_rx = figs.dose.exact_text
    prescribed = f"{dose_rx} ({per_kg(r.values['dose'])})" if per_kg_rx else dose_rx
    rate_per_kg = figs.values.get("dose_rate_per_kg")
    # Entered values are shown exactly as they are (never rounded to a step).
    drawn_text, vial_text = format_quantity(drawn, "mL"), format_quantity(vial, f"{d}/mL")
    rate_text, vtbi_text = format_quantity(rate, "mL/h"), format_quantity(vtbi, "mL")
    in_syringe = f"{drawn_text} of {vial_text} holds {dose_text(drawn_dose)}, not the {prescribed} prescribed"
    if bag.get("diluent_volume", Decimal(1)) < 0:
        in_syringe += f"; it does not fit the {figure(bag_volume, s['volume'], 'mL').text} syringe"
    given_rate = figure(dose_rate, s["dose_rate"], f"{d}/h").exact_text
    sheet_rate = figs.dose_rate.text
    if rate_per_kg is not None:
        given_rate += f" ({figure(dose_rate_kg, rate_per_kg.step, rate_per_kg.unit).exact_text})"
        sheet_rate += f" ({rate_per_kg.text})"
    runs = minutes_text(minutes)
    runs = (
        f"runs {runs}" if runs == figs.duration.text else f"runs {runs}, not {figs.duration.text}"
    )

    def delivers(dose: Decimal) -> str:
        """'delivers 360 mg (5 mg/kg), not the 36 mg (0.5 mg/kg) prescribed', or, where that is
        the prescribed dose (a rate too fast still gives it all), never "X, not the X"."""
        given = dose_text(dose)
        if given == prescribed:
            return f"delivers the {prescribed} prescribed"
        return f"delivers {given}, not the {prescribed} prescribed"

    at_rate = (
        f"at {rate_text} a VTBI of {vtbi_text} {runs}: {given_rate}, not {sheet_rate}; in the "
        f"prescribed {figs.duration.text} it {delivers(delivered_in_time)}"
    )
    with_vtbi = (
        f"a VTBI of {vtbi_text} at {rate_text} runs {minutes_text(minutes)} and "
        f"{delivers(delivered)}"
    )
    if vtbi > bag_volume:
        dry_text = f"only {figure(bag_volume, s['volume'], 'mL').text} is prepared"
        dry_text += f": the pump would run the bag dry after {minutes_text(dry)}"
        at_rate += f"; {dry_text}"
        with_vtbi += f"; {dry_text}"
    implied = {"vial": in_syringe, "drawn": in_syringe, "rate": at_rate, "vtbi": with_vtbi}
    return _entries(figs, parsed, implied)
