"""The protocols file: every problem reported at once with its key path; which file is used; and
the file, version and SHA-256 named on every sheet.

Broken variants are made by editing the text of tests/data/test_protocols.toml; each edit checks that
the text it replaces is there, so a changed fixture cannot make a test pass vacuously.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dosecalc import protocols, protocols_file
from dosecalc.cli import cli
from dosecalc.errors import ProtocolFileError

DATA = Path(__file__).parent / "data"
TEST_PROTOCOLS = DATA / "test_protocols.toml"
SHIPPED_PROTOCOLS = Path(__file__).resolve().parent.parent / "protocols.toml"
BASE = TEST_PROTOCOLS.read_text(encoding="utf-8")
SHEET = ["sheet", "--weight", "72 kg", "--date", "2026-11-21"]
KET = "protocols.ketamine-iv"
DEX = "protocols.dex-load"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edited(*edits: tuple[str, str]) -> str:
    """BASE with each (old, new) applied to the first occurrence of old (which must exist)."""
    text = BASE
    for old, new in edits:
        assert old in text, f"fixture text not found: {old!r}"
        text = text.replace(old, new, 1)
    return text


def write(tmp_path: Path, text: str | bytes, name: str = "protocols.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> dict[str, set[str]]:
    """Key path -> problem codes, from the loader's exception."""
    with pytest.raises(ProtocolFileError) as caught:
        protocols.load(path)
    found: dict[str, set[str]] = {}
    for problem in caught.value.problems:
        found.setdefault(problem.field, set()).add(problem.code)
    return found


def test_the_test_protocols_file_is_valid() -> None:
    library = protocols.load(TEST_PROTOCOLS)
    assert sorted(library.protocols) == ["dex-load", "ketamine-iv", "ketamine-undiluted"]
    assert library.default == "ketamine-iv"
    assert library.sha256 == sha256_of(TEST_PROTOCOLS)


