"""Two groupings that every KPI tile and chart of one filter is read from, for the period and the one before.

Why: the tiles and charts need ~15 numbers series over the same two populations; one pass per population,
grouped finely enough to sum every panel from it in Python, reads each once. The passes run over the
in-process columns of layers.cube (masks and bincounts, a few ms at 1M cases), not SQL: SQLite groups by
sorting, which cost 0.4 s (reported) and 0.7 s (due) of CPU city-wide for 30 days (bench/README.md).

reported  cases reported in [previous.start, end) (layers.filters.where, period 'reported'), grouped by
          (period, time bucket, minor class, status): reported, registered, timeline, classes, funnel.
due       registered cases due in [previous.start, end) (period 'deadline', the population of 结案率 as in
          layers.metrics), grouped by (period, street, department) with closed / closed on time / hours
          registered -> closed: both rates, departments, streets, average handling time
Each case falls in exactly one period (the periods are half-open and adjacent). "Closed" is closed before
its own period's end, "on time" closed at or before the deadline, exactly as layers.metrics.counts says;
tests check the sums against metrics.counts and raw SQL.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from data.statuses import OPEN, REGISTERED_STAGES
from layers import cube
from layers.filters import Filters, now_cst

HOURLY_MAX = timedelta(days=2)


def _span(f: Filters) -> Filters:
    from dataclasses import replace
    return replace(f, start=f.start - (f.end - f.start))


def hourly(f: Filters) -> bool:
    return (f.end - f.start) <= HOURLY_MAX


def _unit(is_hourly: bool) -> int:
    return 3_600_000_000 if is_hourly else 86_400_000_000


def reported(conn, f: Filters, now=None) -> list[tuple[int, str, str, str, int]]:
    """[(period 0 = f / 1 = previous, bucket 'YYYY-MM-DD[ HH]', class_code, status, cases)]."""
    snap = cube.snapshot(conn)
    idx = np.flatnonzero(cube.mask(conn, snap, _span(f), now, "reported"))
    if not len(idx):
        return []
    rep = snap.t["reported_at"][idx]
    is_hourly = hourly(f)
    # Naive CST microseconds since 1970-01-01 00:00: floor division gives the hour or the calendar day.
    bucket = rep // _unit(is_hourly)
    b0 = int(bucket.min())
    nb = int(bucket.max()) - b0 + 1
    ncls, nst = len(snap.codes["class_code"].values), len(snap.codes["status"].values)
    period = (rep < cube.us(f.start)).astype(np.int64)
    key = ((period * nb + (bucket - b0)) * ncls + snap.c["class_code"][idx]) * nst + snap.c["status"][idx]
    keys, n = np.unique(key, return_counts=True)
    st, rest = keys % nst, keys // nst
    cls, rest = rest % ncls, rest // ncls
    bk, per = rest % nb + b0, rest // nb
    fmt = "%Y-%m-%d %H" if is_hourly else "%Y-%m-%d"
    names = {int(b): np.datetime64(int(b) * _unit(is_hourly), "us").astype(datetime).strftime(fmt)
             for b in np.unique(bk)}
    cv, sv = snap.codes["class_code"].values, snap.codes["status"].values
    return [(int(p), names[int(b)], cv[int(c)], sv[int(s)], int(k))
            for p, b, c, s, k in zip(per.tolist(), bk.tolist(), cls.tolist(), st.tolist(), n.tolist())]


def due(conn, f: Filters, now=None) -> list[tuple[int, str, str | None, int, int, int, float]]:
    """[(period, street code, department code, closed, closed on time, due, hours of the closed)]."""
    snap = cube.snapshot(conn)
    t, c = snap.t, snap.c
    m = cube.mask(conn, snap, _span(f), now, "deadline")
    m &= (t["registered_at"] != cube.NA) & cube.rows_in(snap, REGISTERED_STAGES)
    idx = np.flatnonzero(m)
    if not len(idx):
        return []
    dl, cl = t["deadline_at"][idx], t["closed_at"][idx]
    cur = dl >= cube.us(f.start)
    end_of = np.where(cur, cube.us(f.end), cube.us(f.start))
    closed = cube.status_lut(snap, ("closed",))[c["status"][idx]] & (cl != cube.NA) & (cl < end_of)
    ontime = closed & (cl <= dl)
    hours = np.where(closed, (cl - t["registered_at"][idx]) / 3.6e9, 0.0)
    streets, street_of = snap.codes["grid_code"].prefix(9)
    ndep = len(snap.codes["department_code"].values)
    key = ((np.where(cur, 0, 1) * len(streets)) + street_of[c["grid_code"][idx]]) * ndep + c["department_code"][idx]
    keys, inv = np.unique(key, return_inverse=True)
    g = len(keys)
    n_closed = np.bincount(inv, weights=closed, minlength=g)
    n_ontime = np.bincount(inv, weights=ontime, minlength=g)
    n_due = np.bincount(inv, minlength=g)
    h = np.bincount(inv, weights=hours, minlength=g)
    deps = snap.codes["department_code"].values
    out = []
    for k, a, o, n, hh in zip(keys.tolist(), n_closed.tolist(), n_ontime.tolist(), n_due.tolist(), h.tolist()):
        dep, rest = k % ndep, k // ndep
        out.append((rest // len(streets), streets[rest % len(streets)], deps[dep] or None, int(a), int(o),
                    int(n), float(hh)))
    return out


def state_at(conn, f: Filters, at: datetime) -> dict:
    """{'open', 'overdue', 'setbacks'} as they were at `at`, rebuilt from timestamps: reported before it,
    not closed before it, not rejected; overdue = its (current) deadline before `at`.

    Open now and not closed before `at` (a reopened case keeps its old closed_at), or closed at or after it.
    """
    snap = cube.snapshot(conn)
    t = snap.t
    a = cube.us(at)
    rep, cl, dl = t["reported_at"], t["closed_at"], t["deadline_at"]
    still_open = cube.rows_in(snap, OPEN) & ((cl == cube.NA) | (cl >= a))
    closed_since = cube.rows_in(snap, ("closed",)) & (cl != cube.NA) & (cl >= a)
    sel = cube.mask(conn, snap, f, None, None) & (rep != cube.NA) & (rep < a) & (still_open | closed_since)
    late = sel & (dl != cube.NA) & (dl < a)
    sb = snap.setback[sel]
    return {"open": int(sel.sum()), "overdue": int(late.sum()), "setbacks": int(np.unique(sb[sb >= 0]).size)}


def now_state(conn, f: Filters, now=None) -> dict:
    """{'open', 'overdue', 'setbacks'} now: open cases in f's scope (the period does not apply), those past
    their deadline (layers.filters.is_overdue), and the setback spaces with at least one open case."""
    now = now or now_cst()
    snap = cube.snapshot(conn)
    t = snap.t
    sel = cube.mask(conn, snap, f, now, None) & cube.rows_in(snap, OPEN)
    dl = t["deadline_at"]
    sb = snap.setback[sel]
    return {"open": int(sel.sum()), "overdue": int((sel & (dl != cube.NA) & (dl < cube.us(now))).sum()),
            "setbacks": int(np.unique(sb[sb >= 0]).size)}


def setbacks_now(conn, f: Filters, now=None) -> int:
    return now_state(conn, f, now)["setbacks"]


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


__all__ = ["reported", "due", "state_at", "now_state", "setbacks_now", "buckets", "bucket_key", "hourly", "now_cst"]
