"""The command map in headless Chromium against a live server on the seeded test store.

Canvas layers have no DOM node per feature, so every assertion reads Leaflet's own state (maps captured by
the shared init script) and screenshots go to artifacts/ for a human to look at.
"""
import re

import pytest
from sqlalchemy import text

from data.statuses import OPEN
from tests.browser_fixtures import screenshot, wait_counts

pytestmark = pytest.mark.browser

# Features per GeoJSON layer, keyed by the layer's pane (each layer has its own pane).
PANE_COUNTS_JS = """
() => {
  const m = (window.__maps || [])[0];
  if (!m) return null;
  const out = {};
  m.eachLayer(l => { if (l instanceof L.GeoJSON) { out[l.options.pane] = (out[l.options.pane] || 0) + l.getLayers().length; } });
  return out;
}
"""


@pytest.fixture
def base(db_kind, seeded_url, live_server):
    """The real server over the seeded store of this run's database (SQLite and PostgreSQL alike)."""
    return live_server(seeded_url)


@pytest.fixture
def expected(seeded_engine):
    with seeded_engine.connect() as conn:
        q = lambda sql: conn.execute(text(sql)).scalar()  # noqa: E731
        grid = conn.execute(text("SELECT code, minx, miny, maxx, maxy FROM grids ORDER BY code LIMIT 1 OFFSET 7")).first()
        return {"grids": q("SELECT count(*) FROM grids"),
                "boundaries": 1 + q("SELECT count(*) FROM districts") + q("SELECT count(*) FROM streets"),
                "setbacks": q("SELECT count(*) FROM setbacks"), "grid": grid}


def grid_fill(page, code):
    """The fill colour Leaflet gave one grid polygon (the style function's output, not a DOM node)."""
    return page.evaluate("""(code) => { let c = null; window.__maps[0].eachLayer(l => {
        if (l instanceof L.GeoJSON && l.options.pane === 'grids') l.eachLayer(f => {
            if (f.feature.properties.code === code) c = [f.options.fillColor, f.options.fillOpacity]; }); });
        return c; }""", code)


def counts(page):
    return page.evaluate(PANE_COUNTS_JS)


def test_static_layers_drawn(page, base, expected):
    page.goto(base + "/")
    wait_counts(page, {"grids": expected["grids"], "boundaries": expected["boundaries"]})
    page.wait_for_function("() => { const m = window.__maps[0]; let n = 0; m.eachLayer(l => { if (l instanceof L.GeoJSON && l.options.pane === 'cases') n += l.getLayers().length; }); return n > 0; }")
    c = counts(page)
    assert c["grids"] == expected["grids"] and c["boundaries"] == expected["boundaries"]
    assert "setbacks" not in c and "berths" not in c  # off by default
    assert re.search(r"\d", page.inner_text("#status"))
    assert "演示数据" in page.inner_text("#notice")
    screenshot(page, "map_default")
    assert not [e for e in page.console_errors if "favicon" not in e]


LABELS_JS = """(level) => [...document.querySelectorAll('.cgzt-label-' + level)]
    .map(e => getComputedStyle(e).display !== 'none')"""


def test_boundary_labels_appear_as_you_zoom_in(page, base, expected):
    """District names show from zoom 10 to 13; street names are made and shown only from zoom 13 on."""
    page.goto(base + "/")
    wait_counts(page, {"boundaries": expected["boundaries"]})
    page.evaluate("() => { window.__maps[0].setZoom(11, {animate: false}); }")
    page.wait_for_function("() => document.querySelectorAll('.cgzt-label-district').length > 0")
    districts = page.evaluate(LABELS_JS, "district")
    assert districts and all(districts)
    assert page.evaluate(LABELS_JS, "street") == []  # not made until they would show
    page.evaluate("() => { window.__maps[0].setZoom(14, {animate: false}); }")
    page.wait_for_function("() => document.querySelectorAll('.cgzt-label-street').length > 0")
    streets = page.evaluate(LABELS_JS, "street")
    assert any(streets)  # those in view are shown (CSS), the others exist but are placed off-screen
    assert not any(page.evaluate(LABELS_JS, "district"))  # district names give way to streets at 14
    screenshot(page, "map_street_labels")


