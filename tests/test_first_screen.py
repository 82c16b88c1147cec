"""The first screen holds the numbers: what a nurse sees at an 80 x 24 terminal when `dosecalc sheet`
ends, in a real terminal (tmux), and text that never breaks a number from its unit.

tmux is a real terminal emulator: `capture-pane` returns exactly the 24 visible rows, after the
shell prompt has come back. Locally a missing tmux skips (Debian package tmux); with CI set it fails.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SHIPPED_PROTOCOLS, TEST_PROTOCOLS
from test_print_tools import need

from dosecalc import protocols
from dosecalc.cli import cli
from dosecalc.model import Order, make_sheet
from dosecalc.render import as_text, content

COLUMNS, ROWS = 80, 24
DATE = "2026-11-21"
SUMMARY_TOP = "┏━ SUMMARY"


class Terminal:
    """A detached tmux server of its own (socket in tmp_path), one 80 x 24 window, no status line."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmux = need("tmux", "tmux")
        self.socket = tmp_path / "tmux.sock"
        config = tmp_path / "tmux.conf"
        config.write_text("set -g status off\n", encoding="utf-8")
        shell = (
            f"env -i PATH=/usr/bin:/bin HOME={shlex.quote(str(tmp_path))} TERM=xterm-256color "
            "PS1='$ ' bash --norc --noprofile -i"
        )
        self.run("-f", str(config), "new-session", "-d", "-x", str(COLUMNS), "-y", str(ROWS),
                 shell)  # fmt: skip
        assert self.run("display-message", "-p", "#{pane_width}x#{pane_height}").strip() == (
            f"{COLUMNS}x{ROWS}"
        )

    def run(self, *args: str) -> str:
        done = subprocess.run([self.tmux, "-S", str(self.socket), *args], capture_output=True,
                              text=True, timeout=30, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> list[str]:
        """The visible rows only (no scrollback), without colours or trailing spaces."""
        return [line.rstrip() for line in self.run("capture-pane", "-p").split("\n")[:ROWS]]

    def type_and_wait(self, command: str) -> list[str]:
        """Type `command`, press Enter, and return the screen once the prompt is back."""
        self.run("send-keys", "-l", command)
        self.run("send-keys", "Enter")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = self.screen()
            filled = [r for r in rows if r]
            if filled and filled[-1] == "$" and any(r.startswith("┗") for r in rows):
                return rows
            time.sleep(0.2)
        pytest.fail("the command did not finish:\n" + "\n".join(self.screen()))

    def close(self) -> None:
        subprocess.run([self.tmux, "-S", str(self.socket), "kill-server"], capture_output=True,
                       timeout=30, check=False)  # fmt: skip


@pytest.fixture
def terminal(tmp_path: Path):  # type: ignore[no-untyped-def]
    term = Terminal(tmp_path)
    yield term
    term.close()


def dosecalc(*args: str) -> str:
    return shlex.join([sys.executable, "-m", "dosecalc", "--protocols", str(SHIPPED_PROTOCOLS),
                       "sheet", "--date", DATE, *args])  # fmt: skip


def json_sheet(runner: CliRunner, *args: str) -> dict[str, object]:
    result = runner.invoke(
        cli,
        ["--protocols", str(SHIPPED_PROTOCOLS), "sheet", "--date", DATE, *args, "--format", "json"],
    )
    assert result.exit_code == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def summary_row(screen: list[str], label: str) -> str:
    """The text after `label` on the summary row that starts with it."""
    for row in screen:
        match = re.fullmatch(rf"┃ {re.escape(label)}\s+(.*?)\s*┃", row)
        if match:
            return match[1]
    raise AssertionError(f"{label!r} is not on the screen:\n" + "\n".join(screen))


CASES = {
    "plain": ["--weight", "72 kg", "--patient-id", "P-0042"],
    "lb-with-name": ["--weight", "154 lb", "--patient-id", "P-0043", "--name", "Zoë Smith"],
    "two-overrides": [
        "--weight",
        "154 kg",
        "--patient-id",
        "P-0044",
        "--override",
        "Weighed twice today",
        "--operator",
        "RN Lee",
    ],
    "syringe-long-infusion": [
        "--weight",
        "300 kg",
        "--protocol",
        "ketamine-iv-syringe",
        "--dose",
        "0.1 mg/kg",
        "--duration",
        "115 min",
        "--patient-id",
        "P-0045",
        "--override",
        "Slow infusion as prescribed",
        "--operator",
        "RN Lee",
    ],
}


@pytest.mark.parametrize("case", list(CASES))
def test_at_an_80_by_24_terminal_the_last_screen_holds_every_number_to_check(
    terminal: Terminal, runner: CliRunner, case: str
) -> None:
    args = CASES[case]
    js = json_sheet(runner, *args)
    screen = terminal.type_and_wait(dosecalc(*args))
    unit = js["dose_unit"]
    assert summary_row(screen, "Patient").startswith(f"{js['patient_id']}")
    assert summary_row(screen, "Patient").endswith(f"| {DATE}")
    assert summary_row(screen, "Dose").startswith(f"{js['dose']} {unit} (")
    drawn = f"{js['drug_volume_ml']} mL of {js['drug']} {js['stock']} {js['stock_unit']}"
    assert summary_row(screen, "Draw up") == drawn
    assert summary_row(screen, "RATE") == f"{js['rate_ml_per_h']} mL/h"
    assert summary_row(screen, "VTBI") == f"{js['total_volume_ml']} mL"
    assert summary_row(screen, "DURATION") == f"{js['duration_min']} min"
    warnings = js["warnings"]
    assert isinstance(warnings, list)
    if warnings:
        assert summary_row(screen, "Warnings").startswith(f"YES, {len(warnings)}: ")
        for warning in warnings:
            assert warning["code"] in "\n".join(screen)
    else:
        assert summary_row(screen, "Warnings") == "none"
    # The check code, as on the JSON sheet, and the summary's top edge still on the screen.
    assert summary_row(screen, "Check code") == js["check_code"]
    top = next(i for i, row in enumerate(screen) if row.startswith(SUMMARY_TOP))
    assert top >= 0, "\n".join(screen)


def _sheet(library: protocols.Library, weight: str = "72 kg", **order: str):  # type: ignore[no-untyped-def]
    return make_sheet(library, Order(weight=weight, date=DATE, **order))


def test_the_summary_is_at_most_fourteen_lines_even_with_a_long_name_and_every_warning(
    shipped: protocols.Library,
) -> None:
    # 154 lb: WEIGHT_IN_LB; 0.75 mg/kg at 151 kg... kept inside the hard limits with overrides.
    sheet = _sheet(
        shipped,
        weight="340 lb",
        name="N" * 100,
        patient_id="X" * 64,
        dose="0.75 mg/kg",
        duration="115 min",
        override_reason="Prescribed as written",
        operator="RN Lee",
    )
    assert len(sheet.warnings) >= 3
    text = as_text.plain(sheet)
    lines = text.splitlines()
    top = max(i for i, line in enumerate(lines) if line.startswith(SUMMARY_TOP))
    summary = lines[top:]
    assert summary[-1].startswith("┗")
    # With the check code and a blank line before it, it fits a 24-row screen with the prompt.
    assert len(summary) <= 14, "\n".join(summary)


UNIT = r"(?:mcg|mg|g|kg|lb|mL|L|min|h|s|gtt|mmHg|m2|cm|in)(?:/\w+)*\b"
BROKEN = re.compile(rf"\d[\d,.]*[ ┃║│]*\n[ ┃║│]*{UNIT}")


@pytest.mark.parametrize("width", [40, 47, 53, 61, 68, 75, 80])
@pytest.mark.parametrize(
    "order",
    [
        {"weight": "72 kg"},
        {"weight": "154 lb", "name": "Ann " * 20},
        {"weight": "69 kg", "protocol_id": "ketamine-undiluted", "dose": "0.5 mg/kg"},
        {"weight": "299.95 kg", "override_reason": "Weighed twice " * 4, "operator": "RN Lee"},
        {"weight": "80 kg", "protocol_id": "dex-load"},
    ],
)
def test_text_never_breaks_a_number_from_its_unit(
    library: protocols.Library, width: int, order: dict[str, str]
) -> None:
    sheet = make_sheet(library, Order(date=DATE, **order))
    buffer = io.StringIO()
    as_text.make_console(buffer, terminal=False, width=width).print(as_text.build(sheet))
    text = buffer.getvalue().replace(as_text.JOIN, " ")
    assert as_text.JOIN not in text
    assert not BROKEN.search(text), BROKEN.search(text)
    # And what is joined really is the number and unit the figures hold.
    for fig in (sheet.figures.rate, sheet.figures.dose, sheet.figures.total_volume):
        assert fig.text in text


ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("width", [40, 53, 61, 68, 75, 80])
@pytest.mark.parametrize(
    ("file", "order"),
    [
        ("protocols.toml", {"weight": "72 kg", "drop_factor": "20 gtt/mL"}),
        ("protocols.toml", {"weight": "149 kg", "protocol_id": "ketamine-iv-ibw",
                            "height": "152.4 cm", "sex": "female"}),
        ("examples/protocols-more.toml", {"weight": "72 kg", "drop_factor": "15 gtt/mL",
                                          "protocol_id": "metronidazole-premix-gravity"}),
    ],
)  # fmt: skip
def test_text_never_breaks_drops_bmi_or_a_strength_from_its_unit(
    width: int, file: str, order: dict[str, str]
) -> None:
    """An outside check found "given as 33 / gtt/min", "BMI 64.2 kg/m2 >= 30 / kg/m2" and "the
    protocol says 20 / gtt/mL" (gtt and m2 were not known as units)."""
    sheet = make_sheet(protocols.load(ROOT / file), Order(date=DATE, **order))
    buffer = io.StringIO()
    as_text.make_console(buffer, terminal=False, width=width).print(as_text.build(sheet))
    text = buffer.getvalue().replace(as_text.JOIN, " ")
    assert not BROKEN.search(text), BROKEN.search(text)


def test_keep_together_joins_drops_bmi_and_a_strength_per_volume() -> None:
    joined = content.keep_together(
        "33 gtt/min; BMI 64.2 kg/m2 >= 30 kg/m2; 500 mg/100 mL (1,600 mcg/mL); 120 /min; 36 mg in",
        "_",
    )
    assert joined == (
        "33_gtt/min; BMI 64.2_kg/m2 >= 30_kg/m2; 500_mg/100_mL (1,600_mcg/mL); 120_/min; 36_mg in"
    )


def test_keep_together_joins_every_unit_of_the_grammar() -> None:
    # units, mEq, mmol and day were missing: "(923.1" / "units/kg/h)" broke across lines in a
    # heparin PDF.
    joined = content.keep_together(
        "(923.1 units/kg/h); 2 mEq/kg; 20 mmol/h; 30 mg/kg/day; 10,000 units; 128/82 mmHg", "_"
    )
    assert joined == (
        "(923.1_units/kg/h); 2_mEq/kg; 20_mmol/h; 30_mg/kg/day; 10,000_units; 128/82_mmHg"
    )


def test_the_breaking_pattern_catches_a_number_wrapped_from_its_unit() -> None:
    assert BROKEN.search("Rate   103.6 mL / 40 min x 60 min/h = 155.239\n       mL/h")
    assert BROKEN.search("┃ ... = 155.239 ┃\n┃       mL/h    ┃")
    assert not BROKEN.search("= 155.239 mL/h\nnext line")


def test_keep_together_joins_only_numbers_and_units() -> None:
    joined = as_text.keep_together("0.5 mg/kg x 1,234.5 kg = 36 mg; version 2026 a; 10 min/h x")
    assert joined == (
        f"0.5{as_text.JOIN}mg/kg x 1,234.5{as_text.JOIN}kg = 36{as_text.JOIN}mg; version 2026 a;"
        f" 10{as_text.JOIN}min/h x"
    )


def test_sheets_show_the_protocols_file_name_and_short_hash_not_its_path(
    runner: CliRunner, tmp_path: Path
) -> None:
    deep = tmp_path / ("a-long-folder-name-" * 4) / "clinic"
    deep.mkdir(parents=True)
    copy = deep / "clinic-protocols.toml"
    copy.write_bytes(TEST_PROTOCOLS.read_bytes())
    library = protocols.load(copy)
    sheet = _sheet(library)
    assert content.protocols_file(sheet) == f"clinic-protocols.toml (sha256 {library.sha256[:12]})"
    for fmt in ("text", "html", "json"):
        out = tmp_path / f"sheet.{fmt}"
        args = ["--protocols", str(copy), "sheet", "--weight", "72 kg", "--date", DATE,
                "--format", fmt, "-o", str(out)]  # fmt: skip
        assert runner.invoke(cli, args).exit_code == 0
        text = out.read_text(encoding="utf-8")
        if fmt == "json":  # the full path stays in the JSON sheet
            assert json.loads(text)["protocols_file"] == str(copy)
        else:
            assert "a-long-folder-name" not in text
            assert "clinic-protocols.toml (sha256 " in text


def _sheet_on_a_terminal(columns: int, env: dict[str, str]) -> str:
    """`dosecalc sheet --weight "154 lb"` with stdout on a pseudo-terminal `columns` wide."""
    args = ["sheet", "--weight", "154 lb", "--date", DATE]
    code, shown, _ = _beside_a_terminal(args, columns, "stdout", env=env)
    assert code == 0
    return shown


def _beside_a_terminal(
    args: list[str],
    columns: int,
    terminal: str,
    other: Path | None = None,
    env: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    """`dosecalc --protocols TEST ARGS` with `terminal` ("stdout" or "stderr") on a pseudo-terminal
    `columns` wide and the other stream in the file `other` (else discarded), with `env` added:
    (exit code, the terminal's text, the file's)."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios

    main_fd, terminal_fd = pty.openpty()
    fcntl.ioctl(terminal_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    clean = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    with open(other if other is not None else os.devnull, "w") as piped:
        streams = {"stdout": piped, "stderr": piped, terminal: terminal_fd}
        process = subprocess.Popen(
            [sys.executable, "-m", "dosecalc", "--protocols", str(TEST_PROTOCOLS), *args],
            stdin=subprocess.DEVNULL, stdout=streams["stdout"], stderr=streams["stderr"],
            env={**clean, **(env or {})},
        )  # fmt: skip
        os.close(terminal_fd)
        shown = b""
        try:
            while select.select([main_fd], [], [], 30)[0]:
                try:
                    data = os.read(main_fd, 65536)
                except OSError:  # the terminal closed: the process ended
                    break
                if not data:
                    break
                shown += data
        finally:
            os.close(main_fd)
            code = process.wait(timeout=30)
    text = shown.decode().replace("\r\n", "\n")
    return code, text, other.read_text(encoding="utf-8") if other is not None else ""


@pytest.mark.parametrize(
    "command", [["sheet"], ["check", "--operator", "RN Kim", "--rate", "1 mL/h"]]
)
def test_a_terminal_too_narrow_for_the_sheet_is_refused_before_anything_is_computed(
    command: list[str], tmp_path: Path
) -> None:
    """At 12 columns the PUMP box showed "151" with no label or unit; at 26, "151.1 mL/": rich's
    boxes cut what does not fit. Below 40 columns (the width these tests lay sheets out at) the
    sheet or check is refused, exit 2, saying how to get it."""
    args = [*command, "--weight", "72 kg", "--date", DATE]
    code, shown, stderr = _beside_a_terminal(args, 30, "stdout", tmp_path / "err.txt")
    assert code == 2
    assert shown == ""
    assert "output: the terminal is 30 columns wide; a sheet needs at least 40" in stderr
    assert "--output FILE" in stderr


@pytest.mark.parametrize(
    "command",
    [
        ["sheet", "--weight", "154 lb"],
        ["check", "--weight", "72 kg", "--operator", "RN Kim", "--vial", "50 mg/mL",
         "--drawn", "3.6 mL", "--rate", "15.54 mL/h", "--vtbi", "103.6 mL"],
    ],
)  # fmt: skip
def test_piped_to_a_pager_in_a_narrow_window_is_laid_out_for_the_window(
    command: list[str], tmp_path: Path
) -> None:
    """`dosecalc sheet | less` in a 60-column window: the sheet was laid out for 80 columns and the
    terminal broke "given as 3.49 mL" into "given as 3." and "49 mL"; the double check was not
    broken at all (lines of 128 columns). Piped while a person is at a terminal (stderr), text is
    laid out for that terminal, up to 80 columns."""
    _, _, stdout = _beside_a_terminal(
        [*command, "--date", DATE], 60, "stderr", tmp_path / "out.txt"
    )
    assert max(len(line) for line in stdout.splitlines()) <= 60
    assert not BROKEN.search(stdout), BROKEN.search(stdout)
    assert "\x1b[" not in stdout


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_a_plain_sheet_on_a_narrow_terminal_is_laid_out_for_its_width(env: dict[str, str]) -> None:
    """With NO_COLOR or TERM=dumb the sheet was laid out for 80 columns whatever the screen, and a
    40-column terminal cut "34.927 mg" and "0.5 mg/kg" mid-number (an outside check in tmux)."""
    text = _sheet_on_a_terminal(40, env)
    assert "\x1b[" not in text  # still no colour
    assert max(len(line) for line in text.splitlines()) <= 40
    assert not BROKEN.search(text), BROKEN.search(text)
    assert "34.9 mg" in text  # the dose, whole


def test_no_width_hides_a_digit_behind_an_ellipsis() -> None:
    """At 20 columns the PUMP box printed "155.4 ..." and the checkpoints "103.6 ...": a cut rate
    can be misread. Every cell folds instead; nothing is dropped."""
    sheet = make_sheet(protocols.load(SHIPPED_PROTOCOLS), Order(weight="72 kg", date=DATE))
    for width in range(12, 42, 2):
        assert "\u2026" not in as_text.plain(sheet, width), width


def test_a_prompt_broken_at_a_terminal_keeps_its_trailing_space() -> None:
    from dosecalc.render.wrap import fill

    assert fill("Weight, with its unit (for example 72 kg): ", 20).endswith("kg): ")


def test_the_protocols_list_at_a_narrow_terminal_keeps_numbers_with_units() -> None:
    """At 40 columns the terminal broke "0.5" / " mg/kg" in the list; ids now stand in a column
    and each name is broken at spaces under its own column."""
    code, shown, _ = _beside_a_terminal(["protocols", "list"], 50, "stdout")
    assert code == 0
    lines = shown.splitlines()[1:]  # the file's path and hash first
    assert max(len(line) for line in lines) <= 50
    assert not BROKEN.search("\n".join(lines)), BROKEN.search("\n".join(lines))
    names = [line for line in lines if line[:2] in ("* ", "  ") and line[2] != " "]
    starts = {len(line) - len(line[2:].split(" ", 1)[1].lstrip()) for line in names}
    assert len(starts) == 1  # every name starts in the same column
