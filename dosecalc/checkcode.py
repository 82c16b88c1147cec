"""The check code: eight characters that stand for one printed prescription under one protocol.

Two sheets with the same code were computed from the same protocol (id, version, protocols file
SHA-256) and print the same prescription, figure for figure, as text ("3.6 mL"). The second nurse's
`dosecalc check` prints its own code from its own computation: equal codes mean two independent
computations agree. SHA-256 of a canonical JSON message, the first 40 bits written in Crockford's
base32 (no I, L, O or U: nothing to misread), shown as XXXX-XXXX.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring_ascii

from dosecalc.display import Figure

# Crockford's base32 alphabet: digits and upper-case letters without I, L, O and U.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 8
SCHEME = "dosecalc.check/1"
# The printed figures the code covers (Figures names), with the name each has in the message. VTBI
# is the total volume on this pump (the whole bag); it is listed under both names, as on the sheet.
COVERED: tuple[tuple[str, str], ...] = (
    ("dosing_weight", "dosing_weight_kg"),
    ("dose_per_kg", "dose_per_kg"),
    ("dose", "dose"),
    ("strength", "stock"),
    ("drawn_up", "drug_volume"),
    ("total_volume", "total_volume"),
    ("concentration", "concentration"),
    ("rate", "rate"),
    ("vtbi", "total_volume"),
    ("duration", "duration"),
    # A gravity giving set and the drops a minute it is set to (absent from a sheet without one,
    # so every other sheet's code is unchanged): a 10 gtt/mL set halves the drops of a 20.
    ("drop_factor", "drop_factor"),
    ("drip_rate", "drops_per_min"),
)
FORMAT = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}-?[0-9A-HJKMNP-TV-Z]{4}")


def message(protocol: Sequence[str], figures: Mapping[str, Figure]) -> bytes:
    """The canonical text hashed: the scheme, the protocol's id, version and file SHA-256, and each
    covered figure as printed ("36 mg"). JSON, so no value can run into the next."""
    # A figure this kind of dose does not have (a fixed dose has no dose per kg) is left out.
    items = [
        SCHEME,
        *protocol,
        *(f"{key}={figures[name].text}" for key, name in COVERED if name in figures),
    ]
    # json.dumps(items, ensure_ascii=True, separators=(",", ":")): a list of strings, each written
    # by json's own C string encoder (without building a JSON encoder for every sheet).
    return ("[" + ",".join(map(encode_basestring_ascii, items)) + "]").encode("ascii")


def code(protocol_id: str, version: str, sha256: str, figures: Mapping[str, Figure]) -> str:
    """'7KQ2-M9XD': the check code of a printed prescription."""
    digest = hashlib.sha256(message((protocol_id, version, sha256), figures)).digest()
    bits = int.from_bytes(digest[:5], "big")  # 40 bits: 8 characters of 5 bits
    chars = "".join([ALPHABET[(bits >> shift) & 31] for shift in _SHIFTS])
    return f"{chars[:4]}-{chars[4:]}"


_SHIFTS = tuple(5 * i for i in reversed(range(LENGTH)))  # most significant character first
