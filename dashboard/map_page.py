"""The command map page `/`: static layers by versioned geobuf URL, live values through hideout and data.

Why this shape: geometry is downloaded once per data version (immutable URLs), every user choice travels
as a few kB of numbers (grid values, viewport aggregates), and the UI state (layers, metric, basemap,
language) lives in the URL query so a wall screen comes back the same after a reload.
"""
from __future__ import annotations

import os
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import dash_leaflet as dl
from dash import Input, Output, State, ctx, dcc, html, no_update
from dash_extensions.javascript import Namespace
from sqlalchemy import select

from dashboard import i18n
from dashboard.i18n import t
from dashboard.server import layer_url
from data import crs
from data.statuses import STATUSES
from data.store import meta as store_meta
from data.store.schema import Berth, Case, CaseClass, Community, Grid, Setback, Street
from layers import cache

ns = Namespace("cgzt", "map")

LAYERS = ("boundaries", "grids", "cases", "berths", "setbacks")
DEFAULT_LAYERS = ("boundaries", "grids", "cases")
METRICS = ("open", "overdue", "period", "close_rate", "ontime_rate")
BASEMAPS = ("offline", "osm", "tianditu", "amap")
SETBACK_MIN_ZOOM = 14
NINGBO = [29.87, 121.55]
STATUS_COLOURS = {
    "reported": "#b0bec5", "registered": "#4fc3f7", "rejected": "#616161", "dispatched": "#29b6f6",
    "returned": "#ff8a65", "handling": "#ffca28", "handled": "#d4e157", "verifying": "#9ccc65",
    "rework": "#ef5350", "parked": "#ab47bc", "closed": "#66bb6a",
}
BERTH_COLOURS = {"f": "#2ecc71", "o": "#e74c3c", "x": "#7f8c8d"}
SETBACK_COLOURS = {"self": "#c678dd", "entrusted": "#e5c07b", "joint": "#56b6c2",
                   "parking": "#61afef", "green": "#98c379", "seating": "#e5c07b", "passage": "#abb2bf",
                   "display": "#d19a66"}


def tianditu_key() -> str | None:
    return os.environ.get("TIANDITU_KEY") or None


def basemaps() -> tuple[str, ...]:
    """天地图 is offered only when a key is configured: without one its tiles are refused."""
    return tuple(b for b in BASEMAPS if b != "tianditu" or tianditu_key())


# ---------------------------------------------------------------- UI state in the URL query

def parse_ui(search: str | None) -> dict:
    q = parse_qs((search or "").lstrip("?"))
    one = lambda k: (q.get(k) or [None])[0]  # noqa: E731
    layers = one("layers")
    chosen = [x for x in (layers.split(",") if layers is not None else DEFAULT_LAYERS) if x in LAYERS]
    metric = one("metric") if one("metric") in METRICS else "open"
    base = one("base") if one("base") in basemaps() else "offline"
    lang = "en" if one("lang") == "en" else "zh"
    return {"layers": chosen, "metric": metric, "base": base, "lang": lang}


def ui_query(ui: dict) -> str:
    return "?" + urlencode({"layers": ",".join(ui["layers"]), "metric": ui["metric"], "base": ui["base"],
                            "lang": ui["lang"]}, safe=",")


def variant_of(ui: dict) -> str:
    """Amap tiles are in GCJ-02: the data is shifted for display only, never in the store."""
    return "gcj02" if ui.get("base") == "amap" else "wgs84"


# ---------------------------------------------------------------- layout

# Every text the language switch changes, as (component id, prop): the layout and the `chrome` callback
# fill the same list, so the first render is already in the right language.
CHROME = (("t-title", "children"), ("t-subtitle", "children"), ("search", "placeholder"),
          ("search-btn", "children"), ("lang-btn", "children"), ("h-layers", "children"),
          ("layers", "options"), ("h-base", "children"), ("basemap", "options"),
          ("h-metric", "children"), ("metric", "options"), ("h-legend", "children"),
          ("h-detail", "children"), ("notice", "children"), ("notice", "style"))


