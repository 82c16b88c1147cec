"""Crash safety: `dosecalc batch` as a real process, SIGKILLed at 55 random moments spread over runs.

After every kill each file in the output folder is either absent or complete and valid (every sheet
and results file equal to an uninterrupted run's bytes, the manifest valid JSON whose hashes match),
hidden temporaries never carry a sheet's name, and no pre-existing file was changed: an unrelated
file is never touched, a rerun without --force refuses and leaves the previous run's files as they
were, and a --force rerun leaves each file either the old or the new complete version.

The moments are drawn at random over the measured length of an uninterrupted run; the seed is in
every failure message (DOSECALC_CRASH_SEED replays one).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import DATE, command, day_list

from dosecalc.files import TEMP_PREFIX

pytestmark = pytest.mark.slow

ROWS = 700  # a run of about 1 to 1.5 s on the CI machine: 700 JSON sheets, each written and fsynced
SEED = int(os.environ.get("DOSECALC_CRASH_SEED", str(random.SystemRandom().randrange(10**6))))
UNRELATED = "notes-from-the-pharmacy.txt"
CONTROL_FILES = ("results.csv", "errors.csv", "manifest.json")


def run_to_end(daylist: Path, out: Path, *extra: str) -> float:
    started = time.monotonic()
    subprocess.run(
        command(str(daylist), "--out", str(out), "--sheets", "json", "--date", DATE, *extra),
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def kill_at(daylist: Path, out: Path, delay: float, *extra: str) -> int | None:
    """Start a run, SIGKILL it after `delay` seconds; the exit code if it finished first."""
    process = subprocess.Popen(
        command(str(daylist), "--out", str(out), "--sheets", "json", "--date", DATE, *extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    finished = process.poll()
    process.send_signal(signal.SIGKILL)
    process.wait()
    return finished


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def assert_complete(
    out: Path, versions: list[dict[str, bytes]], why: str, unrelated: str = UNRELATED
) -> None:
    """Every visible file is one of the complete versions; the manifest is valid and matches; a
    folder without its manifest has the run's INCOMPLETE marker, naming every file of a batch run
    in it (so that a rerun with --force can replace or remove each one)."""
    visible = {p.name for p in out.iterdir() if not p.name.startswith(TEMP_PREFIX)}
    if "manifest.json" not in visible and visible - {unrelated}:
        assert "INCOMPLETE" in visible, (why, "a folder without its manifest and no marker")
        marker = (out / "INCOMPLETE").read_text(encoding="utf-8")
        assert marker.startswith("This folder is INCOMPLETE: a dosecalc batch run"), why
        named = {line[2:] for line in marker.splitlines() if line.startswith("  ")}
        assert visible - {unrelated, "INCOMPLETE"} <= named, (why, "a file the marker omits")
    for path in out.iterdir():
        name = path.name
        if name.startswith(TEMP_PREFIX):
            # A temporary is hidden and never named like a sheet or a results file.
            assert not name.endswith((".json", ".txt", ".csv", ".pdf", ".html")), why
            continue
        if name == "INCOMPLETE":  # checked above (with a manifest: the instant before its removal)
            continue
        data = path.read_bytes()
        if name == "manifest.json":
            manifest = json.loads(data)  # complete JSON: the run had finished writing
            for item in manifest["files"]:
                written = (out / item["name"]).read_bytes()
                assert hashlib.sha256(written).hexdigest() == item["sha256"], (why, item)
            continue
        choices = [v[name] for v in versions if name in v]
        assert choices, (why, f"{name} is not a file any complete run writes")
        assert data in choices, (why, f"{name} is partial or corrupted")


def delays(rng: random.Random, length: float, count: int) -> list[float]:
    """`count` moments spread over the run: one random moment in each of `count` equal slices."""
    return [length * (i + rng.random()) / count for i in range(count)]


def test_a_run_killed_at_thirty_random_moments_leaves_only_complete_files(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    daylist = day_list(tmp_path / "list.csv", ROWS)
    reference = tmp_path / "reference"
    length = run_to_end(daylist, reference)
    complete = snapshot(reference)
    unrelated = b"Call pharmacy before 9 am.\n"
    outcomes = {"before any write": 0, "in the middle of the writes": 0, "finished": 0}
    for i, delay in enumerate(delays(rng, length * 1.1, 30)):
        why = f"seed {SEED}, kill {i} at {delay:.3f} s of {length:.3f} s"
        out = tmp_path / f"killed{i}"
        out.mkdir()
        (out / UNRELATED).write_bytes(unrelated)
        kill_at(daylist, out, delay)
        assert (out / UNRELATED).read_bytes() == unrelated, why
        assert_complete(out, [complete | {UNRELATED: unrelated}], why)
        visible = {p.name for p in out.iterdir() if not p.name.startswith(TEMP_PREFIX)}
        if "manifest.json" in visible:
            outcomes["finished"] += 1
        elif visible <= {UNRELATED, "INCOMPLETE"}:
            outcomes["before any write"] += 1
        else:  # visibly incomplete: sheets, but no manifest
            outcomes["in the middle of the writes"] += 1
            assert len(visible) < len(complete) + 2, why
    # The moments are spread over the whole run: some of them stop it while it writes.
    assert outcomes["in the middle of the writes"] >= 3, (SEED, outcomes)


def test_a_rerun_without_force_killed_at_random_leaves_the_previous_files_untouched(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED + 1)
    daylist = day_list(tmp_path / "list.csv", ROWS)
    out = tmp_path / "out"
    run_to_end(daylist, out)
    (out / UNRELATED).write_bytes(b"keep me\n")
    before = snapshot(out)
    started = time.monotonic()
    refused = subprocess.run(
        command(str(daylist), "--out", str(out), "--sheets", "json", "--date", DATE),
        capture_output=True,
        text=True,
    )
    length = time.monotonic() - started
    assert refused.returncode == 2
    assert "already exist" in refused.stderr
    assert snapshot(out) == before
    for i, delay in enumerate(delays(rng, length, 10)):
        why = f"seed {SEED + 1}, kill {i} at {delay:.3f} s"
        kill_at(daylist, out, delay)
        assert snapshot(out) == before, why  # nothing added, changed or left behind


def test_a_forced_rerun_killed_at_random_leaves_each_file_old_or_new_and_complete(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED + 2)
    old_list = tmp_path / "old.csv"
    old_list.write_text(
        "patient_id,weight\n" + "".join(f"P{i:06d},{41 + i % 100} kg\n" for i in range(ROWS))
    )
    new_list = day_list(tmp_path / "new.csv", ROWS)  # same ids, other weights: other sheets
    old_ref, new_ref = tmp_path / "old-reference", tmp_path / "new-reference"
    run_to_end(old_list, old_ref)
    length = run_to_end(new_list, new_ref, "--force")
    old, new = snapshot(old_ref), snapshot(new_ref)
    assert old[f"{DATE}_P000000.json"] != new[f"{DATE}_P000000.json"]
    for i, delay in enumerate(delays(rng, length * 1.1, 15)):
        why = f"seed {SEED + 2}, kill {i} at {delay:.3f} s of {length:.3f} s"
        out = tmp_path / f"forced{i}"
        out.mkdir()
        for name, data in old.items():
            (out / name).write_bytes(data)
        (out / UNRELATED).write_bytes(b"keep me\n")
        kill_at(new_list, out, delay, "--force")
        assert (out / UNRELATED).read_bytes() == b"keep me\n", why
        for name in old:  # nothing lost: each file is there, old or new ...
            # ... except the old manifest, removed before the first write so that a folder of
            # mixed old and new sheets never looks complete (a manifest, if any, matches).
            assert (out / name).exists() or name == "manifest.json", (why, name)
        assert_complete(out, [old, new, {UNRELATED: b"keep me\n"}], why)
        if i % 5 == 2 and not (out / "manifest.json").exists():
            # A killed --force rerun left old and new sheets without a manifest: the next --force
            # run completes the folder (it refused every rerun: the old sheets were no longer
            # listed by any manifest).
            run_to_end(new_list, out, "--force")
            after = snapshot(out)
            assert set(after) == set(new) | {UNRELATED}, why  # the killed run's temporary too
            assert all(after[n] == new[n] for n in new if n != "manifest.json"), why
