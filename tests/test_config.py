"""The settings file (config.toml in click's app directory): flag > environment > file > default,
and `dosecalc config` naming where each effective setting came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TEST_PROTOCOLS

from dosecalc import config
from dosecalc.cli import cli

SHEET = ["sheet", "--weight", "154 kg", "--override", "weighed today", "--date", "2026-11-21"]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty app directory: click.get_app_dir follows XDG_CONFIG_HOME on Linux."""
    monkeypatch.delenv("DOSECALC_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    folder = tmp_path / "xdg" / "dosecalc"
    folder.mkdir(parents=True)
    return folder / "config.toml"


def operator_on_sheet(runner: CliRunner, *extra: str) -> str:
    result = runner.invoke(cli, ["--protocols", str(TEST_PROTOCOLS), *SHEET, *extra,
                                 "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return str(json.loads(result.stdout)["overrides"][0]["operator"])


def test_the_settings_file_lives_in_clicks_app_directory(settings: Path) -> None:
    assert config.config_path() == str(settings)


def test_operator_precedence_is_flag_then_environment_then_file(
    runner: CliRunner, settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.write_text('operator = "RN File"\n', encoding="utf-8")
    assert operator_on_sheet(runner) == "RN File"
    monkeypatch.setenv("DOSECALC_OPERATOR", "RN Env")
    assert operator_on_sheet(runner) == "RN Env"
    assert operator_on_sheet(runner, "--operator", "RN Flag") == "RN Flag"


def test_without_any_operator_a_soft_limit_override_is_still_refused(
    runner: CliRunner, settings: Path
) -> None:
    result = runner.invoke(cli, ["--protocols", str(TEST_PROTOCOLS), *SHEET])
    assert result.exit_code == 2
    assert "operator" in result.stderr


def test_paper_and_audit_log_come_from_the_file(
    runner: CliRunner, settings: Path, tmp_path: Path
) -> None:
    settings.write_text('paper = "letter"\naudit_log = "audit.jsonl"\n', encoding="utf-8")
    out = tmp_path / "sheet.html"
    args = ["--protocols", str(TEST_PROTOCOLS), "sheet", "--weight", "72 kg", "--format", "html",
            "-o", str(out)]  # fmt: skip
    assert runner.invoke(cli, args).exit_code == 0
    assert "size: letter;" in out.read_text(encoding="utf-8")
    # A relative path in the file is relative to the file's folder.
    assert (settings.parent / "audit.jsonl").read_text(encoding="utf-8").count("\n") == 1


def test_protocols_precedence_is_flag_then_environment_then_file_then_shipped(
    runner: CliRunner, settings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def used(*args: str) -> tuple[str, str]:
        result = runner.invoke(cli, [*args, "protocols", "list"])
        assert result.exit_code == 0, result.stderr
        first = result.stdout.splitlines()[0]
        return first.split(" (sha256")[0], first.rsplit(", ", 1)[1].rstrip(")")

    assert used()[1] == "shipped"
    copy = tmp_path / "site.toml"
    copy.write_bytes(TEST_PROTOCOLS.read_bytes())
    settings.write_text(f"protocols = {json.dumps(str(copy))}\n", encoding="utf-8")
    assert used() == (str(copy), "config")
    monkeypatch.setenv("DOSECALC_PROTOCOLS", str(TEST_PROTOCOLS))
    assert used() == (str(TEST_PROTOCOLS), "environment")
    assert used("--protocols", str(copy)) == (str(copy), "option")


def test_config_command_shows_each_setting_and_its_source(
    runner: CliRunner, settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.write_text('operator = "RN File"\npaper = "letter"\n', encoding="utf-8")
    monkeypatch.setenv("DOSECALC_AUDIT_LOG", "/var/log/dosecalc.jsonl")
    result = runner.invoke(cli, ["config", "--paper", "a4"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"config file  {settings} (found)"
    assert lines[1].startswith("protocols    ")
    assert lines[1].endswith("protocols.toml  [default]")
    assert lines[2] == f"operator     RN File  [config file {settings}]"
    assert lines[3] == "paper        a4  [option --paper]"
    assert lines[4] == "audit_log    /var/log/dosecalc.jsonl  [environment DOSECALC_AUDIT_LOG]"


def test_config_command_without_a_file_shows_the_defaults(
    runner: CliRunner, settings: Path
) -> None:
    result = runner.invoke(cli, ["config"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"config file  {settings} (not found)"
    assert "paper        a4  [default]" in result.stdout
    assert "operator     (none)  [default]" in result.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('oprator = "RN Lee"\n', "unknown key 'oprator'"),
        ("operator = 7\n", "'operator' must be a non-empty string"),
        ('paper = "A5"\n', "'paper' is 'A5': accepted: a4, letter"),
        ('operator = "RN\\u001b[2J"\n', "control or format characters"),
        # U+2800 BRAILLE PATTERN BLANK: a symbol to Python, drawn as nothing.
        ('operator = "\\u2800"\n', "'operator' shows nothing: every character in it is blank"),
        ("operator = \n", "is not valid UTF-8 TOML"),
        # 2 kB that made tomllib recurse past Python's limit (a RecursionError traceback):
        ("a = " + "[" * 600 + "\n", "line 1: is nested more than 16 levels deep"),
        ('operator = "RN Lee"\nb = ' + "{ c = " * 17 + "1" + " }" * 17 + "\n", "line 2: is nested"),
    ],
)
def test_a_bad_settings_file_is_refused_naming_the_file_and_key(
    runner: CliRunner, settings: Path, text: str, message: str
) -> None:
    settings.write_text(text, encoding="utf-8")
    for args in (["config"], ["--protocols", str(TEST_PROTOCOLS), *SHEET]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2
        assert f"config: {settings}: " in result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr
        assert "\x1b" not in result.stderr


def test_dosecalc_config_variable_names_another_file_or_none(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.toml"
    other.write_text('operator = "RN Other"\n', encoding="utf-8")
    monkeypatch.setenv("DOSECALC_CONFIG", str(other))
    assert operator_on_sheet(runner) == "RN Other"
    monkeypatch.setenv("DOSECALC_CONFIG", "")
    assert runner.invoke(cli, ["config"]).stdout.startswith("config file  none")


# --- a setting that is set but empty, or names a missing file, is refused, never skipped -------

SHEET_72 = [
    "--protocols",
    str(TEST_PROTOCOLS),
    "sheet",
    "--weight",
    "72 kg",
    "--date",
    "2026-11-21",
]


@pytest.mark.parametrize(
    "args",
    [
        ["sheet", "--weight", "72 kg", "--date", "2026-11-21"],
        ["protocols", "list"],
        ["config"],
    ],
)
def test_an_empty_protocols_variable_is_refused_as_an_empty_option_is(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    option = runner.invoke(cli, ["--protocols", "", *args])
    monkeypatch.setenv("DOSECALC_PROTOCOLS", "")
    variable = runner.invoke(cli, args)
    assert (option.exit_code, variable.exit_code) == (3, 3)  # never the shipped file
    assert "protocols: DOSECALC_PROTOCOLS is empty: give the protocols file's path" in (
        variable.stderr
    )
    assert variable.stdout == ""


def test_an_empty_protocols_variable_gives_way_to_the_option(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOSECALC_PROTOCOLS", "")
    assert runner.invoke(cli, SHEET_72).exit_code == 0


@pytest.mark.parametrize(
    ("variable", "option", "args"),
    [
        ("DOSECALC_AUDIT_LOG", "--audit-log", SHEET_72),
        ("DOSECALC_AUDIT_LOG", "--audit-log", ["batch", "-"]),
        ("DOSECALC_AUDIT_LOG", "--audit-log",
         ["check", "--weight", "72 kg", "--rate", "155.4 mL/h", "--operator", "RN Kim"]),
        ("DOSECALC_OPERATOR", "--operator", [*SHEET, "--protocols", str(TEST_PROTOCOLS)]),
        ("DOSECALC_PAPER", "--paper", ["config"]),
    ],
)  # fmt: skip
def test_an_empty_variable_is_refused_naming_it_as_an_empty_option_is(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    option: str,
    args: list[str],
) -> None:
    given_empty = runner.invoke(cli, [*args, option, ""], input="patient_id,weight\nA1,72 kg\n")
    monkeypatch.setenv(variable, "")
    result = runner.invoke(cli, args, input="patient_id,weight\nA1,72 kg\n")
    assert (given_empty.exit_code, result.exit_code) == (2, 2)  # not no log, not another operator
    assert f"'{variable}' (the environment variable for '{option}'): is set but empty" in (
        result.stderr
    )
    assert result.stdout == ""


def test_an_empty_audit_log_variable_gives_way_to_the_option(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOSECALC_AUDIT_LOG", "")
    log = tmp_path / "audit.jsonl"
    assert runner.invoke(cli, [*SHEET_72, "--audit-log", str(log)]).exit_code == 0
    assert log.exists()


def test_a_bad_paper_from_the_environment_names_the_variable(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOSECALC_PAPER", "A4")
    result = runner.invoke(cli, SHEET_72)
    assert result.exit_code == 2
    assert "'DOSECALC_PAPER' (the environment variable for '--paper'): 'A4' is not one of" in (
        result.stderr
    )
    given = runner.invoke(cli, [*SHEET_72, "--paper", "A4"])  # the option still names itself
    assert given.exit_code == 2
    assert "Invalid value for '--paper': 'A4' is not one of" in given.stderr


@pytest.mark.parametrize("args", [SHEET_72, ["config"]])
def test_a_settings_file_named_by_dosecalc_config_must_exist(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str]
) -> None:
    missing = tmp_path / "site.toml"
    monkeypatch.setenv("DOSECALC_CONFIG", str(missing))
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert f"config: {missing}: does not exist (named by DOSECALC_CONFIG" in result.stderr
    assert result.stdout == ""
