"""Filters, drill-down, KPIs, charts and the case table in headless Chromium against the real server.

Expected numbers come from raw SQL on the seeded store; the page's period is the preset's whole days
(dashboard/page_state.period), so the test computes the same bounds.
"""
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import DateTime, bindparam, text

from dashboard import page_state as ps
from tests.browser_fixtures import screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def base(db_kind, seeded_url, live_server):
    return live_server(seeded_url)


@pytest.fixture(scope="module")
def areas(seeded_url):
    from data.store.engine import make_engine
    engine = make_engine(seeded_url)
    with engine.connect() as conn:
        d = conn.execute(text("SELECT d.code, d.name FROM districts d JOIN cases c ON c.district_code = d.code "
                              "GROUP BY d.code, d.name ORDER BY count(*) DESC LIMIT 1")).first()
        other = conn.execute(text("SELECT min(code) FROM grids WHERE district_code <> :d"), {"d": d.code}).scalar()
        s = conn.execute(text("SELECT s.code, s.name FROM streets s JOIN cases c ON c.street_code = s.code "
                              "WHERE s.district_code = :d GROUP BY s.code, s.name ORDER BY count(*) DESC LIMIT 1"),
                         {"d": d.code}).first()
    yield {"district": d, "street": s, "other_grid": other, "engine": engine}
    engine.dispose()


def reported(engine, state, extra="", **params) -> int:
    """Cases reported in the state's period and area, by raw SQL."""
    start, end = ps.period(state)
    district, street = ps.area(state)
    sql = "SELECT count(*) FROM cases WHERE reported_at >= :s AND reported_at < :e" + extra
    if street:
        sql += f" AND street_code = '{street}'"
    elif district:
        sql += f" AND district_code = '{district}'"
    with engine.connect() as conn:
        q = text(sql).bindparams(bindparam("s", type_=DateTime), bindparam("e", type_=DateTime))
        return conn.execute(q, {"s": start, "e": end, **params}).scalar()


def kpi(page, key="reported") -> str:
    return page.get_attribute(f"#kpi-{key}", "data-value")


def wait_kpi(page, value, key="reported"):
    page.wait_for_function("([k, v]) => { const e = document.getElementById('kpi-' + k);"
                           " return e && e.dataset.value === String(v); }", arg=[key, value], timeout=20_000)


def chart_total(page, chart="timeline") -> int:
    return page.evaluate("(id) => { const g = document.getElementById(id);"
                         " const d = g && g.querySelector('.js-plotly-plot'); if (!d || !d.data || !d.data[0]) return null;"
                         " return d.data[0].y ? d.data[0].y.reduce((a, b) => a + b, 0) : null; }", f"ch-{chart}")


def grid_opacity(page, code):
    return page.evaluate("""(code) => { let o = null; window.__maps[0].eachLayer(l => {
        if (l instanceof L.GeoJSON && l.options.pane === 'grids') l.eachLayer(f => {
            if (f.feature.properties.code === code) o = f.options.fillOpacity; }); }); return o; }""", code)


def wait_grids(page):
    page.wait_for_function("() => { const m = (window.__maps || [])[0]; if (!m) return false; let n = 0;"
                           " m.eachLayer(l => { if (l instanceof L.GeoJSON && l.options.pane === 'grids')"
                           " n += l.getLayers().length; }); return n > 0; }")


