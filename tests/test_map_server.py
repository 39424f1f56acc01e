"""The dashboard server over real stores (SQLite and PostGIS): health probe and versioned static layers."""
import gzip

import geobuf
import pytest
from sqlalchemy import text

from dashboard.server import create_app, layer_url
from data.store import meta
from data.store.engine import make_engine
from layers import cache

TABLES = ("districts", "streets", "communities", "grids", "berths", "setbacks", "cases", "case_events")


@pytest.fixture
def client(seeded_engine):
    cache._memo.clear()
    app = create_app(seeded_engine, auth=False)
    return app.server.test_client()


def _count(engine, table):
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()


def _decode(resp) -> dict:
    assert resp.headers["Content-Encoding"] == "gzip"
    return geobuf.decode(gzip.decompress(resp.data))


def test_healthz_counts_match_sql(client, seeded_engine, db_kind):
    r = client.get("/healthz")
    assert r.status_code == 200, r.json
    body = r.json
    assert body["status"] == "ok" and body["database"] == db_kind
    assert body["schema_revision"] == body["schema_head"]
    assert body["demo"] is True and body["data_notice"]
    for t in TABLES:
        assert body["rows"][t] == _count(seeded_engine, t), t


def test_healthz_503_when_database_unreachable(tmp_path):
    engine = make_engine("postgresql://nobody@127.0.0.1:1/nowhere", pool_pre_ping=False)
    app = create_app(engine, auth=False)
    r = app.server.test_client().get("/healthz")
    assert r.status_code == 503
    assert r.json["status"] == "unavailable" and "unreachable" in r.json["error"]


