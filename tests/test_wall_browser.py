"""The wall in headless Chromium on both databases: it fills 1920x1080 and 3840x2160 with every panel
visible and nothing overflowing (screenshots in artifacts/), a revoked token blanks it, an urgent case
flashes and the map goes to it, the tour moves through the districts.

Pages here are anonymous (a context of their own, no login cookie): the wall must work on its token alone.
"""
import time

import pytest

from data import intake, tokens
from tests.browser_fixtures import layer_counts, new_page, screenshot, wait_for_maps
from tests.test_api_support import api_base, api_store, inside_grid, make_token  # noqa: F401

PANELS = [".wall-header", "#wall-kpis", ".wall-mapwrap", "#wall-index", "#wall-ticker", "#wall-clock",
          "#wall-updated", "#wall-area"]
TILES = ["reported", "open", "overdue", "close_rate", "ontime_rate", "occupancy"]
DIMS = ["safe", "clean", "orderly", "convenient", "satisfied"]


@pytest.fixture
def wall_page(browser):
    contexts = []

    def open_page(url, width=1920, height=1080):
        pg = new_page(browser, {"width": width, "height": height})
        contexts.append(pg.context)
        pg.goto(url)
        return pg
    yield open_page
    for ctx in contexts:
        ctx.close()


def wait_ready(pg):
    pg.wait_for_selector("#wall-kpi-open .wall-kpi-value")
    pg.wait_for_selector("#wall-dim-safe")
    pg.wait_for_selector("#wall-ticker .live-row")
    wait_for_maps(pg, 1)
    pg.wait_for_function("() => /\\d\\d:\\d\\d:\\d\\d/.test(document.getElementById('wall-clock').textContent)")


GEOMETRY_JS = """
(sels) => {
  const out = {};
  const one = (key, el) => {
    const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    out[key] = {x: r.left, y: r.top, r: r.right, b: r.bottom, w: r.width, h: r.height,
                sw: el.scrollWidth, cw: el.clientWidth, sh: el.scrollHeight, ch: el.clientHeight,
                visible: cs.display !== 'none' && cs.visibility !== 'hidden' && r.width > 0 && r.height > 0,
                font: parseFloat(cs.fontSize)};
  };
  sels.forEach(s => { const el = document.querySelector(s); out[s] = null; if (el) one(s, el); });
  document.querySelectorAll('.wall-kpi, .wall-dim, .wall-kpi-value, .wall-kpi-label, .live-row').forEach(
    (el, i) => one((el.id || el.className) + '#' + i, el));
  out.doc = {sw: document.documentElement.scrollWidth, sh: document.documentElement.scrollHeight,
             iw: innerWidth, ih: innerHeight};
  return out;
}
"""


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160)], ids=["1080p", "2160p"])
def test_wall_fills_the_screen(api_base, api_store, wall_page, size, db_kind):
    token = make_token(api_store, f"wall-{size[0]}", "wall")
    w, h = size
    pg = wall_page(f"{api_base}/wall/?token={token}&tour=0", w, h)
    wait_ready(pg)
    for key in TILES:
        assert pg.locator(f"#wall-kpi-{key}").is_visible(), key
    for key in DIMS:
        assert pg.locator(f"#wall-dim-{key}").is_visible(), key
    # The choropleth is drawn (the fixture has 300 grids) and the live pane has its markers.
    pg.wait_for_function("() => window.__maps[0] && Object.keys(window.__maps[0]._layers).length > 300")
    counts = layer_counts(pg)[0]
    assert max(v for k, v in counts["geojson"].items() if k.startswith("grids:")) == 300, counts
    time.sleep(1.0)   # the flying-in of labels and fonts settles
    shot = screenshot(pg, f"wall-{db_kind}-{w}x{h}")
    assert shot.exists()
    geo = pg.evaluate(GEOMETRY_JS, PANELS)
    assert geo["doc"]["sw"] <= w and geo["doc"]["sh"] <= h, geo["doc"]
    for key, g in geo.items():
        if key == "doc":
            continue
        assert g is not None and g["visible"], f"{key} is not visible"
        assert g["x"] >= 0 and g["y"] >= 0 and g["r"] <= w + 0.5 and g["b"] <= h + 0.5, f"{key} leaves the screen: {g}"
        assert g["sw"] <= g["cw"] + 1 and g["sh"] <= g["ch"] + 1, f"{key} overflows: {g}"
    # Readable from five metres: KPI figures at least 3.7 % and labels 1.8 % of the screen's height
    # (40 px and 20 px on a 1080-line wall).
    values = [g for k, g in geo.items() if k.startswith("wall-kpi-value")]
    labels = [g for k, g in geo.items() if k.startswith("wall-kpi-label")]
    assert len(values) == 6 and min(g["font"] for g in values) >= 0.037 * h
    assert min(g["font"] for g in labels) >= 0.018 * h
    assert not [e for e in pg.console_errors if "favicon" not in e], pg.console_errors


