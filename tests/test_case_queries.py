"""Case aggregation, grid metrics and filters against real databases, checked by independent pandas counts."""
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlencode

import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from data import reference
from data.statuses import OPEN, STATUSES
from data.store.bulk import load_frame
from layers import cases as lc
from layers import metrics
from layers.filters import Filters, where

NOW = datetime(2017, 1, 10, 12, 0)
DEC = Filters(start=datetime(2016, 12, 1), end=datetime(2017, 1, 1))

# Two districts, three streets, one community each, four grids (rectangles side by side).
GRIDS = {"330203001001001": (121.50, 29.80), "330203001001002": (121.51, 29.80),
         "330203002001001": (121.52, 29.80), "330205001001001": (121.53, 29.80)}


def _box(x, y, w=0.01, h=0.01):
    return shapely.MultiPolygon([shapely.box(x, y, x + w, y + h)])


def _world(conn):
    def bb(g):
        x0, y0, x1, y1 = g.bounds
        return dict(minx=x0, miny=y0, maxx=x1, maxy=y1)
    dist = {"330203": "海曙区", "330205": "江北区"}
    streets = {"330203001": "南门街道", "330203002": "江厦街道", "330205001": "中马街道"}
    gs = {c: _box(x, y) for c, (x, y) in GRIDS.items()}
    union = lambda pre: shapely.MultiPolygon([p for c, g in gs.items() if c.startswith(pre) for p in g.geoms])  # noqa: E731
    load_frame(conn, "districts", pd.DataFrame(
        [dict(code=c, name=n, name_en=n, area_m2=1.0, geom=union(c), **bb(union(c))) for c, n in dist.items()]))
    load_frame(conn, "streets", pd.DataFrame(
        [dict(code=c, district_code=c[:6], name=n, name_en=n, kind="街道", area_m2=1.0, geom=union(c), **bb(union(c)))
         for c, n in streets.items()]))
    load_frame(conn, "communities", pd.DataFrame(
        [dict(code=c + "001", street_code=c, district_code=c[:6], name=n.replace("街道", "社区"), area_m2=1.0,
              geom=union(c), **bb(union(c))) for c, n in streets.items()]))
    load_frame(conn, "grids", pd.DataFrame(
        [dict(code=c, community_code=c[:12], street_code=c[:9], district_code=c[:6], area_m2=1.0, geom=g, **bb(g))
         for c, g in gs.items()]))
    reference.load(conn)


def _case(i, grid, status, reported, registered=None, deadline=None, closed=None, cls="E0101", src="inspector",
          lon=None, lat=None):
    x, y = GRIDS[grid]
    return dict(id=i, code=f"C{i:08d}", source_code=src, kind="event" if cls[0] == "E" else "component",
                major_code=cls[:3], class_code=cls, lon=lon if lon is not None else x + 0.005,
                lat=lat if lat is not None else y + 0.005, grid_code=grid, community_code=grid[:12],
                street_code=grid[:9], district_code=grid[:6], status=status, priority="normal",
                reported_at=reported, registered_at=registered, deadline_at=deadline, closed_at=closed,
                overdue=False, rework_count=0, return_count=0, version=1, updated_at=reported)


def _frame(rows):
    df = pd.DataFrame(rows)
    for c in ("reported_at", "registered_at", "deadline_at", "closed_at", "updated_at"):
        df[c] = pd.to_datetime(df[c])
    return df


@pytest.fixture
def world(fresh_engine):
    with fresh_engine.begin() as conn:
        _world(conn)
    return fresh_engine