def chrome_values(engine, lang: str) -> dict:
    """{(id, prop): value} for CHROME; the demo badge shows whenever the store says its data is demo data."""
    from sqlalchemy.exc import SQLAlchemyError
    try:
        with engine.connect() as conn:
            notice = store_meta.get(conn, "data_notice")
            demo = store_meta.get(conn, "demo", False)
    except SQLAlchemyError:
        notice, demo = None, False
    text = _notice_text(notice, lang)
    if demo and not text:
        text = t("demo_badge", lang)
    values = (t("title", lang), t("subtitle", lang), t("search_ph", lang), t("search_btn", lang),
              t("lang_switch", lang), t("layers", lang),
              [{"label": t(f"layer_{x}", lang), "value": x} for x in LAYERS], t("basemap", lang),
              [{"label": t(f"base_{b}", lang), "value": b} for b in basemaps()], t("metric", lang),
              [{"label": t(f"metric_{m}", lang), "value": m} for m in METRICS], t("legend", lang),
              t("details", lang), text, {} if text else {"display": "none"})
    return dict(zip(CHROME, values))


def _header(c):
    return html.Div(className="cgzt-header", children=[
        html.Div([html.Div(c[("t-title", "children")], id="t-title", className="cgzt-title"),
                  html.Div(c[("t-subtitle", "children")], id="t-subtitle", className="cgzt-subtitle")]),
        html.Div(c[("notice", "children")], id="notice", className="cgzt-notice", style=c[("notice", "style")]),
        html.Div(className="cgzt-spacer"),
        html.Div(className="cgzt-search", children=[
            dcc.Input(id="search", type="text", debounce=False, n_submit=0, autoComplete="off",
                      placeholder=c[("search", "placeholder")], style={"width": "280px", "fontSize": "16px"}),
            html.Button(c[("search-btn", "children")], id="search-btn", className="cgzt-btn", n_clicks=0),
        ]),
        html.Button(c[("lang-btn", "children")], id="lang-btn", className="cgzt-btn", n_clicks=0),
    ])


def _side(c, ui, legend_children, status=""):
    return html.Div(className="cgzt-side", children=[
        html.H3(c[("h-layers", "children")], id="h-layers"),
        dcc.Checklist(id="layers", options=c[("layers", "options")], value=list(ui["layers"]),
                      labelStyle={"display": "block"}),
        html.H3(c[("h-base", "children")], id="h-base"),
        dcc.RadioItems(id="basemap", options=c[("basemap", "options")], value=ui["base"],
                       labelStyle={"display": "block"}),
        html.H3(c[("h-metric", "children")], id="h-metric"),
        dcc.RadioItems(id="metric", options=c[("metric", "options")], value=ui["metric"],
                       labelStyle={"display": "block"}),
        html.H3(c[("h-legend", "children")], id="h-legend"), html.Div(legend_children, id="legend"),
        html.H3(c[("h-detail", "children")], id="h-detail"),
        html.Div(detail_hint_panel(ui["lang"]), id="detail", className="cgzt-detail"),
        html.Div(status, id="status", className="cgzt-status"),
    ])


def data_bounds(engine) -> list | None:
    """The grids' extent, so the first view frames the data whatever part of the city is loaded."""
    from sqlalchemy import func
    from sqlalchemy.exc import SQLAlchemyError
    try:
        with engine.connect() as conn:
            r = conn.execute(select(func.min(Grid.minx), func.min(Grid.miny), func.max(Grid.maxx),
                                    func.max(Grid.maxy))).first()
    except SQLAlchemyError:  # the page still renders; /healthz says what is wrong
        return None
    if r is None or r[0] is None:
        return None
    return [[r[1], r[0]], [r[3], r[2]]]


def initial_extent(bounds) -> dict:
    """center + zoom framing bounds, not `bounds`: dash-leaflet 1.1.3's viewport tracking throws without a center."""
    if not bounds:
        return {"center": NINGBO, "zoom": 11}
    import math
    (s, w), (n, e) = bounds
    dx, dy = max(e - w, 1e-4), max((n - s) / math.cos(math.radians((s + n) / 2)), 1e-4)
    zoom = math.floor(min(math.log2(360 * 1250 / (256 * dx)), math.log2(360 * 780 / (256 * dy))))
    return {"center": [(s + n) / 2, (w + e) / 2], "zoom": max(8, min(zoom, 16))}


