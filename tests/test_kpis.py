"""KPI tiles and chart data against independent raw SQL on the seeded store (SQLite and PostgreSQL).

The expected numbers are written out in plain SQL from the definitions in domain.md / layers/metrics.py, not
through layers.filters.where, so a wrong clause there shows up as a mismatch here.
"""
from datetime import datetime, timedelta

import pytest
from sqlalchemy import DateTime, bindparam, text

from layers import charts, kpis
from layers.filters import Filters
from tests.indicator_support import OPEN_SQL, store  # noqa: F401,F811 - store is a fixture


def raw(conn, sql, **params):
    q = text(sql).bindparams(*[bindparam(k, type_=DateTime) for k in ("s", "e", "now") if f":{k}" in sql])
    return conn.execute(q, params).scalar()


def expected(conn, s, e, now, district=None):
    area = f" AND district_code = '{district}'" if district else ""
    period = "reported_at >= :s AND reported_at < :e" + area
    due = ("registered_at IS NOT NULL AND status NOT IN ('reported', 'rejected') AND deadline_at >= :s"
           " AND deadline_at < :e" + area)
    out = {
        "reported": raw(conn, f"SELECT count(*) FROM cases WHERE {period}", s=s, e=e),
        "registered": raw(conn, f"SELECT count(*) FROM cases WHERE {period} AND status NOT IN ('reported', 'rejected')",
                          s=s, e=e),
        "open": raw(conn, f"SELECT count(*) FROM cases WHERE status IN {OPEN_SQL}{area}"),
        "overdue": raw(conn, f"SELECT count(*) FROM cases WHERE status IN {OPEN_SQL} AND deadline_at < :now{area}",
                       now=now),
        "due": raw(conn, f"SELECT count(*) FROM cases WHERE {due}", s=s, e=e),
        "closed": raw(conn, f"SELECT count(*) FROM cases WHERE {due} AND status = 'closed' AND closed_at < :e",
                      s=s, e=e),
        "ontime": raw(conn, f"SELECT count(*) FROM cases WHERE {due} AND status = 'closed' AND closed_at < :e"
                            " AND closed_at <= deadline_at", s=s, e=e),
        "open_at_start": raw(conn, "SELECT count(*) FROM cases WHERE reported_at < :s AND (closed_at IS NULL OR"
                                   f" closed_at >= :s) AND status <> 'rejected'{area}", s=s),
        "setbacks": raw(conn, f"SELECT count(DISTINCT setback_id) FROM cases WHERE status IN {OPEN_SQL}"
                              f" AND setback_id IS NOT NULL{area}"),
        "berths": raw(conn, "SELECT count(*) FROM berths WHERE state <> 'out_of_service'"
                      + (f" AND district_code = '{district}'" if district else "")),
        "occupied": raw(conn, "SELECT count(*) FROM berths WHERE state = 'occupied'"
                        + (f" AND district_code = '{district}'" if district else "")),
    }
    rows = conn.execute(text(f"SELECT registered_at, closed_at FROM cases WHERE {due} AND status = 'closed'"
                             " AND closed_at < :e").bindparams(bindparam("s", type_=DateTime),
                                                               bindparam("e", type_=DateTime)), {"s": s, "e": e}).all()
    from datetime import datetime
    as_dt = lambda v: v if isinstance(v, datetime) else datetime.fromisoformat(v)  # noqa: E731
    hours = [(as_dt(c) - as_dt(r)).total_seconds() / 3600 for r, c in rows]
    out["avg_hours"] = sum(hours) / len(hours) if hours else None
    return out


@pytest.mark.parametrize("scope", ["city", "district"])
def test_kpis_match_raw_sql(store, scope):
    engine, now, district = store
    d = district if scope == "district" else None
    f = Filters(start=now - timedelta(days=7), end=now, district=d)
    with engine.connect() as conn:
        got = kpis.compute(conn, f, now=now)
        want = expected(conn, f.start, f.end, now, d)
        prev = expected(conn, f.start - timedelta(days=7), f.start, now, d)
    assert want["reported"] > 50 and want["due"] > 20, "the fixture should have cases in the week"
    assert got["reported"].value == want["reported"] and got["reported"].previous == prev["reported"]
    assert got["registered"].value == want["registered"] and got["registered"].previous == prev["registered"]
    assert got["open"].value == want["open"] and got["open"].previous == want["open_at_start"]
    assert got["overdue"].value == want["overdue"]
    assert (got["close_rate"].num, got["close_rate"].den) == (want["closed"], want["due"])
    assert (got["ontime_rate"].num, got["ontime_rate"].den) == (want["ontime"], want["due"])
    assert got["close_rate"].value == pytest.approx(100 * want["closed"] / want["due"])
    assert got["ontime_rate"].value == pytest.approx(100 * want["ontime"] / want["due"])
    if prev["due"]:
        assert got["ontime_rate"].previous == pytest.approx(100 * prev["ontime"] / prev["due"])
    else:
        assert got["ontime_rate"].previous is None
    assert got["avg_hours"].value == pytest.approx(want["avg_hours"], rel=1e-6)
    assert got["setbacks"].value == want["setbacks"]
    assert (got["occupancy"].num, got["occupancy"].den) == (want["occupied"], want["berths"])
    assert got["occupancy"].value == pytest.approx(100 * want["occupied"] / want["berths"])
    assert got["reported"].change == want["reported"] - prev["reported"]


