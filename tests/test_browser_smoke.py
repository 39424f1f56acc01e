"""Tests of the browser fixtures themselves, without the dashboard: a tiny Dash + dash-leaflet page."""
import threading

import pytest

from tests.browser_fixtures import layer_counts, screenshot, wait_for_maps

POINTS = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"n": i}, "geometry": {"type": "Point", "coordinates": [121.55 + i / 100, 29.87]}}
    for i in range(5)]}
SQUARE = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[
        [121.50, 29.85], [121.60, 29.85], [121.60, 29.90], [121.50, 29.90], [121.50, 29.85]]]}}]}


@pytest.fixture(scope="module")
def leaflet_page_url():
    """A Dash app with one dash-leaflet map (no tiles: nothing leaves the machine) served from a thread."""
    import dash
    import dash_leaflet as dl
    from werkzeug.serving import make_server

    app = dash.Dash(__name__, update_title=None)
    app.layout = dash.html.Div([
        dl.Map(id="m", center=[29.87, 121.55], zoom=11, preferCanvas=True,
               style={"height": "600px", "width": "100%"},
               children=[
                   dl.Pane(name="grids", style={"zIndex": 410},
                           children=[dl.GeoJSON(id="square", data=SQUARE, pane="grids")]),
                   dl.GeoJSON(id="points", data=POINTS),
               ]),
    ])
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join(timeout=10)


@pytest.mark.browser
def test_init_script_captures_leaflet_map_and_counts_features(page, leaflet_page_url):
    page.goto(leaflet_page_url)
    wait_for_maps(page, 1)
    page.wait_for_function("() => window.__maps[0].getPane('grids') !== undefined")
    page.wait_for_function("""() => { let n = 0; window.__maps[0].eachLayer(l => { if (!l.getLayers) n++; });
                                     return n >= 6; }""")
    counts = layer_counts(page)
    assert len(counts) == 1
    assert sum(counts[0]["geojson"].values()) == 6, counts
    assert counts[0]["panes"].get("grids") == 1, counts
    assert sum(counts[0]["panes"].values()) == 6, counts
    assert page.evaluate("() => window.L.version").startswith("1.")
    path = screenshot(page, "browser-smoke")
    assert path.exists() and path.stat().st_size > 1000
    assert page.console_errors == []


@pytest.mark.browser
def test_capture_works_when_leaflet_loads_after_the_init_script(page, leaflet_page_url):
    # Leaflet defined by a plain script tag long after the init script ran, then a map built by hand.
    page.goto(leaflet_page_url)
    wait_for_maps(page, 1)
    page.evaluate("() => { const d = document.createElement('div'); d.style.height = '100px';"
                  " document.body.appendChild(d); window.L.map(d).setView([29.87, 121.55], 10); }")
    wait_for_maps(page, 2)


def test_live_server_reports_server_output_when_it_dies(live_server):
    with pytest.raises(pytest.fail.Exception) as info:
        live_server("unsupported://nowhere")
    msg = str(info.value)
    assert "exited with code" in msg and "its output" in msg
