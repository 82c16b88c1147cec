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
    """Plain Python, floats: the same arithmetic and a JSON line per row.

    Reads the CSV with the csv module, computes ketamine-iv (0.5 mg/kg, 10 mg/mL, 100 mL bag,
    40 min) in binary floats and writes JSON Lines: the floor for "read, compute, write" in Python.
    """
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
