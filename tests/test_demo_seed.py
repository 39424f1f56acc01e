"""The demo generator through real stores (SQLite and PostgreSQL): determinism, nesting, workflow order,
calendar deadlines, all-or-nothing loading."""
import hashlib
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from data import reference
from data.demo import seed as seed_mod
from data.demo.seed import StoreNotEmpty, seed
from data.store import meta
from data.workcalendar import add_working_time

NOW = datetime(2026, 11, 22, 10)
TABLES = ("districts", "streets", "communities", "grids", "setbacks", "berths", "berth_sessions", "cases",
          "case_events", "departments")


def q(engine, sql, **kw) -> pd.DataFrame:
    with engine.connect() as c:
        res = c.execute(text(sql), kw)
        return pd.DataFrame(res.fetchall(), columns=list(res.keys()))


def shape(v):
    """Raw SQL returns WKB bytes on SQLite and hex EWKB on PostGIS."""
    if isinstance(v, (bytes, memoryview)):
        return shapely.from_wkb(bytes(v))
    return shapely.from_wkb(v) if isinstance(v, str) else v


def store_hash(engine) -> str:
    h = hashlib.sha256()
    with engine.connect() as c:
        for t in TABLES:
            key = "code" if t in ("districts", "streets", "communities", "grids", "departments") else "id"
            for row in c.execute(text(f"SELECT * FROM {t} ORDER BY {key}")):
                h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def counts(engine) -> dict:
    with engine.connect() as c:
        return {t: c.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in TABLES}


def test_seeded_store_is_flagged_as_demo(seeded_engine):
    with seeded_engine.connect() as c:
        assert meta.get(c, "demo") is True
        assert meta.get(c, "demo_scale") == "test"
        assert meta.get(c, "demo_seed") == 7
        notice = meta.get(c, "data_notice")
        assert "演示数据" in notice["zh"] and "made up" in notice["en"]
        assert all(v for v in meta.versions(c).values())


def test_test_scale_sizes(seeded_engine):
    n = counts(seeded_engine)
    assert n["districts"] == 10                      # every real outline is stored
    assert 280 <= n["grids"] <= 320 and 6 <= n["streets"] <= 10
    assert n["berths"] == 2000 and n["setbacks"] == 100 and n["cases"] == 3000
    assert n["case_events"] > 5 * n["cases"] and n["berth_sessions"] > n["berths"]
    d = q(seeded_engine, "SELECT DISTINCT district_code FROM grids")
    assert set(d["district_code"]) == {"330203", "330205"}


@pytest.mark.parametrize("table", ["berths", "setbacks", "cases", "grids"])
def test_codes_nest_and_grids_exist(seeded_engine, table):
    grid = "code" if table == "grids" else "grid_code"
    df = q(seeded_engine, f"SELECT t.{grid} AS g, t.community_code AS c, t.street_code AS s, t.district_code AS d, "
                          f"g.code AS found FROM {table} t LEFT JOIN grids g ON g.code = t.{grid}")
    assert len(df) > 0
    assert df["found"].notna().all()
    assert (df["g"].str.len() == 15).all()
    assert all(g.startswith(c) and c.startswith(s) and s.startswith(d) for g, c, s, d in
               zip(df["g"], df["c"], df["s"], df["d"]))
    assert all(len(c) == 12 and len(s) == 9 and len(d) == 6 for c, s, d in zip(df["c"], df["s"], df["d"]))


def test_points_lie_in_their_grid(seeded_engine):
    grids = q(seeded_engine, "SELECT code, geom FROM grids")
    geom = dict(zip(grids["code"], map(shape, grids["geom"])))
    for table in ("berths", "cases"):
        df = q(seeded_engine, f"SELECT lon, lat, grid_code FROM {table}")
        g = np.array([geom[c] for c in df["grid_code"]], dtype=object)
        assert shapely.intersects_xy(g, df["lon"].to_numpy(), df["lat"].to_numpy()).all(), table


def test_per_district_counts_add_up(seeded_engine):
    for table in ("grids", "berths", "setbacks", "cases"):
        per = q(seeded_engine, f"SELECT district_code, COUNT(*) AS n FROM {table} GROUP BY district_code")
        per_street = q(seeded_engine, f"SELECT street_code, COUNT(*) AS n FROM {table} GROUP BY street_code")
        total = q(seeded_engine, f"SELECT COUNT(*) AS n FROM {table}")["n"].iloc[0]
        assert per["n"].sum() == total == per_street["n"].sum()


