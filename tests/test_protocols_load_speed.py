"""Start-up work (issue 14): the load-time checks made cheaper must find exactly what they found.

`protocols.reachable` runs every corner of a protocol's hard limits through its formulas; it
computes a formula's settled value once per distinct set of operands. These tests run every corner
afresh (no memo) and compare, for the shipped file, the test data files and the issue 11 test
protocols (every preparation, continuous infusions, per-kg diluents, caps).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dosecalc import protocols
from tests.test_preparation_delivery import CONTINUOUS, INTERMITTENT, write

DATA = Path(__file__).parent / "data"


class _Everything:
    """Stands for _READS_MORE: every target read afresh at every corner (no memo)."""

    def __contains__(self, item: object) -> bool:
        return True


def _libraries(tmp_path: Path) -> list[protocols.Library]:
    paths = [Path(protocols.resolve(None)[0])]
    paths += [p for p in sorted(DATA.glob("*.toml")) if p.name != "hostile_inputs.toml"]
    paths += [write(tmp_path, *INTERMITTENT), write(tmp_path, *CONTINUOUS, name="c.toml")]
    found = []
    for path in paths:
        try:
            found.append(protocols.load(path))
        except protocols.ProtocolFileError:
            continue  # a file made to be refused
    return found


def test_reachable_ranges_equal_those_of_every_corner_computed_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    libraries = _libraries(tmp_path)
    checked = [p for library in libraries for p in library.protocols.values()]
    assert len(checked) >= 15  # the shipped three, the data files and the issue 11 protocols
    assert any(p.preparation == "to-concentration" for p in checked)
    assert any(p.continuous for p in checked)
    memoised = [protocols.reachable(p) for p in checked]
    monkeypatch.setattr(protocols, "_READS_MORE", _Everything())
    afresh = [protocols.reachable(p) for p in checked]
    for p, fast, slow in zip(checked, memoised, afresh, strict=True):
        assert fast == slow, p.id
        # the same Decimals, not only equal ones: messages print them
        assert {k: (str(v.low), str(v.high)) for k, v in fast.items()} == {
            k: (str(v.low), str(v.high)) for k, v in slow.items()
        }, p.id
