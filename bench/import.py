"""Import rate of the vectorised importers against a naive row-by-row baseline, on SQLite and PostgreSQL.

    python bench/import.py                                  # 100k berths, 200k cases, both databases
    python bench/import.py --berths 20000 --cases 40000 --db sqlite

The store gets a city-sized grid layer first (6,400 grids of 200 m, imported through the importer), then
berths and cases are imported from GeoPackage and CSV. The baseline does what an importer written the
obvious way does: one ORM object per row, flushed row by row, its grid found by testing every grid polygon
in turn; it runs on a sample because at its speed the full file would take hours.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data.crs import M_PER_DEG_LAT, M_PER_DEG_LON  # noqa: E402
from data.importers import import_file  # noqa: E402
from data.store.engine import make_engine  # noqa: E402
from data.store.migrate import upgrade  # noqa: E402
from data.store.schema import Berth, Case, CaseEvent, Grid  # noqa: E402
from tests import fixtures_files as ff  # noqa: E402

PG_ADMIN = os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def city_grids(side: int = 80) -> gpd.GeoDataFrame:
    """side x side grids of 200 m; 4x4 grids per community, 5x5 communities per street (codes nest)."""
    x0, y0 = 121.48, 29.80
    dx, dy = ff.CELL_M / M_PER_DEG_LON, ff.CELL_M / M_PER_DEG_LAT
    codes, polys = [], []
    for r in range(side):
        for c in range(side):
            street = (r // 20) * (side // 20) + c // 20 + 1
            community = ((r % 20) // 4) * 5 + (c % 20) // 4 + 1
            seq = (r % 4) * 4 + c % 4 + 1
            codes.append(f"330203{street:03d}{community:03d}{seq:03d}")
            polys.append(shapely.box(x0 + c * dx, y0 + r * dy, x0 + (c + 1) * dx, y0 + (r + 1) * dy))
    return gpd.GeoDataFrame({"code": codes}, geometry=polys, crs="EPSG:4326")


def naive_berths(engine, frame: gpd.GeoDataFrame, grids: list) -> float:
    """Row-by-row ORM inserts with a linear point-in-polygon scan over all grids; returns rows/s."""
    t0 = time.perf_counter()
    with Session(engine) as s:
        for row in frame.itertuples():
            p = row.geometry
            code = next(c for c, g in grids if g.contains(p))
            s.add(Berth(code=row.code, lon=p.x, lat=p.y, road_name=row.road_name, berth_type="on_street",
                        vehicle="motor", state="free", grid_code=code, community_code=code[:12],
                        street_code=code[:9], district_code=code[:6]))
            s.flush()
        s.commit()
    return len(frame) / (time.perf_counter() - t0)


def naive_cases(engine, frame: gpd.GeoDataFrame, grids: list) -> float:
    from datetime import datetime
    t0 = time.perf_counter()
    with Session(engine) as s:
        for row in frame.itertuples():
            p = row.geometry
            code = next(c for c, g in grids if g.contains(p))
            reported = datetime.fromisoformat(row.reported_at)
            case = Case(code=row.code, source_code=row.source_code, kind="event", major_code=row.class_code[:3],
                        class_code=row.class_code, lon=p.x, lat=p.y, grid_code=code, community_code=code[:12],
                        street_code=code[:9], district_code=code[:6], status="registered", priority="normal",
                        reported_at=reported, updated_at=datetime.now(), overdue=False, rework_count=0,
                        return_count=0, version=1)
            s.add(case)
            s.flush()
            s.add(CaseEvent(case_id=case.id, at=datetime.now(), actor="import", action="import",
                            to_status="registered"))
            s.flush()
        s.commit()
    return len(frame) / (time.perf_counter() - t0)


def clear(engine, model) -> None:
    with engine.begin() as c:
        if model is Case:
            c.execute(delete(CaseEvent))
        c.execute(delete(model))


def store(kind: str, tmp: Path):
    if kind == "sqlite":
        return make_engine(f"sqlite:///{tmp / 'bench.sqlite'}"), None
    admin = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"cgzt_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    return make_engine(admin.url.set(database=name).render_as_string(hide_password=False)), (admin, name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--berths", type=int, default=100_000)
    ap.add_argument("--cases", type=int, default=200_000)
    ap.add_argument("--sample", type=int, default=300, help="rows for the naive baseline")
    ap.add_argument("--db", default="sqlite,postgresql")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="cgzt_bench_"))
    grids = city_grids()
    berths = ff.berths_frame(grids, args.berths, seed=3)
    cases = ff.cases_frame(grids, args.cases, seed=4)
    t0 = time.perf_counter()
    files = {("grids", "GeoPackage"): ff.write(grids, tmp / "grids.gpkg")}
    for layer, frame in (("berths", berths), ("cases", cases)):
        files[(layer, "GeoPackage")] = ff.write(frame, tmp / f"{layer}.gpkg")
        files[(layer, "CSV")] = ff.write_csv(frame, tmp / f"{layer}.csv")
    print(f"wrote test files in {time.perf_counter() - t0:.1f} s to {tmp}", file=sys.stderr)
    grid_list = list(zip(grids["code"], grids.geometry))

    rows = []
    for kind in [k.strip() for k in args.db.split(",") if k.strip()]:
        engine, pg = store(kind, tmp)
        try:
            upgrade(engine)
            ff.prepare_store(engine)
            r = import_file(engine, "grids", files[("grids", "GeoPackage")])
            rows.append((kind, "grids", "GeoPackage", r.rows, r.seconds, r.rate, ""))
            print(r.summary(), file=sys.stderr)
            for layer, model, naive, frame in (("berths", Berth, naive_berths, berths),
                                               ("cases", Case, naive_cases, cases)):
                for fmt in ("GeoPackage", "CSV"):
                    clear(engine, model)
                    r = import_file(engine, layer, files[(layer, fmt)])
                    rows.append((kind, layer, fmt, r.rows, r.seconds, r.rate, ""))
                    print(r.summary(), file=sys.stderr)
                clear(engine, model)
                sample = frame.iloc[: args.sample]
                rate = naive(engine, sample, grid_list)
                rows.append((kind, layer, "naive ORM", len(sample), len(sample) / rate, rate,
                             f"x{rows[-1][5] / rate:,.0f} faster (CSV)"))
            with engine.connect() as c:
                assert c.execute(select(Grid.code)).first()
        finally:
            engine.dispose()
            if pg:
                admin, name = pg
                with admin.connect() as c:
                    c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                admin.dispose()

    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'database':<11}{'layer':<8}{'source':<12}{'rows':>9}{'seconds':>9}{'rows/s':>10}  vectorised vs naive")
    for kind, layer, fmt, n, secs, rate, note in rows:
        print(f"{kind:<11}{layer:<8}{fmt:<12}{n:>9,}{secs:>9.2f}{rate:>10,.0f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