def _published_month():
    """The 天门 December report in one grid: 972 due, 911 closed, 737 on time, plus cases that must not count."""
    g = "330203001001001"
    start, end = DEC.start, DEC.end
    rows, i = [], 0

    def add(**kw):
        nonlocal i
        i += 1
        rows.append(_case(i, g, **kw))
    for k in range(736):   # on time: closed an hour before the deadline
        d = start + timedelta(hours=1 + k % 700)
        add(status="closed", reported=d - timedelta(days=1), registered=d - timedelta(days=1), deadline=d,
            closed=d - timedelta(hours=1))
    # deadline exactly at the period's start, closed exactly at the deadline: due and on time
    add(status="closed", reported=start - timedelta(days=2), registered=start - timedelta(days=2), deadline=start,
        closed=start)
    for k in range(174):   # closed late, before the period's end
        d = start + timedelta(hours=1 + k)
        add(status="closed", reported=d - timedelta(days=1), registered=d - timedelta(days=1), deadline=d,
            closed=d + timedelta(hours=3))
    for k in range(60):    # still open
        d = start + timedelta(days=10, hours=k)
        add(status="handling", reported=d - timedelta(days=1), registered=d - timedelta(days=1), deadline=d)
    # due in December, closed only on 2 January: due, not closed in the period
    add(status="closed", reported=start + timedelta(days=29), registered=start + timedelta(days=29),
        deadline=end - timedelta(hours=1), closed=end + timedelta(days=1))
    # must not count: rejected, registered without a deadline, deadline exactly at the end, before the start,
    # reported but never registered
    add(status="rejected", reported=start + timedelta(days=3), registered=start + timedelta(days=3),
        deadline=start + timedelta(days=4))
    add(status="registered", reported=start + timedelta(days=3), registered=start + timedelta(days=3))
    add(status="closed", reported=end - timedelta(days=1), registered=end - timedelta(days=1), deadline=end,
        closed=end - timedelta(hours=2))
    add(status="closed", reported=start - timedelta(days=3), registered=start - timedelta(days=3),
        deadline=start - timedelta(seconds=1), closed=start - timedelta(days=2))
    add(status="reported", reported=start + timedelta(days=5), deadline=start + timedelta(days=6))
    return _frame(rows)


def test_published_rates_reproduced(world, db_kind):
    with world.begin() as conn:
        load_frame(conn, "cases", _published_month())
    with world.connect() as conn:
        due = metrics.counts(conn, "close_rate", "grid", DEC, now=NOW)
        ontime = metrics.counts(conn, "ontime_rate", "grid", DEC, now=NOW)
        close = metrics.grid_metric(conn, "close_rate", DEC, now=NOW)
        ont = metrics.grid_metric(conn, "ontime_rate", DEC, now=NOW)
        by_district = metrics.area_metric(conn, "close_rate", "district", DEC, now=NOW)
    assert due == {"330203001001001": (911, 972)}
    assert ontime == {"330203001001001": (737, 972)}
    assert round(close["330203001001001"], 2) == 93.72
    assert round(ont["330203001001001"], 2) == 75.82
    assert round(by_district["330203"], 2) == 93.72


def test_period_boundaries_and_counts(world):
    g1, g2, g3 = "330203001001001", "330203002001001", "330205001001001"
    s, e = DEC.start, DEC.end
    rows = [
        _case(1, g1, "closed", s, s, s + timedelta(hours=4), s + timedelta(hours=1)),  # reported exactly at start
        _case(2, g1, "handling", e, e, e + timedelta(hours=4)),                      # exactly at end: out
        _case(3, g2, "handling", e - timedelta(seconds=1), e, datetime(2017, 1, 1, 4)),  # in; overdue by NOW
        _case(4, g3, "registered", s + timedelta(days=1), s + timedelta(days=1)),   # open, no deadline: not overdue
        _case(5, g3, "rejected", s + timedelta(days=2)),                             # closed state, not open
        _case(6, g3, "handling", s + timedelta(days=2), s + timedelta(days=2), NOW + timedelta(hours=1)),  # not yet
    ]
    with world.begin() as conn:
        load_frame(conn, "cases", _frame(rows))
    with world.connect() as conn:
        period = metrics.grid_metric(conn, "period", DEC, now=NOW)
        open_ = metrics.grid_metric(conn, "open", DEC, now=NOW)
        over = metrics.grid_metric(conn, "overdue", DEC, now=NOW)
        street_open = metrics.area_metric(conn, "open", "street", DEC, now=NOW)
        only_over = metrics.grid_metric(conn, "period", Filters(start=s, end=e, overdue_only=True), now=NOW)
    assert period == {g1: 1.0, g2: 1.0, g3: 3.0}
    assert open_ == {g1: 1.0, g2: 1.0, g3: 2.0}        # the period does not apply to "open now"
    assert over == {g1: 1.0, g2: 1.0}                  # case 2 (deadline 1 Jan 04:00) and case 3
    assert street_open == {"330203001": 1.0, "330203002": 1.0, "330205001": 2.0}
    assert only_over == {g2: 1.0}


