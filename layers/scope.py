"""What a signed-in person may see, as data that every case query ANDs in (layers.filters.where).

Why data and not checks in the UI: a rule that lives in a callback can be bypassed by posting to the
callback endpoint directly; a clause inside the one WHERE every panel, layer, export and API query is built
from cannot. Roles map to scopes in data.users: a liaison sees their department's cases, a supervisor or
viewer their districts (none listed: the whole city), an admin everything.

`Scope()` with nothing in it sees nothing (a liaison without a department must not see the city);
`UNRESTRICTED` is for code paths without a user (benches, the CLI, background jobs).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import false, or_

from data import codes


def _tuple(v) -> tuple:
    if isinstance(v, str):
        raise ValueError(f"expected a tuple of codes, not the string {v!r}")
    return tuple(v or ())


@dataclass(frozen=True)
class Scope:
    """all: no restriction. Otherwise the rows must lie in one of `districts` (if any are listed) AND
    belong to one of `departments` (if any are listed); with neither listed, nothing is visible."""
    all: bool = False
    districts: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.all, bool):
            raise ValueError(f"Scope.all must be a bool, got {self.all!r}")
        try:
            districts = tuple(dict.fromkeys(codes.validate(d, "district") for d in _tuple(self.districts)))
        except codes.CodeError as exc:
            raise ValueError(str(exc)) from None
        departments = tuple(dict.fromkeys(str(d).strip() for d in _tuple(self.departments)))
        if any(not d for d in departments):
            raise ValueError("Scope.departments holds an empty department code")
        object.__setattr__(self, "districts", districts)
        object.__setattr__(self, "departments", departments)

    @property
    def empty(self) -> bool:
        """True when the scope admits no row at all."""
        return not self.all and not self.districts and not self.departments

    def clauses(self, table) -> list:
        """WHERE clauses restricting a cases-like table (grid_code, department_code columns) to the scope."""
        if self.all:
            return []
        if self.empty:
            return [false()]
        from layers.filters import code_range
        c = table.c
        out = []
        if self.districts:
            ranges = [code_range(c.grid_code, d) for d in self.districts]
            out.append(ranges[0] if len(ranges) == 1 else or_(*ranges))
        if self.departments:
            out.append(c.department_code.in_(self.departments))
        return out

    def area_clauses(self, column) -> list:
        """Clauses for tables without departments (grids, berths, setbacks): their area code `column`.

        A department-only scope (a liaison) sees the whole map's areas but only its own cases.
        """
        if self.all or not self.districts:
            return [] if not self.empty else [false()]
        from layers.filters import code_range
        ranges = [code_range(column, d) for d in self.districts]
        return [ranges[0] if len(ranges) == 1 else or_(*ranges)]

    def covers_area(self, code: str) -> bool:
        """Whether an area (a district, street, community or grid code) lies where this scope may look: a
        district supervisor's map labels no other district's areas, not even with a zero."""
        if self.all:
            return True
        if self.empty:
            return False
        return not self.districts or any(str(code).startswith(d) for d in self.districts)

    def permits(self, grid_code: str | None, department_code: str | None) -> bool:
        """The same rule as clauses(), for one row already in hand (a case read by id, a write)."""
        if not self.covers_area(grid_code or ""):
            return False
        return self.all or not self.departments or department_code in self.departments


UNRESTRICTED = Scope(all=True)
NOTHING = Scope()


__all__ = ["Scope", "UNRESTRICTED", "NOTHING"]
