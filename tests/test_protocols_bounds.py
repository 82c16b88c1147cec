"""A protocols file is bounded before tomllib parses it: deep nesting and dotted keys (quadratic
memory in tomllib) are refused with exit 3, in a process limited to 512 MB of address space."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SHIPPED_PROTOCOLS, TEST_PROTOCOLS, assert_no_traceback

from dosecalc import protocols
from dosecalc.errors import ProtocolFileError

HOSTILE = {
    "nested_arrays": "a = " + "[" * 50_000 + "]" * 50_000 + "\n",
    "nested_tables": "a = " + "{b = " * 30_000 + "1" + "}" * 30_000 + "\n",
    "dotted_key": "a" + ".a" * 100_000 + " = 1\n",
    "many_keys": "".join(f"k{i}.x = 1\n" for i in range(20_000)),
    "many_dotted_keys": "".join(f"a.b.c.d{i} = 1\n" for i in range(20_000)),
}


def _limit_memory() -> None:
    limit = 512 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_protocols_file_is_exit_3_within_a_second_and_little_memory(
    tmp_path: Path, case: str
) -> None:
    path = tmp_path / f"{case}.toml"
    path.write_text(HOSTILE[case])
    done = subprocess.run(
        [sys.executable, "-m", "dosecalc", "protocols", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_memory,
    )
    assert_no_traceback(done.stderr)
    assert done.returncode == 3, done.stderr
    with pytest.raises(ProtocolFileError) as refused:
        protocols.load(path)
    assert refused.value.problems[0].code == "too_complex"


@pytest.mark.parametrize("path", [SHIPPED_PROTOCOLS, TEST_PROTOCOLS])
def test_the_real_protocols_files_are_well_inside_the_bounds(path: Path) -> None:
    assert protocols._shape_problem(path.read_text()) is None


def test_dots_and_brackets_inside_strings_and_comments_do_not_count() -> None:
    text = 'a = "' + "[." * 1000 + '"\n# ' + "{." * 1000 + "\nb = '" + "]." * 1000 + "'\n"
    assert protocols._shape_problem(text) is None


def test_the_line_of_the_problem_is_named() -> None:
    text = "a = 1\nb = 2\nc = " + "[" * 20 + "]" * 20 + "\n"
    assert protocols._shape_problem(text) == "line 3: is nested more than 16 levels deep"
