"""The plain-Python floor shared by the benchmarks: a day-list generator and the float baseline.

`batch_bench.py` and `run.py` both import these, so the baseline they compare against is the same.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path


def make_list(path: Path, rows: int) -> None:
    """A realistic day list: weights 40-149.9 kg, a name, the default protocol."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["patient_id", "weight", "name"])
        for i in range(rows):
            writer.writerow([f"P{i:07d}", f"{40 + i % 110}.{i % 10} kg", f"Patient {i}"])


def baseline(src: Path, dst: Path) -> None:
    """Plain Python, floats: the same arithmetic as a dose sheet and the same JSON line per row.

    Reads the CSV with the csv module, computes everything a dosecalc.sheet/1 object holds for
    ketamine-iv (0.5 mg/kg, 10 mg/mL stock, 100 mL bag, 40 min, checkpoints every 10 min, reverse
    check) in binary floats, rounds with round() and writes a record with the same keys: the
    floor for "read, compute, write" in Python, with none of dosecalc's checks.
    """
    with open(src, encoding="utf-8", newline="") as inp, open(dst, "w", encoding="utf-8") as out:
        for line, row in enumerate(csv.DictReader(inp), 2):
            number, _unit = row["weight"].split(" ")
            weight = float(number)
            dose_per_kg, stock, bag, minutes = 0.5, 10.0, 100.0, 40.0
            dose = weight * dose_per_kg
            drug_volume = dose / stock
            total = bag + drug_volume
            concentration = dose / total
            rate = total / minutes * 60
            dose_rate = dose / minutes * 60
            checkpoints = [
                {
                    "minute": t,
                    "volume_ml": round(total * t / minutes, 1),
                    "dose": round(dose * t / minutes, 1),
                }
                for t in (10, 20, 30, 40)
            ]
            reverse_dose = rate * minutes / 60 * concentration
            record = {
                "schema": "baseline",
                "dosecalc_version": "floor",
                "protocol_id": "ketamine-iv",
                "protocol_version": "2026-11-21",
                "protocols_file": "protocols.toml",
                "protocols_sha256": "0" * 64,
                "drug": "ketamine",
                "patient_id": row["patient_id"],
                "date": "2026-11-21",
                "weight_entered": row["weight"],
                "weight_kg": round(weight, 1),
                "dosing_weight_kg": round(weight, 1),
                "dose_per_kg": dose_per_kg,
                "dose_per_kg_unit": "mg/kg",
                "dose": round(dose, 1),
                "dose_unit": "mg",
                "stock": stock,
                "stock_unit": "mg/mL",
                "drug_volume_ml": round(drug_volume, 2),
                "diluent": "0.9% sodium chloride",
                "diluent_volume_ml": bag,
                "total_volume_ml": round(total, 1),
                "preparation": "add",
                "concentration": round(concentration, 2),
                "concentration_unit": "mg/mL",
                "duration_min": minutes,
                "rate_ml_per_h": round(rate, 1),
                "dose_rate_per_h": round(dose_rate, 1),
                "dose_rate_per_kg_per_h": round(dose_rate / weight, 2),
                "checkpoints": checkpoints,
                "warnings": [],
                "overrides": [],
                "status": "ok" if abs(reverse_dose - dose) < 1e-9 * dose else "error",
                "line": line,
            }
            out.write(json.dumps(record) + "\n")


def minimal_baseline(src: Path, dst: Path) -> None:
    """The first floor (issue 3): four numbers and a nine-key record per row. Reported for
    comparison with earlier figures; `baseline` is the one the targets are judged against."""
    with open(src, encoding="utf-8", newline="") as inp, open(dst, "w", encoding="utf-8") as out:
        for row in csv.DictReader(inp):
            number, _unit = row["weight"].split(" ")
            weight = float(number)
            dose = weight * 0.5
            drug_volume = dose / 10
            total = 100 + drug_volume
            rate = total / 40 * 60
            record = {
                "schema": "baseline",
                "patient_id": row["patient_id"],
                "weight_kg": round(weight, 1),
                "dose": round(dose, 1),
                "dose_unit": "mg",
                "drug_volume_ml": round(drug_volume, 2),
                "total_volume_ml": round(total, 1),
                "rate_ml_per_h": round(rate, 1),
                "status": "ok",
            }
            out.write(json.dumps(record) + "\n")
