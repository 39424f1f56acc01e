"""Server time of the case workspace's queue (/cases) on the full stores, per role, beside a naive build.

The queue is one scoped SELECT ordered overdue-first then by deadline, LIMIT 200, plus a COUNT. The naive
build reads every open case of the scope into pandas and sorts there. Read-only: the stores are not changed.

    python bench/workspace.py [--db sqlite|postgresql|both] [--runs 15]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from dashboard.workspace import find, queue  # noqa: E402
from data.statuses import OPEN  # noqa: E402
from data.store.engine import make_engine  # noqa: E402
from data.store.schema import Case  # noqa: E402
from layers.filters import now_cst  # noqa: E402
from layers.scope import UNRESTRICTED, Scope  # noqa: E402

STORES = {"sqlite": "sqlite:////work/full/full.sqlite",
          "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/cgzt_full"}


def _naive(conn, scope: Scope, now):
    df = pd.read_sql(select(Case.__table__).where(Case.status.in_(OPEN), *scope.clauses(Case.__table__)), conn)
    df["od"] = (df["deadline_at"] < now).astype(int)
    return df.sort_values(["od", "deadline_at"], ascending=[False, True]).head(200)


def _stats(xs):
    xs = sorted(xs)
    return statistics.median(xs) * 1000, xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))] * 1000


def run(kind: str, runs: int) -> list[tuple]:
    engine = make_engine(STORES[kind])
    with engine.connect() as conn:
        dept = conn.execute(select(Case.department_code).where(Case.status.in_(OPEN),
                                                                Case.department_code.is_not(None))
                            .group_by(Case.department_code).order_by(func.count().desc()).limit(1)).scalar()
        code = conn.execute(text("SELECT code FROM cases ORDER BY id DESC LIMIT 1")).scalar()
    scopes = {"admin (city)": UNRESTRICTED, "supervisor 330203": Scope(districts=("330203",)),
              f"liaison {dept}": Scope(departments=(dept,))}
    rows = []
    now = now_cst()
    for label, scope in scopes.items():
        t_q, t_n, t_f = [], [], []
        with engine.connect() as conn:
            for i in range(runs + 1):
                t0 = time.perf_counter()
                got, total = queue(conn, scope, now)
                t1 = time.perf_counter()
                find(conn, scope, code)
                t2 = time.perf_counter()
                if i < 3:
                    _naive(conn, scope, now)
                    t_n.append(time.perf_counter() - t2)
                if i:
                    t_q.append(t1 - t0)
                    t_f.append(t2 - t1)
        rows.append((kind, label, total, *_stats(t_q), *_stats(t_f), *_stats(t_n)))
    engine.dispose()
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="both", choices=("sqlite", "postgresql", "both"))
    ap.add_argument("--runs", type=int, default=15)
    a = ap.parse_args(argv)
    kinds = ("sqlite", "postgresql") if a.db == "both" else (a.db,)
    print(f"{'db':<11}{'scope':<22}{'open':>8}{'queue p50':>11}{'p95':>8}{'find p50':>10}{'p95':>7}"
          f"{'naive p50':>11}{'p95':>9}   (ms)")
    for kind in kinds:
        try:
            rows = run(kind, a.runs)
        except Exception as exc:  # noqa: BLE001 - a store that is not there is reported, the other still runs
            print(f"{kind:<11}unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}")
            continue
        for r in rows:
            print(f"{r[0]:<11}{r[1]:<22}{r[2]:>8}{r[3]:>11.1f}{r[4]:>8.1f}{r[5]:>10.1f}{r[6]:>7.1f}"
                  f"{r[7]:>11.1f}{r[8]:>9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
