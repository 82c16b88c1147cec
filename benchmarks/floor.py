"""The plain-Python floor of issue 14's batch figure: the day lists, and a float script that does a
sheet's arithmetic and writes the same keys, one JSON line per row.

    python benchmarks/floor.py DAYLIST PROTOCOLS.toml > out.jsonl

It reads the protocols file with tomllib and each quantity with `str.split` (no grammar, no pint,
no exact decimals, no limits): the floor for "read, compute, write" in Python.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent.parent / "protocols.toml"
# Issue 14: three protocols of the shipped file; `run.py --protocol-ids` and `--protocols` change it.
PROTOCOL_IDS = ("ketamine-iv", "ketamine-iv-ibw", "ketamine-iv-syringe")
LB = 0.45359237
DISTINCT_WEIGHTS = 9501  # 45.00 to 140.00 kg at 0.01 kg


def unique_list(
    path: Path, rows: int, protocol_ids: Sequence[str] = PROTOCOL_IDS, protocols: Path = SHIPPED
) -> None:
    """Weights 45-140 kg at 0.01 kg in a stride order: a weight comes back only after 9,501 rows,
    well past the engine's 2,048-entry cache, so nearly every row is computed. One row in ten is
    written in lb (the same kg to 0.01 lb); the protocols in turn; height (155-194 cm) and sex on
    the rows of a protocol with a dosing_weight basis."""
    bodies = tomllib.loads(protocols.read_text(encoding="utf-8"))["protocols"]
    needs_height = {pid: "dosing_weight" in bodies[pid] for pid in protocol_ids}
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["patient_id", "weight", "height", "sex", "protocol"])
        for i in range(rows):
            kg = 45 + (i * 7919 % DISTINCT_WEIGHTS) / 100
            weight = f"{kg / LB:.2f} lb" if i % 10 == 9 else f"{kg:.2f} kg"
            pid = protocol_ids[i % len(protocol_ids)]
            height, sex = (f"{155 + i % 40} cm", ("female", "male")[i % 2 == 0])
            if not needs_height[pid]:
                height = sex = ""
            writer.writerow([f"P{i:07d}", weight, height, sex, pid])


def repeated_list(path: Path, rows: int) -> None:
    """The issue-3/6 list: 1,100 distinct weights (40-149.9 kg), the default protocol."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["patient_id", "weight", "name"])
        for i in range(rows):
            writer.writerow([f"P{i:07d}", f"{40 + i % 110}.{i % 10} kg", f"Patient {i}"])


def number(text: str) -> float:
    return float(text.split(" ")[0])


def protocol_values(body: dict) -> dict:
    basis = body.get("dosing_weight", {})
    trigger = basis.get("use_when_bmi_at_least")
    return {
        "version": body["version"],
        "drug": body["drug"],
        "diluent": body["diluent"],
        "per_kg": number(body["dose"]),
        "stock": number(body["stock"][0]),
        "stock_label": body["stock"][0],
        "bag": number(body["diluent_volume"]),
        "minutes": number(body["duration"]),
        "every": number(body["checkpoint_every"]),
        "preparation": body["preparation"],
        "ideal": basis.get("basis") == "ideal",
        "trigger": number(trigger) if trigger else 0.0,
    }


