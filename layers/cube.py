"""The columns of the cases table that the panels aggregate, held in this process as numpy arrays.

Why: a filter change needs the same ~170k cases (this period and the previous one, city-wide, 30 days at 1M
cases) grouped five ways (time bucket, class, status, street, department). SQLite groups by sorting, ~1-2 us
per row and grouping (the breakdowns cost 0.4 + 0.7 s of CPU per change, bench/README.md), and a per-day
rollup table does not help: grouped by (day, grid or street, class, status, source, department), the keys
the filters need, 30 days of cases still make 64-78k rows out of 84k. A mask and np.bincount over 1M
in-memory rows costs a few milliseconds per panel on either database.

Exactness: the arrays are the cases table's rows, not an approximation. Every read first asks the store
for (version:cases, max(case_events.id), max(cases.id)) through the caller's connection (two index probes
and a meta row). Every writer of a case writes its timeline row in the same transaction (data.intake,
data.workflow, the importers), so when the mark moved, the cases with an id above the last seen one or an
event among the last seen CATCH_UP_EVENTS or newer are read again and patched in by id (the margin covers
PostgreSQL transactions that took event ids in one order and committed in another). A mark moving
backwards (a restore) or an id below the newest appearing reloads everything, as does RELOAD_S passing.
A write by hand in SQL that leaves no case event is not seen until then.

Freshness: a process asks for the mark at most every lag() seconds (CGZT_PANEL_LAG_S, default 3); in
between, the panels answer from the snapshot they have. With writes arriving every half second, asking on
every read meant three queries per panel request and a re-patch (a copy of the ~75 MB of columns) for
nearly every request in every worker, and a key change that emptied every panel memo (bench/load.py). The
live pane and the workspace read the store directly and are not delayed; KPI tiles and charts trail a
write by at most lag() seconds, less than a wall screen's glance.

The map's case view at zoom 16 and above (layers.cases) reads lon/lat from here too (16 MB of the ~75 MB
at 1M cases): SQLite has no two-dimensional index.

Timestamps are int64 microseconds (naive CST, as stored); a missing one is NA (int64 min), and every
comparison against a nullable column masks NA explicitly.
"""
from __future__ import annotations

import os
import threading
import time
import weakref
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
from sqlalchemy import DateTime, bindparam, select, text

NA = np.iinfo(np.int64).min
CATCH_UP_EVENTS = 1000
RELOAD_S = 3600.0
LAG_S = 3.0
TIMES = ("reported_at", "deadline_at", "registered_at", "closed_at")
CODES = ("grid_code", "class_code", "status", "source_code", "department_code")


def us(d: datetime) -> int:
    """A naive datetime as int64 microseconds, the arrays' unit."""
    return int(np.datetime64(d, "us").astype(np.int64))


@dataclass
class _Codes:
    """A categorical column: values[i] is the string of code i ('' for NULL)."""
    values: list = field(default_factory=list)
    index: dict = field(default_factory=dict)
    luts: dict = field(default_factory=dict)
    prefixes: dict = field(default_factory=dict)

    def encode(self, col) -> np.ndarray:
        out = np.empty(len(col), dtype=np.int32)
        idx, vals = self.index, self.values
        for i, v in enumerate(col):
            v = "" if v is None else v
            k = idx.get(v)
            if k is None:
                k = idx[v] = len(vals)
                vals.append(v)
            out[i] = k
        return out

    def lut(self, pred, key=None) -> np.ndarray:
        """Boolean lookup table over the codes: lut[codes] is the row mask of pred(value). With a key, kept
        until a new code appears (a filter change asks for the same district in every panel)."""
        hit = self.luts.get(key) if key is not None else None
        if hit is not None and len(hit) == len(self.values):
            return hit
        out = np.fromiter((bool(pred(v)) for v in self.values), dtype=bool, count=len(self.values))
        if key is not None:
            if len(self.luts) > 512:
                self.luts.clear()
            self.luts[key] = out
        return out

    def prefix(self, n: int) -> tuple[list, np.ndarray]:
        """(distinct first-n-character prefixes, the prefix index of each code): grids to streets."""
        hit = self.prefixes.get(n)
        if hit is not None and len(hit[1]) == len(self.values):
            return hit
        names, of = np.unique(np.array([v[:n] for v in self.values], dtype=object), return_inverse=True)
        self.prefixes[n] = hit = ([str(x) for x in names], of)
        return hit


