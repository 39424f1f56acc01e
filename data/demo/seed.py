"""Fill the store with deterministic demo data at one of three scales, in one transaction.

    seed(engine, scale="test" | "demo" | "full", seed=20261122, replace=False, now=None) -> SeedReport

Everything is generated in memory first (numpy, vectorised), then bulk-loaded inside a single
transaction, so a failure anywhere leaves the store as it was. The same seed and the same `now` give the
same rows; each part draws from its own child random stream, so changing one part's size does not
reshuffle the others.
"""
import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from data import reference
from data.clock import now_cst
from data.demo import assets, geography, names
from data.demo import cases as case_gen
from data.demo.cases import ts
from data.store import meta
from data.store.bulk import load_frame, reset_sequences
from data.store.schema import Base

SCALES = {
    # grids per district, grids per street, berths, setbacks, cases, case days, berth-session days
    "test": dict(districts={"330203": 160, "330205": 140}, per_street=37, berths=2_000, setbacks=100,
                 cases=3_000, days=30, session_days=2),
    "demo": dict(districts=None, per_street=45, berths=100_000, setbacks=5_000, cases=87_000, days=30,
                 session_days=1),
    "full": dict(districts=None, per_street=45, berths=100_000, setbacks=5_000, cases=1_020_000, days=365,
                 session_days=3),
}
# Children before parents: the order to empty, the reverse of the order to load.
DATA_TABLES = ("case_events", "cases", "berth_sessions", "berths", "setbacks", "grids", "communities",
               "departments", "streets", "districts")
BIG_TABLES = ("berths", "berth_sessions", "cases", "case_events")
NOTICE = {
    "zh": "演示数据：区县边界为宁波市真实边界；街道、社区、网格、泊位、退红空间和案件均为程序生成的虚构数据，"
          "不代表真实情况。",
    "en": "Demo data: the district outlines are Ningbo's real ones; streets, communities, grids, berths, "
          "setbacks and cases are made up by a generator and describe nothing real.",
}


class StoreNotEmpty(RuntimeError):
    """The store already holds data; seeding would mix demo rows into it."""


@dataclass
class SeedReport:
    scale: str
    seed: int
    now: datetime
    rows: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)     # load seconds per table
    phases: dict = field(default_factory=dict)      # generation and other phases
    total_seconds: float = 0.0

    def table(self) -> str:
        lines = [f"demo seed scale={self.scale} seed={self.seed} now={self.now:%Y-%m-%d %H:%M}",
                 f"{'table':<16}{'rows':>12}{'load s':>10}{'rows/s':>12}"]
        for t, n in self.rows.items():
            s = self.seconds.get(t, 0.0)
            rate = f"{n / s:,.0f}" if s > 0 else "-"
            lines.append(f"{t:<16}{n:>12,}{s:>10.2f}{rate:>12}")
        for p, s in self.phases.items():
            lines.append(f"{'[' + p + ']':<28}{s:>10.2f}")
        lines.append(f"{'total':<28}{self.total_seconds:>10.2f}")
        return "\n".join(lines)


def _now(now: datetime | None) -> datetime:
    return now or now_cst().replace(minute=0, second=0)


def generate(scale: str, seed: int, now: datetime, progress=None) -> tuple[dict, dict]:
    """All demo tables as DataFrames (in load order) plus generation seconds per phase."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    cfg = SCALES[scale]
    say = progress or (lambda *_: None)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    now_s = int(np.datetime64(now.replace(microsecond=0), "s").astype(np.int64))
    phases = {}
    t0 = time.perf_counter()
    dg = cfg["districts"] or {c: w for c, (_, w, _) in names.DISTRICTS.items()}
    geo = geography.build(rngs[0], dg, cfg["per_street"])
    phases["generate geography"] = time.perf_counter() - t0
    say(f"geography: {len(geo.grids)} grids, {len(geo.communities)} communities, {len(geo.streets)} streets")

    t0 = time.perf_counter()
    from data.locate import Locator
    locator = Locator(geo.grids[["code", "community_code", "street_code", "district_code", "geom"]])
    edges = assets.road_names(rngs[1], geo.edges)
    berths = assets.berths(rngs[1], edges, locator, cfg["berths"])
    sessions, state, since = assets.sessions(rngs[2], berths, now_s - cfg["session_days"] * 86400, now_s)
    berths["state"], berths["state_since"] = state, ts(since)
    setbacks = assets.setbacks(rngs[3], edges, geo.grids, locator, geo.streets, geo.districts, cfg["setbacks"])
    phases["generate berths+setbacks"] = time.perf_counter() - t0
    say(f"berths: {len(berths)}, sessions: {len(sessions)}, setbacks: {len(setbacks)}")

    t0 = time.perf_counter()
    lines = shapely.linestrings(np.stack([edges[["x0", "x1"]].to_numpy(), edges[["y0", "y1"]].to_numpy()], -1))
    near = shapely.STRtree(lines).query_nearest(shapely.points(geo.grids["x"], geo.grids["y"]),
                                                return_distance=False, all_matches=False)
    grid_roads = np.empty(len(geo.grids), dtype=object)
    grid_roads[near[0]] = edges["road_name"].to_numpy()[near[1]]
    cases, events = case_gen.generate(rngs[4], cfg["cases"], now_s - cfg["days"] * 86400, now_s, geo.grids,
                                      grid_roads, setbacks, geo.streets, geo.districts)
    phases["generate cases"] = time.perf_counter() - t0
    say(f"cases: {len(cases)}, events: {len(events)}")

    sessions = sessions.assign(started_at=ts(sessions["started_at"].to_numpy()),
                               ended_at=ts(sessions["ended_at"].to_numpy()))
    cols = lambda t: [c for c in Base.metadata.tables[t].c.keys()]  # noqa: E731
    frames = {
        "districts": geo.districts,
        "streets": geo.streets,
        "communities": geo.communities,
        "grids": geo.grids,
        "setbacks": setbacks,
        "berths": berths,
        "berth_sessions": sessions,
        "cases": cases,
        "case_events": events,
    }
    frames = {t: df[[c for c in cols(t) if c in df.columns]] for t, df in frames.items()}
    return frames, phases


def _secondary_indexes(conn, table: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of a table's indexes that back no constraint, as the database has them.

    Read from the catalogue rather than the models so PostGIS GiST indexes made by the migration are
    included too; all DDL here is transactional on both databases, so a failed seed restores them.
    """
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                                    "AND sql IS NOT NULL", (table,)).all()
    else:
        rows = conn.exec_driver_sql(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)", (table,)).all()
    return [(n, ddl) for n, ddl in rows]