def _map(extent, groups: dict):
    panes = [dl.Pane(name=name, children=[dl.LayerGroup(groups.get(name, []), id=f"grp-{name}")])
             for name in ("grids", "setbacks", "boundaries", "berths", "cases")]
    return dl.Map(
        id="map", **extent, minZoom=8, maxZoom=19, preferCanvas=True, zoomControl=True,
        children=[dl.LayerGroup(groups.get("base", []), id="grp-base"), *panes,
                  dl.ScaleControl(position="bottomleft", imperial=False), dl.FullScreenControl(position="topleft")],
    )


def make_layout(engine):
    """Built per page load so the first view frames the current data."""
    return lambda: _layout(engine)


def request_ui() -> dict:
    """The UI state of the page being loaded, from its query string.

    Dash fetches the layout from /_dash-layout, whose Referer is the page URL (same origin): reading the
    query there lets the first render carry the right layers, so their downloads start at once instead of
    after a chain of callbacks. Without a Referer the defaults are used and `sync_ui` corrects them.
    """
    from flask import has_request_context, request
    if not has_request_context():
        return parse_ui("")
    if request.path.rstrip("/").endswith("_dash-layout"):
        return parse_ui(urlsplit(request.referrer or "").query)
    return parse_ui(request.query_string.decode("latin-1"))


def _layout(engine):
    import logging

    from sqlalchemy.exc import SQLAlchemyError
    log = logging.getLogger(__name__)
    ui = request_ui()
    extent = initial_extent(data_bounds(engine))
    status, key = "", None
    try:
        with engine.connect() as conn:
            versions = cache.versions_all(conn)
        groups = {"base": basemap_layers(ui), "boundaries": boundaries_layers(ui, versions),
                  "grids": grids_layers(engine, ui, versions), "berths": berths_layers(ui, versions),
                  "setbacks": setbacks_layers(ui, versions, extent["zoom"])}
        store = ui
    except SQLAlchemyError as exc:
        # The store is down: render the frame and let the callbacks (ui=None) fill it when it is back.
        log.warning("map layout without layers (store unreadable): %s", str(exc).splitlines()[0][:300])
        groups, store = {}, None
    if store is not None:
        try:
            groups["cases"], status, key = cases_layers(
                engine, ui, approx_bounds(extent["center"], extent["zoom"]), extent["zoom"])
        except SQLAlchemyError as exc:  # the static layers still show; the cases callback retries on a move
            log.warning("map layout without cases: %s", str(exc).splitlines()[0][:300])
    c = chrome_values(engine, ui["lang"])
    return html.Div(id="app-root", children=[
        dcc.Location(id="url", refresh=False),
        dcc.Store(id="ui", data=store),
        dcc.Store(id="cases-key", data=key),
        _header(c),
        html.Div(className="cgzt-body", children=[
            _side(c, ui, legend(ui["metric"], ui["lang"]), status),
            html.Div(className="cgzt-mapwrap", children=[_map(extent, groups)])]),
    ])


def preloads(engine, prefix: str = "/") -> list[tuple[str, str]]:
    """(href, as) the index page should preload: dash-leaflet's lazy GeoJSON/geobuf chunks and the static
    layers the first render will show. Without this each waits for the previous step (bundles, layout,
    chunk, then the fetch); with it they download while the bundles are still being parsed."""
    from sqlalchemy.exc import SQLAlchemyError
    ui = request_ui()
    out = [(f"{prefix}_dash-component-suites/dash_leaflet/async-GeoJSON.js", "script"),
           (f"{prefix}_dash-component-suites/dash_leaflet/async-geobuf.js", "script")]
    try:
        with engine.connect() as conn:
            versions = cache.versions_all(conn)
    except SQLAlchemyError:
        return out
    for name in ("grids", "boundaries", "berths"):
        if _visible(ui, name):
            out.append((prefix.rstrip("/") + layer_url(name, versions[name], variant_of(ui)), "fetch"))
    return out


# ---------------------------------------------------------------- layers (shared by the layout and callbacks)

def _visible(ui, name):
    return name in (ui or {}).get("layers", DEFAULT_LAYERS)