def test_case_stages_are_ordered_and_match_events(seeded_engine):
    cases = q(seeded_engine, "SELECT * FROM cases ORDER BY id")
    stages = ["reported_at", "registered_at", "dispatched_at", "accepted_at", "handled_at", "closed_at"]
    t = cases[stages].apply(pd.to_datetime)
    for a, b in zip(stages, stages[1:]):
        both = t[a].notna() & t[b].notna()
        if a == "accepted_at":
            # accepted_at is the latest acceptance: after a rework it can follow the first feedback.
            both &= cases["rework_count"] == 0
        assert (t.loc[both, a] <= t.loc[both, b]).all(), (a, b)
    assert (t["registered_at"].isna() == cases["status"].isin(["reported", "rejected"])).all()
    closed = cases["status"] == "closed"
    assert t.loc[closed, "closed_at"].notna().all()
    ev = q(seeded_engine, "SELECT case_id, at, action, from_status, to_status FROM case_events ORDER BY case_id, id")
    ev["at"] = pd.to_datetime(ev["at"])
    assert (ev.groupby("case_id")["at"].diff().dropna() >= pd.Timedelta(0)).all()
    # Each event starts where the previous one ended; the case's status is its last event's.
    prev = ev.groupby("case_id")["to_status"].shift()
    assert (prev.dropna() == ev.loc[prev.notna(), "from_status"]).all()
    last = ev.groupby("case_id").tail(1).set_index("case_id")
    assert (last["to_status"].reindex(cases["id"]).to_numpy() == cases["status"].to_numpy()).all()
    assert (ev.groupby("case_id").size().reindex(cases["id"]).to_numpy() == cases["version"].to_numpy()).all()
    assert (t.max(axis=1) <= NOW_OF(seeded_engine)).all()


def NOW_OF(engine):
    with engine.connect() as c:
        return pd.Timestamp(meta.get(c, "demo_now"))


def test_workflow_rates_are_realistic(seeded_engine):
    c = q(seeded_engine, "SELECT source_code, status, overdue, priority, rework_count, return_count FROM cases")
    closed = c[c["status"] == "closed"]
    on_time = 1 - closed["overdue"].astype(bool).mean()
    assert 0.84 <= on_time <= 0.95
    assert 0.01 <= (c["priority"] == "urgent").mean() <= 0.06
    assert 0.01 <= (c["rework_count"] > 0).mean() <= 0.05
    assert 0.02 <= (c["return_count"] > 0).mean() <= 0.07
    public = c[c["source_code"] == "public"]
    assert 0.02 <= (public["status"] == "rejected").mean() <= 0.12
    assert (c["status"] != "closed").any()            # recent cases are still under way at `now`


def test_deadlines_follow_the_working_calendar(seeded_engine):
    c = q(seeded_engine, "SELECT c.registered_at, c.deadline_at, k.limit_value, k.limit_unit FROM cases c "
                         "JOIN case_classes k ON k.code = c.class_code WHERE c.registered_at IS NOT NULL")
    starts = pd.to_datetime(c["registered_at"]).to_numpy().astype("datetime64[s]")
    expect = add_working_time(starts, c["limit_value"].to_numpy(), c["limit_unit"].to_numpy().astype(object))
    got = pd.to_datetime(c["deadline_at"]).to_numpy().astype("datetime64[s]")
    assert (got == expect).all()
    d = pd.to_datetime(c["deadline_at"])
    # Deadlines only ever fall inside office hours.
    mins = d.dt.hour * 60 + d.dt.minute + d.dt.second / 60
    assert (((mins >= 510) & (mins <= 720)) | ((mins >= 810) & (mins <= 1050))).all()


def test_overdue_flag_matches_deadline(seeded_engine):
    c = q(seeded_engine, "SELECT status, closed_at, deadline_at, overdue FROM cases WHERE deadline_at IS NOT NULL")
    now = NOW_OF(seeded_engine)
    closed = pd.to_datetime(c["closed_at"])
    deadline = pd.to_datetime(c["deadline_at"])
    expect = ((c["status"] == "closed") & (closed > deadline)) | (
        ~c["status"].isin(["closed", "rejected"]) & (deadline < now))
    assert (c["overdue"].astype(bool) == expect).all()


def test_setback_cases_route_to_the_manager(seeded_engine):
    c = q(seeded_engine, "SELECT c.department_code, s.manager_department_code, k.in_setback, c.grid_code, "
                         "s.grid_code AS sg FROM cases c JOIN setbacks s ON s.id = c.setback_id "
                         "JOIN case_classes k ON k.code = c.class_code WHERE c.status = 'closed'")
    assert len(c) > 0
    assert c["in_setback"].astype(bool).all()
    assert (c["department_code"] == c["manager_department_code"]).all()
    assert (c["grid_code"] == c["sg"]).all()
    deps = set(q(seeded_engine, "SELECT code FROM departments")["code"])
    assert set(c["manager_department_code"]) <= deps


