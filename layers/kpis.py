"""KPI tiles: one definition of each indicator, for the current period and the previous one of equal length.

Why here: the tiles, the wall and the tests must agree on what "open" or "按期结案率" means. Every query
goes through layers.filters.where or its column form layers.cube.mask (so access scopes added there
apply); "open" / "overdue" now are layers.breakdown.now_state (metrics' definitions); the flow
indicators and rates are summed from the two breakdowns of layers.breakdown (one pass each for both periods), which follow metrics' definitions of 结案率 /
按期结案率 exactly (tests compare them with metrics.counts and with raw SQL).

Indicators (for Filters f, period [start, end), previous period [start - (end - start), start)):

reported      cases reported in the period
registered    of those, registered (status past 'reported', not rejected: data.statuses.REGISTERED_STAGES)
open          open now (metrics 'open'); its previous value is "open at the period's start", rebuilt from
              timestamps: reported before it, not closed before it, not rejected
overdue       open and past the deadline now (metrics 'overdue'); previous: open at the start with a
              deadline before it (extensions move deadlines, so this uses the deadline as stored now)
close_rate    结案率 = closed / due-to-close (metrics 'close_rate'), with the counts "911/972"
ontime_rate   按期结案率 (metrics 'ontime_rate')
avg_hours     average handling time in hours, registered -> closed, over the closed cases among those due
              in the period (the population of 结案率, so it reads beside the rates)
occupancy     berth occupancy now (as metrics.berth_occupancy, berths in the area of f); previous: berths with
              a parking session spanning the period's start, over the same berths in service (None when
              the sessions on record begin after it)
setbacks      setback spaces with at least one open case now; previous: at the period's start

Every case indicator's previous value is None (shown "—") when the store's first case is later than the
previous period's start: that period was not recorded, so a comparison with it would be invented.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from data.statuses import REGISTERED_STAGES
from data.store.schema import Berth, BerthSession, Case
from layers import breakdown
from layers.filters import Filters, code_range, now_cst

KPIS = ("reported", "registered", "open", "overdue", "close_rate", "ontime_rate", "avg_hours", "occupancy",
        "setbacks")
# Higher is better for these; for the rest an increase is bad (or neutral, for reported).
HIGHER_IS_BETTER = {"registered": None, "reported": None, "close_rate": True, "ontime_rate": True,
                    "avg_hours": False, "open": False, "overdue": False, "occupancy": None, "setbacks": False}


@dataclass(frozen=True)
class Kpi:
    key: str
    value: float | None     # None: nothing to measure (no case due, no berth)
    previous: float | None
    num: int | None = None  # rates: closed (on time) / due, for "911/972"
    den: int | None = None

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous


def previous(filters: Filters) -> Filters:
    """The period of the same length just before filters' period, all else equal."""
    span = filters.end - filters.start
    return _replace(filters, start=filters.start - span, end=filters.start)


def _replace(f: Filters, **kw) -> Filters:
    from dataclasses import replace
    return replace(f, **kw)


def occupancy(conn, f: Filters, at: datetime | None = None) -> tuple[float | None, int, int]:
    """(percent, occupied, in service) for berths in the scope, now (at=None) or at a past time.

    At a past time: berths with a parking session spanning it (sessions longer than SESSION_MAX are not
    looked for), over the berths in service now. None when the sessions on record start after `at`.
    """
    total, occ = _berth_counts(conn, f.area)
    if at is not None:
        occ = _occupied_in(_occupied_at(conn, at), f.area)
        if occ is None:
            return None, 0, total
    return _rate(occ, total), occ, total


_counts_memo: dict = {}


def _berth_counts(conn, area: str | None) -> tuple[int, int]:
    """(in service, occupied) berths in the area. Memoised per (store, berths data version, area): berth
    states change only through writes that bump that version (importers, seeding; the berths layer's URL
    moves with it), and the count was 9-14 ms of every city-wide filter change (bench/filters.py)."""
    from data.store import meta
    key = (str(conn.engine.url), meta.versions(conn).get("berths"), area)
    hit = _counts_memo.get(key)
    if hit is not None:
        return hit
    b = Berth.__table__.c
    # One pass over the (grid_code, state) index: no GROUP BY, whose sort cost SQLite ~50 ms per 100k berths.
    q = select(func.count().filter(b.state != "out_of_service"), func.count().filter(b.state == "occupied"))
    q = q.with_hint(Berth.__table__, "INDEXED BY ix_berths_grid_state", "sqlite")
    if area:
        q = q.where(code_range(b.grid_code, area))
    out = tuple(int(v or 0) for v in conn.execute(q).first())
    if len(_counts_memo) > 1024:   # areas are bounded (city, districts, streets, grids); versions are not
        _counts_memo.clear()
    _counts_memo[key] = out
    return out


def warm(engine, starts) -> None:
    """Berths occupied at each of `starts` (the period presets' first moments, dashboard.map_page.warm_panels):
    the scan of a day of parking sessions (~0.25 s at full scale) then runs in the background, not in the
    first filter change of each preset."""
    with engine.connect() as conn:
        for at in starts:
            _occupied_at(conn, at)


def _rate(occ: int | None, total: int) -> float | None:
    return 100.0 * occ / total if occ is not None and total else None


def _occupied_in(per_grid: dict | None, area: str | None) -> int | None:
    if per_grid is None:
        return None
    return sum(n for g, n in per_grid.items() if not area or g.startswith(area))