def test_first_render_uses_the_preloaded_layout_and_loads_the_grid_bundle_only_for_a_grid(page, base, expected):
    """The renderer takes the index page's preloaded layout (one request, started by the <link>), and the
    1.3 MB grid bundle is fetched when the map page's table mounts, never on a page without a grid."""
    requested, grid_warnings = [], []
    page.on("request", lambda r: requested.append(r.url))
    page.on("console", lambda m: m.type == "warning" and "AG Grid" in m.text and grid_warnings.append(m.text))
    page.goto(base + "/cases")
    page.wait_for_selector(".ws-page", timeout=30_000)
    page.wait_for_timeout(1500)
    assert not [u for u in requested if "dash_ag_grid" in u]
    requested.clear()
    page.goto(base + "/")
    wait_counts(page, {"grids": expected["grids"]})
    page.wait_for_selector("#table .ag-row", timeout=30_000)
    assert len([u for u in requested if u.endswith("/_dash-layout")]) == 1
    kinds = page.evaluate("""() => performance.getEntriesByType('resource')
        .filter(e => e.name.endsWith('/_dash-layout')).map(e => e.initiatorType)""")
    assert kinds == ["link"]
    assert len([u for u in requested if re.search(r"dash_ag_grid\.v[^/]*\.min\.js", u)]) == 1
    assert page.evaluate("() => !!window.dash_ag_grid.getApi('table')")  # the real grid behind the stand-in
    assert not [e for e in page.console_errors if "favicon" not in e]
    assert not grid_warnings  # e.g. a row id that is not a string
    # The table wears the page's dark colours (a theme that fails to evaluate leaves ag-grid's white).
    rgb = page.evaluate("() => getComputedStyle(document.querySelector('#table .ag-row')).backgroundColor")
    assert sum(int(x) for x in re.findall(r"\d+", rgb)[:3]) < 150, rgb


def test_layer_toggle_survives_reload(page, base, expected):
    page.goto(base + "/")
    wait_counts(page, {"grids": expected["grids"]})
    page.get_by_label("单元网格").uncheck()
    wait_counts(page, {"grids": None})
    page.wait_for_function("() => location.search.includes('layers=') && !location.search.includes('grids')")
    page.reload()
    wait_counts(page, {"boundaries": expected["boundaries"]})
    page.wait_for_timeout(800)
    assert "grids" not in counts(page)
    assert not page.get_by_label("单元网格").is_checked()
    page.get_by_label("单元网格").check()
    wait_counts(page, {"grids": expected["grids"]})
    page.get_by_label("停车泊位").check()
    page.wait_for_function("() => { let n = 0; window.__maps[0].eachLayer(l => { if (l instanceof L.GeoJSON && l.options.pane === 'berths') n += l.getLayers().length; }); return n > 0; }")
    screenshot(page, "map_berths")


def test_click_grid_opens_details(page, base, expected):
    code = expected["grid"].code
    page.goto(base + "/?layers=boundaries,grids")
    wait_counts(page, {"grids": expected["grids"]})
    pt = page.evaluate("""(code) => {
        const m = window.__maps[0]; let hit = null;
        m.eachLayer(l => { if (l instanceof L.GeoJSON && l.options.pane === 'grids') l.eachLayer(f => {
            if (f.feature.properties.code === code) hit = f; }); });
        m.setView(hit.getCenter(), 16, {animate: false});
        const p = m.latLngToContainerPoint(hit.getCenter()); const r = m.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y];
    }""", code)
    page.wait_for_timeout(500)
    page.mouse.click(*pt)
    page.wait_for_selector("#detail-title")
    assert code in page.inner_text("#detail-title")
    assert "监督员" in page.inner_text("#detail")
    screenshot(page, "map_grid_detail")


def test_search_flies_to_grid(page, base, expected):
    g = expected["grid"]
    page.goto(base + "/")
    wait_counts(page, {"grids": expected["grids"]})
    z0 = page.evaluate("() => window.__maps[0].getZoom()")
    page.fill("#search", g.code)
    page.press("#search", "Enter")
    page.wait_for_function("""([w, s, e, n, z0]) => { const m = window.__maps[0]; const c = m.getCenter();
        return m.getZoom() > z0 && c.lng > w && c.lng < e && c.lat > s && c.lat < n; }""",
                           arg=[g.minx, g.miny, g.maxx, g.maxy, z0], timeout=15_000)
    page.wait_for_selector("#detail-title")
    assert g.code in page.inner_text("#detail-title")
    page.wait_for_timeout(1200)
    screenshot(page, "map_search_grid")