# ---- random fixture checked against pandas -------------------------------------------------------------------

def _random_cases(n=600, seed=3):
    rng = np.random.default_rng(seed)
    grids = list(GRIDS)
    statuses = list(STATUSES)
    classes = ["E0101", "E0102", "E0501", "C0101", "C0201"]
    rows = []
    base = datetime(2016, 11, 15)
    for i in range(1, n + 1):
        rep = base + timedelta(minutes=int(rng.integers(0, 60 * 24 * 50)))
        st = statuses[int(rng.integers(len(statuses)))]
        reg = None if st in ("reported",) or (st == "rejected" and rng.random() < .5) else rep + timedelta(hours=1)
        dl = None if reg is None or rng.random() < .1 else reg + timedelta(hours=int(rng.integers(2, 200)))
        cl = rep + timedelta(hours=int(rng.integers(1, 300))) if st == "closed" else None
        g = grids[int(rng.integers(len(grids)))]
        x, y = GRIDS[g]
        rows.append(_case(i, g, st, rep, reg, dl, cl, cls=classes[int(rng.integers(len(classes)))],
                          src=["inspector", "hotline", "public"][int(rng.integers(3))],
                          lon=x + float(rng.random()) * 0.01, lat=y + float(rng.random()) * 0.01))
    return _frame(rows)


def _expected(df, metric, f: Filters, level_len=15, now=NOW):
    d = df.copy()
    d["code"] = d.grid_code.str[:level_len]
    scope = pd.Series(True, index=d.index)
    if f.area:
        scope &= d.grid_code.str.startswith(f.area)
    if f.classes:
        scope &= d.class_code.isin(f.classes)
    if f.majors:
        scope &= d.class_code.str[:3].isin(f.majors)
    if f.sources:
        scope &= d.source_code.isin(f.sources)
    if f.statuses:
        scope &= d.status.isin(f.statuses)
    is_open = d.status.isin(OPEN)
    overdue = is_open & d.deadline_at.notna() & (d.deadline_at < now)
    if f.overdue_only:
        scope &= overdue
    rep = (d.reported_at >= f.start) & (d.reported_at < f.end)
    if metric == "open":
        return d[scope & is_open].groupby("code").size().astype(float).to_dict()
    if metric == "overdue":
        return d[scope & overdue].groupby("code").size().astype(float).to_dict()
    if metric == "period":
        return d[scope & rep].groupby("code").size().astype(float).to_dict()
    due = scope & d.registered_at.notna() & (d.status != "rejected") & (d.status != "reported") & \
        (d.deadline_at >= f.start) & (d.deadline_at < f.end)
    closed = (d.status == "closed") & (d.closed_at < f.end)
    if metric == "ontime_rate":
        closed &= d.closed_at <= d.deadline_at
    g = pd.DataFrame({"code": d.code[due], "c": closed[due].astype(int)}).groupby("code").c
    return {k: 100.0 * v for k, v in (g.sum() / g.size()).to_dict().items()}


FILTER_CASES = [
    DEC,
    Filters(start=datetime(2016, 11, 20), end=datetime(2016, 12, 20), district="330203"),
    Filters(start=DEC.start, end=DEC.end, street="330203001"),
    Filters(start=DEC.start, end=DEC.end, classes=("E0101", "C0101")),
    Filters(start=DEC.start, end=DEC.end, majors=("E05",), sources=("hotline", "public")),
    Filters(start=DEC.start, end=DEC.end, overdue_only=True),
    Filters(start=DEC.start, end=DEC.end, statuses=("closed", "handling")),
]