# (test id, edits, {key path: code expected there})
BROKEN = [
    ("missing drug", [('drug = "ketamine"\n', "")], {f"{KET}.drug": "missing"}),
    ("missing version", [('version = "test-1"\n', "")], {f"{KET}.version": "missing"}),
    ("missing dose", [('dose = "0.5 mg/kg"\n', "")], {f"{KET}.dose": "missing"}),
    ("missing stock", [('stock = ["10 mg/mL", "50 mg/mL"]\n', "")], {f"{KET}.stock": "missing"}),
    ("missing round step", [('rate = "0.1 mL/h"\n', "")], {f"{KET}.round.rate": "missing"}),
    (
        "missing required limit",
        [('rate = { hard = ["1 mL/h", "999 mL/h"] }\n', "")],
        {f"{KET}.limits.rate": "missing"},
    ),
    ("missing format", [("format = 1\n", "")], {"format": "missing"}),
    ("unsupported format", [("format = 1\n", "format = 2\n")], {"format": "unsupported"}),
    ("missing default", [('default = "ketamine-iv"\n', "")], {"default": "missing"}),
    (
        "typo dose_per_kgg",
        [('dose = "0.5 mg/kg"', 'dose_per_kgg = "0.5 mg/kg"')],
        {f"{KET}.dose_per_kgg": "unknown_key", f"{KET}.dose": "missing"},
    ),
    (
        "unknown top-level key",
        [("format = 1\n", "format = 1\nformatt = 1\n")],
        {"formatt": "unknown_key"},
    ),
    (
        "typo in a limit name",
        [("weight = { soft", "weigth = { soft")],
        {f"{KET}.limits.weigth": "unknown_key", f"{KET}.limits.weight": "missing"},
    ),
    (
        "typo in a bounds key",
        [('hard = ["20 kg", "300 kg"]', 'hrad = ["20 kg", "300 kg"]')],
        {f"{KET}.limits.weight.hrad": "unknown_key", f"{KET}.limits.weight.hard": "missing"},
    ),
    (
        "number instead of text",
        [('drug = "ketamine"', "drug = 42")],
        {f"{KET}.drug": "wrong_type"},
    ),
    (
        "number instead of a quantity",
        [('diluent_volume = "100 mL"', "diluent_volume = 100")],
        {f"{KET}.diluent_volume": "wrong_type"},
    ),
    (
        "40 mL as a duration",
        [('duration = "40 min"', 'duration = "40 mL"')],
        {f"{KET}.duration": "wrong_dimension"},
    ),
    (
        "mL in a weight bound",
        [('soft = ["40 kg"', 'soft = ["40 mL"')],
        {f"{KET}.limits.weight.soft[0]": "wrong_dimension"},
    ),
    (
        "mass stock",
        [('stock = ["10 mg/mL"', 'stock = ["10 mg"')],
        {f"{KET}.stock[0]": "wrong_dimension"},
    ),
    (
        "toml nan",
        [('diluent_volume = "100 mL"', "diluent_volume = nan")],
        {f"{KET}.diluent_volume": "wrong_type"},
    ),
    (
        "toml inf",
        [('checkpoint_every = "10 min"', "checkpoint_every = inf")],
        {f"{KET}.checkpoint_every": "wrong_type"},
    ),
    (
        "nan in text",
        [('diluent_volume = "100 mL"', 'diluent_volume = "nan mL"')],
        {f"{KET}.diluent_volume": "bad_quantity"},
    ),
    (
        "inf in text",
        [('hard = ["20 kg", "300 kg"]', 'hard = ["20 kg", "inf kg"]')],
        {f"{KET}.limits.weight.hard[1]": "bad_quantity"},
    ),
    (
        "negative number",
        [('diluent_volume = "100 mL"', "diluent_volume = -100")],
        {f"{KET}.diluent_volume": "wrong_type"},
    ),
    (
        "negative quantity",
        [('diluent_volume = "100 mL"', 'diluent_volume = "-100 mL"')],
        {f"{KET}.diluent_volume": "bad_quantity"},
    ),
    (
        "zero step",
        [('weight = "0.1 kg"', 'weight = "0 kg"')],
        {f"{KET}.round.weight": "zero"},
    ),
    (
        "soft outside hard",
        [('soft = ["40 kg", "150 kg"]', 'soft = ["10 kg", "150 kg"]')],
        {f"{KET}.limits.weight.soft": "soft_outside_hard"},
    ),
    (
        "soft high outside hard",
        [('soft = ["40 min", "60 min"]', 'soft = ["40 min", "121 min"]')],
        {f"{KET}.limits.duration.soft": "soft_outside_hard"},
    ),
    (
        "low above high",
        [('hard = ["20 kg", "300 kg"]', 'hard = ["300 kg", "20 kg"]')],
        {f"{KET}.limits.weight.hard": "low_above_high"},
    ),
    (
        "default dose above hard max",
        # 2 mg/kg > the hard 1 mg/kg
        [('dose = "0.5 mg/kg"', 'dose = "2 mg/kg"')],
        {f"{KET}.dose": "default_outside_hard"},
    ),
    (
        "a mcg/kg dose whose rounding steps are still in mg",
        # Steps must be written in the protocol's dose unit (issue 9: "0.1 mg" copied into a mcg
        # protocol printed 72 mcg as 100 mcg).
        [
            ('dose = "0.5 mg/kg"', 'dose = "500 mcg/kg"'),
            ('dose = "0.75 mg/kg"', 'dose = "75 mcg/kg"'),
        ],
        {"protocols.ketamine-undiluted.round.dose": "step_unit_mismatch"},
    ),
    (
        "default duration above hard max",
        [('duration = "40 min"', 'duration = "200 min"')],
        {f"{KET}.duration": "default_outside_hard"},
    ),
    (
        "default duration below soft min",
        [('duration = "40 min"', 'duration = "30 min"')],
        {f"{KET}.duration": "default_outside_soft"},
    ),
    (
        "default names no protocol",
        [('default = "ketamine-iv"', 'default = "ketamine"')],
        {"default": "unknown_protocol"},
    ),
    (
        "unknown preparation",
        [('preparation = "add"', 'preparation = "added"')],
        {f"{KET}.preparation": "unknown_preparation"},
    ),
    (
        "make-up-to overflow from the drug volume limit",
        # dex-load: drug volume hard max 5 mL > a final volume of 4 mL.
        [('diluent_volume = "50 mL"', 'diluent_volume = "4 mL"')],
        {f"{DEX}.diluent_volume": "make_up_overflow"},
    ),
    (
        "make-up-to overflow from the dose limits",
        # Without a drug volume limit: min(250 kg x 1.5 mcg/kg = 375, 300) = 300 mcg, / 100 mcg/mL
        # = 3 mL > 2.9 mL.
        [
            ('drug_volume = { hard = ["0.05 mL", "5 mL"] }\n', ""),
            ('diluent_volume = "50 mL"', 'diluent_volume = "2.9 mL"'),
        ],
        {f"{DEX}.diluent_volume": "make_up_overflow"},
    ),
    (
        "duplicate stock",
        [('stock = ["10 mg/mL", "50 mg/mL"]', 'stock = ["10 mg/mL", "10000 mcg/mL"]')],
        {f"{KET}.stock[1]": "duplicate"},
    ),
    (
        "control character in text",
        [('advisory = "Test advisory."', 'advisory = "Test\\u001b[2J advisory."')],
        {f"{KET}.advisory": "control_character"},
    ),
    (
        "a text that shows nothing",
        # U+3164 HANGUL FILLER: a letter to Python, drawn as nothing.
        [('advisory = "Test advisory."', 'advisory = "\u3164"')],
        {f"{KET}.advisory": "unreadable"},
    ),
    (
        "ids that differ only in '-' and '_'",
        [("[protocols.ketamine-undiluted]", "[protocols.ketamine_iv]")],
        {"protocols.ketamine_iv": "confusable_id"},
    ),
    (
        "a drug name with a word wider than a printed box",
        [('drug = "ketamine"', 'drug = "' + "W" * 31 + '"')],
        {f"{KET}.drug": "word_too_long"},
    ),
    (
        "a drug name longer than a sheet's title",
        [('drug = "ketamine"', 'drug = "' + "ketamine " * 7 + '"')],
        {f"{KET}.drug": "too_long"},
    ),
    (
        "bad protocol id",
        [("[protocols.ketamine-undiluted]", "[protocols.Ketamine-Undiluted]")],
        {"protocols.Ketamine-Undiluted": "bad_id"},
    ),
]