def test_revoked_token_blanks_the_screen(api_base, api_store, wall_page):
    token = make_token(api_store, "wall-to-revoke", "wall")
    pg = wall_page(f"{api_base}/wall/?token={token}&refresh=2")
    wait_ready(pg)
    with api_store.begin() as conn:
        tokens.revoke(conn, "wall-to-revoke")
    pg.wait_for_selector("#wall-root.wall-revoked", timeout=15_000)
    assert pg.locator("#wall-blank").is_visible()
    assert "was revoked" in pg.locator("#wall-blank").inner_text()
    for sel in ("#wall-kpis", ".wall-mapwrap", "#wall-index", "#wall-ticker"):
        assert not pg.locator(sel).is_visible(), sel
    # The polls have stopped: no callback request leaves the page any more.
    sent = []
    pg.on("request", lambda r: "_dash-update-component" in r.url and sent.append(r.url))
    time.sleep(3.5)
    assert sent == []


def test_refused_token_shows_only_the_reason(api_base, wall_page):
    pg = wall_page(f"{api_base}/wall/?token=cgzt_wrong")
    pg.wait_for_selector("#wall-root.wall-denied")
    assert "unknown token" in pg.locator("#wall-blank").inner_text()
    assert pg.locator("#wall-kpis").count() == 0 and pg.locator(".leaflet-container").count() == 0


def test_urgent_case_flashes_and_the_map_goes_there(api_base, api_store, wall_page):
    token = make_token(api_store, "wall-urgent", "wall")
    pg = wall_page(f"{api_base}/wall/?token={token}&tour=0")
    wait_ready(pg)
    lon, lat, _ = inside_grid(api_store, 7)
    with intake.write_transaction(api_store) as conn:
        case, _ = intake.report(conn, lon=lon, lat=lat, class_code="E0402", source_code="inspector",
                                priority="urgent", address="测试路 1 号", reporter="wall-test")
    code = case["code"]
    pg.wait_for_selector(f"#wall-ticker [data-code='{code}']", timeout=15_000)
    pg.wait_for_function("c => document.getElementById('wall-alert').textContent.includes(c)", arg=code)
    assert "wall-alert-on" in pg.locator("#wall-alert").get_attribute("class")
    assert pg.locator("#wall-alert").is_visible()
    # The map flies there (zoom 16 around the case).
    pg.wait_for_function("""([lat, lon]) => { const m = window.__maps[0], c = m.getCenter();
        return m.getZoom() >= 15 && Math.abs(c.lat - lat) < 0.01 && Math.abs(c.lng - lon) < 0.01; }""",
                         arg=[lat, lon], timeout=15_000)
    # Its marker flashes (live.css: live-urgent).
    assert pg.locator(".live-urgent").count() >= 1
    screenshot(pg, "wall-urgent-case")


def test_tour_goes_through_the_districts(api_base, api_store, wall_page):
    token = make_token(api_store, "wall-tour", "wall")
    pg = wall_page(f"{api_base}/wall/?token={token}&tour=5&lang=en")
    wait_ready(pg)
    assert "City Management" in pg.locator(".wall-title").inner_text()
    start = pg.evaluate("() => window.__maps[0].getCenter()")
    pg.wait_for_function("() => document.getElementById('wall-tour-label').textContent.startsWith('Tour')",
                         timeout=20_000)
    label = pg.locator("#wall-tour-label").inner_text()
    from dashboard.panels import reference
    ref = reference.load(api_store)
    name = label.split("·", 1)[1].strip()
    stop = next(r for r in ref["districts"] if (r[2] or r[1]) == name)
    pg.wait_for_function("""([w, s, e, n]) => { const c = window.__maps[0].getCenter();
        return c.lng > w && c.lng < e && c.lat > s && c.lat < n; }""", arg=list(stop[3:7]), timeout=10_000)
    assert pg.evaluate("() => window.__maps[0].getCenter()") != start


def test_district_wall_tours_nothing_by_default(api_base, api_store, wall_page):
    token = make_token(api_store, "wall-district", "wall")
    with api_store.connect() as conn:
        from sqlalchemy import text
        district, name = conn.execute(text("SELECT d.code, d.name FROM districts d JOIN grids g "
                                           "ON g.district_code = d.code LIMIT 1")).first()
    pg = wall_page(f"{api_base}/wall/{district}?token={token}")
    wait_ready(pg)
    assert pg.locator("#wall-area").inner_text() == name
    assert pg.evaluate("() => document.getElementById('wall-tour') === null")  # dcc.Interval renders nothing
    time.sleep(6)
    assert pg.locator("#wall-tour-label").inner_text() == ""
