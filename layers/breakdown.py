"""Two GROUP BYs that every KPI tile and chart of one filter is read from, for the period and the one before.

Why: the tiles and charts need ~15 numbers series over the same two populations. Asking each its own
query scanned the same index range 15 times (10 s city-wide at 1M cases); one pass per population, grouped
finely enough to sum every panel from it in Python, reads each range once.

reported  cases reported in [previous.start, end) (layers.filters.where, period 'reported'), grouped by
          (period, time bucket, minor class, status): reported, registered, timeline, classes, funnel.
          It sorts (GROUP BY), so it reads the period-led covering index: a range of ~150k entries
          city-wide instead of a skip-scan per grid (1.6 s vs 0.95 s at 1M cases, loaded machine).
due       registered cases due in [previous.start, end) (period 'deadline', the population of 结案率 as in
          layers.metrics), grouped by (period, street, department) with closed / closed on time / hours
          registered -> closed: both rates, departments, streets, average handling time
Each case falls in exactly one period (the periods are half-open and adjacent). "Closed" is closed before
its own period's end, "on time" closed at or before the deadline, exactly as layers.metrics.counts says;
tests check the sums against metrics.counts and raw SQL.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select, union_all

from data.statuses import REGISTERED_STAGES
from layers.filters import Filters, cases, is_open, now_cst, pinned, where

HOURLY_MAX = timedelta(days=2)


def _span(f: Filters) -> Filters:
    from dataclasses import replace
    return replace(f, start=f.start - (f.end - f.start))


def hourly(f: Filters) -> bool:
    return (f.end - f.start) <= HOURLY_MAX


def _bucket(conn, is_hourly: bool):
    c = cases.c
    if conn.dialect.name == "postgresql":
        return func.to_char(c.reported_at, "YYYY-MM-DD HH24" if is_hourly else "YYYY-MM-DD")
    # SQLite stores 'YYYY-MM-DD HH:MM:SS': the first 13 or 10 characters are the hour or the day.
    return func.substr(c.reported_at, 1, 13 if is_hourly else 10)


def reported(conn, f: Filters, now=None) -> list[tuple[int, str, str, str, int]]:
    """[(period 0 = f / 1 = previous, bucket 'YYYY-MM-DD[ HH]', class_code, status, cases)]."""
    c = cases.c
    both = _span(f)
    b = _bucket(conn, hourly(f))
    cur = case((c.reported_at >= f.start, 0), else_=1)
    q = pinned(select(cur, b, c.class_code, c.status, func.count())
               .where(*where(both, period="reported", now=now)).group_by(cur, b, c.class_code, c.status),
               "ix_cases_grid_cover" if f.street else "ix_cases_reported_cover")
    return [(int(p), str(k)[:13], cls, st, int(n)) for p, k, cls, st, n in conn.execute(q)]


def _hours(conn):
    c = cases.c
    if conn.dialect.name == "postgresql":
        return func.extract("epoch", c.closed_at - c.registered_at) / 3600.0
    return (func.julianday(c.closed_at) - func.julianday(c.registered_at)) * 24.0


def due(conn, f: Filters, now=None) -> list[tuple[int, str, str | None, int, int, int, float]]:
    """[(period, street code, department code, closed, closed on time, due, hours of the closed)]."""
    c = cases.c
    both = _span(f)
    cur = c.deadline_at >= f.start
    period = case((cur, 0), else_=1)
    end_of = case((cur, f.end), else_=f.start)
    closed = and_(c.status == "closed", c.closed_at < end_of)
    ontime = and_(closed, c.closed_at <= c.deadline_at)
    street = func.substr(c.grid_code, 1, 9)
    q = pinned(select(period, street, c.department_code, func.count().filter(closed), func.count().filter(ontime),
                      func.count(), func.sum(case((closed, _hours(conn)), else_=0.0)))
               .where(*where(both, period="deadline", now=now), c.registered_at.is_not(None),
                      c.status.in_(REGISTERED_STAGES))
               .group_by(period, street, c.department_code), "ix_cases_deadline_cover")
    return [(int(p), s, d, int(a), int(o), int(n), float(h or 0.0)) for p, s, d, a, o, n, h in conn.execute(q)]


def state_at(conn, f: Filters, at: datetime) -> dict:
    """{'open', 'overdue', 'setbacks'} as they were at `at`, rebuilt from timestamps: reported before it,
    not closed before it, not rejected; overdue = its (current) deadline before `at`.

    Two disjoint short ranges instead of every case reported before `at`: the cases open now (status index,
    ~1 % of the table) and those closed at or after `at` (closed_at index, migration 0008).
    """
    c = cases.c
    base = where(f, period=None) + [c.reported_at < at]
    still_open = pinned(select(c.deadline_at, c.setback_id).where(
        *base, is_open(cases), (c.closed_at.is_(None)) | (c.closed_at >= at)), "ix_cases_status_cover")
    closed_since = pinned(select(c.deadline_at, c.setback_id).where(
        *base, c.status == "closed", c.closed_at >= at), "ix_cases_closed_cover")
    both = union_all(still_open, closed_since).subquery()
    n, late, sb = conn.execute(select(func.count(), func.count().filter(both.c.deadline_at < at),
                                      func.count(func.distinct(both.c.setback_id)))).first()
    return {"open": int(n or 0), "overdue": int(late or 0), "setbacks": int(sb or 0)}


def setbacks_now(conn, f: Filters, now=None) -> int:
    c = cases.c
    q = select(func.count(func.distinct(c.setback_id))).where(*where(f, period=None, now=now), is_open(cases),
                                                               c.setback_id.is_not(None))
    return int(conn.execute(q).scalar() or 0)


def buckets(f: Filters) -> list[datetime]:
    """Bucket starts covering [f.start, f.end): hours for short periods, days otherwise."""
    step = timedelta(hours=1) if hourly(f) else timedelta(days=1)
    x = f.start.replace(minute=0, second=0, microsecond=0)
    if not hourly(f):
        x = x.replace(hour=0)
    out = []
    while x < f.end:
        out.append(x)
        x += step
    return out


def bucket_key(d: datetime, is_hourly: bool) -> str:
    return d.strftime("%Y-%m-%d %H" if is_hourly else "%Y-%m-%d")


__all__ = ["reported", "due", "state_at", "setbacks_now", "buckets", "bucket_key", "hourly", "now_cst"]