_occupied_memo: dict = {}
_occupied_lock = threading.Lock()


def _occupied_at(conn, at: datetime) -> dict[str, int] | None:
    """{grid code: berths in service with a session spanning `at`}, city-wide, or None when the sessions on
    record start after it. Memoised per (store, at, berths data version): the period presets start at
    midnight, so every filter change of a day asks for the same moment, and the scan of a day of sessions
    (~330k rows, ~0.9 s of SQLite CPU at full scale) runs once per berths version instead of per change."""
    from data.store import meta
    b, s = Berth.__table__.c, BerthSession.__table__.c
    key = (str(conn.engine.url), at, meta.versions(conn).get("berths"))
    hit = _occupied_memo.get(key)
    if hit is not None:
        return hit[0]
    with _occupied_lock:
        hit = _occupied_memo.get(key)
        if hit is not None:
            return hit[0]
        first = conn.execute(select(func.min(s.started_at))).scalar()
        if first is None or (first if isinstance(first, datetime) else datetime.fromisoformat(str(first))) > at:
            out = None
        else:
            q = (select(b.grid_code, func.count(func.distinct(s.berth_id))).select_from(
                BerthSession.__table__.join(Berth.__table__, b.id == s.berth_id))
                 .where(s.started_at <= at, s.started_at > at - SESSION_MAX,
                        or_(s.ended_at.is_(None), s.ended_at > at), b.state != "out_of_service")
                 .group_by(b.grid_code))
            out = {g: int(n) for g, n in conn.execute(q)}
        if len(_occupied_memo) > 64:
            _occupied_memo.clear()
        _occupied_memo[key] = (out,)
        return out


SESSION_MAX = timedelta(days=1)


def avg_hours(conn, f: Filters, now=None) -> tuple[float | None, int]:
    """(mean hours registered -> closed, closed cases) over the closed cases due in f's period (the
    population of 结案率): the current-period part of the avg_hours tile, on its own."""
    hours = closed = 0
    for p, _, _, a, _, _, h in breakdown.due(conn, f, now):
        if p == 0:
            closed += a
            hours += h
    return (hours / closed if closed else None), closed


def rows(conn, f: Filters, now=None) -> tuple[list, list]:
    """The two breakdowns (layers.breakdown) every tile and chart of `f` is summed from."""
    return breakdown.reported(conn, f, now), breakdown.due(conn, f, now)


def compute(conn, filters: Filters, now: datetime | None = None, data: tuple | None = None) -> dict[str, Kpi]:
    """{key: Kpi} for every indicator in KPIS; `now` is for tests (the dashboard leaves it None).
    data: rows(conn, filters) when the caller already has them (the charts read the same)."""
    now = now or now_cst()
    rep, due = data or rows(conn, filters, now)
    reg = set(REGISTERED_STAGES)
    n_rep, n_reg = [0, 0], [0, 0]
    for p, _, _, status, n in rep:
        n_rep[p] += n
        if status in reg:
            n_reg[p] += n
    closed, ontime, den, hours = [0, 0], [0, 0], [0, 0], [0.0, 0.0]
    for p, _, _, a, o, n, h in due:
        closed[p] += a
        ontime[p] += o
        den[p] += n
        hours[p] += h
    pct = lambda a, b: 100.0 * a / b if b else None  # noqa: E731
    out = {"reported": Kpi("reported", n_rep[0], n_rep[1]), "registered": Kpi("registered", n_reg[0], n_reg[1])}
    was = breakdown.state_at(conn, filters, filters.start)
    cur = breakdown.now_state(conn, filters, now)
    out["open"] = Kpi("open", cur["open"], was["open"])
    out["overdue"] = Kpi("overdue", cur["overdue"], was["overdue"])
    out["close_rate"] = Kpi("close_rate", pct(closed[0], den[0]), pct(closed[1], den[1]), closed[0], den[0])
    out["ontime_rate"] = Kpi("ontime_rate", pct(ontime[0], den[0]), pct(ontime[1], den[1]), ontime[0], den[0])
    out["avg_hours"] = Kpi("avg_hours", hours[0] / closed[0] if closed[0] else None,
                           hours[1] / closed[1] if closed[1] else None, closed[0], None)
    o, occ, tot = occupancy(conn, filters)
    po = _rate(_occupied_in(_occupied_at(conn, filters.start), filters.area), tot)
    out["occupancy"] = Kpi("occupancy", o, po, occ, tot)
    out["setbacks"] = Kpi("setbacks", cur["setbacks"], was["setbacks"])
    if not cases_reach_back(conn, previous(filters).start):
        # Before the store's first case nothing was recorded: the previous period's figures are unknown, not
        # zero (a 30-day record would show "+4135 %" against an empty month). Occupancy has its own rule.
        from dataclasses import replace
        out = {k: v if k == "occupancy" else replace(v, previous=None) for k, v in out.items()}
    return out


def cases_reach_back(conn, at: datetime) -> bool:
    """Whether the store's cases go back to `at` (the earliest report is at or before it; an index lookup)."""
    first = conn.execute(select(func.min(Case.reported_at))).scalar()
    if isinstance(first, str):
        first = datetime.fromisoformat(first)
    return first is not None and first <= at


__all__ = ["KPIS", "Kpi", "compute", "rows", "previous", "occupancy", "avg_hours", "HIGHER_IS_BETTER",
           "cases_reach_back", "warm"]