def test_a_failed_grid_bundle_holds_back_no_callback_and_is_retried(page, base, expected):
    """The deferred grid bundle (assets/lazy_ag_grid.js) must not sit in dash-renderer's readiness wait: its
    first request fails here, and a language switch still reaches the page's chrome, which `follow` writes
    with the table's columns; the table comes up once the retry has loaded the bundle."""
    failed, hold = [], [True]

    def fail_while_held(route):
        # Every attempt fails until the test has seen the stand-in (a single failure raced the 1 s retry on a
        # slow run: the real grid could be up before the check below).
        if hold[0]:
            failed.append(route.request.url)
            return route.abort()
        return route.continue_()

    page.route(re.compile(r".*dash_ag_grid\.v[^/]*\.min\.js.*"), fail_while_held)
    page.goto(base + "/?lang=en")
    wait_counts(page, {"grids": expected["grids"]})
    page.wait_for_selector("#table", state="attached", timeout=30_000)  # the stand-in's box, bundle failed
    page.wait_for_function("() => document.querySelector('#table') && !document.querySelector('#table .ag-root')")
    assert failed
    page.click("#lang-btn")       # while the bundle still fails: no callback waits for it
    page.wait_for_function("() => document.querySelector('#t-title').innerText === '城管一张图'", timeout=10_000)
    hold[0] = False
    page.wait_for_selector("#table .ag-row", timeout=40_000)
    assert page.evaluate("() => document.querySelector('#table .ag-header').innerText").strip()
    assert page.evaluate("() => !!window.dash_ag_grid.getApi('table')")


def test_the_live_stream_opens_after_the_map_has_drawn(page, base, expected):
    """The live layer's stream opens after the grids are on the map, not in the middle of the first paint;
    the ticker still fills, and no Dash callback carries the live cases."""
    page.add_init_script("""(() => { window.__liveFirst = null; window.__liveCallbacks = 0;
        const grids = () => { let n = 0; (window.__maps || []).forEach(m => m.eachLayer(l => {
            if (l instanceof L.GeoJSON && l.options.pane === 'grids') n += l.getLayers().length; })); return n; };
        const ES = window.EventSource;
        window.EventSource = function (url, opts) {
            if (!window.__liveFirst) { window.__liveFirst = {grids: grids(), url: String(url)}; }
            return new ES(url, opts); };
        window.EventSource.prototype = ES.prototype;
        ['CONNECTING', 'OPEN', 'CLOSED'].forEach(k => { window.EventSource[k] = ES[k]; });
        const f = window.fetch;
        window.fetch = function (url, init) {
            if (String(url).includes('_dash-update-component') && init && /live-(tick|cursor|ticker)/.test(String(init.body))) {
                window.__liveCallbacks += 1; }
            return f.apply(this, arguments); }; })()""")
    page.goto(base + "/")
    wait_counts(page, {"grids": expected["grids"]})
    page.wait_for_selector("#live-ticker .live-row", state="attached", timeout=30_000)
    assert page.evaluate("() => window.__liveFirst") == {"grids": expected["grids"], "url": "/live/stream"}
    assert page.evaluate("() => window.__liveCallbacks") == 0
    # The language switch redraws the ticker in place.
    page.click("#lang-btn")
    page.wait_for_function("() => document.querySelector('#live-ticker .live-head').innerText === 'Live cases'")


def test_english_switch(page, base, expected):
    page.goto(base + "/?lang=en")
    wait_counts(page, {"grids": expected["grids"]})
    assert page.inner_text("#t-title") == "City Management Map"
    page.wait_for_function("() => (document.querySelector('#kpi-reported-label') || {}).innerText === 'Reported'")
    page.click("#lang-btn")
    page.wait_for_function("() => document.querySelector('#t-title').innerText === '城管一张图'")
    assert "lang=zh" in page.evaluate("() => location.search")
    # The KPI tiles stay and their labels follow (kpis_panel.updates sets the leaves that moved).
    page.wait_for_function("() => document.querySelector('#kpi-reported-label').innerText === '上报数'"
                           " && document.querySelector('#kpi-reported').title === '上报数'")