@pytest.mark.parametrize("name,table", [("grids", "grids"), ("berths", "berths"), ("setbacks", "setbacks")])
def test_layer_decodes_to_every_row(client, seeded_engine, name, table):
    with seeded_engine.connect() as conn:
        v = cache.version(conn, name)
    r = client.get(layer_url(name, v), headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    fc = _decode(r)
    assert len(fc["features"]) == _count(seeded_engine, table)
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert r.headers["ETag"].startswith('"') and r.headers["ETag"].endswith('"')


def test_layer_properties(client, seeded_engine):
    with seeded_engine.connect() as conn:
        v = cache.versions_all(conn)
        grid = conn.execute(text("SELECT code, community_code, street_code FROM grids ORDER BY code LIMIT 1")).first()
        n_districts = _count(seeded_engine, "districts")
        n_streets = _count(seeded_engine, "streets")
        states = dict(conn.execute(text("SELECT state, count(*) FROM berths GROUP BY state")).all())
    grids = _decode(client.get(layer_url("grids", v["grids"]), headers={"Accept-Encoding": "gzip"}))
    p = next(f["properties"] for f in grids["features"] if f["properties"]["code"] == grid.code)
    assert (p["community"], p["street"]) == (grid.community_code, grid.street_code)
    b = _decode(client.get(layer_url("boundaries", v["boundaries"]), headers={"Accept-Encoding": "gzip"}))
    levels = [f["properties"]["level"] for f in b["features"]]
    assert levels.count("city") == 1 and levels.count("district") == n_districts and levels.count("street") == n_streets
    berths = _decode(client.get(layer_url("berths", v["berths"]), headers={"Accept-Encoding": "gzip"}))
    got = {}
    for f in berths["features"]:
        got[f["properties"]["s"]] = got.get(f["properties"]["s"], 0) + 1
    assert got == {{"free": "f", "occupied": "o", "out_of_service": "x"}[k]: n for k, n in states.items()}


def test_etag_304_and_plain_body_without_gzip(client, seeded_engine):
    with seeded_engine.connect() as conn:
        v = cache.version(conn, "grids")
    url = layer_url("grids", v)
    r = client.get(url, headers={"Accept-Encoding": "gzip"})
    again = client.get(url, headers={"If-None-Match": r.headers["ETag"], "Accept-Encoding": "gzip"})
    assert again.status_code == 304 and again.data == b""
    plain = client.get(url)
    assert "Content-Encoding" not in plain.headers
    assert plain.data == gzip.decompress(r.data)


def test_gcj02_variant_is_shifted(client, seeded_engine):
    with seeded_engine.connect() as conn:
        v = cache.version(conn, "berths")
    wgs = _decode(client.get(layer_url("berths", v), headers={"Accept-Encoding": "gzip"}))
    gcj = _decode(client.get(layer_url("berths", v, "gcj02"), headers={"Accept-Encoding": "gzip"}))
    (x0, y0), (x1, y1) = wgs["features"][0]["geometry"]["coordinates"], gcj["features"][0]["geometry"]["coordinates"]
    # GCJ-02 near Ningbo moves points by roughly 0.004-0.005° east and 0.002-0.003° south.
    assert 0.003 < x1 - x0 < 0.006 and -0.004 < y1 - y0 < -0.001


def test_version_bump_changes_url_and_old_url_redirects(client, seeded_url, db_kind):
    # A store of its own: the session store is read-only.
    engine = make_engine(seeded_url)
    with engine.connect() as conn:
        old = cache.version(conn, "grids")
    with engine.begin() as conn:
        meta.bump(conn, "grids")
    try:
        with engine.connect() as conn:
            new = cache.version(conn, "grids")
        assert new != old
        r = client.get(layer_url("grids", old))
        assert r.status_code == 302 and r.headers["Location"].endswith(layer_url("grids", new))
        assert client.get(layer_url("grids", new), headers={"Accept-Encoding": "gzip"}).status_code == 200
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT version FROM layer_cache WHERE name = 'grids' AND variant = 'wgs84'")).all()
        assert [s[0] for s in stored] == [new]  # built once, old versions dropped, shared through the store
    finally:
        engine.dispose()


def test_unknown_layer_404(client):
    assert client.get("/layers/nope.pbf").status_code == 404


def test_page_serves_locally(client):
    r = client.get("/")
    assert r.status_code == 200
    html = r.data.decode()
    assert "unpkg" not in html and "cdn" not in html.lower()
    assert "/assets/map.js" in html


def test_index_preloads_what_its_first_render_fetches(client):
    """Every page preloads Dash's layout and callback graph; only the map preloads its layers. The grid
    bundle is in the page with a type the browser does not run (assets/lazy_ag_grid.js loads it), and
    dash_table's bundle, which no page uses, is not in it."""
    import re
    preloads = lambda html: re.findall(r'<link rel="preload" href="([^"]+)"', html)  # noqa: E731
    page = client.get("/").data.decode()
    assert preloads(page)[:2] == ["/_dash-layout", "/_dash-dependencies"]
    assert any(h.startswith("/layers/grids.pbf?v=") for h in preloads(page))
    cases = client.get("/cases").data.decode()
    assert preloads(cases) == ["/_dash-layout", "/_dash-dependencies"]  # no map on the workspace
    tag = re.search(r'<script src="([^"]*dash_ag_grid[^"]*)"([^>]*)>', page)
    assert tag and 'type="text/x-cgzt-lazy"' in tag.group(2) and 'id="cgzt-lazy-dash_ag_grid"' in tag.group(2)
    assert client.get(tag.group(1)).status_code == 200  # still served, for the loader
    assert "dash_table/bundle" not in page
    assert page.index("/assets/lazy_ag_grid.js") < page.index("dash_renderer")


def test_a_workers_first_request_does_not_render_a_page(seeded_engine, monkeypatch):
    """Dash validates the layout on the first request a process serves; that request (a health check, an
    API call) must not pay for a map page of queries. The page itself is rendered for /_dash-layout."""
    from sqlalchemy import event
    statements = []

    def count(*_args):
        statements.append(1)
    # No background load of the case columns: its four statements landed among the counted ones or not,
    # depending on the thread's timing (CI: 32 against 28).
    monkeypatch.setenv("CGZT_WARM_CUBE", "0")
    app = create_app(seeded_engine, auth=False)
    event.listen(seeded_engine, "before_cursor_execute", count)
    try:
        client = app.server.test_client()
        assert client.get("/healthz").status_code == 200
        first = len(statements)
        assert client.get("/healthz").status_code == 200
        again = len(statements) - first
        assert first - again <= 3, (first, again)   # the health check's own queries, not a page of panels
        before = len(statements)
        layout = client.get("/_dash-layout", headers={"Referer": "http://localhost/"})
        assert layout.status_code == 200 and b'"id":"map"' in layout.data.replace(b" ", b"")
        assert len(statements) - before > 10        # the page's queries run here
    finally:
        event.remove(seeded_engine, "before_cursor_execute", count)


def test_a_drill_answers_the_cases_for_where_the_map_is_going(client, seeded_engine):
    """When the state's area changes, `follow` moves the map in the same round; the viewport callback, which
    still gets the old view, answers for the new area's view, so the move's own bounds change finds those
    features drawn (same key) instead of replacing features drawn for the old view."""
    import json

    from dashboard import map_page
    from dashboard import page_state as ps
    from dashboard.panels import reference
    ref = reference.load(seeded_engine)
    district = ref["districts"][0][0]
    city = map_page.initial_extent(map_page.data_bounds(seeded_engine))
    old_bounds = map_page.approx_bounds(city["center"], city["zoom"])
    ui = ps.with_area(ps.default_state(), "district", district)
    going = map_page.initial_extent(map_page.area_bounds(seeded_engine, ref, ui))
    want = map_page.cases_layers(seeded_engine, ui, map_page.approx_bounds(going["center"], going["zoom"]),
                                 going["zoom"])[2]
    stale = map_page.cases_layers(seeded_engine, ui, old_bounds, city["zoom"])[2]
    assert want != stale  # else this test could not tell the two apart
    outputs = [{"id": "grp-setbacks", "property": "children"}, {"id": "grp-cases", "property": "children"},
               {"id": "status", "property": "children"}, {"id": "cases-key", "property": "data"}]
    body = {"output": "..grp-setbacks.children...grp-cases.children...status.children...cases-key.data..",
            "outputs": outputs,
            "inputs": [{"id": "ui", "property": "data", "value": ui},
                       {"id": "map", "property": "bounds", "value": old_bounds},
                       {"id": "map", "property": "zoom", "value": city["zoom"]}],
            "state": [{"id": "map", "property": "center", "value": city["center"]},
                      {"id": "cases-key", "property": "data", "value": {"cases": "drawn", "path": "/"}}],
            "changedPropIds": ["ui.data"]}
    r = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
    assert r.status_code == 200, r.data[:300]
    keys = r.get_json()["response"]["cases-key"]["data"]
    assert keys["cases"] == want and keys["path"] == ui["path"]