def test_district_rescopes_everything_and_the_url_restores_it(page, base, areas, browser):
    engine, d = areas["engine"], areas["district"]
    city = ps.default_state()
    foreign = []
    page.on("request", lambda r: urlsplit(r.url).netloc != urlsplit(base).netloc and foreign.append(r.url))
    page.goto(base + "/")
    wait_grids(page)
    n_city = reported(engine, city)
    wait_kpi(page, n_city)
    page.wait_for_function("(n) => { const d = document.querySelector('#ch-timeline .js-plotly-plot');"
                           " return d && d.data && d.data[0] && d.data[0].y.reduce((a, b) => a + b, 0) === n; }",
                           arg=n_city)
    assert grid_opacity(page, areas["other_grid"]) == 0.7
    page.click("#f-district")
    page.get_by_role("option", name=d.name).click()
    page.wait_for_function("(p) => location.pathname === p", arg=f"/district/{d.code}")
    n_district = reported(engine, ps.with_area(city, "district", d.code))
    assert 0 < n_district < n_city
    wait_kpi(page, n_district)
    page.wait_for_function("(n) => { const d = document.querySelector('#ch-timeline .js-plotly-plot');"
                           " return d.data[0].y.reduce((a, b) => a + b, 0) === n; }", arg=n_district)
    page.wait_for_function("(code) => { let o = null; window.__maps[0].eachLayer(l => {"
                           " if (l instanceof L.GeoJSON && l.options.pane === 'grids') l.eachLayer(f => {"
                           " if (f.feature.properties.code === code) o = f.options.fillOpacity; }); });"
                           " return o !== null && o < 0.1; }", arg=areas["other_grid"])  # outside: dimmed
    assert d.name in page.inner_text("#crumbs")
    page.wait_for_function("(n) => document.getElementById('table-total').innerText.replace(/,/g, '').includes(String(n))",
                           arg=n_district)
    url = page.url
    screenshot(page, "drill_district")
    assert not foreign, f"requests left the server: {foreign[:5]}"
    assert not [e for e in page.console_errors if "favicon" not in e]

    # The copied link in a fresh page shows the same view.
    other = page.context.new_page()
    other.goto(url)
    wait_kpi(other, n_district)
    assert d.name in other.inner_text("#f-district")
    assert d.name in other.inner_text("#crumbs")
    c = other.evaluate("() => window.__maps[window.__maps.length - 1].getCenter()")
    with engine.connect() as conn:
        b = conn.execute(text("SELECT minx, miny, maxx, maxy FROM districts WHERE code = :c"), {"c": d.code}).first()
    assert b.minx < c["lng"] < b.maxx and b.miny < c["lat"] < b.maxy
    other.close()

    # Back goes up to the city: URL, KPIs and breadcrumbs.
    page.go_back()
    page.wait_for_function("() => location.pathname === '/'")
    wait_kpi(page, n_city)
    page.wait_for_function("(name) => !document.getElementById('crumbs').innerText.includes(name)", arg=d.name)


def test_changes_that_arrive_together_are_all_applied(page, base, areas):
    """Two controls set at once (as when a second choice is made while the first answer is on its way)
    reach the state callback in one request: both land in the URL, the controls and the KPIs."""
    engine, d = areas["engine"], areas["district"]
    page.goto(base + "/")
    wait_grids(page)
    wait_kpi(page, reported(engine, ps.default_state()))
    page.evaluate("(code) => { window.dash_clientside.set_props('f-range', {value: '7d'});"
                  " window.dash_clientside.set_props('f-district', {value: code}); }", d.code)
    page.wait_for_function("(p) => location.pathname === p && location.search.includes('range=7d')",
                           arg=f"/district/{d.code}")
    want = ps.with_area(dict(ps.default_state(), range="7d"), "district", d.code)
    wait_kpi(page, reported(engine, want))
    assert d.name in page.inner_text("#f-district") and d.name in page.inner_text("#crumbs")