def test_grid_without_open_cases_is_zero_not_no_data(page, base, seeded_engine):
    from layers.metrics import bands
    with seeded_engine.connect() as conn:
        statuses = "', '".join(OPEN)
        idle = conn.execute(text(
            f"SELECT code FROM grids WHERE code NOT IN (SELECT grid_code FROM cases WHERE status IN ('{statuses}')"
            " AND grid_code IS NOT NULL) ORDER BY code LIMIT 1")).scalar()
        busy = conn.execute(text(
            f"SELECT grid_code FROM cases WHERE status IN ('{statuses}') GROUP BY grid_code ORDER BY count(*) DESC"
            " LIMIT 1")).scalar()
        never_due = conn.execute(text(
            "SELECT code FROM grids WHERE code NOT IN (SELECT grid_code FROM cases WHERE deadline_at IS NOT NULL"
            " AND grid_code IS NOT NULL) ORDER BY code LIMIT 1")).scalar()
        n_grids = conn.execute(text("SELECT count(*) FROM grids")).scalar()
    assert idle is not None, "the test store should have a grid with no open case"
    zero_band = bands("open", "grid")[0][1]
    page.goto(base + "/?layers=grids&metric=open")
    wait_counts(page, {"grids": n_grids})
    assert grid_fill(page, idle) == [zero_band, 0.7]  # the 0 band, drawn like any value (not the grey no-data)
    assert grid_fill(page, busy)[0] != zero_band
    # Rates keep "no data" where nothing was ever due: such a grid is grey, not the 0 % (red) band.
    assert never_due is not None, "the test store should have a grid where no case ever had a deadline"
    page.goto(base + "/?layers=grids&metric=close_rate")
    wait_counts(page, {"grids": n_grids})
    assert grid_fill(page, never_due) == ["#2a3442", 0.25]


PAINTED_JS = """() => {
  // Each individual case's canvas pixel at its point: drawn (alpha > 0) or not, per shape.
  const out = {};
  window.__maps[0].eachLayer(l => {
    if (!(l instanceof L.GeoJSON) || l.options.pane !== 'cases') return;
    l.eachLayer(f => {
      if (f.feature.properties.count !== undefined || !f._renderer) return;
      const r = f._renderer, b = r._bounds, k = L.Browser.retina ? 2 : 1, p = f._point;
      const x = Math.round((p.x - b.min.x) * k), y = Math.round((p.y - b.min.y) * k);
      if (x < 0 || y < 0 || x >= r._container.width || y >= r._container.height) return;
      const a = r._container.getContext('2d').getImageData(x, y, 1, 1).data[3];
      const s = out[f.options.shape] = out[f.options.shape] || {painted: 0, blank: 0};
      s[a > 0 ? 'painted' : 'blank'] += 1;
    });
  });
  return out;
}"""


def test_individual_cases_are_painted_in_every_shape(page, base, seeded_engine):
    """Zoomed in, each case is a canvas marker shaped by its major class. Every one of them is painted: a
    shape that threw while drawing (Leaflet 1.9 has no renderer._drawnLayers) stopped the whole pane's
    redraw at the first square, triangle or diamond, leaving the cases after it unpainted."""
    with seeded_engine.connect() as conn:
        lon, lat = conn.execute(text(
            "SELECT (minx + maxx) / 2, (miny + maxy) / 2 FROM grids WHERE code = (SELECT grid_code FROM cases "
            "GROUP BY grid_code ORDER BY count(*) DESC, grid_code LIMIT 1)")).one()
    page.goto(base + "/?layers=grids,cases&range=custom&start=2000-01-01&end=2100-01-01")
    page.wait_for_function("() => (window.__maps || []).length > 0")
    page.evaluate("([lat, lon]) => { window.__maps[0].setView([lat, lon], 16, {animate: false}); }", [lat, lon])
    painted = page.wait_for_function(PAINTED_JS.replace("return out;", "return Object.keys(out).length >= 2 && out;"),
                                     timeout=20_000).json_value()
    page.wait_for_timeout(500)    # a redraw after the last answer
    painted = page.evaluate(PAINTED_JS)
    screenshot(page, "map_case_shapes")
    assert len(painted) >= 2, painted
    assert all(s["blank"] == 0 and s["painted"] > 0 for s in painted.values()), painted
    assert not [e for e in page.console_errors if "favicon" not in e]