def test_district_narrows_every_kpi(store):
    engine, now, district = store
    city = Filters(start=now - timedelta(days=7), end=now)
    one = Filters(start=city.start, end=city.end, district=district)
    with engine.connect() as conn:
        a, b = kpis.compute(conn, city, now=now), kpis.compute(conn, one, now=now)
    assert 0 < b["reported"].value < a["reported"].value
    assert b["open"].value < a["open"].value and b["occupancy"].den < a["occupancy"].den


def test_chart_data_matches_raw_sql(store):
    engine, now, district = store
    f = Filters(start=now - timedelta(days=7), end=now, district=district)
    with engine.connect() as conn:
        data = charts.all_data(conn, f, now=now)
        reported = raw(conn, "SELECT count(*) FROM cases WHERE reported_at >= :s AND reported_at < :e"
                             f" AND district_code = '{district}'", s=f.start, e=f.end)
        per_major = dict(conn.execute(text(
            "SELECT k.major_code, count(*) FROM cases c JOIN case_classes k ON k.code = c.class_code"
            " WHERE c.reported_at >= :s AND c.reported_at < :e AND c.district_code = :d GROUP BY k.major_code")
            .bindparams(bindparam("s", type_=DateTime), bindparam("e", type_=DateTime)),
            {"s": f.start, "e": f.end, "d": district}).all())
        closed = raw(conn, "SELECT count(*) FROM cases WHERE reported_at >= :s AND reported_at < :e"
                           f" AND district_code = '{district}' AND status = 'closed'", s=f.start, e=f.end)
        got_kpis = kpis.compute(conn, f, now=now)
    assert sum(data["timeline"]["current"]) == reported
    assert len(data["timeline"]["x"]) in (7, 8) and not data["timeline"]["hourly"]
    assert {m[0]: m[3] for m in data["classes"]["majors"]} == per_major
    stages = dict(data["funnel"])
    assert stages["reported"] == reported and stages["closed"] == closed
    assert stages["registered"] == got_kpis["registered"].value
    assert list(stages.values()) == sorted(stages.values(), reverse=True)
    # Departments and streets use the 按期结案率 population: their sums are the KPI's counts.
    assert sum(r[4] for r in data["streets"]) == got_kpis["ontime_rate"].den
    assert sum(r[3] for r in data["streets"]) == got_kpis["ontime_rate"].num
    assert sum(r[3] for r in data["departments"]) == got_kpis["ontime_rate"].num
    rates = [r[5] for r in data["departments"]]
    assert rates == sorted(rates, reverse=True)


def test_hourly_timeline_for_short_periods(store):
    engine, now, _ = store
    f = Filters(start=now - timedelta(days=1), end=now)
    with engine.connect() as conn:
        data = charts.timeline(conn, f, now=now)
        n = raw(conn, "SELECT count(*) FROM cases WHERE reported_at >= :s AND reported_at < :e", s=f.start, e=f.end)
    assert data["hourly"] and len(data["x"]) in (24, 25)
    assert sum(data["current"]) == n
    figs = charts.figures(charts.all_data(engine.connect(), f, now=now), "zh", _titles())
    assert figs["timeline"]["data"][0]["customdata"][0].startswith(data["x"][0].isoformat()[:13])


def _titles():
    from dashboard.i18n import t
    keys = ("timeline_hour", "timeline_day", "current", "previous", "majors", "minors", "funnel", "departments",
            "streets") + tuple(f"stage_{s}" for s in charts.STAGES)
    return {k: t("chart_" + k) for k in keys}