def baseline(daylist: Path, protocols_file: Path, out: object = sys.stdout) -> None:
    """One JSON line per row, with the keys of a dosecalc.sheet/1 object, computed in floats."""
    raw = protocols_file.read_bytes()
    library = tomllib.loads(raw.decode("utf-8"))
    sha = hashlib.sha256(raw).hexdigest()
    values = {pid: protocol_values(body) for pid, body in library["protocols"].items()}
    write = out.write  # type: ignore[attr-defined]
    with open(daylist, encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), 2):
            pid = row.get("protocol") or library["default"]
            p = values[pid]
            amount, unit = row["weight"].split(" ")
            weight = float(amount) * (LB if unit == "lb" else 1.0)
            record = {
                "schema": "baseline",
                "dosecalc_version": "floor",
                "protocol_id": pid,
                "protocol_version": p["version"],
                "protocols_file": str(protocols_file),
                "protocols_sha256": sha,
                "drug": p["drug"],
                "patient_id": row["patient_id"],
                "date": "2026-11-21",
                "weight_entered": row["weight"],
            }
            dosing = weight
            if p["ideal"]:
                cm = number(row["height"])
                bmi = weight / (cm / 100) ** 2
                ideal = (50.0 if row["sex"] == "male" else 45.5) + 0.9 * (cm - 152.4)
                basis = "ideal" if bmi >= p["trigger"] else "actual"
                dosing = min(weight, ideal) if basis == "ideal" else weight
                record.update(height_entered=row["height"], sex=row["sex"])
                record.update(weight_kg=round(weight, 1), height_cm=cm, bmi=round(bmi, 1))
                record.update(ideal_weight_kg=round(ideal, 1), dosing_weight_kg=round(dosing, 1))
                record["dosing_weight_basis"] = basis
            else:
                record.update(weight_kg=round(weight, 1), dosing_weight_kg=round(weight, 1))
            minutes, every = p["minutes"], p["every"]
            dose = dosing * p["per_kg"]
            drug_volume = dose / p["stock"]
            total = p["bag"] + drug_volume if p["preparation"] == "add" else p["bag"]
            concentration = dose / total
            rate = total / minutes * 60
            dose_rate = dose / minutes * 60
            reverse_volume = rate * minutes / 60
            reverse_dose = reverse_volume * concentration
            figures = {
                "dose_per_kg": p["per_kg"],
                "dose_per_kg_unit": "mg/kg",
                "dose": round(dose, 1),
                "dose_unit": "mg",
                "stock": p["stock"],
                "stock_unit": "mg/mL",
                "drug_volume_ml": round(drug_volume, 2),
                "diluent_volume_ml": p["bag"],
                "total_volume_ml": round(total, 1),
                "duration_min": minutes,
                "rate_ml_per_h": round(rate, 1),
                "concentration": round(concentration, 3),
                "concentration_unit": "mg/mL",
                "dose_rate_per_h": round(dose_rate, 1),
                "dose_rate_per_kg_per_h": round(dose_rate / dosing, 3),
                "stock_label": p["stock_label"],
                "stock_per_ml": p["stock"],
                "diluent": p["diluent"],
                "preparation": p["preparation"],
                "max_rounding_change_percent": 5,
                "checkpoints": [
                    {
                        "minute": t,
                        "volume_ml": round(total * t / minutes, 1),
                        "dose": round(dose * t / minutes, 1),
                    }
                    for t in range(int(every), int(minutes) + 1, int(every))
                ],
                "reverse_check": {
                    "volume_ml": round(reverse_volume, 1),
                    "drawn_dose": round(drug_volume * p["stock"], 1),
                    "dose": round(reverse_dose, 1),
                    "dose_per_kg": round(reverse_dose / dosing, 3),
                    "agrees": abs(reverse_dose - dose) < 1e-9 * dose,
                },
            }
            record.update(figures)
            code = hashlib.sha256(json.dumps(figures).encode()).hexdigest()[:8].upper()
            record["check_code"] = f"{code[:4]}-{code[4:]}"
            record["preinfusion"] = {"readings": [], "verdict": "NOT CHECKED", "checklist": []}
            record["changed_from_protocol"] = []
            record["warnings"] = (
                [{"code": "WEIGHT_IN_LB", "message": f"weight in lb ({row['weight']})"}]
                if unit == "lb"
                else []
            )
            record["overrides"] = []
            record["status"] = "warning" if unit == "lb" else "ok"
            record["line"] = line
            write(json.dumps(record) + "\n")


if __name__ == "__main__":
    baseline(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else SHIPPED)
