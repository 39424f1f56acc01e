"""A case created through the API appears on an open map page's live layer and ticker, without a reload."""
import requests

from tests.browser_fixtures import screenshot, wait_for_maps
from tests.test_api_support import api_base, api_store, auth, inside_grid, operate_token, report_token  # noqa: F401

LIVE_MARKERS = """
() => {
  const out = [];
  for (const map of window.__maps || []) {
    map.eachLayer(l => {
      if (l instanceof L.Marker && l.options.pane === 'live') {
        const ll = l.getLatLng();
        out.push({title: l.options.title || '', lat: ll.lat, lon: ll.lng,
                  cls: (l.options.icon && l.options.icon.options.className) || ''});
      }
    });
  }
  return out;
}
"""


def test_api_case_appears_live(page, api_base, api_store, report_token, operate_token):
    page.goto(api_base + "/")
    wait_for_maps(page, 1)
    page.wait_for_selector("#live-ticker .live-row", state="attached")    # the first poll ran
    page.evaluate("window.__sameDocument = true")
    lon, lat, _ = inside_grid(api_store, 40)
    r = requests.post(f"{api_base}/api/v1/cases", headers=auth(report_token), timeout=30,
                      json={"lon": lon, "lat": lat, "class_code": "E0401", "source_code": "video_ai",
                            "priority": "urgent"})
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    page.wait_for_function("code => document.querySelector('#live-ticker').textContent.includes(code)", arg=code,
                           timeout=10_000)
    markers = page.evaluate(LIVE_MARKERS)
    mine = [m for m in markers if m["title"].startswith(code)]
    assert len(mine) == 1, markers
    assert abs(mine[0]["lat"] - lat) < 1e-9 and abs(mine[0]["lon"] - lon) < 1e-9
    assert "live-urgent" in mine[0]["cls"]                     # an urgent new case flashes
    assert page.evaluate("window.__sameDocument === true")      # no reload happened
    # A transition moves the same marker to the new status rather than adding a second one.
    r = requests.post(f"{api_base}/api/v1/cases/{code}/transitions", headers=auth(operate_token), timeout=30,
                      json={"action": "register", "expected_version": r.json()["version"]})
    assert r.status_code == 200, r.text
    page.wait_for_function(
        "code => [...document.querySelectorAll('#live-ticker .live-row')].some("
        "li => li.dataset.code === code && li.textContent.includes('立案'))", arg=code, timeout=10_000)
    assert len([m for m in page.evaluate(LIVE_MARKERS) if m["title"].startswith(code)]) == 1
    screenshot(page, f"live-{api_store.dialect.name}")
    assert not [e for e in page.console_errors if "favicon" not in e]


def test_a_live_marker_or_ticker_row_opens_its_case(page, api_base, api_store, report_token):
    """The live markers lie above every other layer: a click on one opens its case (details, ring, pinned
    row) instead of being lost, and a ticker row also brings the map to the case."""
    page.goto(api_base + "/")
    wait_for_maps(page, 1)
    page.wait_for_selector("#live-ticker .live-row", state="attached")
    lon, lat, grid = inside_grid(api_store, 60)
    r = requests.post(f"{api_base}/api/v1/cases", headers=auth(report_token), timeout=30,
                      json={"lon": lon, "lat": lat, "class_code": "E0401", "source_code": "video_ai"})
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    page.wait_for_function("code => document.querySelector('#live-ticker').textContent.includes(code)", arg=code,
                           timeout=10_000)
    # The marker's own icon, clicked where it is drawn (Leaflet's state gives the element).
    box = page.evaluate("""(code) => { let el = null;
        window.__maps[0].eachLayer(l => { if (l instanceof L.Marker && l.options.pane === 'live'
                                                && (l.options.title || '').startsWith(code)) { el = l._icon; } });
        const r = el.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }""", code)
    page.mouse.click(*box)
    page.wait_for_function("code => (document.querySelector('#detail-title') || {}).textContent?.includes(code)",
                           arg=code, timeout=10_000)
    assert grid in page.inner_text("#detail")
    page.wait_for_function("() => { let n = 0; window.__maps[0].eachLayer(l => { if (l instanceof L.CircleMarker"
                           " && l.options.pane === 'highlight') n++; }); return n === 1; }", timeout=10_000)
    page.wait_for_function("(code) => { const r = document.querySelector('#table .ag-floating-top [col-id=\"code\"]');"
                           " return r && r.innerText.trim() === code; }", arg=code, timeout=15_000)
    screenshot(page, f"live-marker-click-{api_store.dialect.name}")

    # Another case's ticker row, from the city view: it opens that case and the map jumps to it.
    page.evaluate("() => { window.__maps[0].setView([29.87, 121.55], 10, {animate: false}); }")
    other = page.evaluate("(code) => [...document.querySelectorAll('#live-ticker .live-row')]"
                          ".map(li => li.dataset.code).find(c => c !== code)", code)
    lat2, lon2 = page.evaluate("""(code) => { let ll = null;
        window.__maps[0].eachLayer(l => { if (l instanceof L.Marker && l.options.pane === 'live'
                                                && (l.options.title || '').startsWith(code)) { ll = l.getLatLng(); } });
        return [ll.lat, ll.lng]; }""", other)
    page.click(f"#live-ticker .live-row[data-code='{other}']")
    page.wait_for_function("code => (document.querySelector('#detail-title') || {}).textContent?.includes(code)",
                           arg=other, timeout=10_000)
    page.wait_for_function("""([lat, lon]) => { const m = window.__maps[0], c = m.getCenter();
        return m.getZoom() === 17 && Math.abs(c.lat - lat) < 1e-4 && Math.abs(c.lng - lon) < 1e-4; }""",
                           arg=[lat2, lon2], timeout=10_000)
    screenshot(page, f"live-ticker-click-{api_store.dialect.name}")
    assert not [e for e in page.console_errors if "favicon" not in e]
