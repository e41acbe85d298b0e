"""Integers as systemd 252 reads them: C's strtol with base 0.

systemd parses `Nice=`, `OOMScoreAdjust=`, the weights, the I/O and CPU
scheduling numbers and the `Limit*=` counts with safe_atoi/safe_atou, which
call strtol/strtoul with base 0. So `0x10` is 16, `010` is octal 8, `08` is
invalid, and glibc 2.36 (Debian 12) also reads `0b101` as binary.
"""

from __future__ import annotations

import re

INT_MAX = 2**31 - 1
# All ones in 64 bits is RLIM_INFINITY and USEC_INFINITY, which systemd rejects when written as a number.
UINT64_MAX = 2**64 - 1

_C_INTEGER = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_BASES = {"x": 16, "b": 2}


def parse_c_integer(text: str, signed: bool = True) -> int | None:
    """Return the integer `text` spells in C syntax, or None when it is not one.

    With `signed=False` a minus sign is accepted only on zero, as systemd's safe_atou does.
    """
    # strtol skips leading white space, and systemd rejects anything after the number.
    match = _C_INTEGER.fullmatch(text.lstrip())
    if match is None:
        return None
    sign, digits = match.groups()
    if len(digits) > 1 and digits[1].lower() in _BASES:
        value = int(digits[2:], _BASES[digits[1].lower()])
    elif digits.startswith("0"):
        value = int(digits, 8)
    else:
        value = int(digits)
    if sign == "-":
        if not signed and value != 0:
            return None
        value = -value
    return value