@dataclass(frozen=True)
class Snapshot:
    """One consistent set of columns (replaced whole on every patch, so a reader never sees half of one)."""
    ids: np.ndarray
    t: dict              # name -> int64 us array
    c: dict              # name -> int32 code array
    setback: np.ndarray  # int64, -1 for none
    lon: np.ndarray      # float64 WGS84, for the map's case view (layers.cases)
    lat: np.ndarray
    codes: dict          # name -> _Codes (shared, append-only)
    mark: tuple          # (version:cases, max case_events.id, max cases.id) the snapshot reflects
    memo: dict = field(default_factory=dict, compare=False)  # masks derived from these arrays


class _Cube:
    def __init__(self):
        self.lock = threading.Lock()
        self.snap: Snapshot | None = None
        self.loaded_at = 0.0
        self.checked_at = float("-inf")   # when the mark was last asked for

    def usable(self) -> Snapshot | None:
        """The snapshot, unless none is loaded or RELOAD_S has passed since the last full load."""
        snap = self.snap
        return snap if snap is not None and time.monotonic() - self.loaded_at < RELOAD_S else None


# One set of columns per Engine (not per URL: a test that rebuilds a store under the same URL makes a new
# engine), dropped with it.
_cubes: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_cubes_lock = threading.Lock()

_SELECT = ("SELECT id, {times}, grid_code, class_code, status, source_code, department_code, setback_id, lon, lat "
           "FROM cases")


def _times_sql(dialect: str) -> str:
    if dialect == "postgresql":
        return ", ".join(f"(extract(epoch FROM {c}) * 1000000)::bigint" for c in TIMES)
    return ", ".join(TIMES)


def _to_us(col, dialect: str) -> np.ndarray:
    if dialect == "postgresql":
        return np.array([NA if v is None else int(v) for v in col], dtype=np.int64)
    # SQLite keeps 'YYYY-MM-DD HH:MM:SS[.ffffff]' strings, which numpy parses; None -> NaT == int64 min.
    return np.array(["NaT" if v is None else v for v in col], dtype="datetime64[us]").astype(np.int64)


def _mark(conn) -> tuple:
    from data.store import meta
    # Separate statements: SQLite answers a lone max() from the index's end, but scans for max(a), max(b).
    event = conn.execute(text("SELECT max(id) FROM case_events")).scalar()
    top = conn.execute(text("SELECT max(id) FROM cases")).scalar()
    return (meta.get(conn, "version:cases"), int(event or 0), int(top or 0))


def _read(conn, where: str = "", params: dict | None = None):
    d = conn.dialect.name
    q = text(_SELECT.format(times=_times_sql(d)) + where + " ORDER BY id")
    if params:
        q = q.bindparams(*[bindparam(k, type_=DateTime) for k in params if isinstance(params[k], datetime)])
    rows = conn.execute(q, params or {}).all()
    cols = list(zip(*rows)) if rows else [()] * (4 + len(TIMES) + len(CODES))
    return cols, d


def _columns(cols, d, codes):
    ids = np.array(cols[0], dtype=np.int64)
    t = {name: _to_us(cols[1 + i], d) for i, name in enumerate(TIMES)}
    c = {name: codes[name].encode(cols[1 + len(TIMES) + i]) for i, name in enumerate(CODES)}
    setback = np.array([-1 if v is None else int(v) for v in cols[-3]], dtype=np.int64)
    lon, lat = np.array(cols[-2], dtype=np.float64), np.array(cols[-1], dtype=np.float64)
    return ids, t, c, setback, lon, lat


def _load(conn, mark) -> Snapshot:
    codes = {name: _Codes() for name in CODES}
    cols, d = _read(conn)
    ids, t, c, setback, lon, lat = _columns(cols, d, codes)
    return Snapshot(ids, t, c, setback, lon, lat, codes, mark)


