"""Case export over real HTTP (the Flask app on SQLite and PostgreSQL): content equals the filtered rows."""
import csv
import io
import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from openpyxl import load_workbook
from sqlalchemy import DateTime, bindparam, text

from dashboard.server import create_app
from layers.filters import Filters
from layers.table import COLUMNS


@pytest.fixture(scope="module")
def setup(seeded_url):
    from data.store.engine import make_engine
    engine = make_engine(seeded_url)
    with engine.connect() as conn:
        now = conn.execute(text("SELECT max(reported_at) FROM cases")).scalar()
        district = conn.execute(text("SELECT min(district_code) FROM cases")).scalar()
    if isinstance(now, str):
        from datetime import datetime
        now = datetime.fromisoformat(now)
    client = create_app(engine, auth=False).server.test_client()
    yield engine, client, now.replace(microsecond=0) + timedelta(seconds=1), district
    engine.dispose()


def expected_codes(engine, f: Filters, extra=""):
    sql = ("SELECT code FROM cases WHERE reported_at >= :s AND reported_at < :e"
           + (f" AND district_code = '{f.district}'" if f.district else "") + extra + " ORDER BY id")
    with engine.connect() as conn:
        q = text(sql).bindparams(bindparam("s", type_=DateTime), bindparam("e", type_=DateTime))
        return [r[0] for r in conn.execute(q, {"s": f.start, "e": f.end})]


def test_csv_equals_filtered_rows(setup):
    engine, client, now, district = setup
    f = Filters(start=now - timedelta(days=5), end=now, district=district, statuses=("closed",))
    r = client.get("/export/cases.csv?" + urlencode(f.to_query()))
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    body = r.get_data(as_text=True)
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0] == [v[0] for v in COLUMNS.values()]  # Chinese headers by default
    codes = [row[0] for row in rows[1:]]
    want = expected_codes(engine, f, " AND status = 'closed'")
    assert len(want) > 10 and codes == want
    status_col = list(COLUMNS).index("status")
    assert {row[status_col] for row in rows[1:]} == {"结案"}


def test_english_headers_and_names(setup):
    engine, client, now, district = setup
    f = Filters(start=now - timedelta(days=2), end=now)
    r = client.get("/export/cases.csv?" + urlencode({**f.to_query(), "lang": "en"}))
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:3] == ["Case code", "Status", "Overdue"]
    assert [row[0] for row in rows[1:]] == expected_codes(engine, f)
    assert all(row[2] in ("yes", "no") for row in rows[1:])


def test_xlsx_equals_filtered_rows(setup):
    engine, client, now, district = setup
    f = Filters(start=now - timedelta(days=3), end=now, district=district)
    r = client.get("/export/cases.xlsx?" + urlencode(f.to_query()))
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.data), read_only=True).active
    values = list(ws.iter_rows(values_only=True))
    assert list(values[0]) == [v[0] for v in COLUMNS.values()]
    assert [v[0] for v in values[1:]] == expected_codes(engine, f)


def test_geojson_equals_filtered_rows(setup):
    engine, client, now, district = setup
    f = Filters(start=now - timedelta(days=3), end=now, district=district, overdue_only=False)
    r = client.get("/export/cases.geojson?" + urlencode(f.to_query()))
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    fc = json.loads(r.data)
    assert fc["type"] == "FeatureCollection"
    assert [x["properties"]["code"] for x in fc["features"]] == expected_codes(engine, f)
    with engine.connect() as conn:
        lon, lat = conn.execute(text("SELECT lon, lat FROM cases WHERE code = :c"),
                                {"c": fc["features"][0]["properties"]["code"]}).first()
    assert fc["features"][0]["geometry"]["coordinates"] == [lon, lat]


def test_empty_selection_is_a_valid_file(setup):
    engine, client, now, _ = setup
    q = {"start": "2001-01-01", "end": "2001-01-02"}
    assert json.loads(client.get("/export/cases.geojson?" + urlencode(q)).data)["features"] == []
    rows = list(csv.reader(io.StringIO(client.get("/export/cases.csv?" + urlencode(q)).get_data(as_text=True))))
    assert len(rows) == 1


@pytest.mark.parametrize("query,why", [
    ("district=999999", "district"),
    ("start=yesterday", "start"),
    ("start=2026-02-01&end=2026-01-01", "before"),
    ("statuses=lost", "status"),
    ("colour=red", "unknown filter"),
    ("lang=fr", "lang"),
    ("district=330203&district=330205", "once"),
])
def test_bad_filter_is_400_with_reason(setup, query, why):
    _, client, _, _ = setup
    r = client.get("/export/cases.csv?" + query)
    assert r.status_code == 400
    assert why in r.json["error"]


def test_unknown_format_404(setup):
    assert setup[1].get("/export/cases.pdf").status_code == 404
