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
