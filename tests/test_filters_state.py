"""The page state in the URL (dashboard/page_state.py): round trips, presets, and bad input falling back."""
from datetime import datetime, timedelta

import pytest

from dashboard import page_state as ps
from dashboard.panels.charts import click_to_filter


def test_round_trip_of_every_field():
    s = ps.default_state()
    s.update(path="/street/330203001", layers=["grids", "cases"], metric="ontime_rate", lang="en", range="custom",
             start="2026-11-01", end="2026-11-08", grid="330203001002005", sources=["hotline", "inspector"],
             classes=["E0101"], majors=["E01"], statuses=["handling", "closed"], departments=["330203SZ"],
             overdue_only=True, btype=["on_street"], bstate=["free", "occupied"], smode=["self"], suse=["green"])
    back, problems = ps.parse(s["path"], ps.query(s))
    assert problems == [] and back == s


def test_default_state_is_what_an_empty_url_means():
    assert ps.parse("/", "") == (ps.default_state(), [])


def test_presets_are_whole_days_ending_today():
    now = datetime(2026, 11, 22, 15, 41, 7)
    start, end = ps.period(dict(ps.default_state(), range="7d"), now)
    assert start == datetime(2026, 11, 16) and end == datetime(2026, 11, 22, 15, 42)
    start, end = ps.period(dict(ps.default_state(), range="today"), now)
    assert start == datetime(2026, 11, 22)


def test_filters_follow_the_path():
    f = ps.filters(ps.parse("/street/330203001", "statuses=closed&overdue_only=1")[0])
    assert (f.district, f.street, f.statuses, f.overdue_only) == ("330203", "330203001", ("closed",), True)


@pytest.mark.parametrize("path,query,kept,problem", [
    ("/", "range=fortnight", {"range": "30d"}, "range=fortnight"),
    ("/", "statuses=lost,closed", {"statuses": ["closed"]}, "lost"),
    ("/", "start=2026-13-01&end=2026-12-01", {"range": "30d"}, "start"),
    ("/", "start=2026-12-02&end=2026-12-01", {"range": "30d"}, "before"),
    ("/district/12", "", {"path": "/"}, "district"),
    ("/district/330299", "", {"path": "/"}, "unknown"),
    ("/nowhere", "", {"path": "/"}, "path"),
    ("/", "overdue_only=maybe", {"overdue_only": False}, "overdue_only"),
    ("/", "bstate=free,flying", {"bstate": ["free"]}, "flying"),
    ("/district/330203", "grid=330205001001001", {"grid": None}, "grid"),
])
def test_bad_values_fall_back_and_say_so(path, query, kept, problem):
    s, problems = ps.parse(path, query, known_area=lambda code: code != "330299")
    for k, v in kept.items():
        assert s[k] == v
    assert any(problem in p for p in problems), problems


def test_chart_clicks_toggle_filters():
    s = ps.default_state()
    click = lambda cd: {"points": [{"customdata": cd}]}  # noqa: E731
    s1 = click_to_filter("minors", click("E0101"), s)
    assert s1["classes"] == ["E0101"]
    assert click_to_filter("minors", click("E0101"), s1)["classes"] == []
    assert click_to_filter("majors", click("E01"), s1) == dict(s1, majors=["E01"], classes=[])
    assert click_to_filter("streets", click("330203001"), s)["path"] == "/street/330203001"
    assert click_to_filter("funnel", click("closed"), s)["statuses"] == ["closed"]
    day = click_to_filter("timeline", click("2026-11-20T00:00:00"), s)
    assert (day["range"], day["start"], day["end"]) == ("custom", "2026-11-20", "2026-11-21")
    f = ps.filters(day)
    assert f.end - f.start == timedelta(days=1)