def _patch(conn, snap: Snapshot, mark) -> Snapshot | None:
    """Rows changed since snap, patched in by id; None when a full reload is needed."""
    _, old_event, old_id = snap.mark
    _, event, top = mark
    if top < old_id or event < old_event:
        return None
    # One IN over a UNION ALL, not "id > :top OR id IN (...)": PostgreSQL answered the OR by filtering all
    # 1M ids of the primary key (144 ms of its CPU per patch, for every worker at every write; bench/load.py),
    # the UNION by two short index range scans (0.3 ms). SQLite searches both forms by rowid.
    cols, d = _read(conn, " WHERE id IN (SELECT id FROM cases WHERE id > :top"
                          " UNION ALL SELECT case_id FROM case_events WHERE id > :event)",
                    {"top": old_id, "event": max(0, old_event - CATCH_UP_EVENTS)})
    if not cols[0]:
        return replace(snap, mark=mark)
    ids, t, c, setback, lon, lat = _columns(cols, d, snap.codes)
    pos = np.searchsorted(snap.ids, ids)
    known = (pos < len(snap.ids)) & (snap.ids[np.minimum(pos, len(snap.ids) - 1)] == ids) if len(snap.ids) \
        else np.zeros(len(ids), dtype=bool)
    new = ~known
    if new.any() and len(snap.ids) and ids[new].min() <= snap.ids[-1]:
        return None  # an id below the newest one appeared (a restore?): read everything again

    def merged(old, fresh):
        out = old.copy()
        out[pos[known]] = fresh[known]
        return np.concatenate([out, fresh[new]]) if new.any() else out
    return Snapshot(merged(snap.ids, ids), {k: merged(snap.t[k], t[k]) for k in TIMES},
                    {k: merged(snap.c[k], c[k]) for k in CODES}, merged(snap.setback, setback),
                    merged(snap.lon, lon), merged(snap.lat, lat), snap.codes, mark)


def lag() -> float:
    """Seconds the panels may trail the store (CGZT_PANEL_LAG_S; 0: ask on every read, as the tests do)."""
    try:
        return max(0.0, float(os.environ.get("CGZT_PANEL_LAG_S", LAG_S)))
    except ValueError:
        return LAG_S


def snapshot(conn, max_age: float | None = None) -> Snapshot:
    """The cases columns as of at most `max_age` (default lag()) seconds ago, read through `conn` (loaded on
    first use, then patched)."""
    with _cubes_lock:
        cube = _cubes.get(conn.engine)
        if cube is None:
            cube = _cubes[conn.engine] = _Cube()
    max_age = lag() if max_age is None else max_age
    asked = time.monotonic()
    snap = cube.usable()
    if snap is not None and asked - cube.checked_at < max_age:
        return snap
    mark = _mark(conn)
    snap = cube.usable()
    if snap is not None and snap.mark == mark:
        cube.checked_at = asked
        return snap
    with cube.lock:
        snap = cube.usable()
        if snap is None or snap.mark != mark:
            fresh = _patch(conn, snap, mark) if snap is not None else None
            if fresh is None:
                fresh = _load(conn, mark)
                cube.loaded_at = time.monotonic()
            cube.snap = snap = fresh
        cube.checked_at = asked
        return snap


def warm(engine) -> None:
    """Load the columns now (a server start), so the first filter change does not wait for them."""
    with engine.connect() as conn:
        snapshot(conn)


def forget() -> None:
    """Drop every process-held snapshot."""
    with _cubes_lock:
        _cubes.clear()


# ------------------------------------------------------------------------------------------ filters

def mask(conn, snap: Snapshot, f, now: datetime | None, period: str | None) -> np.ndarray:
    """Row mask of layers.filters.where(f, period=period, now=now), clause for clause.

    The part without the period is kept on the snapshot per filter: the panels of one change all ask for it.
    """
    from dataclasses import replace as _replace
    from layers.filters import now_cst
    t = snap.t
    key = ("base", _replace(f, start=_EPOCH, end=_EPOCH_END), us(now or now_cst()) if f.overdue_only else None)
    base = snap.memo.get(key)
    if base is None:
        base = _base(conn, snap, f, now)
        base.flags.writeable = False  # shared by every panel of the change: combine, never modify
        _remember(snap, key, base)
    if period is None:
        return base
    col = t["reported_at" if period == "reported" else "deadline_at"]
    return base & (col >= us(f.start)) & (col < us(f.end)) & (col != NA)


