"""Bench the demo seed: seconds and rows/s per table on fresh SQLite and PostgreSQL stores, with checks.

    python bench/seed.py [--db sqlite|postgresql|both] [--scale full|demo|test] [--seed N]

Seeds into a new SQLite file and a new PostgreSQL database (created and dropped here), verifies the
counts and the code nesting, and compares the bulk path with a naive SQLAlchemy ORM baseline
(session.add_all of a 20k-row sample of cases, rolled back) in the same run.
"""
import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from data.demo.seed import seed  # noqa: E402
from data.store.bulk import load_frame  # noqa: E402
from data.store.engine import make_engine  # noqa: E402
from data.store.migrate import upgrade  # noqa: E402
from data.store.schema import Case  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SAMPLE = 20_000
EXPECT = {"full": dict(grids=6535, berths=100_000, setbacks=5_000, cases=1_000_000),
          "demo": dict(grids=6535, berths=100_000, setbacks=5_000, cases=1),
          "test": dict(grids=1, berths=2_000, setbacks=100, cases=3_000)}
NEST = {"grids": "code", "berths": "grid_code", "setbacks": "grid_code", "cases": "grid_code"}


def checks(engine, scale: str) -> list[str]:
    problems = []
    with engine.connect() as c:
        n = {t: c.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in EXPECT[scale]}
        for t, lo in EXPECT[scale].items():
            exact = t in ("grids", "setbacks") and scale != "test"
            if (n[t] != lo) if exact else (n[t] < lo):
                problems.append(f"{t}: {n[t]:,} rows, expected {'' if exact else '>= '}{lo:,}")
        for t, g in NEST.items():
            bad = c.execute(text(
                f"SELECT COUNT(*) FROM {t} WHERE substr({g}, 1, 12) <> community_code "
                f"OR substr(community_code, 1, 9) <> street_code OR substr(street_code, 1, 6) <> district_code")).scalar()
            orphans = 0 if t == "grids" else c.execute(text(
                f"SELECT COUNT(*) FROM {t} x LEFT JOIN grids g ON g.code = x.grid_code WHERE g.code IS NULL")).scalar()
            if bad or orphans:
                problems.append(f"{t}: {bad} rows whose codes do not nest, {orphans} with no grid")
    print("counts: " + ", ".join(f"{t} {v:,}" for t, v in n.items()))
    return problems


def baseline(engine) -> dict:
    """ORM add_all vs the bulk loader on the same 20k cases, both rolled back."""
    with engine.connect() as c:
        cols = ", ".join(Case.__table__.c.keys())
        df = pd.read_sql(text(f"SELECT {cols} FROM cases ORDER BY id LIMIT {SAMPLE}"), c)
    df["id"] = df["id"] + 50_000_000
    df["code"] = df["code"] + "B"
    for col in [c for c in df.columns if c.endswith("_at")]:
        df[col] = pd.to_datetime(df[col])
    df["overdue"] = df["overdue"].astype(bool)
    df["setback_id"] = df["setback_id"].astype("Int64")
    records = df.astype(object).where(df.notna(), None).to_dict("records")
    out = {}
    with Session(engine) as s:
        t0 = time.perf_counter()
        s.add_all([Case(**r) for r in records])
        s.flush()
        out["orm add_all"] = len(records) / (time.perf_counter() - t0)
        s.rollback()
    with engine.connect() as c:
        tx = c.begin()
        t0 = time.perf_counter()
        load_frame(c, "cases", df)
        out["bulk load_frame"] = len(df) / (time.perf_counter() - t0)
        tx.rollback()
    return out


def run(db: str, scale: str, seed_no: int) -> bool:
    print(f"\n=== {db}: scale {scale} ===")
    tmp = None
    if db == "sqlite":
        tmp = tempfile.mkdtemp(prefix="cgzt-bench-")
        url = f"sqlite:///{tmp}/bench.sqlite"
        admin = None
    else:
        admin = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = f"cgzt_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as c:
            c.execute(text(f"CREATE DATABASE {name}"))
        url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        upgrade(engine)
        t0, c0, load0 = time.perf_counter(), time.process_time(), os.getloadavg()[0]
        report = seed(engine, scale=scale, seed=seed_no)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(report.table())
        # On a shared machine wall time says little alone: show this process's CPU and the load around it.
        print(f"wall seconds (seed call): {wall:.1f}; CPU seconds of this process: {cpu:.1f}; "
              f"load average {load0:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores)")
        problems = checks(engine, scale)
        rates = baseline(engine)
        for k, v in rates.items():
            print(f"cases {SAMPLE:,}-row sample, {k:<16}: {v:>10,.0f} rows/s")
        print(f"bulk / ORM speed-up: {rates['bulk load_frame'] / rates['orm add_all']:.1f}x")
        for p in problems:
            print("CHECK FAILED:", p)
        print("checks:", "ok" if not problems else "FAILED")
        return not problems
    finally:
        engine.dispose()
        if admin is not None:
            with admin.connect() as c:
                c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            admin.dispose()
        if tmp:
            for f in Path(tmp).iterdir():
                f.unlink()
            Path(tmp).rmdir()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--scale", choices=["test", "demo", "full"], default="full")
    p.add_argument("--seed", type=int, default=20261122)
    a = p.parse_args(argv)
    dbs = ["sqlite", "postgresql"] if a.db == "both" else [a.db]
    ok = [run(db, a.scale, a.seed) for db in dbs]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