def basemap_layers(ui) -> list:
    base = (ui or {}).get("base", "offline")
    if base == "osm":
        return [dl.TileLayer(id="tiles", url="https://tile.openstreetmap.org/{z}/{x}/{y}.png", maxZoom=19,
                             attribution="© OpenStreetMap contributors")]
    if base == "tianditu" and tianditu_key():
        k = tianditu_key()
        wmts = ("https://t{s}.tianditu.gov.cn/%s_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=%s"
                "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=" + k)
        return [dl.TileLayer(id="tiles", url=wmts % ("vec", "vec"), subdomains="01234567", maxZoom=18,
                             attribution="© 天地图"),
                dl.TileLayer(id="tiles-label", url=wmts % ("cva", "cva"), subdomains="01234567", maxZoom=18)]
    if base == "amap":
        return [dl.TileLayer(id="tiles", url="https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1"
                             "&scale=1&style=8&x={x}&y={y}&z={z}", subdomains="1234", maxZoom=18,
                             attribution="© 高德地图")]
    return []


def boundaries_hideout(ui) -> dict:
    return {"lang": ui["lang"], "dark": ui["base"] in ("offline",)}


def boundaries_layers(ui, versions) -> list:
    if not _visible(ui, "boundaries"):
        return []
    return [dl.GeoJSON(id="boundaries", url=layer_url("boundaries", versions["boundaries"], variant_of(ui)),
                       format="geobuf", hideout=boundaries_hideout(ui), pane="boundaries",
                       style=ns("boundaryStyle"), onEachFeature=ns("boundaryEach"), interactive=False)]


def grids_hideout(engine, metric) -> dict:
    bands = metric_bands(metric)
    hideout = {"metric": metric, "values": grid_values(engine, metric),
               "bands": [b[0] for b in bands], "colors": [b[1] for b in bands]}
    if not metric.endswith("rate"):
        hideout["missing"] = 0  # a count with no row is zero; a rate with no due case has no value
    return hideout


def grids_layers(engine, ui, versions) -> list:
    if not _visible(ui, "grids"):
        return []
    return [dl.GeoJSON(id="grids", url=layer_url("grids", versions["grids"], variant_of(ui)), format="geobuf",
                       hideout=grids_hideout(engine, ui["metric"]), pane="grids",
                       style=ns("gridStyle"), hoverStyle=ns("gridHover"))]


def legend(metric, lang) -> list:
    bands = metric_bands(metric)
    return [html.Div(t(f"metric_{metric}", lang), style={"marginBottom": "4px"})] + [
        html.Div(className="cgzt-legend-row", children=[
            html.Span(className="cgzt-swatch", style={"background": colour}), html.Span(label)])
        for _, colour, label in bands] + [html.Div(className="cgzt-legend-row", children=[
            html.Span(className="cgzt-swatch", style={"background": "#2a3442"}), html.Span(t("no_value", lang))])]


SETBACK_HIDEOUT = {"by": "mode", "colors": SETBACK_COLOURS}
BERTH_HIDEOUT = {"colors": BERTH_COLOURS}


def setbacks_layers(ui, versions, zoom) -> list:
    if not _visible(ui, "setbacks") or (zoom or 0) < SETBACK_MIN_ZOOM:
        return []
    return [dl.GeoJSON(id="setbacks", url=layer_url("setbacks", versions["setbacks"], variant_of(ui)),
                       format="geobuf", hideout=SETBACK_HIDEOUT, pane="setbacks", style=ns("setbackStyle"))]


def berths_layers(ui, versions) -> list:
    if not _visible(ui, "berths"):
        return []
    return [dl.GeoJSON(id="berths", url=layer_url("berths", versions["berths"], variant_of(ui)), format="geobuf",
                       hideout=BERTH_HIDEOUT, pane="berths", cluster=True,
                       superClusterOptions={"radius": 60, "maxZoom": 17},
                       pointToLayer=ns("berthPoint"), clusterToLayer=ns("berthCluster"))]


def cases_layers(engine, ui, bounds, zoom) -> tuple[list, str, str | None]:
    """(layer, status text, key of the features) for the viewport; the key lets a callback skip a redraw."""
    import hashlib
    import json

    from layers.cases import view
    if not _visible(ui, "cases"):
        return [], "", None
    (s, w), (n, e) = bounds
    if variant_of(ui) == "gcj02":  # the map shows GCJ-02: query the store in WGS84
        (w, s), (e, n) = [tuple(map(float, p)) for p in zip(*crs.gcj02_to_wgs84([w, e], [s, n]))]
    with engine.connect() as conn:
        fc = view(conn, int(round(zoom)), (w, s, e, n), _filters())
    if variant_of(ui) == "gcj02":
        fc = _shift_fc(fc)
    lang = ui["lang"]
    count = sum(f["properties"].get("count", 1) for f in fc["features"]) if fc.get("level") != "case" \
        else fc.get("total", len(fc["features"]))
    status = t("cases_in_view", lang, n=count)
    if fc.get("truncated"):
        status += " · " + t("truncated", lang, n=len(fc["features"]))
    hideout = {"status_colors": STATUS_COLOURS, "majors": majors(engine)}
    key = hashlib.sha1(json.dumps([fc, hideout], sort_keys=True, default=str).encode()).hexdigest()[:16]
    return [dl.GeoJSON(id="cases", data=fc, hideout=hideout, pane="cases", pointToLayer=ns("casePoint"))], status, key