FEATURE_JS = """(code) => { let out = null; window.__maps[0].eachLayer(l => {
    if (l instanceof L.GeoJSON && l.options.pane === 'grids') l.eachLayer(f => {
        if (f.feature.properties.code === code) out = {id: L.stamp(f), fill: [f.options.fillColor, f.options.fillOpacity]}; }); });
    return out; }"""


def test_style_changes_restyle_the_grids_in_place(page, base, seeded_engine):
    """A metric or filter change restyles the 6,535 grid polygons where they are (assets/map.js `restyle`)
    instead of dash-leaflet's clear and re-add; the colours are the server's values, and a hover ends on the
    new style, not the one the layer was created with."""
    from dashboard import page_state as ps
    from dashboard.map_page import grid_values, metric_bands, parse_ui
    with seeded_engine.connect() as conn:
        busy, district = conn.execute(text(
            "SELECT grid_code, substr(grid_code, 1, 6) FROM cases GROUP BY grid_code ORDER BY count(*) DESC, grid_code"
            " LIMIT 1")).one()
        outside = conn.execute(text("SELECT code FROM grids WHERE code NOT LIKE :d ORDER BY code LIMIT 1"),
                               {"d": district + "%"}).scalar()
        n_grids = conn.execute(text("SELECT count(*) FROM grids")).scalar()

    def colour(metric, code, query):
        v = grid_values(seeded_engine, metric, ps.filters(parse_ui(query))).get(code)
        return [b[1] for b in metric_bands(metric) if v is not None and v >= b[0]][-1] if v is not None else None

    page.goto(base + "/?layers=grids&metric=open")
    wait_counts(page, {"grids": n_grids})
    before = page.evaluate(FEATURE_JS, busy)
    assert before["fill"][0] == colour("open", busy, "layers=grids&metric=open")
    want = colour("close_rate", busy, "layers=grids&metric=close_rate")
    assert want and want != before["fill"][0]
    page.click("#metric input[value='close_rate']")
    page.wait_for_function("([code, want]) => { let c = null; window.__maps[0].eachLayer(l => {"
                           " if (l instanceof L.GeoJSON && l.options.pane === 'grids') l.eachLayer(f => {"
                           " if (f.feature.properties.code === code) c = f.options.fillColor; }); }); return c === want; }",
                           arg=[busy, want], timeout=15_000)
    after = page.evaluate(FEATURE_JS, busy)
    assert after["id"] == before["id"]                   # the same polygon, restyled: not re-added
    # Hover over the grid and away: Leaflet's resetStyle ends on the new metric's colour.
    box = page.evaluate("""(code) => { const m = window.__maps[0]; let hit = null; m.eachLayer(l => {
        if (l instanceof L.GeoJSON && l.options.pane === 'grids') l.eachLayer(f => {
            if (f.feature.properties.code === code) hit = f; }); });
        hit.fire('mouseover', {target: hit, layer: hit}); hit.fire('mouseout', {target: hit, layer: hit});
        return hit.options.fillColor; }""", busy)
    assert box == want
    # A district filter dims the grids outside it, again in place.
    page.evaluate("(d) => window.dash_clientside.set_props('f-district', {value: d})", district)
    page.wait_for_function("(code) => { let o = null; window.__maps[0].eachLayer(l => {"
                           " if (l instanceof L.GeoJSON && l.options.pane === 'grids') l.eachLayer(f => {"
                           " if (f.feature.properties.code === code) o = f.options.fillOpacity; }); }); return o === 0.08; }",
                           arg=outside, timeout=15_000)
    assert page.evaluate(FEATURE_JS, busy)["id"] == before["id"]
    screenshot(page, "map_grids_restyled")
    assert not [e for e in page.console_errors if "favicon" not in e]