def test_breakdown_rates_are_metrics_rates(store):
    """The tiles sum layers.breakdown; the map colours with layers.metrics: both must say the same."""
    from layers.metrics import counts
    engine, now, district = store
    for d in (None, district):
        f = Filters(start=now - timedelta(days=10), end=now - timedelta(days=2), district=d)
        with engine.connect() as conn:
            got = kpis.compute(conn, f, now=now)
            streets = charts.streets(conn, f, now=now)
            for metric in ("close_rate", "ontime_rate"):
                pairs = counts(conn, metric, "street", f, now)
                assert (got[metric].num, got[metric].den) == (sum(v[0] for v in pairs.values()),
                                                              sum(v[1] for v in pairs.values()))
            assert {r[0]: (r[3], r[4]) for r in streets} == {k: v for k, v in
                                                            counts(conn, "ontime_rate", "street", f, now).items() if v[1]}


def test_no_comparison_with_a_period_before_the_first_case(store):
    """A period that starts at the store's first case has an unrecorded previous period: its values are
    unknown ("—"), not zero (which would show a rise of thousands of percent)."""
    engine, now, district = store
    with engine.connect() as conn:
        first = conn.execute(text("SELECT min(reported_at) FROM cases")).scalar()
        first = first if isinstance(first, datetime) else datetime.fromisoformat(str(first))
        f = Filters(start=first, end=now)
        got = kpis.compute(conn, f, now=now)
        week = kpis.compute(conn, Filters(start=now - timedelta(days=7), end=now), now=now)
        line = charts.timeline(conn, f, now=now)
        week_line = charts.timeline(conn, Filters(start=now - timedelta(days=7), end=now), now=now)
    # The timeline draws no "previous period" line of zeros either.
    assert line["previous"] is None and week_line["previous"] is not None
    assert got["reported"].value > 0
    for key in ("reported", "registered", "open", "overdue", "close_rate", "ontime_rate", "avg_hours", "setbacks"):
        assert got[key].previous is None and got[key].change is None, key
    # A period whose previous one lies inside the record still compares.
    assert week["reported"].previous is not None and week["reported"].change is not None


def test_berth_counts_follow_the_berths_version(fresh_engine):
    """Occupancy is memoised per berths data version: a write that bumps it is seen at once, and the same
    version is not counted twice (the memo is what keeps the count out of every filter change)."""
    from data.store import meta
    from data.store.schema import Berth

    def berth(i, state):
        return {"code": f"B{i}", "lon": 121.5, "lat": 29.9, "berth_type": "road", "vehicle": "car", "state": state,
                "grid_code": f"33020300100{i}", "community_code": "330203001001", "street_code": "330203001",
                "district_code": "330203"}

    with fresh_engine.begin() as conn:
        conn.execute(Berth.__table__.insert(), [berth(1, "occupied"), berth(2, "free"), berth(3, "out_of_service")])
        meta.bump(conn, "berths")
    f = Filters(district="330203")
    with fresh_engine.connect() as conn:
        assert kpis.occupancy(conn, f)[1:] == (1, 2)
    with fresh_engine.begin() as conn:
        conn.execute(text("UPDATE berths SET state = 'occupied' WHERE code = 'B2'"))
    with fresh_engine.connect() as conn:
        assert kpis.occupancy(conn, f)[1:] == (1, 2)      # not re-counted: no version moved
    with fresh_engine.begin() as conn:
        meta.bump(conn, "berths")
    with fresh_engine.connect() as conn:
        assert kpis.occupancy(conn, f) == (100.0, 2, 2)


def test_tile_updates_set_only_the_leaves_that_moved():
    """A filter change sets the tiles' changed leaves (dashboard/panels/kpis.py), not a new tree."""
    from dashboard.panels import kpis as panel
    from layers.kpis import KPIS, Kpi
    values = {k: Kpi(k, 10.0, 8.0, 10, 10) for k in KPIS}
    zh = panel.parts(values, "zh")
    assert panel.updates(zh, zh) == {}
    moved = dict(values, open=Kpi("open", 12.0, 8.0, 12, 12))
    out = panel.updates(zh, panel.parts(moved, "zh"))
    assert set(out) == {"kpi-open", "kpi-open-num", "kpi-open-cht"}
    assert out["kpi-open-num"] == {"children": "12"} and out["kpi-open"] == {"data-value": "12.0"}
    en = panel.updates(zh, panel.parts(values, "en"))      # a language switch relabels every tile
    assert all(en[f"kpi-{k}-label"]["children"] for k in KPIS) and "kpi-open-num" not in en
    # From nothing (a record without tiles), every leaf is set.
    assert len(panel.updates({}, zh)) == len(KPIS) * len({s for s, _, _ in panel.LEAVES})