@pytest.mark.parametrize("fi", range(len(FILTER_CASES)))
def test_metrics_match_pandas(world, fi):
    df = _random_cases()
    with world.begin() as conn:
        load_frame(conn, "cases", df)
    f = FILTER_CASES[fi]
    with world.connect() as conn:
        for metric in metrics.METRICS:
            got = metrics.grid_metric(conn, metric, f, now=NOW)
            exp = _expected(df, metric, f)
            assert got.keys() == exp.keys(), (metric, got, exp)
            for k in exp:
                assert got[k] == pytest.approx(exp[k]), (metric, k)
            for level, n in (("district", 6), ("street", 9)):
                got = metrics.area_metric(conn, metric, level, f, now=NOW)
                exp = _expected(df, metric, f, n)
                assert got == pytest.approx(exp), (metric, level)


def test_view_levels_and_counts(world):
    df = _random_cases()
    with world.begin() as conn:
        load_frame(conn, "cases", df)
    bbox = (121.49, 29.79, 121.55, 29.82)
    with world.connect() as conn:
        levels = {z: lc.view(conn, z, bbox, DEC, now=NOW)["level"] for z in (8, 11, 12, 13, 14, 15, 16, 18)}
        assert levels == {8: "district", 11: "district", 12: "street", 13: "street", 14: "grid", 15: "grid",
                          16: "case", 18: "case"}
        for zoom, n in ((11, 6), (13, 9), (15, 15)):
            fc = lc.view(conn, zoom, bbox, DEC, now=NOW)
            exp = _expected(df, "period", DEC, n)
            got = {f["properties"]["code"]: f["properties"]["count"] for f in fc["features"]}
            assert {k: v for k, v in got.items() if v} == {k: int(v) for k, v in exp.items()}
            open_in_period = _expected(df, "period", Filters(start=DEC.start, end=DEC.end, statuses=OPEN), n)
            assert {f["properties"]["code"]: f["properties"]["open"] for f in fc["features"]
                    if f["properties"]["open"]} == {k: int(v) for k, v in open_in_period.items()}
        # a viewport over the first grid only shows that grid (and the areas containing it)
        small = (121.501, 29.801, 121.509, 29.809)
        assert [f["properties"]["code"] for f in lc.view(conn, 15, small, DEC, now=NOW)["features"]] == \
            ["330203001001001"]
        assert [f["properties"]["code"] for f in lc.view(conn, 10, small, DEC, now=NOW)["features"]] == ["330203"]
        # individual cases: exactly those in the bbox and period, capped with the true total
        fc = lc.view(conn, 17, small, DEC, now=NOW)
        inb = df[(df.lon >= small[0]) & (df.lon <= small[2]) & (df.lat >= small[1]) & (df.lat <= small[3])
                 & (df.reported_at >= DEC.start) & (df.reported_at < DEC.end)]
        assert len(inb) > 5
        assert sorted(f["properties"]["id"] for f in fc["features"]) == sorted(inb.id.tolist())
        assert fc["total"] == len(inb) and fc["truncated"] is False
        capped = lc.view(conn, 17, small, DEC, now=NOW, cap=5)
        assert len(capped["features"]) == 5 and capped["truncated"] is True and capped["total"] == len(inb)
        newest = inb.sort_values(["reported_at", "id"], ascending=False).id.head(5).tolist()
        assert [f["properties"]["id"] for f in capped["features"]] == newest
        with pytest.raises(ValueError):
            lc.view(conn, 12, (121.6, 29.8, 121.5, 29.9), DEC)