def _has_data(conn) -> dict:
    out = {}
    for t in DATA_TABLES:
        # Departments and the real district outlines are what every store starts with, not data.
        if t in ("departments", "districts"):
            continue
        n = conn.execute(select(func.count()).select_from(Base.metadata.tables[t])).scalar()
        if n:
            out[t] = n
    return out


def seed(engine: Engine, scale: str, seed: int = 20261122, replace: bool = False, progress=None,
         now: datetime | None = None) -> SeedReport:
    """Generate and load one scale of demo data in a single transaction; see the module docstring."""
    now = _now(now)
    say = progress or (lambda *_: None)
    report = SeedReport(scale, seed, now)
    t_all = time.perf_counter()
    # Refuse early, before minutes of generation, when the answer is already no.
    if not replace:
        with engine.connect() as conn:
            found = _has_data(conn)
        if found:
            raise StoreNotEmpty(f"the store already holds data ({', '.join(f'{t}: {n:,}' for t, n in found.items())}); "
                                "seed with replace=True (python app.py seed --replace) to empty it first")
    frames, phases = generate(scale, seed, now, say)
    report.phases.update(phases)

    with engine.begin() as conn:
        t0 = time.perf_counter()
        if replace:
            for t in DATA_TABLES:
                conn.execute(Base.metadata.tables[t].delete())
        else:
            found = _has_data(conn)
            if found:
                raise StoreNotEmpty(f"the store already holds data ({', '.join(found)}); use replace=True")
            conn.execute(Base.metadata.tables["districts"].delete())
        report.phases["empty tables"] = time.perf_counter() - t0
        for t, df in frames.items():
            t0 = time.perf_counter()
            # Secondary indexes built once after the load cost a fraction of keeping them up row by row.
            indexes = _secondary_indexes(conn, t) if t in BIG_TABLES else []
            for name, _ in indexes:
                conn.exec_driver_sql(f'DROP INDEX "{name}"')
            report.rows[t] = load_frame(conn, t, df)
            for _, ddl in indexes:
                conn.exec_driver_sql(ddl)
            report.seconds[t] = time.perf_counter() - t0
            say(f"loaded {t}: {report.rows[t]:,} rows in {report.seconds[t]:.2f} s")
            if t == "grids":
                # Departments are built from districts and streets; setbacks and cases refer to them.
                t0 = time.perf_counter()
                reference.load(conn)
                report.phases["reference tables"] = time.perf_counter() - t0
        reset_sequences(conn, list(frames))
        meta.put(conn, "demo", True)
        meta.put(conn, "demo_scale", scale)
        meta.put(conn, "demo_seed", seed)
        meta.put(conn, "demo_now", now.isoformat(sep=" "))
        meta.put(conn, "seeded_at", datetime.now().replace(microsecond=0).isoformat(sep=" "))
        meta.put(conn, "data_notice", NOTICE)
        meta.bump(conn, *meta.LAYERS)
    t0 = time.perf_counter()
    analyze(engine)
    report.phases["analyze"] = time.perf_counter() - t0
    report.total_seconds = time.perf_counter() - t_all
    return report


def analyze(engine: Engine) -> None:
    """Fresh planner statistics: without them SQLite picks the wrong index on the case table."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE")
        else:
            for t in DATA_TABLES + ("meta", "case_classes", "case_sources", "work_calendar"):
                conn.execute(text(f"ANALYZE {t}"))


def frame_for_hash(df: pd.DataFrame) -> int:
    """A content hash of a frame (used by tests and the bench to compare runs)."""
    return int(pd.util.hash_pandas_object(df.astype(str), index=False).sum())
