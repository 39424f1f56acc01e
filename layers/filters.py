"""The one filter every panel shares (map, KPIs, charts, table, export) and the one WHERE built from it.

Why one place: whatever a user selects must mean the same rows in every panel, and access scopes (a
district officer sees only their district) will be added here once and apply everywhere.

Timestamps are naive China Standard Time like the store. The period is half-open, [start, end), so
consecutive periods never count a case twice.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta

from sqlalchemy import and_, select

from data import codes
from data.clock import CST, now_cst  # noqa: F401 - re-exported: the filters' period ends now
from data.statuses import OPEN, STATUSES, TERMINAL
from data.store.schema import Case, CaseClass
from layers.scope import UNRESTRICTED, Scope

cases = Case.__table__


def _sqlite_from_hints(self, table, text):
    return text


# SQLAlchemy drops FROM hints on SQLite; render them, so pinned() can write "cases INDEXED BY ix".
# Only statements that carry a 'sqlite' hint are affected (none but pinned() ones).
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler  # noqa: E402

if SQLiteCompiler.get_from_hint_text.__qualname__.startswith("SQLCompiler"):
    SQLiteCompiler.get_from_hint_text = _sqlite_from_hints


def period_index(filters: "Filters") -> str:
    """The covering index that serves "reported in the period" GROUP BY grid_code best on SQLite.

    City-wide or one street: ix_cases_grid_cover, already grouped (a skip-scan per grid, or the street's
    short range): no sort. One district: ix_cases_reported_cover, because the grid-led index would read
    the district's whole history (~100k rows) where the period holds ~9k to sort.
    """
    return "ix_cases_reported_cover" if filters.district and not filters.street else "ix_cases_grid_cover"


def pinned(query, index: str, table=None):
    """Make SQLite use `index` for `table` (INDEXED BY); PostgreSQL plans on its own.

    Why: at 1M cases SQLite's planner, even after ANALYZE, picked a non-covering (grid_code, reported_at)
    index for GROUP BY grid_code and visited the table for every case, or scanned all of it for "open
    now" (docs/query-plans.md). Each query here has a range on the pinned index's leading column, so the pin
    can never make a statement unpreparable.
    """
    return query.with_hint(cases if table is None else table, f"INDEXED BY {index}", "sqlite")


DEFAULT_DAYS = 30

_SOURCE = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
_CLASS = re.compile(r"^[A-Z][0-9]{4}$")
_MAJOR = re.compile(r"^[A-Z][0-9]{2}$")
_DEPARTMENT = re.compile(r"^[0-9A-Za-z_-]{1,16}$")


def _default_end() -> datetime:
    return now_cst()


def _default_start() -> datetime:
    return now_cst() - timedelta(days=DEFAULT_DAYS)


def code_range(column, code: str):
    """`column` starts with `code`, as a range so a B-tree index on the column can serve it.

    Codes are digit strings and parents are prefixes (data.codes), so the children of 330203 are exactly
    the strings in ['330203', '330204'). A LIKE would not use the index on PostgreSQL's default collation.
    """
    upper = str(int(code) + 1).zfill(len(code))
    return and_(column >= code, column < upper)


@dataclass(frozen=True)
class Filters:
    """What the user selected. Every field narrows; empty tuples and None mean "no restriction".

    start, end   period [start, end), naive CST; default the 30 days ending now
    district     6-digit district code, street 9-digit street code (must lie in the district if both)
    sources      case_sources codes ('inspector', 'hotline', ...)
    classes      minor class codes ('E0101'); majors: major class codes ('E01')
    statuses     data.statuses codes; departments: department codes
    overdue_only only cases open and past their deadline now
    scope        what the signed-in person may see (layers.scope); never in the URL: to_query() leaves it
                 out and from_query() refuses it, so a link cannot widen or carry anyone's access. The
                 default is unrestricted, for code paths without a user (CLI, benches); the server sets it.
    """
    start: datetime = field(default_factory=_default_start)
    end: datetime = field(default_factory=_default_end)
    district: str | None = None
    street: str | None = None
    sources: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    majors: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    overdue_only: bool = False
    scope: Scope = UNRESTRICTED

    def __post_init__(self):
        for name in ("start", "end"):
            v = getattr(self, name)
            if not isinstance(v, datetime):
                raise ValueError(f"{name} must be a datetime, got {v!r}")
            if v.tzinfo is not None:
                object.__setattr__(self, name, v.astimezone(CST).replace(tzinfo=None))
        if self.start >= self.end:
            raise ValueError(f"start {self.start:%Y-%m-%d %H:%M} must be before end {self.end:%Y-%m-%d %H:%M}")
        try:
            if self.district is not None:
                object.__setattr__(self, "district", codes.validate(self.district, "district"))
            if self.street is not None:
                street = codes.validate(self.street, "street")
                object.__setattr__(self, "street", street)
                if self.district is not None and not street.startswith(self.district):
                    raise ValueError(f"street {street} is not in district {self.district}")
        except codes.CodeError as exc:
            raise ValueError(str(exc)) from None
        checks = {"sources": (_SOURCE, "a source code such as 'inspector'"),
                  "classes": (_CLASS, "a minor class code such as 'E0101'"),
                  "majors": (_MAJOR, "a major class code such as 'E01'"),
                  "departments": (_DEPARTMENT, "a department code")}
        for name, (pattern, what) in checks.items():
            values = _as_tuple(getattr(self, name), name)
            for v in values:
                if not pattern.match(v):
                    raise ValueError(f"{name}: {v!r} is not {what}")
            object.__setattr__(self, name, values)
        statuses = _as_tuple(self.statuses, "statuses")
        for s in statuses:
            if s not in STATUSES:
                raise ValueError(f"statuses: unknown status {s!r}; expected one of {', '.join(STATUSES)}")
        object.__setattr__(self, "statuses", statuses)
        if not isinstance(self.overdue_only, bool):
            raise ValueError(f"overdue_only must be a bool, got {self.overdue_only!r}")
        if not isinstance(self.scope, Scope):
            raise ValueError(f"scope must be a layers.scope.Scope, got {self.scope!r}")

    @property
    def area(self) -> str | None:
        """The narrowest area code selected (street over district), or None for the whole city."""
        return self.street or self.district

    # -- URL query string ----------------------------------------------------------------------------
    def to_query(self) -> dict[str, str]:
        """Only the non-default fields, as strings (tuples comma-joined): urlencode() it for a URL.

        start/end are always written, so a shared link shows the same period tomorrow.
        """
        q = {"start": _fmt(self.start), "end": _fmt(self.end)}
        for name in ("district", "street"):
            if getattr(self, name):
                q[name] = getattr(self, name)
        for name in ("sources", "classes", "majors", "statuses", "departments"):
            if getattr(self, name):
                q[name] = ",".join(getattr(self, name))
        if self.overdue_only:
            q["overdue_only"] = "1"
        return q

    @classmethod
    def from_query(cls, query: dict, strict: bool = True) -> "Filters":
        """Parse what to_query() wrote, or a parse_qs() dict (lists of strings); raise ValueError on bad input.

        Dates: ISO 'YYYY-MM-DD' (midnight) or 'YYYY-MM-DDTHH:MM[:SS]'. A missing start/end takes the
        default period (the 30 days ending now, or 30 days before/after the one given). Unknown keys raise
        unless strict=False, so a typo never silently widens the selection.
        """
        known = {f.name for f in fields(cls)} - {"scope"}
        unknown = sorted(set(query) - known)
        if unknown and strict:
            raise ValueError(f"unknown filter parameter(s): {', '.join(unknown)}; expected {', '.join(sorted(known))}")
        get = {k: _single(k, v) for k, v in query.items() if k in known}
        kw = {}
        start = _parse_dt("start", get["start"]) if get.get("start") else None
        end = _parse_dt("end", get["end"]) if get.get("end") else None
        if start is None and end is None:
            end = now_cst()
        if end is None:
            end = start + timedelta(days=DEFAULT_DAYS)
        if start is None:
            start = end - timedelta(days=DEFAULT_DAYS)
        kw["start"], kw["end"] = start, end
        for name in ("district", "street"):
            if get.get(name):
                kw[name] = get[name]
        for name in ("sources", "classes", "majors", "statuses", "departments"):
            if get.get(name):
                kw[name] = tuple(v.strip() for v in get[name].split(",") if v.strip())
        if "overdue_only" in get:
            v = get["overdue_only"].strip().lower()
            if v not in ("1", "0", "true", "false", ""):
                raise ValueError(f"overdue_only must be 1/0/true/false, got {get['overdue_only']!r}")
            kw["overdue_only"] = v in ("1", "true")
        return cls(**kw)


def _as_tuple(v, name) -> tuple[str, ...]:
    if isinstance(v, str):
        raise ValueError(f"{name} must be a tuple of codes, not the string {v!r}")
    try:
        out = tuple(str(x).strip() for x in v)
    except TypeError:
        raise ValueError(f"{name} must be a tuple of codes, got {v!r}") from None
    return tuple(dict.fromkeys(out))  # drop duplicates, keep order


def _single(key, v) -> str:
    if isinstance(v, (list, tuple)):
        if len(v) != 1:
            raise ValueError(f"{key} given {len(v)} times; give it once (lists are comma-separated)")
        v = v[0]
    if not isinstance(v, str):
        raise ValueError(f"{key} must be a string, got {v!r}")
    return v


def _fmt(d: datetime) -> str:
    return d.strftime("%Y-%m-%d") if d.time() == datetime.min.time() else d.isoformat(timespec="seconds")


def _parse_dt(name, s: str) -> datetime:
    s = s.strip()
    try:
        if len(s) == 10:
            return datetime.combine(date.fromisoformat(s), datetime.min.time())
        d = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"{name}: {s!r} is not a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM)") from None
    if d.tzinfo is not None:
        d = d.astimezone(CST).replace(tzinfo=None)
    return d


def is_open(table=cases, seek: bool = True):
    """Open now. seek=True: IN (open statuses), which an index on status can seek; seek=False: NOT IN
    (the two terminal ones), the same rows for a valid status but two comparisons per row inside
    aggregates instead of nine."""
    return table.c.status.in_(OPEN) if seek else table.c.status.not_in(TERMINAL)


def is_overdue(table=cases, now: datetime | None = None, seek: bool = True):
    """Open and past its deadline at `now`: the one definition of 超期 used by filters, metrics and the map."""
    now = now or now_cst()
    return and_(is_open(table, seek), table.c.deadline_at < now)


def where(filters: Filters, table=cases, *, period: str | None = "reported", now: datetime | None = None) -> list:
    """WHERE clauses for `filters` on the cases table (or a table with the same columns).

    period: which timestamp the period applies to: 'reported' (cases reported in the period, the map and
    charts), 'deadline' (cases due in the period, the rates), or None (a state now, e.g. open cases).
    Areas are ranges on grid_code (its prefixes are the street and district codes) so that the covering
    indexes, which carry grid_code, answer area-filtered queries without visiting the table. Majors become
    a set of minor classes from case_classes, for the same reason. The access scope is always ANDed in.
    """
    c = table.c
    out = []
    if period == "reported":
        out += [c.reported_at >= filters.start, c.reported_at < filters.end]
    elif period == "deadline":
        out += [c.deadline_at >= filters.start, c.deadline_at < filters.end]
    elif period is not None:
        raise ValueError(f"period must be 'reported', 'deadline' or None, got {period!r}")
    if filters.area:
        out.append(code_range(c.grid_code, filters.area))
    if filters.sources:
        out.append(c.source_code.in_(filters.sources))
    if filters.classes:
        out.append(c.class_code.in_(filters.classes))
    if filters.majors:
        cc = CaseClass.__table__.c
        out.append(c.class_code.in_(select(cc.code).where(cc.major_code.in_(filters.majors)).scalar_subquery()))
    if filters.statuses:
        out.append(c.status.in_(filters.statuses))
    if filters.departments:
        out.append(c.department_code.in_(filters.departments))
    if filters.overdue_only:
        out.append(is_overdue(table, now))
    out += filters.scope.clauses(table)
    return out


__all__ = ["Filters", "where", "is_open", "is_overdue", "pinned", "period_index", "code_range", "now_cst", "cases"]