def test_detail_and_search(world):
    with world.begin() as conn:
        load_frame(conn, "cases", _frame([
            _case(1, "330203002001001", "handling", datetime(2016, 12, 1, 9), datetime(2016, 12, 1, 10),
                  datetime(2016, 12, 1, 14))]))
        conn.execute(text("UPDATE cases SET department_code = '330203HW', address = '药行街1号' WHERE id = 1"))
        load_frame(conn, "case_events", pd.DataFrame([
            dict(id=1, case_id=1, at=pd.Timestamp("2016-12-01 09:00"), actor="监督员01", action="report",
                 from_status=None, to_status="reported", department_code=None, note="上报"),
            dict(id=2, case_id=1, at=pd.Timestamp("2016-12-01 10:00"), actor="受理员", action="register",
                 from_status="reported", to_status="registered", department_code=None, note=None)]))
    with world.connect() as conn:
        d = lc.detail(conn, 1, now=NOW)
        assert lc.detail(conn, 999) is None
        hits = lc.search(conn, "江厦")
        grid_hits = lc.search(conn, "33020300100100")
        case_hits = lc.search(conn, "C00000001")
    assert d["class_name"] == "暴露垃圾" and d["class_name_en"] == "Exposed rubbish"
    assert d["department_name"] == "海曙区环境卫生管理处" and d["source_name"] == "监督员上报"
    assert d["overdue"] is True and d["deadline_at"] == "2016-12-01T14:00:00" and d["address"] == "药行街1号"
    assert [(e["action"], e["from"], e["to"]) for e in d["timeline"]] == [
        ("report", None, "reported"), ("register", "reported", "registered")]
    assert [(h["kind"], h["code"]) for h in hits] == [("street", "330203002"), ("community", "330203002001")]
    assert hits[0]["bbox"] == pytest.approx([121.52, 29.80, 121.53, 29.81])
    assert [h["code"] for h in grid_hits] == ["330203001001001", "330203001001002"]
    assert case_hits[0]["code"] == "C00000001" and case_hits[0]["point"] == pytest.approx([121.525, 29.805])


def test_berth_occupancy(world):
    rows = []
    states = {"330203001001001": ["occupied", "free", "free", "out_of_service"],
              "330205001001001": ["occupied", "occupied"], "330203002001001": ["out_of_service"]}
    i = 0
    for g, ss in states.items():
        for s in ss:
            i += 1
            rows.append(dict(id=i, code=f"B{i}", lon=121.5, lat=29.8, berth_type="on_street", vehicle="motor",
                             state=s, grid_code=g, community_code=g[:12], street_code=g[:9], district_code=g[:6]))
    with world.begin() as conn:
        load_frame(conn, "berths", pd.DataFrame(rows))
    with world.connect() as conn:
        grid = metrics.berth_occupancy(conn, "grid")
        district = metrics.berth_occupancy(conn, "district")
    assert grid["330203001001001"] == {"total": 3, "occupied": 1, "out_of_service": 1, "rate": pytest.approx(1 / 3)}
    assert grid["330203002001001"]["rate"] is None
    assert district["330203"] == {"total": 3, "occupied": 1, "out_of_service": 2, "rate": pytest.approx(1 / 3)}
    assert district["330205"]["rate"] == 1.0


# ---- filters ---------------------------------------------------------------------------------------------------

def test_filters_round_trip_through_url():
    f = Filters(start=datetime(2026, 10, 1), end=datetime(2026, 11, 1, 8, 30), district="330203",
                street="330203001", sources=("inspector", "hotline"), classes=("E0101",), majors=("C01",),
                statuses=("handling", "rework"), departments=("330203HW",), overdue_only=True)
    url = urlencode(f.to_query())
    assert Filters.from_query(parse_qs(url)) == f
    assert Filters.from_query(f.to_query()) == f
    default = Filters()
    assert (default.end - default.start) == timedelta(days=30) and default.district is None
    assert Filters.from_query({"start": "2026-10-01"}).end == datetime(2026, 10, 31)


@pytest.mark.parametrize("query, message", [
    ({"start": "2026-13-01"}, "start"),
    ({"start": "2026-10-02", "end": "2026-10-01"}, "before"),
    ({"district": "330299x"}, "district"),
    ({"district": "110101"}, "Ningbo"),
    ({"street": "33020300"}, "street"),
    ({"district": "330203", "street": "330205001"}, "not in district"),
    ({"statuses": "handling,lost"}, "unknown status"),
    ({"classes": "E01"}, "minor class"),
    ({"majors": "E0101"}, "major class"),
    ({"sources": "Inspector!"}, "source"),
    ({"overdue_only": "maybe"}, "overdue_only"),
    ({"statues": "closed"}, "unknown filter"),
    ({"district": ["330203", "330205"]}, "once"),
])
def test_bad_filters_raise(query, message):
    with pytest.raises(ValueError, match=message):
        Filters.from_query(query)