def detail_hint_panel(lang):
    return html.Div(t("details_hint", lang), className="cgzt-hint")


# ---------------------------------------------------------------- server-side helpers

class _Memo:
    """Small per-process memo keyed on data versions: values derived from the shared store, never the store."""

    def __init__(self, ttl: float):
        self.ttl, self.data, self.lock = ttl, {}, threading.Lock()

    def get(self, key, fn):
        now = time.monotonic()
        with self.lock:
            hit = self.data.get(key)
            if hit and now - hit[0] < self.ttl:
                return hit[1]
        value = fn()
        with self.lock:
            if len(self.data) > 256:
                self.data.clear()
            self.data[key] = (now, value)
        return value


_metric_memo = _Memo(ttl=60.0)
_static_memo = _Memo(ttl=300.0)


def _filters():
    from layers.filters import Filters
    return Filters()


def grid_values(engine, metric: str) -> dict[str, float]:
    """{grid_code: value} for the choropleth, memoised per cases version for a minute (period ends 'now')."""
    from layers.metrics import grid_metric
    with engine.connect() as conn:
        v = store_meta.versions(conn).get("cases")
        return _metric_memo.get(("grid", metric, v), lambda: {
            k: (round(x, 2) if x is not None else None) for k, x in grid_metric(conn, metric, _filters()).items()})


def metric_bands(metric: str):
    from layers.metrics import bands
    return bands(metric, "grid")


def majors(engine) -> list[str]:
    with engine.connect() as conn:
        return _static_memo.get("majors", lambda: [r[0] for r in conn.execute(
            select(CaseClass.major_code).distinct().order_by(CaseClass.major_code))])


def _same(children, url=None, hideout=None) -> bool:
    """Whether the layer group already shows this url + hideout (then re-sending would redraw for nothing)."""
    if not children:
        return url is None
    c = children[0] if isinstance(children, list) else children
    props = c.get("props", {}) if isinstance(c, dict) else getattr(c, "__dict__", {})
    return url is not None and props.get("url") == url and props.get("hideout") == hideout


def _shift_fc(fc: dict) -> dict:
    """Shift a point FeatureCollection to GCJ-02 for the Amap basemap (display only)."""
    feats = fc.get("features", [])
    if not feats:
        return fc
    lon, lat = crs.wgs84_to_gcj02([f["geometry"]["coordinates"][0] for f in feats],
                                  [f["geometry"]["coordinates"][1] for f in feats])
    for f, x, y in zip(feats, lon.tolist(), lat.tolist()):
        f["geometry"]["coordinates"] = [round(x, 6), round(y, 6)]
    return fc


def _to_display(lon, lat, ui):
    if variant_of(ui) == "gcj02":
        x, y = crs.wgs84_to_gcj02(lon, lat)
        return float(x), float(y)
    return float(lon), float(lat)


def approx_bounds(center, zoom, width=1300, height=850):
    """[[s, w], [n, e]] of a width x height pixel view at center/zoom (Web Mercator, near the centre)."""
    import math
    lat, lon = (center["lat"], center["lng"]) if isinstance(center, dict) else center
    deg_per_px = 360 / (256 * 2 ** zoom)
    dx, dy = width / 2 * deg_per_px, height / 2 * deg_per_px * math.cos(math.radians(lat))
    return [[lat - dy, lon - dx], [lat + dy, lon + dx]]


def _notice_text(notice, lang):
    if isinstance(notice, dict):
        return notice.get(lang) or notice.get("zh") or next(iter(notice.values()), "")
    return notice or ""


def _dl(rows):
    items = []
    for k, v in rows:
        items += [html.Dt(k), html.Dd("—" if v in (None, "") else str(v))]
    return html.Dl(items)


