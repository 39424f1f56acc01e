"""Hierarchical area codes.

Codes are strings whose prefixes are their parents (GB/T 2260 district + township + community + grid
sequence), so a drill-down is a prefix match and a GROUP BY on a stored code column. Lengths live here
and nowhere else.
"""
import re

CITY = "330200"
LEVELS = ("district", "street", "community", "grid")
LENGTHS = {"district": 6, "street": 9, "community": 12, "grid": 15}
_DIGITS = re.compile(r"^[0-9]+$")


class CodeError(ValueError):
    """A code that is not of the shape its level requires."""


def level_of(code: str) -> str:
    for level, n in LENGTHS.items():
        if len(code) == n:
            return level
    raise CodeError(f"code {code!r} has {len(code)} characters; expected one of {sorted(LENGTHS.values())}")


def validate(code, level: str) -> str:
    """Return the code as a clean string or raise CodeError naming what is wrong."""
    if code is None:
        raise CodeError(f"missing {level} code")
    code = str(code).strip()
    n = LENGTHS[level]
    if len(code) != n or not _DIGITS.match(code):
        raise CodeError(f"{level} code {code!r} must be {n} digits")
    if level == "district" and not code.startswith(CITY[:4]):
        raise CodeError(f"district code {code!r} is not in Ningbo (3302xx)")
    return code


def parents(code: str) -> dict:
    """All codes from district down to the code itself, keyed by level."""
    level = level_of(code)
    out = {}
    for lv in LEVELS:
        out[lv] = code[: LENGTHS[lv]]
        if lv == level:
            break
    return out


def parent(code: str) -> str | None:
    level = level_of(code)
    i = LEVELS.index(level)
    return None if i == 0 else code[: LENGTHS[LEVELS[i - 1]]]