def test_setbacks_are_thin_and_do_not_overlap(seeded_engine):
    s = q(seeded_engine, "SELECT geom, area_m2, manager_department_code, district_code, street_code, mode, "
                         "permitted_uses FROM setbacks")
    g = np.array([shape(v) for v in s["geom"]])
    a, b = shapely.STRtree(g).query(g, predicate="intersects")
    assert (a == b).all()
    assert s["area_m2"].between(5 * 20 * 0.9, 15 * 80 * 1.1).all()
    from data.statuses import SETBACK_MODES, SETBACK_USES
    assert set(s["mode"]) <= set(SETBACK_MODES)
    assert all(set(u.split(",")) <= set(SETBACK_USES) for u in s["permitted_uses"])
    ok = {reference.department_code("enforcement", d) for d in s["district_code"]} | {
        reference.street_department_code(x) for x in s["street_code"]}
    assert set(s["manager_department_code"]) <= ok


def test_berth_states_match_open_sessions(seeded_engine):
    b = q(seeded_engine, "SELECT b.id, b.state, b.state_since, COUNT(s.id) AS open_n, MAX(s.started_at) AS since "
                         "FROM berths b LEFT JOIN berth_sessions s ON s.berth_id = b.id AND s.ended_at IS NULL "
                         "GROUP BY b.id, b.state, b.state_since")
    occ = b["state"] == "occupied"
    assert (b.loc[occ, "open_n"] == 1).all() and (b.loc[~occ, "open_n"] == 0).all()
    assert (pd.to_datetime(b.loc[occ, "state_since"]) == pd.to_datetime(b.loc[occ, "since"])).all()
    assert 0.005 <= (b["state"] == "out_of_service").mean() <= 0.04
    s = q(seeded_engine, "SELECT started_at, ended_at FROM berth_sessions WHERE ended_at IS NOT NULL")
    assert (pd.to_datetime(s["started_at"]) < pd.to_datetime(s["ended_at"])).all()


def test_same_seed_same_rows_other_seed_differs(fresh_engine):
    seed(fresh_engine, "test", seed=11, now=NOW)
    first = store_hash(fresh_engine)
    seed(fresh_engine, "test", seed=11, now=NOW, replace=True)
    assert store_hash(fresh_engine) == first
    seed(fresh_engine, "test", seed=12, now=NOW, replace=True)
    assert store_hash(fresh_engine) != first


def test_refuses_a_store_with_data(fresh_engine):
    seed(fresh_engine, "test", seed=3, now=NOW)
    before = counts(fresh_engine)
    with pytest.raises(StoreNotEmpty, match="replace"):
        seed(fresh_engine, "test", seed=4, now=NOW)
    assert counts(fresh_engine) == before


def _failing_loader(monkeypatch, table):
    real = seed_mod.load_frame

    def load(conn, t, df):
        n = real(conn, t, df)
        if t == table:
            raise RuntimeError("injected failure")
        return n
    monkeypatch.setattr(seed_mod, "load_frame", load)


def test_failure_mid_seed_writes_nothing(fresh_engine, monkeypatch):
    _failing_loader(monkeypatch, "cases")
    with pytest.raises(RuntimeError, match="injected"):
        seed(fresh_engine, "test", seed=5, now=NOW)
    assert all(n == 0 for n in counts(fresh_engine).values())
    with fresh_engine.connect() as c:
        assert meta.get(c, "demo") is None


def test_failed_replace_keeps_the_old_data(fresh_engine, monkeypatch):
    seed(fresh_engine, "test", seed=5, now=NOW)
    before = store_hash(fresh_engine)
    _failing_loader(monkeypatch, "case_events")
    with pytest.raises(RuntimeError, match="injected"):
        seed(fresh_engine, "test", seed=6, now=NOW, replace=True)
    assert store_hash(fresh_engine) == before


def test_full_geography_has_exactly_6535_nested_grids():
    from data.demo import geography, names
    geo = geography.build(np.random.default_rng(1), {c: w for c, (_, w, _) in names.DISTRICTS.items()}, 45)
    assert len(geo.grids) == 6535
    assert 130 <= len(geo.streets) <= 170 and 900 <= len(geo.communities) <= 1300
    assert geo.grids["code"].is_unique and (geo.grids["code"].str.len() == 15).all()
    assert abs(geo.grids["area_m2"].sum() / 1e6 - 766) < 15
    # Streets are unions of their grids: areas agree.
    per_street = geo.grids.groupby("street_code")["area_m2"].sum()
    st = geo.streets.set_index("code")["area_m2"]
    assert np.allclose(per_street.reindex(st.index), st, rtol=1e-3)
    # Every grid lies inside its district's real outline.
    d = dict(zip(geo.districts["code"], geo.districts["geom"]))
    reps = shapely.point_on_surface(np.asarray(geo.grids["geom"], dtype=object))
    assert all(d[c].contains(p) for c, p in zip(geo.grids["district_code"], reps))