def test_where_rejects_unknown_period():
    with pytest.raises(ValueError):
        where(DEC, period="closed")


def test_bands_cover_all_values():
    for m in metrics.METRICS:
        b = metrics.bands(m)
        assert b[0][0] == 0.0 and [x[0] for x in b] == sorted(x[0] for x in b)
    assert metrics.band_of("close_rate", 93.72)[2].startswith("良好")
    assert metrics.band_of("ontime_rate", 75.82)[2].startswith("较差")
    assert metrics.band_of("open", 0)[2] == "0"
    assert metrics.bands("open", "street")[1][0] == 40.0


# ---- the seeded test store: every function against independent SQL -------------------------------------------

def test_seeded_store_matches_direct_sql(seeded_engine):
    with seeded_engine.connect() as conn:
        df = pd.read_sql(text("SELECT * FROM cases"), conn,
                         parse_dates=["reported_at", "registered_at", "deadline_at", "closed_at"])
        assert len(df) > 1000
        end = df.reported_at.max().normalize() + pd.Timedelta(days=1)
        now = end.to_pydatetime()
        for f in (Filters(start=(end - pd.Timedelta(days=30)).to_pydatetime(), end=now),
                  Filters(start=(end - pd.Timedelta(days=14)).to_pydatetime(), end=now,
                          district=df.district_code.iloc[0]),
                  Filters(start=(end - pd.Timedelta(days=30)).to_pydatetime(), end=now,
                          classes=tuple(df.class_code.value_counts().index[:2]))):
            for metric in metrics.METRICS:
                got = metrics.grid_metric(conn, metric, f, now=now)
                assert got == pytest.approx(_expected(df, metric, f, now=now)), metric
            # district totals from the stored district_code column agree with the grid-code prefixes
            direct = df[(df.reported_at >= f.start) & (df.reported_at < f.end)]
            if f.district:
                direct = direct[direct.district_code == f.district]
            if f.classes:
                direct = direct[direct.class_code.isin(f.classes)]
            assert metrics.area_metric(conn, "period", "district", f, now=now) == \
                direct.groupby("district_code").size().astype(float).to_dict()
        fc = lc.view(conn, 10, (120.0, 28.0, 123.0, 31.0), Filters(start=f.start, end=f.end), now=now)
        assert sum(x["properties"]["count"] for x in fc["features"]) == int(
            ((df.reported_at >= f.start) & (df.reported_at < f.end)).sum())
        one = int(df.id.iloc[0])
        d = lc.detail(conn, one, now=now)
        assert d["code"] == df.code.iloc[0]
        n_events = conn.execute(text("SELECT COUNT(*) FROM case_events WHERE case_id = :i"), {"i": one}).scalar()
        assert len(d["timeline"]) == n_events


def test_view_memo_follows_the_cases_version(world):
    from data.store import meta
    g = "330203001001001"
    bbox = (121.49, 29.79, 121.55, 29.82)
    with world.begin() as conn:
        load_frame(conn, "cases", _frame([_case(1, g, "handling", DEC.start + timedelta(days=1))]))
        meta.bump(conn, "cases")
    with world.connect() as conn:
        first = {f["properties"]["code"]: f["properties"]["count"] for f in lc.view(conn, 15, bbox, DEC)["features"]}
    with world.begin() as conn:
        load_frame(conn, "cases", _frame([_case(2, g, "handling", DEC.start + timedelta(days=2))]))
        meta.bump(conn, "cases")
    with world.connect() as conn:
        second = {f["properties"]["code"]: f["properties"]["count"] for f in lc.view(conn, 15, bbox, DEC)["features"]}
    assert first[g] == 1 and second[g] == 2