def click_bar(page, graph, i):
    """Click bar i of a plotly bar chart the way a user does: point at it, then click once plotly shows it.

    Plotly takes clicks on its drag layer, above the bars, and a click emits the point its hover logic holds.
    That logic runs at most every 50 ms: a pointer that arrives and clicks within 50 ms of an earlier hover
    (or of the re-hover plotly does after every redraw) clicks with a stale point or none, and the click is
    lost (measured on a bare plotly page). A person's click comes after the hover label. The figure can also
    be redrawn between finding a bar and pointing at it (the panels follow the map's first draw): look again
    until plotly holds this bar as its hover point."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    for _ in range(40):
        bars = page.query_selector_all(f"#{graph} g.trace.bars g.point path")
        box = bars[i].bounding_box() if bars else None
        if box and box["width"] > 0 and box["height"] > 0:
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(x, y)
            try:
                page.wait_for_function(
                    """([g, n]) => { const gd = document.querySelector('#' + g + ' .js-plotly-plot');
                        const pts = gd && gd._hoverdata;
                        return !!pts && pts.length > 0 && pts[0].pointNumber === n; }""",
                    arg=[graph, i % len(bars)], timeout=1000)
            except PlaywrightTimeout:
                continue
            page.mouse.click(x, y)
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"no bar {i} of #{graph} that plotly would take a click on")


def test_chart_click_narrows_table_and_url(page, base, areas):
    engine = areas["engine"]
    page.goto(base + "/")
    wait_kpi(page, reported(engine, ps.default_state()))
    page.wait_for_selector("#ch-minors g.trace.bars g.point path")
    # The top bar of the minor-class chart is the biggest class.
    click_bar(page, "ch-minors", -1)
    page.wait_for_function("() => location.search.includes('classes=')")
    cls = re.search(r"classes=([A-Z0-9]+)", page.url).group(1)
    state = ps.parse("/", urlsplit(page.url).query)[0]
    assert state["classes"] == [cls]
    n = reported(engine, state, " AND class_code = :c", c=cls)
    assert n > 0
    wait_kpi(page, n)
    page.wait_for_function("(n) => document.getElementById('table-total').innerText.replace(/,/g, '')"
                           ".includes(String(n))", arg=n)
    # The rows on screen are all of that class.
    with engine.connect() as conn:
        name = conn.execute(text("SELECT name FROM case_classes WHERE code = :c"), {"c": cls}).scalar()
    texts = page.evaluate("() => [...document.querySelectorAll('#table .ag-body .ag-row:not(.ag-row-pinned)"
                          " [col-id=\"class\"]')].map(c => c.innerText.trim()).filter(t => t)")
    assert len(texts) >= 3 and set(texts) == {name}, texts[:10]
    # A second click on the same bar clears the filter.
    click_bar(page, "ch-minors", -1)
    page.wait_for_function("() => !location.search.includes('classes=')")
    screenshot(page, "chart_cross_filter")


def test_deep_links_and_unknown_code(page, base, areas):
    engine, d, s = areas["engine"], areas["district"], areas["street"]
    page.goto(base + f"/street/{s.code}?range=7d")
    state = ps.parse(f"/street/{s.code}", "range=7d")[0]
    wait_kpi(page, reported(engine, state))
    crumbs = page.inner_text("#crumbs")
    assert d.name in crumbs and s.name in crumbs
    # The breadcrumb goes up one level without a reload.
    page.evaluate("() => { window.__same_page = true; }")
    page.get_by_role("link", name=d.name).click()
    page.wait_for_function("(p) => location.pathname === p", arg=f"/district/{d.code}")
    wait_kpi(page, reported(engine, ps.with_area(state, "district", d.code)))
    assert page.evaluate("() => window.__same_page === true")
    assert "range=7d" in page.url
    page.goto(base + "/district/330299")
    page.wait_for_selector("#qnotice")
    assert "330299" in page.inner_text("#qnotice")
    wait_kpi(page, reported(engine, ps.default_state()))


def test_bad_query_falls_back_with_a_message(page, base, areas):
    page.goto(base + "/?range=fortnight&statuses=lost,closed&metric=nope")
    page.wait_for_selector("#qnotice")
    note = page.inner_text("#qnotice")
    assert "fortnight" in note and "lost" in note
    state = ps.parse("/", "statuses=closed")[0]
    wait_kpi(page, reported(areas["engine"], state, " AND status = 'closed'"))


def test_row_click_flies_to_the_case(page, base, areas):
    page.goto(base + "/")
    first = "#table .ag-center-cols-container .ag-row[row-index='0'] [col-id='code']"
    page.wait_for_function("(sel) => { const c = document.querySelector(sel); return c && c.innerText.trim().length > 0; }",
                           arg=first)
    cell = page.query_selector(first)
    code = cell.inner_text()
    cell.click()
    page.wait_for_selector("#detail-title")
    page.wait_for_function("(c) => document.getElementById('detail-title').innerText.includes(c)", arg=code)
    with areas["engine"].connect() as conn:
        lon, lat = conn.execute(text("SELECT lon, lat FROM cases WHERE code = :c"), {"c": code}).first()
    page.wait_for_function("([lon, lat]) => { const m = window.__maps[0]; const c = m.getCenter();"
                           " return m.getZoom() >= 16 && Math.abs(c.lng - lon) < 0.002 && Math.abs(c.lat - lat) < 0.002; }",
                           arg=[lon, lat], timeout=15_000)
    ring = page.evaluate("() => { let r = null; window.__maps[0].eachLayer(l => {"
                         " if (l.options && l.options.pane === 'highlight' && l.getLatLng) r = l.getLatLng(); }); return r; }")
    assert ring and abs(ring["lng"] - lon) < 1e-6 and abs(ring["lat"] - lat) < 1e-6
    screenshot(page, "table_row_flies")


def test_case_click_on_the_map_pins_its_row(page, base, areas):
    """Fly to a case through the table, then click it on the map: its row is pinned, selected, on top.

    A fixed period: "30 days" starts a day later after midnight (CST), and the table's first row, the
    oldest overdue case, would leave the map's cases between the row click and the map click."""
    from data.clock import now_cst
    today = now_cst().date()
    page.goto(base + f"/?range=custom&start={today - timedelta(days=60)}&end={today + timedelta(days=2)}")
    first = "#table .ag-center-cols-container .ag-row[row-index='0'] [col-id='code']"
    page.wait_for_function("(sel) => { const c = document.querySelector(sel); return c && c.innerText.trim().length > 0; }",
                           arg=first)
    code = page.inner_text(first).strip()
    page.click(first)
    # Wait for the individual cases (zoom >= 16) to be drawn and the fly-to to end.
    page.wait_for_function("""(code) => { const m = window.__maps[0]; if (m.getZoom() < 16) return false; let hit = null;
        m.eachLayer(l => { if (l instanceof L.GeoJSON && l.options.pane === 'cases') l.eachLayer(f => {
            if (f.feature.properties.code === code) hit = f; }); }); return !!hit; }""", arg=code, timeout=20_000)
    page.wait_for_timeout(800)
    # Measured when the marker is there: the cases layer may have been redrawn since (a pan, a live update).
    pt = page.wait_for_function("""(code) => { const m = window.__maps[0]; let hit = null;
        m.eachLayer(l => { if (l instanceof L.GeoJSON && l.options.pane === 'cases') l.eachLayer(f => {
            if (f.feature.properties.code === code) hit = f; }); });
        if (!hit) return false;
        const p = m.latLngToContainerPoint(hit.getLatLng()); const r = m.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y]; }""", arg=code, timeout=20_000).json_value()
    # The map landed on the case, not short of it (a render during an animated move used to stop it early).
    off = page.evaluate("""(code) => { const m = window.__maps[0]; let hit = null;
        m.eachLayer(l => { if (l instanceof L.GeoJSON && l.options.pane === 'cases') l.eachLayer(f => {
            if (f.feature.properties.code === code) hit = f; }); });
        return m.latLngToContainerPoint(hit.getLatLng()).distanceTo(m.latLngToContainerPoint(m.getCenter())); }""", code)
    assert off < 5, f"the case is {off:.0f} px from the map's centre after the row click"
    page.mouse.click(*pt)
    page.wait_for_function("(code) => { const r = document.querySelector('#table .ag-floating-top [col-id=\"code\"]');"
                           " return r && r.innerText.trim() === code; }", arg=code, timeout=15_000)
    screenshot(page, "map_case_pins_row")
    assert not [e for e in page.console_errors if "favicon" not in e]
