"""Print one of the README's Quick start commands, exactly as written, for .ci/run to execute.

`python3 scripts/quickstart.py 1` prints the first fenced `sh` block under "## Quick start", `2` the
second. CI runs what a reader copies, so the README and CI cannot drift apart. Standard library only:
it runs before anything is installed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def commands(readme: str) -> list[str]:
    """The command in each fenced sh block of the Quick start section, in order."""
    match = re.search(r"^## Quick start\n(.*?)(?=^## )", readme, re.MULTILINE | re.DOTALL)
    if match is None:
        raise SystemExit("README.md has no '## Quick start' section")
    blocks = re.findall(r"^ *```sh\n(.*?)^ *```", match[1], re.MULTILINE | re.DOTALL)
    return [" ".join(line.strip() for line in block.strip().splitlines()) for block in blocks]


def main(argv: list[str]) -> int:
    found = commands(README.read_text(encoding="utf-8"))
    if len(argv) != 1 or argv[0] not in ("1", "2") or len(found) != 2:
        print(f"usage: quickstart.py 1|2 (the README holds {len(found)} commands)", file=sys.stderr)
        return 2
    print(found[int(argv[0]) - 1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
