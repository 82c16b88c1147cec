"""The JSON sheet (schema dosecalc.sheet/1) and error object (dosecalc.error/1).

Numbers are written from the rounded Decimals as JSON number text: never through a binary float.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _quote  # json's own C string encoder
from typing import Any

from dosecalc import __version__
from dosecalc.display import Figure, format_number
from dosecalc.errors import DosecalcError
from dosecalc.model import Gate, Sheet, dosing_basis, titration_outside
from dosecalc.protocols import Protocol
from dosecalc.quantities import QUANTITIES, Config
from dosecalc.verify import RateCheck


class JsonNumber(str):
    """Text written as a bare JSON number (exact decimal digits, never through a float)."""


SHEET_SCHEMA = "dosecalc.sheet/1"
ERROR_SCHEMA = "dosecalc.error/1"


def _protocol_keys(sheet: Sheet) -> dict[str, Any]:
    p = sheet.protocol
    return {
        "schema": SHEET_SCHEMA,
        "dosecalc_version": __version__,
        "protocol_id": p.id,
        "protocol_version": p.version,
        "protocols_file": sheet.library.path,
        "protocols_sha256": sheet.library.sha256,
        "drug": p.drug,
    }


def _order_keys(sheet: Sheet) -> dict[str, Any]:
    o = sheet.order
    keys = {"patient_id": o.patient_id, "date": o.date, "weight_entered": o.weight}
    if o.height is not None:
        keys["height_entered"] = o.height
    if o.sex is not None:
        keys["sex"] = o.sex
    return keys


def _calculation(sheet: Sheet) -> dict[str, Any]:
    """The keys that depend only on the protocol and the quantities (model._calculated): one per
    quantity of the table (quantities.QUANTITIES), with its unit key where it has one."""
    f, p = sheet.figures, sheet.protocol
    keys: dict[str, Any] = {}
    figures = f.values
    for key, name, unit_key, after in _quantity_keys(p, tuple(figures)):
        fig = figures[name]
        keys[key] = fig
        if unit_key is not None:
            keys[unit_key] = fig.unit
        if after == "dosing_weight_basis":
            keys[after] = dosing_basis(sheet)[0]
        elif after == "dose_capped":
            keys[after] = sheet.result.capped
    if p.continuous:
        # The prescribed rate and the patient's rate under their own keys, in the prescription's
        # unit (per minute: the quantities of the table already carry these keys).
        if "dose_rate_per_min" not in f.values:
            keys.update({"dose_rate": f.dose_rate, "dose_rate_unit": f.dose_rate.unit})
        if p.per == "kg" and "dose_rate_per_kg_per_min" not in f.values:
            keys.update(
                {
                    "dose_rate_per_kg": f.dose_rate_per_kg,
                    "dose_rate_per_kg_unit": f.dose_rate_per_kg.unit,
                }
            )
    keys.update(
        {
            "stock_label": sheet.result.chosen_stock.text.strip(),
            "stock_per_ml": f.stock,  # the same as `stock`, under the name issue 11 gives it
            "diluent": p.diluent or None,
            "preparation": p.preparation,
            "max_rounding_change_percent": _percent(p.max_rounding_change),
        }
    )
    reverse = sheet.reverse
    if isinstance(reverse, RateCheck):
        hard = p.limits["rate"].hard
        keys["titration"] = [
            {
                "dose_rate": dose_rate,
                "rate_ml_per_h": rate,
                "within_rate_hard_limits": hard is None or hard.contains(rate.rounded),
                "within_hard_limits": not outside,
            }
            for (dose_rate, rate), outside in zip(
                f.titration, titration_outside(sheet), strict=True
            )
        ]
        keys["reverse_check"] = {
            "dose_rate": _as_printed(reverse.dose_rate),
            "dose_rate_unit": reverse.dose_rate.unit,
            "dose_rate_per_kg": _as_printed(reverse.dose_rate_per_kg),
            "dose_rate_per_kg_unit": (
                None if reverse.dose_rate_per_kg is None else reverse.dose_rate_per_kg.unit
            ),
            "prescribed": _as_printed(reverse.prescribed_unit),
            "prescribed_unit": reverse.prescribed_unit.unit,
            "agrees": reverse.agrees,
        }
    else:
        keys["checkpoints"] = [
            {"minute": c.minute, "volume_ml": c.volume, "dose": c.dose} for c in f.checkpoints
        ]
        keys["reverse_check"] = {
            "volume_ml": _as_printed(reverse.volume),
            "drawn_dose": _as_printed(reverse.drawn_dose),
            "dose": _as_printed(reverse.dose),
            "dose_per_kg": _as_printed(reverse.dose_per_kg),
            "agrees": reverse.agrees,
        }
    keys["check_code"] = sheet.check_code
    return keys


@lru_cache(maxsize=256)
def _quantity_keys(
    p: Protocol, names: tuple[str, ...]
) -> tuple[tuple[str, str, str | None, str | None], ...]:
    """The JSON keys of a sheet's quantities, in table order, the same for every row of a
    configuration: (key, quantity, its unit's key or None, the key that follows it or None)."""
    # A protocol dosing per kg of actual weight without caps keeps the original keys exactly.
    basis = p.config().dosing_basis() != Config(p.preparation, p.dose_unit)
    found = []
    for spec in QUANTITIES:
        if spec.json is None or spec.name not in names:
            continue
        after = None
        if spec.name == "dosing_weight_kg" and basis:
            after = "dosing_weight_basis"
        if spec.name == "dose" and "dose_uncapped" in names:
            after = "dose_capped"
        found.append((spec.json, spec.name, spec.json_unit, after))
    return tuple(found)


def _as_printed(fig: Figure | None) -> JsonNumber | None:
    """A reverse check's value as the sheets print it (unrounded, two or more decimals finer than
    its step: 270.27 mL, 0.0499 mcg/kg/min), not rounded to the step: rounded, 1,047.17 mg read
    1,050 mg, hiding the shortfall the check is there to show."""
    if fig is None:
        return None
    if fig.exact == fig.rounded:  # not rounded: the printed digits are the figure's own
        return JsonNumber(fig.json)
    return JsonNumber(format_number(fig.exact_shown, grouping=False))


def _percent(fraction: Decimal) -> JsonNumber:
    return JsonNumber(format_number(fraction * 100, grouping=False))


def _preinfusion(sheet: Sheet) -> dict[str, Any]:
    """Only when the protocol has a gate or vitals were given (other sheets are unchanged)."""
    return {} if sheet.gate is None else _preinfusion_keys(sheet.gate)


def _preinfusion_keys(gate: Gate) -> dict[str, Any]:
    return {
        "preinfusion": {
            "readings": [
                {"name": r.name, "value": r.value, "verdict": r.verdict} for r in gate.readings
            ],
            "verdict": gate.verdict,
            "checklist": list(gate.checklist),
        }
    }


def _tail(sheet: Sheet, gate: bool = True) -> dict[str, Any]:
    return {
        **(_preinfusion(sheet) if gate else {}),
        "changed_from_protocol": [
            {"field": c.field, "protocol": c.protocol, "used": c.used} for c in sheet.changes
        ],
        "warnings": [{"code": w.code, "message": w.message} for w in sheet.warnings],
        "overrides": [
            {"limit": v.limit, "value": v.value, "reason": v.reason, "operator": v.operator}
            for v in sheet.overrides
        ],
        "status": "ok",
    }


def sheet_object(sheet: Sheet) -> dict[str, Any]:
    """The sheet as an ordered mapping of JSON values (Figures become numbers)."""
    return {**_protocol_keys(sheet), **_order_keys(sheet), **_calculation(sheet), **_tail(sheet)}


# A day list repeats protocols and weights, and model._calculated shares one Figures object between
# rows with the same inputs: the JSON text of the keys that depend only on the protocol, and of
# those that depend only on the calculation, is kept per object (checked by identity, bounded).
_KEPT: dict[tuple[str, int, int | None], tuple[Any, list[str]]] = {}
_KEPT_MAX = 4096


def _kept_items(part: str, owner: Any, build: Any, sheet: Sheet, indent: int | None) -> list[str]:
    key = (part, id(owner), indent)
    kept = _KEPT.get(key)
    if kept is None or kept[0] is not owner:
        if len(_KEPT) >= _KEPT_MAX:
            _KEPT.clear()
        kept = (owner, _items(build(sheet), indent, 0))
        _KEPT[key] = kept
    return kept[1]


def sheet_json(sheet: Sheet, indent: int | None = None, extra: dict[str, Any] | None = None) -> str:
    """The JSON text of sheet_object(sheet) (plus `extra` keys at the end), built faster."""
    items = _kept_items("protocol", sheet.protocol, _protocol_keys, sheet, indent)
    items = items + _items(_order_keys(sheet), indent, 0)
    items += _kept_items("calculation", sheet.figures, _calculation, sheet, indent)
    if sheet.gate is not None:
        items.append(_gate_item(sheet.gate, indent))
    items += _items({**_tail(sheet, gate=False), **(extra or {})}, indent, 0)
    return _join(items, "{", "}", indent, 0)


@lru_cache(maxsize=256)
def _gate_item(gate: Gate, indent: int | None) -> str:
    """The "preinfusion" key's JSON text: the same for every row of a protocol whose vitals are
    the same (a day list without vitals: every row), so it is written once per distinct Gate."""
    return _items(_preinfusion_keys(gate), indent, 0)[0]


def error_object(error: DosecalcError) -> dict[str, Any]:
    return {
        "schema": ERROR_SCHEMA,
        "status": error.status,
        "errors": [
            {"field": p.field, "code": p.code, "message": p.message} for p in error.problems
        ],
    }


def dumps(value: Any, indent: int | None = None, _level: int = 0) -> str:
    """JSON text; Figures are written as the exact digits of their rounded value."""
    kind = type(value)  # exact types first: the common cases, cheaply
    if kind is str:
        return _quote(value)
    if kind is Figure:
        return value.json
    if kind is JsonNumber:
        return str(value)
    if value is None:
        return "null"
    if kind is int:
        return str(value)
    if kind is bool:
        return "true" if value else "false"
    if isinstance(value, dict):
        return _join(_items(value, indent, _level), "{", "}", indent, _level)
    if isinstance(value, list | tuple):
        return _join([dumps(v, indent, _level + 1) for v in value], "[", "]", indent, _level)
    return json.dumps(value)  # str or int subclasses


_key = lru_cache(maxsize=1024)(_quote)


def _items(mapping: dict[str, Any], indent: int | None, level: int) -> list[str]:
    return [f"{_key(k)}: {dumps(v, indent, level + 1)}" for k, v in mapping.items()]


def _join(items: list[str], open_: str, close: str, indent: int | None, level: int) -> str:
    if not items:
        return open_ + close
    if indent is None:
        return open_ + ", ".join(items) + close
    pad = " " * (indent * (level + 1))
    return open_ + "\n" + ",\n".join(pad + i for i in items) + "\n" + " " * (indent * level) + close


def render(sheet: Sheet) -> bytes:
    return (sheet_json(sheet, indent=2) + "\n").encode("utf-8")