_EPOCH, _EPOCH_END = datetime(1970, 1, 1), datetime(1970, 1, 2)


def _base(conn, snap: Snapshot, f, now) -> np.ndarray:
    from data.statuses import OPEN
    from data.store.schema import CaseClass
    t = snap.t
    m = np.ones(len(snap.ids), dtype=bool)
    if f.area:
        area = f.area
        m &= _rows(snap, "grid_code", ("area", area), lambda v: v[:len(area)] == area)
    if f.sources:
        m &= _rows(snap, "source_code", f.sources, lambda v: v in f.sources)
    if f.classes:
        m &= _rows(snap, "class_code", f.classes, lambda v: v in f.classes)
    if f.majors:
        cc = CaseClass.__table__.c
        minors = {r[0] for r in conn.execute(select(cc.code).where(cc.major_code.in_(f.majors)))}
        m &= _rows(snap, "class_code", ("minors",) + tuple(sorted(minors)), lambda v: v in minors)
    if f.statuses:
        m &= _rows(snap, "status", f.statuses, lambda v: v in f.statuses)
    if f.departments:
        m &= _rows(snap, "department_code", f.departments, lambda v: v in f.departments)
    if f.overdue_only:
        from layers.filters import now_cst
        dl = t["deadline_at"]
        m &= rows_in(snap, OPEN) & (dl != NA) & (dl < us(now or now_cst()))
    sc = f.scope
    if not sc.all:
        if sc.empty:
            m[:] = False
        if sc.districts:
            ds = tuple(sc.districts)
            m &= _rows(snap, "grid_code", ("scope",) + ds, lambda v: any(v[:len(d)] == d for d in ds))
        if sc.departments:
            deps = set(sc.departments)
            m &= _rows(snap, "department_code", ("scope",) + tuple(sorted(deps)), lambda v: v in deps)
    return m


def _rows(snap: Snapshot, column: str, key, pred) -> np.ndarray:
    """Row mask of pred(value of `column`), kept on the snapshot: the same district or class set comes back
    in filter after filter, and indexing 1M codes through a lookup table costs ~5 ms each time."""
    k = ("rows", column, key)
    hit = snap.memo.get(k)
    if hit is None:
        hit = snap.codes[column].lut(pred, key)[snap.c[column]]
        hit.flags.writeable = False
        _remember(snap, k, hit)
    return hit


def _remember(snap: Snapshot, key, value) -> None:
    if len(snap.memo) > 128:
        snap.memo.clear()
    snap.memo[key] = value


def rows_in(snap: Snapshot, statuses) -> np.ndarray:
    """Row mask of status IN statuses, kept on the snapshot."""
    key = ("status", tuple(statuses))
    hit = snap.memo.get(key)
    if hit is None:
        hit = status_lut(snap, statuses)[snap.c["status"]]
        hit.flags.writeable = False
        _remember(snap, key, hit)
    return hit


def per_area(snap: Snapshot, sel: np.ndarray, n: int, *weights) -> dict[str, tuple[int, ...]]:
    """{area code (the first n characters of the grid code): (rows, sum of each weight)} over the rows in
    `sel` (a mask), for the areas holding at least one such row: a GROUP BY grid_code rolled up."""
    names, of = snap.codes["grid_code"].prefix(n)
    a = of[snap.c["grid_code"][sel]]
    cols = [np.bincount(a, minlength=len(names))] + [np.bincount(a, weights=w[sel], minlength=len(names))
                                                     for w in weights]
    nz = np.flatnonzero(cols[0])
    vals = [col[nz].astype(np.int64).tolist() for col in cols]
    return {names[i]: tuple(v) for i, v in zip(nz.tolist(), zip(*vals))}


def status_lut(snap: Snapshot, statuses) -> np.ndarray:
    s = set(statuses)
    return snap.codes["status"].lut(lambda v: v in s, tuple(statuses))


__all__ = ["snapshot", "warm", "forget", "mask", "per_area", "rows_in", "status_lut", "us", "NA", "Snapshot"]