@pytest.mark.parametrize(("edits", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_a_broken_file_is_refused_with_the_key_path_of_the_problem(
    tmp_path: Path, edits: list[tuple[str, str]], expected: dict[str, str]
) -> None:
    found = problems_of(write(tmp_path, edited(*edits)))
    for key_path, code in expected.items():
        assert code in found.get(key_path, set()), found


def test_make_up_to_exactly_filling_the_final_volume_is_valid(tmp_path: Path) -> None:
    # Same as the overflow case above with 3 mL: 300 mcg / 100 mcg/mL = 3 mL, not more.
    text = edited(
        ('drug_volume = { hard = ["0.05 mL", "5 mL"] }\n', ""),
        ('diluent_volume = "50 mL"', 'diluent_volume = "3 mL"'),
    )
    assert "dex-load" in protocols.load(write(tmp_path, text)).protocols


def test_the_make_up_to_overflow_message_gives_both_volumes(tmp_path: Path) -> None:
    text = edited(
        ('drug_volume = { hard = ["0.05 mL", "5 mL"] }\n', ""),
        ('diluent_volume = "50 mL"', 'diluent_volume = "2.9 mL"'),
    )
    with pytest.raises(ProtocolFileError) as caught:
        protocols.load(write(tmp_path, text))
    (message,) = [p.message for p in caught.value.problems]
    assert "(3 mL)" in message
    assert "2.9 mL" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = edited(
        ('default = "ketamine-iv"', 'default = "ketamine"'),
        ('dose = "0.5 mg/kg"', 'dose_per_kgg = "0.5 mg/kg"'),
        ('duration = "40 min"', 'duration = "40 mL"'),
        ('preparation = "add"', 'preparation = "added"'),
        ('soft = ["40 kg", "150 kg"]', 'soft = ["10 kg", "150 kg"]'),
        ('diluent_volume = "50 mL"', 'diluent_volume = "4 mL"'),  # dex-load
        ('version = "test-1"\n', ""),  # ketamine-iv
    )
    found = problems_of(write(tmp_path, text))
    assert {
        "default",
        f"{KET}.dose_per_kgg",
        f"{KET}.dose",
        f"{KET}.duration",
        f"{KET}.preparation",
        f"{KET}.limits.weight.soft",
        f"{KET}.version",
        f"{DEX}.diluent_volume",
    } <= set(found)


def test_a_file_starting_with_a_bom_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbf" + BASE.encode("utf-8"))
    with pytest.raises(ProtocolFileError) as caught:
        protocols.load(path)
    (problem,) = caught.value.problems
    assert (problem.field, problem.code) == ("protocols", "bom")
    assert "byte-order mark" in problem.message
    assert str(path) in problem.message


def test_bad_toml_is_refused_with_the_parser_position(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "\nx = = 1\n")
    with pytest.raises(ProtocolFileError) as caught:
        protocols.load(path)
    (problem,) = caught.value.problems
    assert (problem.field, problem.code) == ("protocols", "toml")
    assert "line" in problem.message


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProtocolFileError) as caught:
        protocols.load(tmp_path / "nope.toml")
    assert caught.value.problems[0].code == "unreadable"


# --- dosecalc protocols check / list / show ----------------------------------------------------


def test_protocols_check_exits_0_on_a_valid_file(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["protocols", "check", str(TEST_PROTOCOLS)])
    assert result.exit_code == 0, result.stderr
    assert "valid" in result.stdout
    assert sha256_of(TEST_PROTOCOLS) in result.stdout
    assert result.stderr == ""


def test_protocols_check_exits_3_listing_every_problem(runner: CliRunner, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        edited(
            ('default = "ketamine-iv"', 'default = "ketamine"'),
            ('duration = "40 min"', 'duration = "40 mL"'),
            ('preparation = "add"', 'preparation = "added"'),
        ),
    )
    result = runner.invoke(cli, ["protocols", "check", str(path)])
    assert result.exit_code == 3
    assert result.stdout == ""
    for key_path in ("default", f"{KET}.duration", f"{KET}.preparation"):
        assert f"dosecalc: {key_path}: " in result.stderr
    assert "3 problem(s)" in result.stderr
    assert "Traceback" not in result.stderr


def test_protocols_check_of_a_bom_file_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbf" + BASE.encode("utf-8"))
    result = runner.invoke(cli, ["protocols", "check", str(path)])
    assert result.exit_code == 3
    assert "byte-order mark" in result.stderr


def test_protocols_list_shows_every_protocol_and_marks_the_default(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--protocols", str(TEST_PROTOCOLS), "protocols", "list"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert str(TEST_PROTOCOLS) in lines[0]
    assert sha256_of(TEST_PROTOCOLS) in lines[0]
    assert lines[1].startswith("* ketamine-iv ")
    assert any(line.startswith("  dex-load ") for line in lines)
    assert any(line.startswith("  ketamine-undiluted ") for line in lines)
    assert "(version test-1)" in lines[1]


@pytest.mark.parametrize("path", [TEST_PROTOCOLS, SHIPPED_PROTOCOLS], ids=["test", "shipped"])
def test_the_protocols_list_shows_what_the_full_load_finds(path: Path) -> None:
    # `protocols list` reads the inventory without pint (issue 14): the same file, hash, default,
    # ids, names and versions, in the same order, as the full load a sheet makes.
    library = protocols.load(path, "option")
    listed = protocols_file.inventory(path, "option")
    assert (listed.path, listed.sha256, listed.origin, listed.default) == (
        library.path,
        library.sha256,
        library.origin,
        library.default,
    )
    assert [tuple(e) for e in listed.entries] == [
        (pid, p.name, p.version) for pid, p in library.protocols.items()
    ]


@pytest.mark.parametrize(
    ("edit", "field", "code"),
    [
        (("format = 1", "format = 2"), "format", "unsupported"),
        (('default = "ketamine-iv"', 'default = "nope"'), "default", "unknown_protocol"),
        (('version = "test-1"', "version = 1"), f"{KET}.version", "wrong_type"),
        (('name = "Ketamine IV', 'name = "\u202eKetamine IV'), f"{KET}.name", "control_character"),
        (("[protocols.ketamine-iv]", "[protocols.Ketamine]"), "protocols.Ketamine", "bad_id"),
    ],
)
def test_the_protocols_list_refuses_a_file_whose_listed_keys_are_wrong(
    runner: CliRunner, tmp_path: Path, edit: tuple[str, str], field: str, code: str
) -> None:
    path = write(tmp_path, edited(edit))
    with pytest.raises(ProtocolFileError) as caught:
        protocols_file.inventory(path)
    assert (field, code) in {(p.field, p.code) for p in caught.value.problems}
    result = runner.invoke(cli, ["--protocols", str(path), "protocols", "list"])
    assert result.exit_code == 3
    assert result.stdout == ""
    assert field in result.stderr


@pytest.mark.parametrize(
    "text", [b"\xef\xbb\xbf" + BASE.encode("utf-8"), b"format = [", b"\xff\xfe"]
)
def test_the_protocols_list_reads_the_file_as_a_sheet_does(
    runner: CliRunner, tmp_path: Path, text: bytes
) -> None:
    # BOM, bad TOML, not UTF-8: the same refusal (exit 3, same message) as a sheet's.
    path = write(tmp_path, text)
    listed = runner.invoke(cli, ["--protocols", str(path), "protocols", "list"])
    sheet = runner.invoke(cli, ["--protocols", str(path), *SHEET])
    assert listed.exit_code == sheet.exit_code == 3
    assert listed.stderr == sheet.stderr


def test_the_protocols_list_does_not_check_units_but_a_sheet_and_protocols_check_do(
    runner: CliRunner, tmp_path: Path
) -> None:
    # The documented limit of the list (its --help says so): a wrong unit is found by every
    # command that computes a dose, never let through to a sheet.
    path = write(tmp_path, edited(('duration = "40 min"', 'duration = "40 mL"')))
    listed = runner.invoke(cli, ["--protocols", str(path), "protocols", "list"])
    assert listed.exit_code == 0, listed.stderr
    assert "ketamine-iv" in listed.stdout
    for args in (SHEET, ["protocols", "check", str(path)]):
        result = runner.invoke(cli, ["--protocols", str(path), *args])
        assert result.exit_code == 3
        assert f"{KET}.duration" in result.stderr


def test_protocols_show_prints_one_protocol_in_full(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["protocols", "show", "dex-load", "--protocols", str(TEST_PROTOCOLS)]
    )
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in ("1 mcg/kg", "10 min", "100 mcg/mL", "make-up-to", "50 mL", "test-1"):
        assert text in out
    assert "hard dose_per_kg: 0.2 mcg/kg to 1.5 mcg/kg" in out


def test_protocols_show_includes_the_preinfusion_gate(runner: CliRunner) -> None:
    # A pharmacist reviewing a protocol sees the vitals' limits and the checklist a sheet enforces,
    # as they are written in the shipped file's [protocols.ketamine-iv.preinfusion] table.
    result = runner.invoke(
        cli, ["protocols", "show", "ketamine-iv", "--protocols", str(SHIPPED_PROTOCOLS)]
    )
    assert result.exit_code == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "pre-infusion gate: vitals optional (NOT CHECKED if not given)" in lines
    assert "gate soft systolic: 90 mmHg to 140 mmHg" in lines
    assert "gate hard diastolic: 40 mmHg to 120 mmHg" in lines
    assert "gate soft heart_rate: 50 /min to 100 /min" in lines
    assert "gate hard spo2: 90% to 100%" in lines
    assert "gate checklist: Escort home confirmed; no driving until the next day" in lines
    # The dose limits keep their own rows, without the gate's prefix.
    assert "soft dose: 10 mg to 75 mg" in lines


@pytest.mark.parametrize("width", [40, 60, 100])
def test_protocols_show_at_a_terminal_is_broken_to_its_width_never_inside_a_number(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    """The advisory and checklist lines were cut by the terminal at its last column."""
    from dosecalc.render import wrap

    args = ["protocols", "show", "ketamine-iv", "--protocols", str(SHIPPED_PROTOCOLS)]
    piped = runner.invoke(cli, args)
    monkeypatch.setattr(wrap, "terminal_width", lambda stream: width)
    shown = runner.invoke(cli, args)
    assert shown.exit_code == piped.exit_code == 0
    body = shown.stdout.splitlines()[1:]  # the file's path and hash: one word longer than a line
    long = [line for line in body if len(line) > width]
    assert all(len(line.split()) == 1 for line in long), long  # a word longer than the column
    assert not re.search(r"\d[\d,.]*\n *(?:mg|mL|min|h|kg|mmHg|%)\b", shown.stdout)
    assert shown.stdout.split() == piped.stdout.split()  # nothing lost, added or reordered
    # Broken lines hang under the value's column, as the advisory's own paragraphs do.
    hanging = " " * min(22, width // 2)
    assert all(line.startswith(hanging) or re.match(r" *[\w -]+:", line) for line in body)


def test_protocols_show_says_when_there_is_no_gate_and_lists_monitoring_times(
    runner: CliRunner, tmp_path: Path
) -> None:
    text = TEST_PROTOCOLS.read_text(encoding="utf-8")
    marker = 'monitoring = ["BP, HR and SpO2 every 5 min"]\n'
    assert text.count(marker) == 1
    path = tmp_path / "protocols.toml"
    times = 'monitoring_times = ["0 min", "end + 15 min"]\n'
    path.write_text(text.replace(marker, marker + times), encoding="utf-8")
    result = runner.invoke(cli, ["protocols", "show", "dex-load", "--protocols", str(path)])
    assert result.exit_code == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "pre-infusion gate: none" in lines
    assert "monitoring times: 0 min, end + 15 min" in lines


def test_protocols_show_of_an_unknown_id_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--protocols", str(TEST_PROTOCOLS), "protocols", "show", "nope"])
    assert result.exit_code == 2
    assert "protocol: 'nope' is not in" in result.stderr
    assert result.stdout == ""


# --- which file: option before or after the command, environment, shipped ----------------------


def sheet_json(runner: CliRunner, args: list[str]) -> dict:
    result = runner.invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_protocols_option_works_before_the_command(runner: CliRunner) -> None:
    out = sheet_json(runner, ["--protocols", str(TEST_PROTOCOLS), *SHEET])
    assert out["protocols_file"] == str(TEST_PROTOCOLS)
    assert out["protocols_sha256"] == sha256_of(TEST_PROTOCOLS)


def test_protocols_option_works_after_the_command(runner: CliRunner) -> None:
    out = sheet_json(runner, [*SHEET, "--protocols", str(TEST_PROTOCOLS)])
    assert out["protocols_file"] == str(TEST_PROTOCOLS)
    assert out["protocols_sha256"] == sha256_of(TEST_PROTOCOLS)


def test_the_same_protocols_file_before_and_after_the_command_is_accepted(
    runner: CliRunner,
) -> None:
    args = ["--protocols", str(TEST_PROTOCOLS), *SHEET, "--protocols", str(TEST_PROTOCOLS)]
    assert sheet_json(runner, args)["protocols_file"] == str(TEST_PROTOCOLS)


def test_two_different_protocols_files_are_a_usage_error(runner: CliRunner) -> None:
    args = ["--protocols", str(TEST_PROTOCOLS), *SHEET, "--protocols", str(SHIPPED_PROTOCOLS)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert "protocols: --protocols was given twice with different files" in result.stderr
    assert result.stdout == ""


def test_the_environment_variable_chooses_the_file(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOSECALC_PROTOCOLS", str(TEST_PROTOCOLS))
    out = sheet_json(runner, SHEET)
    assert out["protocols_file"] == str(TEST_PROTOCOLS)
    assert out["protocols_sha256"] == sha256_of(TEST_PROTOCOLS)


def test_the_option_wins_over_the_environment_variable(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOSECALC_PROTOCOLS", str(tmp_path / "does-not-exist.toml"))
    out = sheet_json(runner, ["--protocols", str(TEST_PROTOCOLS), *SHEET])
    assert out["protocols_file"] == str(TEST_PROTOCOLS)


def test_a_broken_file_from_the_environment_exits_3(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write(tmp_path, edited(('preparation = "add"', 'preparation = "added"')))
    monkeypatch.setenv("DOSECALC_PROTOCOLS", str(path))
    result = runner.invoke(cli, [*SHEET, "--format", "json"])
    assert result.exit_code == 3
    assert f"{KET}.preparation" in result.stderr
    error = json.loads(result.stdout)
    assert error["schema"] == "dosecalc.error/1"
    assert error["errors"][0]["field"] == f"{KET}.preparation"


def test_without_option_or_environment_the_shipped_file_is_used(runner: CliRunner) -> None:
    out = sheet_json(runner, SHEET)
    assert Path(out["protocols_file"]).name == "protocols.toml"
    assert out["protocols_sha256"] == sha256_of(Path(out["protocols_file"]))
    assert out["protocols_sha256"] == sha256_of(SHIPPED_PROTOCOLS)


# --- the sheet names the file, the protocol's version and the hash ------------------------------


def test_the_text_sheet_names_the_file_version_and_short_hash(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a short relative path: fits on one line of the sheet
    path = write(tmp_path, edited(('version = "test-1"', 'version = "2026-11-21 rev B"')))
    result = runner.invoke(cli, ["--protocols", path.name, *SHEET])
    assert result.exit_code == 0, result.stderr
    assert f"Protocols file  {path.name} (sha256 {sha256_of(path)[:12]})" in result.stdout
    assert "version 2026-11-21 rev B" in result.stdout


def test_the_text_sheet_names_a_long_protocols_path_by_file_name_and_short_hash(
    runner: CliRunner, tmp_path: Path
) -> None:
    # Issue 13: a long path only wraps on a sheet; the file name and hash identify the file, and the
    # full path stays in the JSON sheet and the audit log.
    folder = tmp_path / "a-long-folder-name-for-the-pharmacy-share" / "protocols-library"
    folder.mkdir(parents=True)
    path = write(folder, BASE)
    result = runner.invoke(cli, ["--protocols", str(path), *SHEET])
    assert result.exit_code == 0, result.stderr
    assert "\u2026" not in result.stdout
    assert "a-long-folder-name" not in result.stdout
    assert f"Protocols file  {path.name} (sha256 {sha256_of(path)[:12]})" in result.stdout


def test_the_json_sheet_names_the_file_version_and_full_hash(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write(tmp_path, edited(('version = "test-1"', 'version = "2026-11-21 rev B"')))
    out = sheet_json(runner, ["--protocols", str(path), *SHEET])
    assert out["protocols_file"] == str(path)
    assert out["protocol_version"] == "2026-11-21 rev B"
    assert out["protocols_sha256"] == sha256_of(path)


def test_one_changed_byte_changes_the_hash_on_the_sheet(runner: CliRunner, tmp_path: Path) -> None:
    a = write(tmp_path, BASE, "a.toml")
    b = write(tmp_path, BASE + "\n", "b.toml")
    hash_a = sheet_json(runner, ["--protocols", str(a), *SHEET])["protocols_sha256"]
    hash_b = sheet_json(runner, ["--protocols", str(b), *SHEET])["protocols_sha256"]
    assert hash_a == sha256_of(a) != hash_b == sha256_of(b)


def test_protocols_check_refuses_a_protocol_no_patient_can_have_a_sheet_from(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Valid key by key, useless as a whole: a fixed 100 mL bag over 40 min runs at 150 mL/h
    (plus the drug), above a 120 mL/h hard rate limit, for every weight. `protocols check` said
    "valid" and every sheet was refused at the bedside (found by the protocol-author check)."""
    text = SHIPPED_PROTOCOLS.read_text(encoding="utf-8")
    old = 'rate = { hard = ["1 mL/h", "999 mL/h"] }'
    assert text.count(old) >= 1  # the first is ketamine-iv's
    path = tmp_path / "p.toml"
    path.write_text(text.replace(old, 'rate = { hard = ["1 mL/h", "120 mL/h"] }', 1), "utf-8")
    result = runner.invoke(cli, ["protocols", "check", str(path)])
    assert result.exit_code == 3
    # Five weights across the soft limits (40 to 150 kg), five across the hard (20 to 300 kg).
    assert "protocols.ketamine-iv: no sheet can be made from it in 10 tries" in result.stderr
    # 40 kg, the low soft limit: 20 mg, 2 mL, 102 mL / 40 min x 60 = 153 mL/h.
    assert "at 40 kg: rate 153 mL/h is above the hard limit 120 mL/h" in result.stderr
    # The shipped file itself gives sheets from every protocol.
    assert runner.invoke(cli, ["protocols", "check", str(SHIPPED_PROTOCOLS)]).exit_code == 0


def test_a_box_note_breaks_a_word_wider_than_its_box() -> None:
    # The PDF's PREPARE note ("of <drug> <strength>") broke only at spaces: a 200-character drug
    # name ran across the PUMP box beside it. Every line now fits the box.
    from dosecalc.render import as_pdf

    pdf = as_pdf._document("a4", "2026-11-25", "test")
    pdf.add_page()
    page = as_pdf._Page(pdf)
    width = 40.0
    lines = page.wrapped("of " + "W" * 80 + " 10 mg/mL", width)
    assert len(lines) > 2
    page.font(page.style.body)
    assert all(pdf.get_string_width(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "").replace("\u00a0", "") == "of" + "W" * 80 + "10mg/mL"
