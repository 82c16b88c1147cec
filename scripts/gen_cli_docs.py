"""Write docs/cli.md, the command-line reference, from the click commands themselves.

`python scripts/gen_cli_docs.py` rewrites the file; `--check` exits 1 when it is out of date (the
tests run the same comparison), so the reference cannot drift from `--help`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dosecalc.cli import cli

OUT = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
WIDTH = 100

HEAD = """# dosecalc command-line reference

Generated from the click commands by `python scripts/gen_cli_docs.py`; do not edit by hand
(`tests/test_cli_docs.py` fails when this file and `--help` disagree). Settings: an option, else its
environment variable, else `config.toml` in the app directory (see `dosecalc config`), else the
default shown. A variable that is set but empty is refused, naming it, with the exit code of the
option given empty (never skipped for the next in line); `$DOSECALC_CONFIG` must name a file that
exists (or be empty: no settings file). Each option is given once: a repeated option, even with
the same value, is a usage error (exit 2) naming it.

stdout is for data, stderr for messages. When stderr cannot be written (`2>/dev/full`), the messages
are lost but nothing else changes: what went to stdout stays (it is a stream: the sheet or results
are complete), files are written as usual, a refusal keeps its exit code (invalid input stays 2),
and a run that would have exited 0 exits 4, so that a script sees that a warning or a summary was
not shown. A closed stderr (`2>&-`) is taken as no messages wanted: the exit code is unchanged.
"""


def _sections(command: click.Command, parent: click.Context | None, name: str) -> list[str]:
    ctx = click.Context(
        command,
        info_name=name,
        parent=parent,
        terminal_width=WIDTH,
        max_content_width=WIDTH,
        **command.context_settings,
    )
    path = ctx.command_path
    sections = [f"## `{path}`\n\n```text\n{command.get_help(ctx)}\n```\n"]
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                sections += _sections(sub, ctx, sub_name)
    return sections


def render() -> str:
    """The whole reference as Markdown."""
    return "\n".join([HEAD, *_sections(cli, None, "dosecalc")])


def main(argv: list[str]) -> int:
    text = render()
    if argv == ["--check"]:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run python scripts/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
