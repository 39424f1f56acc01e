"""Area metrics for the choropleth and KPI panels: counts and the two published closing rates.

Definitions (one place, used by map, KPIs and tests alike):

open         cases open now (data.statuses.OPEN), in the filters' scope; the period does not apply,
             because "open now" is a state, not an event in the period.
overdue      open now and past their deadline now (filters.is_overdue); the period does not apply.
period       cases reported in [start, end).
close_rate   结案率 = closed / due-to-close, in percent.
ontime_rate  按期结案率 = closed on time / due-to-close, in percent.

Due-to-close (应结案数) for a period: registered cases (registered_at set, not rejected) whose deadline
falls in [start, end). Why this convention: published reports give 应结案 below 立案 for a month (天门
Dec 2016: 立案 996, 应结案 972, 结案 911, 按期结案 737 -> 93.72 %, 75.82 %; cases registered late in the
month fall due the next month) and above 立案 for a week (郑州 2019-04-08..14: 立案 51,229, 应结案 52,434,
cases registered the week before falling due); only "deadline in the period" gives both. A case without
a deadline (not yet dispatched) is not due, so it is in neither count.
Closed: closed before the period's end (so a finished month's rates never change afterwards; for a
period ending now this is simply "closed"). On time: closed at or before its deadline (extensions move
the deadline, so an extended case closed within its extension is on time).

Levels roll up by code prefix (grid codes start with their community, street and district codes), so
every level is one count per grid (layers.cube.per_area) summed into its parents.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select

from data.codes import LENGTHS, LEVELS
from data.statuses import OPEN, REGISTERED_STAGES
from data.store.schema import Berth
from layers.filters import Filters, code_range, now_cst

METRICS = ("open", "overdue", "period", "close_rate", "ontime_rate")
RATES = ("close_rate", "ontime_rate")


def _length(level: str) -> int:
    if level not in LENGTHS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    return LENGTHS[level]


def counts(conn, metric: str, level: str, filters: Filters, now: datetime | None = None) -> dict[str, tuple[int, int]]:
    """{area code: (numerator, denominator)} for one metric; the denominator is 1 for the count metrics.

    Exposed so tables and KPIs can show "911 / 972" beside the rate; areas with no rows are absent.
    Computed over the in-process case columns (layers.cube: the WHERE of layers.filters as a mask, a
    bincount per grid rolled up by code prefix): a city-wide 30-day rate cost SQLite 70-85 ms of CPU.
    """
    from layers import cube
    now = now or now_cst()
    n = _length(level)
    snap = cube.snapshot(conn)
    t = snap.t
    is_open = cube.rows_in(snap, OPEN)
    if metric in ("open", "overdue", "period"):
        if metric == "period":
            sel = cube.mask(conn, snap, filters, now, "reported")
        else:
            sel = cube.mask(conn, snap, filters, now, None) & is_open
            if metric == "overdue":
                sel &= (t["deadline_at"] != cube.NA) & (t["deadline_at"] < cube.us(now))
        return {k: (v[0], 1) for k, v in cube.per_area(snap, sel, n).items()}
    if metric in RATES:
        sel = cube.mask(conn, snap, filters, now, "deadline") & (t["registered_at"] != cube.NA) \
            & cube.rows_in(snap, REGISTERED_STAGES)
        cl = t["closed_at"]
        closed = cube.rows_in(snap, ("closed",)) & (cl != cube.NA) & (cl < cube.us(filters.end))
        if metric == "ontime_rate":
            closed &= cl <= t["deadline_at"]
        return {k: (v[1], v[0]) for k, v in cube.per_area(snap, sel, n, closed).items()}
    raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")


def _values(metric, pairs: dict) -> dict[str, float]:
    if metric in RATES:
        return {k: 100.0 * num / den for k, (num, den) in pairs.items() if den}
    return {k: float(num) for k, (num, _) in pairs.items()}


def grid_metric(conn, metric: str, filters: Filters, now: datetime | None = None) -> dict[str, float]:
    """{grid_code: value} for metric in METRICS; rates in percent (93.72), counts as floats.

    Grids without a value are absent: no cases for a count (read as 0), nothing due for a rate (no data,
    draw grey, not red). `now` is for tests; the dashboard leaves it None.
    """
    return _values(metric, counts(conn, metric, "grid", filters, now))


def area_metric(conn, metric: str, level: str, filters: Filters, now: datetime | None = None) -> dict[str, float]:
    """Like grid_metric for level 'district', 'street', 'community' or 'grid' (codes of that level)."""
    return _values(metric, counts(conn, metric, level, filters, now))


# Colour bands. The rate grades follow the usual evaluation wording (优秀/良好/合格/较差/差); the
# thresholds are this city's configuration, not a national number: change them here.
_RATE_BANDS = [(0.0, "#d7191c", "差 <60%"), (60.0, "#fdae61", "较差 60-80%"), (80.0, "#ffffbf", "合格 80-90%"),
               (90.0, "#a6d96a", "良好 90-95%"), (95.0, "#1a9641", "优秀 ≥95%")]
_COUNT_STEPS = (0, 1, 3, 6, 11, 21)  # per grid; other levels scale by grids per area (see bands)
_COUNT_COLOURS = ("#f7f7f7", "#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15")
# Ningbo: 6,535 grids, ~2,000 communities, 156 streets, 12 districts (domain notes) -> grids per area.
_GRIDS_PER = {"grid": 1, "community": 3, "street": 40, "district": 500}


def bands(metric: str, level: str = "grid") -> list[tuple[float, str, str]]:
    """[(lower bound, colour, label)] ascending; a value takes the last band whose lower bound it reaches.

    Rates: graded like published evaluations (higher is better, red to green). Counts: more is worse;
    the steps are per grid and scale with the typical number of grids in an area of `level`.
    """
    if metric in RATES:
        return list(_RATE_BANDS)
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    k = _GRIDS_PER[level] if level in _GRIDS_PER else None
    if k is None:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    steps = [0] + [s * k for s in _COUNT_STEPS[1:]]
    out = []
    for i, (lo, colour) in enumerate(zip(steps, _COUNT_COLOURS)):
        hi = steps[i + 1] - 1 if i + 1 < len(steps) else None
        label = "0" if lo == 0 else (f"{lo}-{hi}" if hi is not None and hi > lo else f"{lo}" if hi == lo else f"≥{lo}")
        out.append((float(lo), colour, label))
    return out


def band_of(metric: str, value: float, level: str = "grid") -> tuple[float, str, str]:
    """The band a value falls in (for legends and tooltips)."""
    chosen = None
    for b in bands(metric, level):
        if value >= b[0]:
            chosen = b
    return chosen or bands(metric, level)[0]


def berth_occupancy(conn, level: str, area: str | None = None) -> dict[str, dict]:
    """{code: {total, occupied, rate, out_of_service}}: instant occupancy = occupied / in-service berths.

    Out-of-service berths cannot be occupied, so they are not in `total` (reported apart). rate is None
    where no berth is in service. One GROUP BY grid_code, state over the (grid_code, state) index, rolled
    up by code prefix in Python (6.5k rows) instead of a second index per level.
    """
    b = Berth.__table__.c
    n = LENGTHS.get(level)
    if n is None:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    q = select(b.grid_code, b.state, func.count()).group_by(b.grid_code, b.state)
    if area:
        q = q.where(code_range(b.grid_code, area))
    acc = defaultdict(lambda: {"total": 0, "occupied": 0, "out_of_service": 0})
    for grid, state, k in conn.execute(q):
        row = acc[grid[:n]]
        if state == "out_of_service":
            row["out_of_service"] += k
        else:
            row["total"] += k
            if state == "occupied":
                row["occupied"] += k
    for row in acc.values():
        row["rate"] = row["occupied"] / row["total"] if row["total"] else None
    return dict(acc)
