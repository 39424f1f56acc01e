"""Server time of a viewport change at full scale, beside a naive baseline in the same run.

    DATABASE_URL=sqlite:////path/full.sqlite python bench/viewport.py [--n 40] [--explain]
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/db python bench/viewport.py

Why: the map calls view() on every pan/zoom and grid_metric() on every filter change; the target is
p95 <= 50 ms per call. Viewports are random 1280x720 px screens centred on random grids (where cases are)
at each zoom level, under five typical filters. The baseline is what a naive server would do: pandas over
all cases held in memory (load time reported), the same answers computed per request.
--explain prints each query's plan (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN ANALYZE) for
docs/query-plans.md.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sqlalchemy import event, text  # noqa: E402

from data.statuses import OPEN  # noqa: E402
from data.store import make_engine  # noqa: E402
from data.store.migrate import is_current  # noqa: E402
from layers import cases as lc  # noqa: E402
from layers import metrics  # noqa: E402
from layers.filters import Filters  # noqa: E402

ZOOMS = (10, 12, 14, 16, 17)
SCREEN = (1280, 720)


def bbox_at(lon, lat, zoom):
    w = SCREEN[0] * 360.0 / (256 * 2 ** zoom)
    h = SCREEN[1] * 360.0 / (256 * 2 ** zoom) * np.cos(np.radians(lat))
    return (lon - w / 2, lat - h / 2, lon + w / 2, lat + h / 2)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


CPU = []  # this process's CPU ms per call: the in-process SQLite work, whatever else the machine runs


def timed(fn, n=1):
    out = []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        r = fn()
        out.append((time.perf_counter() - t) * 1000)
        CPU.append((time.process_time() - c) * 1000)
    return out, r


def filters_for(conn, now):
    start = now - timedelta(days=30)
    d = conn.execute(text("SELECT code FROM districts ORDER BY code LIMIT 1")).scalar()
    s = conn.execute(text("SELECT code FROM streets ORDER BY code LIMIT 1")).scalar()
    cls = conn.execute(text("SELECT class_code FROM cases GROUP BY class_code ORDER BY COUNT(*) DESC LIMIT 1")).scalar()
    return {"city 30d": Filters(start=start, end=now), "district": Filters(start=start, end=now, district=d),
            "street": Filters(start=start, end=now, street=s), "overdue only": Filters(start=start, end=now,
                                                                                          overdue_only=True),
            "one class": Filters(start=start, end=now, classes=(cls,))}


def pandas_baseline(df, metric, f: Filters, now):
    """The same per-grid answer computed from an in-memory frame of all cases (no database)."""
    m = np.ones(len(df), dtype=bool)
    if f.area:
        m &= df.grid_code.str.startswith(f.area).to_numpy()
    if f.classes:
        m &= df.class_code.isin(f.classes).to_numpy()
    is_open = df.status.isin(OPEN).to_numpy()
    over = is_open & (df.deadline_at < now).to_numpy()
    if f.overdue_only:
        m &= over
    if metric == "open":
        m &= is_open
    elif metric == "overdue":
        m &= over
    elif metric == "period":
        m &= ((df.reported_at >= f.start) & (df.reported_at < f.end)).to_numpy()
    else:
        m &= ((df.deadline_at >= f.start) & (df.deadline_at < f.end) & df.registered_at.notna()
              & (df.status != "rejected")).to_numpy()
        closed = (df.status == "closed") & (df.closed_at < f.end)
        if metric == "ontime_rate":
            closed &= df.closed_at <= df.deadline_at
        g = closed[m].groupby(df.grid_code[m])
        return (100 * g.mean()).to_dict()
    return df.grid_code[m].value_counts().astype(float).to_dict()


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=None)
    ap.add_argument("--n", type=int, default=40, help="viewports per zoom level and filter")
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args(argv)
    engine = make_engine(args.url)
    if not is_current(engine):  # read only: the shared full stores are never migrated by a bench
        raise SystemExit("the store is behind the migrations; bench a migrated copy")
    kind = engine.dialect.name
    with engine.connect() as conn:
        n_cases = conn.execute(text("SELECT COUNT(*) FROM cases")).scalar()
        now = conn.execute(text("SELECT MAX(reported_at) FROM cases")).scalar()
        if isinstance(now, str):
            now = pd.Timestamp(now).to_pydatetime()
        now = now.replace(microsecond=0) + timedelta(seconds=1)
        fs = filters_for(conn, now)
        centres = conn.execute(text("SELECT (minx+maxx)/2, (miny+maxy)/2 FROM grids")).all()
        case_code = conn.execute(text("SELECT code FROM cases ORDER BY id LIMIT 1 OFFSET :o"), {"o": n_cases // 3}).scalar()
    import os
    print(f"{kind}: {n_cases:,} cases, now={now:%Y-%m-%d %H:%M}, {len(centres)} grids, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.explain:
        return explain(engine, fs, now, centres, case_code)

    rng = random.Random(7)
    rows = []
    cpu_of = {}
    with engine.connect() as conn:
        t, _ = timed(lambda: [lc.areas(conn, lv) for lv in ("district", "street", "grid")])
        print(f"area label points, first call (once per boundaries version): {t[0]:.0f} ms")
        from layers import cube
        t, _ = timed(lambda: cube.snapshot(conn))
        print(f"case columns (layers.cube), loaded once per process at server start: {t[0]:.0f} ms")
        for fname, f in fs.items():
            for z in ZOOMS:
                ms, warm, feats, trunc = [], [], [], 0
                CPU.clear()
                for _ in range(args.n):
                    lon, lat = rng.choice(centres)
                    bb = bbox_at(lon, lat, z)
                    t, fc = timed(lambda: lc.view(conn, z, bb, f, now=now, cache=False))
                    ms.append(t[0])
                    feats.append(len(fc["features"]))
                    trunc += fc["truncated"]
                    if z < lc.ZOOM_CASES:  # the next pan at the same zoom and filters
                        lon, lat = rng.choice(centres)
                        warm.append(timed(lambda: lc.view(conn, z, bbox_at(lon, lat, z), f, now=now))[0][0])
                rows.append(("view", f"z{z} {fc['level']}", fname, ms, max(feats), trunc))
                cpu_of[len(rows) - 1] = CPU[0::2] if warm else list(CPU)  # cold calls only
                if warm:
                    rows.append(("view, pan (memo)", f"z{z} {fc['level']}", fname, warm, None, 0))
            for metric in metrics.METRICS:
                CPU.clear()
                ms, _ = timed(lambda: metrics.grid_metric(conn, metric, f, now=now), n=max(5, args.n // 4))
                rows.append(("grid_metric", metric, fname, ms, None, 0))
                cpu_of[len(rows) - 1] = list(CPU)
        ms, _ = timed(lambda: metrics.berth_occupancy(conn, "grid"), n=10)
        rows.append(("berth_occupancy", "grid", "-", ms, None, 0))
        ids = [r[0] for r in conn.execute(text("SELECT id FROM cases ORDER BY id LIMIT 50 OFFSET :o"),
                                              {"o": n_cases // 2})]
        ms = [timed(lambda: lc.detail(conn, i, now=now))[0][0] for i in ids]
        rows.append(("detail", "case", "-", ms, None, 0))
        ms = [timed(lambda: lc.search(conn, q))[0][0] for q in ("街道", "3302", "社区", "海", case_code[:8], case_code)]
        rows.append(("search", "mixed", "-", ms, None, 0))

    if not args.no_baseline:
        with engine.connect() as conn:
            t0 = time.perf_counter()
            df = pd.read_sql(text("SELECT grid_code, status, class_code, reported_at, registered_at, deadline_at, "
                                  "closed_at FROM cases"), conn)
            for c in ("reported_at", "registered_at", "deadline_at", "closed_at"):
                df[c] = pd.to_datetime(df[c])
            load_ms = (time.perf_counter() - t0) * 1000
        print(f"baseline: loading all cases into pandas took {load_ms:.0f} ms ({df.memory_usage(deep=True).sum()/1e6:.0f} MB)")
        for fname in ("city 30d", "district", "one class"):
            for metric in metrics.METRICS:
                ms, _ = timed(lambda: pandas_baseline(df, metric, fs[fname], now), n=5)
                rows.append(("pandas baseline", metric, fname, ms, None, 0))

    print(f"\n| {kind} | what | filter | n | median ms | p95 ms | max features | truncated | client CPU median ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, (op, what, fname, ms, feats, trunc) in enumerate(rows):
        cpu = cpu_of.get(i)
        print(f"| {op} | {what} | {fname} | {len(ms)} | {statistics.median(ms):.1f} | {pct(ms, .95):.1f} | "
              f"{'' if feats is None else feats} | {trunc or ''} | {'' if not cpu else f'{statistics.median(cpu):.1f}'} |")
    worst = max(pct(ms, .95) for op, *_x, ms, _f, _t in [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]
                if op in ("view", "grid_metric"))
    print(f"load average at the end: {__import__('os').getloadavg()[0]:.1f}")
    print(f"\nworst p95 of view/grid_metric: {worst:.1f} ms (target 50 ms)")


def explain(engine, fs, now, centres, case_code):
    """Print the plan of every query the functions run, under each typical filter."""
    captured = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))
    kind = engine.dialect.name
    lon, lat = centres[len(centres) // 2]
    with engine.connect() as conn:
        calls = []
        for fname, f in fs.items():
            for z in (10, 12, 14, 17):
                calls.append((f"view z{z} [{fname}]", lambda f=f, z=z: lc.view(conn, z, bbox_at(lon, lat, z), f, now=now)))
            for m in metrics.METRICS:
                calls.append((f"grid_metric {m} [{fname}]", lambda f=f, m=m: metrics.grid_metric(conn, m, f, now=now)))
        calls.append(("berth_occupancy grid", lambda: metrics.berth_occupancy(conn, "grid")))
        calls.append(("detail", lambda: lc.detail(conn, 5000, now=now)))
        calls.append(("search '3302030'", lambda: lc.search(conn, "3302030")))
        calls.append((f"search case code prefix {case_code[:8]!r}", lambda: lc.search(conn, case_code[:8])))
        lc.areas(conn, "district"), lc.areas(conn, "street"), lc.areas(conn, "grid")
        for name, fn in calls:
            captured.clear()
            event.listen(engine, "before_cursor_execute", grab)
            try:
                fn()
            finally:
                event.remove(engine, "before_cursor_execute", grab)
            for stmt, params in captured:
                if "FROM meta" in stmt:
                    continue
                print(f"\n### {name}\n```sql\n{stmt.strip()}\n```")
                prefix = "EXPLAIN QUERY PLAN " if kind == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS OFF) "
                plan = conn.exec_driver_sql(prefix + stmt, params).all()
                print("```")
                for r in plan:
                    print(r[-1] if kind == "sqlite" else r[0])
                print("```")


if __name__ == "__main__":
    main()