def _pct(x):
    return "—" if x is None else f"{x:.1f}%"


# ---------------------------------------------------------------- callbacks

def register(app, engine) -> None:  # noqa: C901 - one place for the page's callbacks reads best
    @app.callback(
        Output("url", "search"), Output("layers", "value"), Output("metric", "value"), Output("basemap", "value"),
        Output("ui", "data"),
        Input("url", "search"), Input("layers", "value"), Input("metric", "value"), Input("basemap", "value"),
        Input("lang-btn", "n_clicks"), State("ui", "data"),
    )
    def sync_ui(search, layers, metric, base, _lang_clicks, ui):
        trig = ctx.triggered_id
        if trig in (None, "url") or ui is None:
            new = parse_ui(search)
            if new == ui:
                return no_update, no_update, no_update, no_update, no_update
            return no_update, new["layers"], new["metric"], new["base"], new
        new = dict(ui)
        if trig == "layers":
            new["layers"] = [x for x in LAYERS if x in (layers or [])]
        elif trig == "metric":
            new["metric"] = metric
        elif trig == "basemap":
            new["base"] = base
        elif trig == "lang-btn":
            new["lang"] = "en" if ui.get("lang") != "en" else "zh"
        if new == ui:
            return no_update, no_update, no_update, no_update, no_update
        return ui_query(new), no_update, no_update, no_update, new

    # The layout already renders everything below for the page's URL: these run only when something changes
    # (prevent_initial_call), so the first paint waits for no callback but the viewport's cases.

    @app.callback([Output(i, p) for i, p in CHROME], Input("ui", "data"), prevent_initial_call=True)
    def chrome(ui):
        c = chrome_values(engine, (ui or {}).get("lang", "zh"))
        return [c[k] for k in CHROME]

    @app.callback(Output("grp-base", "children"), Input("ui", "data"), prevent_initial_call=True)
    def basemap(ui):
        return basemap_layers(ui)

    def _versions():
        with engine.connect() as conn:
            return cache.versions_all(conn)

    @app.callback(Output("grp-boundaries", "children"), Input("ui", "data"), State("grp-boundaries", "children"),
                  prevent_initial_call=True)
    def boundaries(ui, current):
        if not ui:
            return no_update
        if not _visible(ui, "boundaries"):
            return [] if current else no_update
        new = boundaries_layers(ui, _versions())
        return no_update if _same(current, new[0].url, new[0].hideout) else new

    @app.callback(Output("grp-grids", "children"), Output("legend", "children"), Input("ui", "data"),
                  State("grp-grids", "children"), prevent_initial_call=True)
    def grids(ui, current):
        if not ui:
            return no_update, no_update
        key = legend(ui["metric"], ui["lang"])
        if not _visible(ui, "grids"):
            return ([] if current else no_update), key
        new = grids_layers(engine, ui, _versions())
        return (no_update if _same(current, new[0].url, new[0].hideout) else new), key

    @app.callback(Output("grp-setbacks", "children"), Input("ui", "data"), Input("map", "zoom"),
                  State("grp-setbacks", "children"), prevent_initial_call=True)
    def setbacks(ui, zoom, current):
        if not ui:
            return no_update
        new = setbacks_layers(ui, _versions(), zoom)
        if not new:
            return [] if current else no_update
        return no_update if _same(current, new[0].url, new[0].hideout) else new

    @app.callback(Output("grp-berths", "children"), Input("ui", "data"), State("grp-berths", "children"),
                  prevent_initial_call=True)
    def berths(ui, current):
        if not ui:
            return no_update
        if not _visible(ui, "berths"):
            return [] if current else no_update
        new = berths_layers(ui, _versions())
        return no_update if _same(current, new[0].url, new[0].hideout) else new

    @app.callback(Output("grp-cases", "children"), Output("status", "children"), Output("cases-key", "data"),
                  Input("ui", "data"), Input("map", "bounds"), Input("map", "zoom"), State("map", "center"),
                  State("cases-key", "data"), prevent_initial_call=True)
    def cases_layer(ui, bounds, zoom, center, key):
        if not ui or zoom is None:
            return no_update, no_update, no_update
        if not _visible(ui, "cases"):
            return ([] if key else no_update), "", None
        children, status, new_key = cases_layers(engine, ui, bounds or approx_bounds(center, zoom), zoom)
        # The first reported bounds usually match the layout's estimate: do not redraw the same features.
        return (no_update if new_key == key else children), status, new_key

    # ------------------------------------------------------------ clicks -> side panel

    def grid_panel(code, lang):
        from layers.metrics import grid_metric  # noqa: F401 - values come through grid_values
        with engine.connect() as conn:
            g = conn.execute(select(Grid.code, Grid.inspector, Grid.area_m2, Grid.community_code, Grid.street_code,
                                    Grid.district_code).where(Grid.code == code)).first()
            if g is None:
                return html.Div(t("not_found", lang, q=code))
            cname = conn.execute(select(Community.name).where(Community.code == g.community_code)).scalar()
            sname = conn.execute(select(Street.name).where(Street.code == g.street_code)).scalar()
        rows = [(t("code", lang), g.code), (t("community", lang), f"{cname or ''} {g.community_code}"),
                (t("street", lang), sname), (t("inspector", lang), g.inspector),
                (t("area", lang), f"{(g.area_m2 or 0) / 1e4:.2f} ha")]
        for m in METRICS:
            v = grid_values(engine, m).get(code)
            rows.append((t(f"metric_{m}", lang), _pct(v) if m.endswith("rate") else (0 if v is None else int(v))))
        with engine.connect() as conn:
            from layers.metrics import berth_occupancy
            occ = berth_occupancy(conn, "grid", code).get(code)
        if occ:
            rows.append((t("occupancy", lang), f"{occ['occupied']}/{occ['total']} ({_pct((occ['rate'] or 0) * 100)})"))
        return html.Div([html.H4(t("grid", lang) + " " + code, id="detail-title"), _dl(rows)])

    @app.callback(Output("detail", "children", allow_duplicate=True), Input("grids", "clickData"),
                  State("ui", "data"), prevent_initial_call=True)
    def grid_clicked(feature, ui):
        if not feature:
            return no_update
        return grid_panel(feature["properties"]["code"], (ui or {}).get("lang", "zh"))

    def case_panel(case_id, code, lang):
        from layers.cases import detail
        with engine.connect() as conn:
            d = detail(conn, case_id)
        if d is None:
            return html.Div(t("not_found", lang, q=code))
        en = lang == "en"
        rows = [(t("code", lang), d["code"]),
                (t("class", lang), f"{d['major_name_en' if en else 'major_name']} / {d['class_name_en' if en else 'class_name']}"),
                (t("status", lang), d["status_name_en" if en else "status_name"] + (f" · {t('overdue', lang)}" if d["overdue"] else "")),
                (t("department", lang), d["department_name_en" if en else "department_name"]),
                (t("deadline", lang), (d["deadline_at"] or "").replace("T", " ")),
                (t("address", lang), d["address"]), (t("grid", lang), d["grid_code"])]
        timeline = html.Ul(className="cgzt-timeline", children=[
            html.Li([html.Time((ev["at"] or "").replace("T", " ")),
                     i18n.status_name(ev["to"], lang), f" · {ev['actor']}" if ev.get("actor") else "",
                     f" · {ev['note']}" if ev.get("note") else ""]) for ev in d["timeline"]])
        return html.Div([html.H4(t("case", lang) + " " + d["code"], id="detail-title"), _dl(rows),
                         html.H4(t("timeline", lang)), timeline])


    @app.callback(Output("detail", "children", allow_duplicate=True),
                  Output("map", "viewport", allow_duplicate=True), Input("cases", "clickData"),
                  State("ui", "data"), State("map", "zoom"), prevent_initial_call=True)
    def case_clicked(feature, ui, zoom):
        if not feature:
            return no_update, no_update
        lang = (ui or {}).get("lang", "zh")
        p = feature.get("properties", {})
        if "count" in p:  # an aggregate: zoom in one level band towards it
            lon, lat = feature["geometry"]["coordinates"]
            return no_update, {"center": [lat, lon], "zoom": min((zoom or 11) + 2, 18), "transition": "flyTo"}
        return case_panel(p["id"], p.get("code"), lang), no_update

    @app.callback(Output("detail", "children", allow_duplicate=True), Input("berths", "clickData"),
                  State("ui", "data"), prevent_initial_call=True)
    def berth_clicked(feature, ui):
        from layers.metrics import berth_occupancy
        if not feature or feature.get("properties", {}).get("cluster"):
            return no_update
        lang = (ui or {}).get("lang", "zh")
        with engine.connect() as conn:
            b = conn.execute(select(Berth).where(Berth.id == int(feature["id"]))).scalar()
            if b is None:
                return html.Div(t("not_found", lang, q=feature.get("id")))
            sname = conn.execute(select(Street.name).where(Street.code == b.street_code)).scalar()
            street = berth_occupancy(conn, "street", b.street_code).get(b.street_code)
            grid = berth_occupancy(conn, "grid", b.grid_code).get(b.grid_code)
        rows = [(t("code", lang), b.code), (t("road", lang), b.road_name), (t("state", lang), i18n.berth_state(b.state, lang)),
                (t("grid", lang), b.grid_code), (t("street", lang), sname)]
        for label, occ in ((sname or b.street_code, street), (b.grid_code, grid)):
            if occ and occ["total"]:
                rows.append((t("occupancy", lang), t("occupancy_of", lang, name=label, occ=occ["occupied"],
                                                      total=occ["total"], rate=_pct(occ["rate"] * 100))))
        return html.Div([html.H4(t("berth", lang) + " " + b.code, id="detail-title"), _dl(rows)])

    @app.callback(Output("detail", "children", allow_duplicate=True), Input("setbacks", "clickData"),
                  State("ui", "data"), prevent_initial_call=True)
    def setback_clicked(feature, ui):
        if not feature:
            return no_update
        lang = (ui or {}).get("lang", "zh")
        p = feature["properties"]
        with engine.connect() as conn:
            linked = conn.execute(select(Case.id, Case.code, Case.status, Case.overdue).where(
                Case.setback_id == int(feature["id"])).order_by(Case.reported_at.desc()).limit(20)).all()
        rows = [(t("code", lang), p["code"]), (t("road", lang), p.get("road")), (t("owner", lang), p["owner"]),
                (t("user", lang), p.get("user")), (t("manager", lang), p["manager"]),
                (t("mode", lang), i18n.setback_mode(p["mode"], lang)), (t("uses", lang), i18n.setback_uses(p["uses"], lang)),
                (t("area", lang), f"{p.get('area', 0)} m²")]
        cases_list = html.Ul(className="cgzt-timeline", children=[
            html.Li(f"{c.code} · {i18n.status_name(c.status, lang)}" + (f" · {t('overdue', lang)}" if c.overdue else ""))
            for c in linked]) if linked else html.Div(t("none", lang), className="cgzt-hint")
        return html.Div([html.H4(t("setback", lang) + " " + p["code"], id="detail-title"), _dl(rows),
                         html.H4(t("linked_cases", lang)), cases_list])

    @app.callback(Output("detail", "children"), Input("ui", "data"), prevent_initial_call=True)
    def detail_hint(ui):
        return detail_hint_panel((ui or {}).get("lang", "zh"))

    @app.callback(Output("map", "viewport"), Output("detail", "children", allow_duplicate=True),
                  Input("search-btn", "n_clicks"), Input("search", "n_submit"), State("search", "value"),
                  State("ui", "data"), prevent_initial_call=True)
    def search(_clicks, _submits, q, ui):
        from layers.cases import search as find
        lang = (ui or {}).get("lang", "zh")
        if not q or not q.strip():
            return no_update, no_update
        with engine.connect() as conn:
            hits = find(conn, q.strip(), limit=5)
        if not hits:
            return no_update, html.Div(t("not_found", lang, q=q), className="cgzt-hint")
        hit = hits[0]
        if "point" in hit:
            lon, lat = _to_display(*hit["point"], ui or {})
            view = {"center": [lat, lon], "zoom": 17, "transition": "flyTo"}
        else:
            w, s, e, n = hit["bbox"]
            w, s = _to_display(w, s, ui or {})
            e, n = _to_display(e, n, ui or {})
            view = {"bounds": [[s, w], [n, e]], "transition": "flyToBounds", "options": {"maxZoom": 17}}
        panel = grid_panel(hit["code"], lang) if hit["kind"] == "grid" else html.Div(hit["label"])
        if hit["kind"] == "case":
            with engine.connect() as conn:
                cid = conn.execute(select(Case.id).where(Case.code == hit["code"])).scalar()
            panel = case_panel(cid, hit["code"], lang)
        return view, panel
