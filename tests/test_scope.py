"""An access scope restricts every case query built from layers.filters.where(), on both databases.

Checked against independent pandas counts over the seeded fixture: for each scope (a liaison's department,
a supervisor's district, both, nothing) every metric of layers.metrics and both kinds of layers.cases.view
(area aggregates and single cases) give exactly the scoped rows.
"""
from dataclasses import replace
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import text

from data.statuses import OPEN, REGISTERED_STAGES
from layers import cases as lc
from layers import metrics
from layers.filters import Filters, where
from layers.scope import NOTHING, UNRESTRICTED, Scope


@pytest.fixture(scope="module")
def frame(seeded_url):
    from data.store.engine import make_engine
    engine = make_engine(seeded_url)
    with engine.connect() as conn:
        df = pd.read_sql(text("SELECT id, grid_code, district_code, department_code, status, reported_at,"
                              " registered_at, deadline_at, closed_at, lon, lat FROM cases"), conn)
    engine.dispose()
    for col in ("reported_at", "registered_at", "deadline_at", "closed_at"):
        df[col] = pd.to_datetime(df[col])
    return df


def _busiest_department(df):
    return df["department_code"].dropna().value_counts().index[0]


def _scopes(df):
    dep = _busiest_department(df)
    other = df["department_code"].dropna().value_counts().index[1]
    return {
        "liaison": Scope(departments=(dep,)),
        "supervisor": Scope(districts=("330203",)),
        "both": Scope(districts=("330205",), departments=(dep, other)),
        "nothing": NOTHING,
        "all": UNRESTRICTED,
    }


def _in_scope(df, scope: Scope):
    keep = pd.Series(scope.all or not scope.empty, index=df.index)
    if not scope.all:
        if scope.districts:
            keep &= df["grid_code"].str[:6].isin(scope.districts)
        if scope.departments:
            keep &= df["department_code"].isin(scope.departments)
    return df[keep]


def _period(df):
    end = df["reported_at"].max().to_pydatetime() + timedelta(seconds=1)
    return Filters(start=end - timedelta(days=20), end=end), end


def _expected(df, metric, f, now):
    d = df
    if metric == "open":
        d = d[d["status"].isin(OPEN)]
    elif metric == "overdue":
        d = d[d["status"].isin(OPEN) & (d["deadline_at"] < now)]
    elif metric == "period":
        d = d[(d["reported_at"] >= f.start) & (d["reported_at"] < f.end)]
    else:
        d = d[(d["deadline_at"] >= f.start) & (d["deadline_at"] < f.end) & d["registered_at"].notna()
              & d["status"].isin(REGISTERED_STAGES)]
        closed = (d["status"] == "closed") & (d["closed_at"] < f.end)
        if metric == "ontime_rate":
            closed &= d["closed_at"] <= d["deadline_at"]
        return {k: (int(closed[g.index].sum()), len(g)) for k, g in d.groupby(d["grid_code"].str[:6])}
    return {k: (len(g), 1) for k, g in d.groupby(d["grid_code"].str[:6])}


@pytest.mark.parametrize("who", ["liaison", "supervisor", "both", "nothing", "all"])
@pytest.mark.parametrize("metric", metrics.METRICS)
def test_every_metric_counts_only_the_scope(seeded_engine, frame, who, metric):
    f, now = _period(frame)
    scope = _scopes(frame)[who]
    scoped = replace(f, scope=scope)
    with seeded_engine.connect() as conn:
        got = metrics.counts(conn, metric, "district", scoped, now=now)
        unscoped = metrics.counts(conn, metric, "district", f, now=now)
    assert got == _expected(_in_scope(frame, scope), metric, f, now)
    if who == "all":
        assert got == unscoped
    elif who == "nothing":
        assert got == {}
    else:
        assert sum(v[1] for v in got.values()) < sum(v[1] for v in unscoped.values())


@pytest.mark.parametrize("who", ["liaison", "supervisor", "both", "nothing"])
def test_map_aggregates_and_cases_show_only_the_scope(seeded_engine, frame, who):
    f, now = _period(frame)
    scope = _scopes(frame)[who]
    scoped = replace(f, scope=scope)
    mine = _in_scope(frame, scope)
    mine = mine[(mine["reported_at"] >= f.start) & (mine["reported_at"] < f.end)]
    bbox = (frame["lon"].min() - 0.01, frame["lat"].min() - 0.01, frame["lon"].max() + 0.01, frame["lat"].max() + 0.01)
    with seeded_engine.connect() as conn:
        agg = lc.view(conn, 10, bbox, scoped, now=now, cache=False)
        points = lc.view(conn, 17, bbox, scoped, now=now, cap=100_000)
    assert agg["level"] == "district" and agg["total"] == len(mine)
    by_district = {ft["properties"]["code"]: ft["properties"]["count"] for ft in agg["features"]}
    expected = mine.groupby(mine["grid_code"].str[:6]).size().to_dict()
    assert {k: v for k, v in by_district.items() if v} == expected
    # No circle (not even a zero) for a district outside the scope; a liaison sees every district's areas.
    assert all(scope.covers_area(k) for k in by_district)
    if scope.districts:
        assert set(by_district) == set(scope.districts)
    if who == "liaison":
        assert set(frame["grid_code"].str[:6]) <= set(by_district)
    assert points["level"] == "case" and points["total"] == len(mine)
    assert {ft["properties"]["id"] for ft in points["features"]} == set(mine["id"])


def test_memoised_aggregates_never_cross_scopes(seeded_engine, frame):
    """The aggregate memo is keyed by the filters; a scoped request right after an unscoped one must not
    get the city's numbers."""
    f, now = _period(frame)
    bbox = (121.0, 29.0, 122.5, 30.5)
    with seeded_engine.connect() as conn:
        city = lc.view(conn, 10, bbox, f, now=now)
        liaison = lc.view(conn, 10, bbox, replace(f, scope=_scopes(frame)["liaison"]), now=now)
    assert liaison["total"] < city["total"]


def test_scope_is_never_in_the_url():
    f = Filters(district="330203", scope=Scope(departments=("D1",)))
    q = f.to_query()
    assert "scope" not in q
    assert Filters.from_query(q).scope == UNRESTRICTED
    with pytest.raises(ValueError, match="unknown filter parameter"):
        Filters.from_query({**q, "scope": "all"})
    assert "scope" not in Filters.from_query({**q, "scope": "all"}, strict=False).to_query()
    assert Filters.from_query({**q, "scope": "all"}, strict=False).scope == UNRESTRICTED


def test_where_adds_the_scope_to_every_period_kind():
    f = Filters(scope=Scope(departments=("D1",)))
    for period in ("reported", "deadline", None):
        sql = " ".join(str(c.compile(compile_kwargs={"literal_binds": True})) for c in where(f, period=period))
        assert "cases.department_code IN ('D1')" in sql, (period, sql)
    empty = " ".join(str(c) for c in where(Filters(scope=NOTHING), period=None))
    assert "false" in empty.lower() or "0 = 1" in empty


@pytest.mark.parametrize("bad", [{"districts": ("1234",)}, {"districts": "330203"}, {"departments": ("",)},
                                 {"all": "yes"}])
def test_bad_scopes_are_refused(bad):
    with pytest.raises(ValueError):
        Scope(**bad)


def test_permits_matches_the_sql_rule():
    s = Scope(districts=("330203",), departments=("D1",))
    assert s.permits("330203001001001", "D1")
    assert not s.permits("330205001001001", "D1")
    assert not s.permits("330203001001001", "D2")
    assert not NOTHING.permits("330203001001001", "D1") and UNRESTRICTED.permits(None, None)
