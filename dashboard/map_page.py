"""The command map page `/`: static layers by versioned geobuf URL, live values through hideout and data.

Why this shape: geometry is downloaded once per data version (immutable URLs), every user choice travels
as a few kB of numbers (grid values, viewport aggregates), and the UI state (layers, metric, basemap,
language) lives in the URL query so a wall screen comes back the same after a reload.
"""
from __future__ import annotations

import json
import os
import threading
import time
from urllib.parse import urlsplit

import dash_leaflet as dl
from dash import Input, Output, State, ctx, dcc, html, no_update
from dash_extensions.javascript import Namespace
from sqlalchemy import select

from dashboard import i18n, live
from dashboard import page_state as ps
from dashboard.colours import BERTH_COLOURS, SETBACK_COLOURS, STATUS_COLOURS
from dashboard.i18n import t
from dashboard.panels import charts as charts_panel
from dashboard.panels import filters as filters_panel
from dashboard.panels import kpis as kpis_panel
from dashboard.panels import reference
from dashboard.panels import table as table_panel
from dashboard.server import layer_url
from data import crs
from data.store import meta as store_meta
from data.store.schema import Berth, Case, CaseClass, Community, Grid, Street
from layers import cache

ns = Namespace("cgzt", "map")

LAYERS = ps.LAYERS
DEFAULT_LAYERS = ps.DEFAULT_LAYERS
METRICS = ps.METRICS
BASEMAPS = ("offline", "osm", "tianditu", "amap")
SETBACK_MIN_ZOOM = 14
NINGBO = [29.87, 121.55]


def tianditu_key() -> str | None:
    return os.environ.get("TIANDITU_KEY") or None


def basemaps() -> tuple[str, ...]:
    """天地图 is offered only when a key is configured: without one its tiles are refused."""
    return tuple(b for b in BASEMAPS if b != "tianditu" or tianditu_key())


# ---------------------------------------------------------------- UI state in the URL query

def parse_ui(search: str | None, pathname: str | None = "/", engine=None) -> dict:
    """The page state (dashboard/page_state.py) of a URL; unknown area codes fall back to the city."""
    return read_state(engine, pathname, search)[0]


def read_state(engine, pathname, search) -> tuple[dict, list[str]]:
    """(state, problems) of a URL, checking area codes against the store when an engine is given."""
    known = None
    if engine is not None:
        try:
            ref = reference.load(engine)
            known = ref["area"].__contains__
        except Exception:  # noqa: BLE001 - the store is down: accept well-formed codes, the page says the rest
            known = None
    return ps.parse(pathname, search, basemaps(), known)


def ui_query(ui: dict) -> str:
    return ps.query(ui)


def problems_text(problems: list[str], lang: str) -> str:
    """One line for the notice bar: unknown areas by name, other bad parameters as given."""
    out = []
    for p in problems:
        if p.startswith("area:"):
            out.append(t("unknown_area", lang, code=p.split(":")[1]))
        else:
            out.append(t("bad_query", lang, why=p))
    return "; ".join(out)


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


def _header(c, ui=None):
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


def _side(c, ui, legend_children, status="", filters=None):
    return html.Div(className="cgzt-side", children=[
        filters,
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


def area_bounds(engine, ref, ui) -> list | None:
    """What the map frames for the state's area. The city of a district supervisor or viewer is their
    districts (the rest of the city shows nothing to them), so they land on those, not on the whole city."""
    district, street = ps.area(ui)
    if street or district:
        return reference.bounds(ref, street or district) or data_bounds(engine)
    from dashboard.auth import request_scope
    scope = request_scope()
    boxes = [b for b in (reference.bounds(ref, d) for d in (() if scope.all else scope.districts)) if b]
    if boxes:
        return [[min(b[0][0] for b in boxes), min(b[0][1] for b in boxes)],
                [max(b[1][0] for b in boxes), max(b[1][1] for b in boxes)]]
    return data_bounds(engine)


def initial_extent(bounds) -> dict:
    """center + zoom framing bounds, not `bounds`: dash-leaflet 1.1.3's viewport tracking throws without a center."""
    if not bounds:
        return {"center": NINGBO, "zoom": 11}
    import math
    (s, w), (n, e) = bounds
    dx, dy = max(e - w, 1e-4), max((n - s) / math.cos(math.radians((s + n) / 2)), 1e-4)
    # The map's box at 1600x900 beside the filter and chart columns, under the KPI strip, above the table.
    zoom = math.floor(min(math.log2(360 * 930 / (256 * dx)), math.log2(360 * 430 / (256 * dy))))
    return {"center": [(s + n) / 2, (w + e) / 2], "zoom": max(8, min(zoom, 16))}


def _map(extent, groups: dict):
    panes = [dl.Pane(name=name, children=[dl.LayerGroup(groups.get(name, []), id=f"grp-{name}")])
             for name in ("grids", "setbacks", "boundaries", "berths", "cases", "highlight")]
    panes.append(live.map_layer())
    return dl.Map(
        id="map", **extent, minZoom=8, maxZoom=19, preferCanvas=True, zoomControl=True,
        children=[dl.LayerGroup(groups.get("base", []), id="grp-base"), *panes,
                  dl.ScaleControl(position="bottomleft", imperial=False), dl.FullScreenControl(position="topleft")],
    )


def make_layout(engine):
    """Built per page load so the first view frames the current data."""
    return lambda: _layout(engine)


def request_ui(engine=None) -> dict:
    return request_state(engine)[0]


def request_state(engine=None) -> tuple[dict, list[str]]:
    """The state of the page being loaded, from its path and query string.

    Dash fetches the layout from /_dash-layout, whose Referer is the page URL (same origin): reading the
    path and query there lets the first render carry the right area, filters and layers, so their downloads
    start at once instead of after a chain of callbacks. Without a Referer the defaults are used and
    `sync` corrects them from dcc.Location.
    """
    from flask import has_request_context, request
    if not has_request_context():
        return read_state(engine, "/", "")
    if request.path.rstrip("/").endswith("_dash-layout"):
        ref = urlsplit(request.referrer or "")
        return read_state(engine, ref.path or "/", ref.query)
    return read_state(engine, request.path, request.query_string.decode("latin-1"))


def _layout(engine):
    import logging

    from sqlalchemy.exc import SQLAlchemyError
    log = logging.getLogger(__name__)
    ui, problems = request_state(engine)
    lang = ui["lang"]
    try:
        ref = reference.load(engine)
    except SQLAlchemyError:
        ref = {"districts": [], "streets": [], "sources": [], "classes": [], "majors": [], "departments": [],
               "area": {}}
    extent = initial_extent(area_bounds(engine, ref, ui))
    status, key = "", None
    try:
        # What `follow` would send to an empty page, and the record of it the page keeps (the `shown` store).
        out, shown = follow_changes(engine, ui, {})
        # (a group left empty, e.g. the offline basemap or a hidden layer, is not in `out`)
        groups = {name: out.get((f"grp-{name}", "children"), [])
                  for name in ("base", "boundaries", "grids", "berths")}
        with engine.connect() as conn:
            groups["setbacks"] = setbacks_layers(ui, cache.versions_all(conn), extent["zoom"])
        store = ui
    except SQLAlchemyError as exc:
        # The store is down: render the frame and let the callbacks (ui=None) fill it when it is back; the
        # first state change then sends everything (an empty record).
        log.warning("map layout without layers (store unreadable): %s", str(exc).splitlines()[0][:300])
        out, shown, groups, store = {}, {}, {}, None
    if store is not None:
        try:
            groups["cases"], status, key = cases_layers(
                engine, ui, approx_bounds(extent["center"], extent["zoom"]), extent["zoom"])
        except SQLAlchemyError as exc:  # the static layers still show; the cases callback retries on a move
            log.warning("map layout without cases: %s", str(exc).splitlines()[0][:300])
    c = {k: out[k] for k in CHROME} if out else chrome_values(engine, lang)
    note = problems_text(problems, lang)
    crumbs = out.get(("crumbs", "children")) or breadcrumbs(ref, ui)
    exports = out.get(("exports", "children")) or export_links(ui)
    legend_children = out.get(("legend", "children")) or legend(ui["metric"], lang)
    return html.Div(id="app-root", children=[
        dcc.Location(id="url", refresh=False),
        dcc.Store(id="ui", data=store),
        dcc.Store(id="cases-key", data={"cases": key, "setbacks": layer_key(groups.get("setbacks")),
                                        "path": ui["path"]}),
        dcc.Store(id="shown", data=shown),
        dcc.Store(id="drill", data=None),
        dcc.Store(id="texts-lang", data=lang),
        dcc.Store(id="table-purge"),
        dcc.Store(id="panel-ui"),
        dcc.Store(id="panels-shown"),
        dcc.Store(id="chart-click"),
        *[dcc.Store(id=f"restyle-{name}") for name in RESTYLED_IN_PLACE], dcc.Store(id="restyle-done"),
        _header(c, ui),
        html.Div(className="cgzt-crumbbar", children=[
            html.Nav(crumbs, id="crumbs", className="cgzt-crumbs"),
            html.Div(note, id="qnotice", className="cgzt-qnotice", style={} if note else {"display": "none"}),
            html.Div(className="cgzt-spacer"),
            html.Div(exports, id="exports", className="cgzt-exports")]),
        html.Div(className="cgzt-body", children=[
            _side(c, ui, legend_children, status, filters_panel.layout(ref, ui, lang)),
            html.Div(className="cgzt-center", children=[
                html.Div(id="kpis", className="cgzt-kpis"),
                # The live ticker sits in the map's corner (absolute in the map's box), not over the charts.
                html.Div(className="cgzt-mapwrap", children=[_map(extent, groups), *live.layout_parts()]),
                html.Div(id="table-wrap", className="cgzt-table")]),
            html.Div(id="charts", className="cgzt-charts")]),
    ])


def breadcrumbs(ref, ui) -> list:
    """宁波市 > 海曙区 > 江夏街道 > grid, each a link (pushState, no reload) keeping every other choice."""
    from dashboard.auth import request_scope
    lang = ui["lang"]
    district, street = ps.area(ui)
    # A district supervisor's or viewer's city is their districts: the root is named after them, and left
    # out when it would only repeat the one district they look at.
    scope = request_scope()
    mine = () if scope.all else scope.districts
    root = "、".join(reference.name(ref, d, lang) for d in mine) if mine else t("city", lang)
    trail = [] if len(mine) == 1 and district == mine[0] else [("/", root)]
    if district:
        trail.append((f"/district/{district}", reference.name(ref, district, lang)))
    if street:
        trail.append((f"/street/{street}", reference.name(ref, street, lang)))
    out = []
    for i, (path, label) in enumerate(trail):
        last = i == len(trail) - 1 and not ui.get("grid")
        if i:
            out.append(html.Span("›", className="cgzt-crumb-sep"))
        if last:
            out.append(html.Span(label, className="cgzt-crumb cgzt-crumb-here"))
        else:
            out.append(dcc.Link(label, href=ps.href(ps.with_area(ui, *_level_code(path))), className="cgzt-crumb"))
    if ui.get("grid"):
        out += [html.Span("›", className="cgzt-crumb-sep"),
                html.Span(f"{t('grid', lang)} {ui['grid']}", className="cgzt-crumb cgzt-crumb-here")]
    return out


def _level_code(path):
    parts = path.strip("/").split("/")
    return (parts[0], parts[1]) if len(parts) == 2 else (None, None)


def export_links(ui) -> list:
    """Download links for the filtered cases in each format (dashboard/export.py), in the page's language."""
    from urllib.parse import urlencode
    q = urlencode({**ps.filters(ui).to_query(), "lang": ui["lang"]}, safe=",:")
    return [html.Span(t("export", ui["lang"]), className="cgzt-hint")] + [
        html.A(fmt.upper(), href=f"/export/cases.{fmt}?{q}", id=f"export-{fmt}", className="cgzt-btn cgzt-btn-small",
               download="", target="_blank") for fmt in ("csv", "xlsx", "geojson")]


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


def grids_hideout(engine, ui) -> dict:
    """Values of the chosen metric under the page's filters; grids outside the drilled area are dimmed
    (scope) and a grid picked inside a street is outlined (selected)."""
    metric = ui["metric"]
    bands = metric_bands(metric)
    f = ps.filters(ui)
    hideout = {"metric": metric, "values": grid_values(engine, metric, f),
               "bands": [b[0] for b in bands], "colors": [b[1] for b in bands]}
    if not metric.endswith("rate"):
        hideout["missing"] = 0  # a count with no row is zero; a rate with no due case has no value
    if f.area:
        hideout["scope"] = f.area
    if ui.get("grid"):
        hideout["selected"] = ui["grid"]
    return hideout


def grids_layers(engine, ui, versions) -> list:
    if not _visible(ui, "grids"):
        return []
    return [dl.GeoJSON(id="grids", url=layer_url("grids", versions["grids"], variant_of(ui)), format="geobuf",
                       hideout=grids_hideout(engine, ui), pane="grids",
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
_BERTH_LETTER = {"free": "f", "occupied": "o", "out_of_service": "x"}


def setback_hideout(ui) -> dict:
    """Colour by use when uses are chosen, else by mode; strips outside the choice are faded (hideout only:
    the geometry stays cached)."""
    h = dict(SETBACK_HIDEOUT)
    if ui.get("suse"):
        h["by"], h["uses"] = "use", list(ui["suse"])
    if ui.get("smode"):
        h["modes"] = list(ui["smode"])
    return h


def berth_hideout(ui) -> dict:
    """Berths of other states are drawn faded (a filter function would break clustering, stack.md #274)."""
    h = dict(BERTH_HIDEOUT)
    if ui.get("bstate"):
        h["states"] = [_BERTH_LETTER[s] for s in ui["bstate"]]
    return h


def setbacks_layers(ui, versions, zoom) -> list:
    if not _visible(ui, "setbacks") or (zoom or 0) < SETBACK_MIN_ZOOM:
        return []
    return [dl.GeoJSON(id="setbacks", url=layer_url("setbacks", versions["setbacks"], variant_of(ui)),
                       format="geobuf", hideout=setback_hideout(ui), pane="setbacks", style=ns("setbackStyle"))]


def berths_layers(ui, versions) -> list:
    if not _visible(ui, "berths"):
        return []
    return [dl.GeoJSON(id="berths", url=layer_url("berths", versions["berths"], variant_of(ui)), format="geobuf",
                       hideout=berth_hideout(ui), pane="berths", cluster=True,
                       superClusterOptions={"radius": 60, "maxZoom": 17},
                       pointToLayer=ns("berthPoint"), clusterToLayer=ns("berthCluster"))]


def cases_layers(engine, ui, bounds, zoom) -> tuple[list, str, str | None]:
    """(layer, status text, key of the features) for the viewport; the key lets a callback skip a redraw."""
    from layers.cases import view
    if not _visible(ui, "cases"):
        return [], "", None
    (s, w), (n, e) = bounds
    if variant_of(ui) == "gcj02":  # the map shows GCJ-02: query the store in WGS84
        (w, s), (e, n) = [tuple(map(float, p)) for p in zip(*crs.gcj02_to_wgs84([w, e], [s, n]))]
    with engine.connect() as conn:
        fc = view(conn, int(round(zoom)), (w, s, e, n), ps.filters(ui))
    if variant_of(ui) == "gcj02":
        fc = _shift_fc(fc)
    lang = ui["lang"]
    count = sum(f["properties"].get("count", 1) for f in fc["features"]) if fc.get("level") != "case" \
        else fc.get("total", len(fc["features"]))
    status = t("cases_in_view", lang, n=count)
    if fc.get("truncated"):
        status += " · " + t("truncated", lang, n=len(fc["features"]))
    hideout = {"status_colors": STATUS_COLOURS, "majors": majors(engine)}
    key = _digest([fc, hideout])
    return [dl.GeoJSON(id="cases", data=fc, hideout=hideout, pane="cases", pointToLayer=ns("casePoint"))], status, key


def jump(center=None, zoom=None, bounds=None, max_zoom=None) -> dict:
    """The map's `viewport` for a move a callback makes: a jump, never an animation.

    dash-leaflet 1.1.3 reads the view back into the map's props on every render of the map. A render during
    a fly (a callback's answer arriving) writes an in-between zoom, and its zoom effect then calls setZoom:
    the flight stops short of its target, and the map shows, and asks the server for, the wrong place."""
    options = {"animate": False}
    if bounds is not None:
        if max_zoom is not None:
            options["maxZoom"] = max_zoom
        return {"bounds": bounds, "options": options}
    return {"center": center, "zoom": zoom, "options": options}


def highlight(row, ui) -> list:
    """A ring around the selected case (its own pane above the cases)."""
    if not row:
        return []
    lon, lat = _to_display(row["lon"], row["lat"], ui or {})
    return [dl.CircleMarker(center=[lat, lon], radius=16, color="#ffd400", weight=4, fill=False, pane="highlight",
                            id="highlight-ring")]


def detail_hint_panel(lang):
    return html.Div(t("details_hint", lang), className="cgzt-hint")


# ---------------------------------------------------------------- server-side helpers

class _Memo:
    """Small per-process memo keyed on data versions: values derived from the shared store, never the store.

    Single flight: callbacks of one filter change arrive together (KPIs, charts and the table all read the
    same breakdowns); the first computes, the others wait for its value instead of running the same scans.
    """

    def __init__(self, ttl: float):
        self.ttl, self.data, self.lock, self.flights = ttl, {}, threading.Lock(), {}

    def get(self, key, fn):
        with self.lock:
            hit = self.data.get(key)
            if hit and time.monotonic() - hit[0] < self.ttl:
                return hit[1]
            flight = self.flights.setdefault(key, threading.Lock())
        with flight:
            with self.lock:
                hit = self.data.get(key)
                if hit and time.monotonic() - hit[0] < self.ttl:
                    return hit[1]
            try:
                value = fn()
                with self.lock:
                    if len(self.data) > 256:
                        self.data.clear()
                    self.data[key] = (time.monotonic(), value)
            finally:
                with self.lock:
                    self.flights.pop(key, None)
            return value


_metric_memo = _Memo(ttl=60.0)
_static_memo = _Memo(ttl=300.0)


def grid_values(engine, metric: str, filters=None) -> dict[str, float]:
    """{grid_code: value} for the choropleth, memoised per (filters, cases version) for a minute."""
    from layers.filters import Filters
    from layers.metrics import grid_metric
    f = filters or Filters()
    key_f = f if filters is not None else "default"
    v = _cases_version(engine)
    with engine.connect() as conn:
        return _metric_memo.get(("grid", metric, key_f, v), lambda: {
            k: (round(x, 2) if x is not None else None) for k, x in grid_metric(conn, metric, f).items()})


def metric_bands(metric: str):
    from layers.metrics import bands
    return bands(metric, "grid")


def majors(engine) -> list[str]:
    with engine.connect() as conn:
        return _static_memo.get("majors", lambda: [r[0] for r in conn.execute(
            select(CaseClass.major_code).distinct().order_by(CaseClass.major_code))])


def _digest(value) -> str:
    """A short hash of what a callback would send (components included), so it can say "unchanged"."""
    import hashlib

    from plotly.utils import PlotlyJSONEncoder
    return hashlib.sha1(json.dumps(value, cls=PlotlyJSONEncoder, sort_keys=True).encode()).hexdigest()[:16]


def layer_key(children) -> list | None:
    """[url, hideout digest] of a layer group's one layer (None when empty): a new URL means new geometry and
    a redraw; a new hideout alone is a restyle, sent to the existing layer (set_props), never a new layer."""
    if not children:
        return None
    c = children[0]
    return [getattr(c, "url", None), _digest(getattr(c, "hideout", None))]


# Layers whose style-only changes are applied by the page's own script (assets/map.js `restyle`) through a
# store: a new `hideout` prop makes dash-leaflet clear and re-add every feature (6,535 grid polygons).
RESTYLED_IN_PLACE = ("grids", "setbacks")


def _place(name, children, keys: dict, out: dict, prop_id) -> None:
    """Put a layer group's new children into `out` only when its key moved; restyle in place when only the
    hideout did (the layer keeps its features, and Dash registers no new component)."""
    from dash import set_props
    new, old = layer_key(children), keys.get(name)
    if new == old:
        return
    if new and old and new[0] == old[0] and new[0] is not None:
        if name in RESTYLED_IN_PLACE:
            set_props(f"restyle-{name}", {"data": {"url": new[0], "hideout": children[0].hideout}})
        else:
            set_props(children[0].id, {"hideout": children[0].hideout})
    else:
        out[prop_id] = children
    keys[name] = new


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


def approx_bounds(center, zoom, width=930, height=430):
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


def follow_changes(engine, ui, shown: dict) -> tuple[dict, dict]:
    """What the page must change to show state `ui`, given `shown`, the small record (digests, layer keys,
    language, path) the page keeps of what it shows: ({(id, prop): value, "viewport": fit or absent}, the new
    record). With an empty record it is the record of a page freshly rendered for `ui` (the layout's)."""
    out, lang = {}, ui["lang"]

    def put(key, values: dict):
        d = _digest(list(values.values()))
        if shown.get(key) != d:
            out.update(values)
            shown[key] = d

    put("chrome", chrome_values(engine, lang))
    if shown.get("lang") != lang:   # labels, option lists and table headers follow the language switch
        opts = filters_panel.options(reference.load(engine), ui, lang)
        out.update(zip(_TEXT_OUTPUTS, [*filters_panel.label_values(lang), *[opts[i] for i, _ in _OPTION_OUTPUTS],
                                       table_panel.column_defs(lang), t("table", lang)]))
        out[("texts-lang", "data")] = shown["lang"] = lang
    with engine.connect() as conn:
        versions = cache.versions_all(conn)
    _place("base", basemap_layers(ui), shown, out, ("grp-base", "children"))
    _place("boundaries", boundaries_layers(ui, versions), shown, out, ("grp-boundaries", "children"))
    _place("grids", grids_layers(engine, ui, versions), shown, out, ("grp-grids", "children"))
    _place("berths", berths_layers(ui, versions), shown, out, ("grp-berths", "children"))
    put("legend", {("legend", "children"): legend(ui["metric"], lang)})
    put("crumbs", {("crumbs", "children"): breadcrumbs(reference.load(engine), ui),
                   ("exports", "children"): export_links(ui)})
    if shown.get("path", ui["path"]) != ui["path"]:
        # Drilling (or going back up) fits the map to the area; other changes leave the view alone.
        b = area_bounds(engine, reference.load(engine), ui)
        if b:
            out["viewport"] = jump(bounds=b)
    shown["path"] = ui["path"]
    return out, shown


# ---------------------------------------------------------------- callbacks

def warm_panels(engine) -> None:
    """What the panels' first answers would otherwise compute: the case columns (layers.cube; at 1M cases
    ~10 s of CPU) and the berths occupied at each period preset's start (layers.kpis.warm)."""
    from layers import cube, kpis
    cube.warm(engine)
    kpis.warm(engine, _preset_starts())


def _preset_starts() -> list:
    return [ps.period({"range": r})[0] for r in ps.RANGES if r != "custom"]


def warm_in_background(engine) -> threading.Thread:
    """warm_panels in the background at start, and the presets' starts again after each midnight (CST), when
    they move. A failure (store down) is logged; the first panel that needs the data computes it then."""
    import logging
    from datetime import timedelta

    from data.clock import now_cst
    from layers import kpis

    def run():
        try:
            warm_panels(engine)
        except Exception:  # noqa: BLE001 - a background warm-up must never take the server down
            logging.getLogger(__name__).warning("panels not preloaded", exc_info=True)
        while True:
            now = now_cst()
            time.sleep(((now + timedelta(days=1)).replace(hour=0, minute=0, second=5, microsecond=0) - now)
                       .total_seconds())
            try:
                kpis.warm(engine, _preset_starts())
            except Exception:  # noqa: BLE001
                logging.getLogger(__name__).warning("occupancy at the new day's presets not preloaded",
                                                    exc_info=True)
    th = threading.Thread(target=run, name="panels-warm", daemon=True)
    th.start()
    return th


def register(app, engine) -> None:  # noqa: C901 - one place for the page's callbacks reads best
    register_state(app, engine)
    register_panels(app, engine)
    if os.environ.get("CGZT_WARM_CUBE", "1") != "0":  # 0: processes that serve no panels (an API-only pool)
        warm_in_background(engine)

    # The layout already renders everything below for the page's URL: these run only when something changes
    # (prevent_initial_call), so the first paint waits for no callback but the viewport's cases.

    # One callback follows the state for everything outside the viewport and the panels, and one for the
    # viewport: every callback answer costs the browser a pass over the whole layout (dash-renderer), so a
    # filter change is a few answers, each carrying only what changed (small keys in stores say what the
    # page shows; restyles go to the existing layer's hideout).
    follow_out = [Output(i, p) for i, p in FOLLOW] + [Output("map", "viewport", allow_duplicate=True)]

    @app.callback(*follow_out, Input("ui", "data"), State("shown", "data"), prevent_initial_call=True)
    def follow(ui, shown):
        if not ui:
            return [no_update] * len(follow_out)
        out, shown = follow_changes(engine, ui, dict(shown or {}))
        view = out.pop("viewport", no_update)
        out[("shown", "data")] = shown
        return [out.get(k, no_update) for k in FOLLOW] + [view]

    @app.callback(Output("grp-setbacks", "children"), Output("grp-cases", "children"), Output("status", "children"),
                  Output("cases-key", "data"), Input("ui", "data"), Input("map", "bounds"), Input("map", "zoom"),
                  State("map", "center"), State("cases-key", "data"), prevent_initial_call=True)
    def viewport(ui, bounds, zoom, center, keys):
        """The layers that depend on the view: setback strips from a zoom level on, and the cases (aggregates
        or individual cases) in view."""
        from dash import set_props
        if not ui or zoom is None:
            return no_update, no_update, no_update, no_update
        keys, out = dict(keys or {}), {}
        if ctx.triggered_prop_ids == {"ui.data": "ui"} and keys.get("path", ui["path"]) != ui["path"]:
            # A drill: `follow` is moving the map to the new area in this same round. Answer for where the
            # map is going (the layout's estimate of a view), so that the move's own bounds change usually
            # finds these features already drawn (same key) instead of replacing ones drawn for the old view.
            ext = initial_extent(area_bounds(engine, reference.load(engine), ui))
            bounds, zoom = approx_bounds(ext["center"], ext["zoom"]), ext["zoom"]
        keys["path"] = ui["path"]
        with engine.connect() as conn:
            versions = cache.versions_all(conn)
        _place("setbacks", setbacks_layers(ui, versions, zoom), keys, out, "setbacks")
        status = ""
        if _visible(ui, "cases"):
            children, status, key = cases_layers(engine, ui, bounds or approx_bounds(center, zoom), zoom)
            # The first reported bounds usually match the layout's estimate: do not redraw the same features.
            # A layer already on the map gets its new features in place (a new layer would be a new component
            # to Dash, which then runs every callback the layer's clicks feed).
            if key != keys.get("cases"):
                if keys.get("cases"):
                    set_props("cases", {"data": children[0].data, "hideout": children[0].hideout})
                else:
                    out["cases"] = children
                keys["cases"] = key
        elif keys.get("cases"):
            out["cases"], keys["cases"] = [], None
        return out.get("setbacks", no_update), out.get("cases", no_update), status, keys

    # ------------------------------------------------------------ clicks -> side panel

    def grid_panel(code, lang, ui=None):
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
            v = grid_values(engine, m, ps.filters(ui)).get(code)
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
        return grid_panel(feature["properties"]["code"], (ui or {}).get("lang", "zh"), ui)

    def case_panel(case_id, code, lang):
        from layers.cases import detail
        from dashboard.auth import request_scope
        with engine.connect() as conn:
            d = detail(conn, case_id)
        # A case id comes from the browser (a map click, a table row): outside the user's scope it does not
        # exist, whatever was posted.
        if d is None or not request_scope().permits(d["grid_code"], d.get("department_code")):
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
                  Output("map", "viewport", allow_duplicate=True), Output("drill", "data", allow_duplicate=True),
                  Output("table", "dashGridOptions", allow_duplicate=True),
                  Output("table", "selectedRows", allow_duplicate=True),
                  Output("grp-highlight", "children", allow_duplicate=True),
                  Input("cases", "clickData"), State("ui", "data"), State("map", "zoom"), prevent_initial_call=True)
    def case_clicked(feature, ui, zoom):
        """A district or street count drills into that area; a grid count zooms in; a case opens its details,
        is ringed on the map and pinned (selected) at the top of the table."""
        none = (no_update,) * 6
        if not feature:
            return none
        p = feature.get("properties", {})
        if "count" in p:
            if p.get("level") in ("district", "street"):
                return (no_update, no_update, {"level": p["level"], "code": p["code"], "t": time.time()},
                        *none[:3])
            lon, lat = feature["geometry"]["coordinates"]
            return (no_update, jump(center=[lat, lon], zoom=min(round(zoom or 11) + 2, 18)),
                    *none[:4])
        panel, _, pinned, selected, ring = open_case(p["id"], p.get("code"), ui)
        return panel, no_update, no_update, pinned, selected, ring

    @app.callback(Output("detail", "children", allow_duplicate=True),
                  Output("map", "viewport", allow_duplicate=True),
                  Output("table", "dashGridOptions", allow_duplicate=True),
                  Output("table", "selectedRows", allow_duplicate=True),
                  Output("grp-highlight", "children", allow_duplicate=True),
                  Input("live-click", "data"), State("ui", "data"), prevent_initial_call=True)
    def live_clicked(click, ui):
        """A live marker or ticker row (assets/live_stream.js) opens its case as a map click does; a ticker
        row also brings the map to the case. Its own callback: the cases layer, case_clicked's input, is not
        on the page when that layer is hidden, and Dash runs no callback with only some of its inputs."""
        if not isinstance(click, dict) or click.get("id") is None:
            return (no_update,) * 5
        panel, row, pinned, selected, ring = open_case(click["id"], click.get("code"), ui)
        return panel, case_view(row, ui) if click.get("fly") else no_update, pinned, selected, ring

    def case_view(row, ui):
        """The map's jump to a case opened from a list (the table, the ticker); none when it was not found."""
        if not row:
            return no_update
        lon, lat = _to_display(row["lon"], row["lat"], ui or {})
        return jump(center=[lat, lon], zoom=17)

    def open_case(case_id, code, ui):
        """(side panel, table row or None, pinned-row patch, selection, ring) of a case the browser named:
        its details, pinned and selected at the top of the table and ringed on the map; outside the user's
        scope it is "not found" and nothing is pinned or ringed."""
        from dash import Patch
        lang = (ui or {}).get("lang", "zh")
        try:
            case_id = int(case_id)
        except (TypeError, ValueError):
            return html.Div(t("not_found", lang, q=code or "")), None, no_update, no_update, []
        row = case_row(case_id, lang)
        pinned = Patch()
        pinned["pinnedTopRowData"] = [row] if row else []
        return (case_panel(case_id, code, lang), row, pinned, {"ids": [str(case_id)]} if row else {"ids": []},
                highlight(row, ui))

    @app.callback(Output("detail", "children", allow_duplicate=True),
                  Output("map", "viewport", allow_duplicate=True),
                  Output("grp-highlight", "children", allow_duplicate=True),
                  Input("table", "cellClicked"), State("ui", "data"), prevent_initial_call=True)
    def row_clicked(cell, ui):
        """A row of the table: fly the map to the case, ring it and show its details."""
        if not isinstance(cell, dict) or cell.get("rowId") in (None, ""):
            return no_update, no_update, no_update
        panel, row, _, _, ring = open_case(cell["rowId"], cell["rowId"], ui)
        return panel, case_view(row, ui), ring

    def case_row(case_id: int, lang):
        """The table row of one case, or None outside the signed-in user's scope (the id comes from the
        browser; open_case has made it an int)."""
        from dashboard.auth import request_scope
        from layers.table import one
        scope = request_scope()
        with engine.connect() as conn:
            if not scope.all and conn.execute(select(Case.id).where(
                    Case.id == case_id, *scope.clauses(Case.__table__))).first() is None:
                return None
            return one(conn, case_id, lang)

    @app.callback(Output("drill", "data"), Input("grids", "clickData"), State("ui", "data"),
                  prevent_initial_call=True)
    def grid_drill(feature, ui):
        """A grid click drills one level: city -> its district, district -> its street, street -> the grid."""
        if not feature or not ui:
            return no_update
        code = feature["properties"]["code"]
        district, street = ps.area(ui)
        if street:
            return {"grid": code, "t": time.time()}
        if district:
            return {"level": "street", "code": code[:9], "t": time.time()}
        return {"level": "district", "code": code[:6], "t": time.time()}

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

    @app.callback(Output("detail", "children"), Input("texts-lang", "data"), prevent_initial_call=True)
    def detail_hint(lang):
        """Only a language switch resets the panel: a drill or filter change must not wipe the details a
        click just opened (the same click can do both)."""
        return detail_hint_panel(lang or "zh")

    @app.callback(Output("map", "viewport"), Output("detail", "children", allow_duplicate=True),
                  Input("search-btn", "n_clicks"), Input("search", "n_submit"), State("search", "value"),
                  State("ui", "data"), prevent_initial_call=True)
    def search(_clicks, _submits, q, ui):
        from layers.cases import search as find
        lang = (ui or {}).get("lang", "zh")
        if not q or not q.strip():
            return no_update, no_update
        from dashboard.auth import request_scope
        scope = request_scope()
        with engine.connect() as conn:
            hits = find(conn, q.strip(), limit=5)
            codes = [h["code"] for h in hits if h["kind"] == "case"]
            if codes and not scope.all:   # a case code outside the scope is not found
                mine = set(conn.execute(select(Case.code).where(Case.code.in_(codes),
                                                                *scope.clauses(Case.__table__))).scalars())
                hits = [h for h in hits if h["kind"] != "case" or h["code"] in mine]
        if not hits:
            return no_update, html.Div(t("not_found", lang, q=q), className="cgzt-hint")
        hit = hits[0]
        if "point" in hit:
            lon, lat = _to_display(*hit["point"], ui or {})
            view = jump(center=[lat, lon], zoom=17)
        else:
            w, s, e, n = hit["bbox"]
            w, s = _to_display(w, s, ui or {})
            e, n = _to_display(e, n, ui or {})
            view = jump(bounds=[[s, w], [n, e]], max_zoom=17)
        panel = grid_panel(hit["code"], lang, ui) if hit["kind"] == "grid" else html.Div(hit["label"])
        if hit["kind"] == "case":
            with engine.connect() as conn:
                cid = conn.execute(select(Case.id).where(Case.code == hit["code"])).scalar()
            panel = case_panel(cid, hit["code"], lang)
        return view, panel


# ---------------------------------------------------------------- the one state: controls <-> URL <-> store

def register_state(app, engine) -> None:
    """One callback owns the state: a control, a chart click, a map drill, reset, or the URL (a pasted link,
    the back button, a breadcrumb) changes it; it writes the URL (pushState) and the `ui` store that every
    panel follows, and sets the controls to match. One callback, because Dash allows a value to be both
    input and output only within one callback."""
    from dash import Input as In
    ctl_inputs = [In(i, p) for i, p in filters_panel.INPUTS]
    chart_inputs = [In("chart-click", "data")]

    @app.callback(
        Output("url", "pathname"), Output("url", "search"), Output("ui", "data"),
        Output("layers", "value"), Output("metric", "value"), Output("basemap", "value"),
        Output("qnotice", "children"), Output("qnotice", "style"),
        *[Output(i, p) for i, p in filters_panel.CONTROLS],
        In("url", "pathname"), In("url", "search"), In("layers", "value"), In("metric", "value"),
        In("basemap", "value"), In("lang-btn", "n_clicks"), In("f-reset", "n_clicks"), In("drill", "data"),
        *ctl_inputs, *chart_inputs, State("ui", "data"), State("qnotice", "children"),
    )
    def sync(pathname, search, layers, metric, base, _lang, _reset, drill, *rest):
        ui, shown_note = rest[-2], rest[-1]
        ctl = dict(zip(filters_panel.INPUTS, rest[:len(ctl_inputs)]))
        clicks = rest[len(ctl_inputs)] or {}
        # Changes that reach the server together (set at once, or made while an answer was on its way) are
        # applied in order: one lost would leave its control showing a choice the state does not have.
        trigs = [p["prop_id"].rsplit(".", 1) for p in ctx.triggered if p["prop_id"] != "."]
        n_out = 8 + len(filters_panel.CONTROLS)
        # The URL (first load, a pasted link, back/forward, a breadcrumb) sets the whole state; what else
        # arrived with it (a click made while the page was still settling) is applied on top.
        from_url = ui is None or not trigs or any(i == "url" for i, _ in trigs)
        new, note = ui, ""
        if from_url:
            new, problems = read_state(engine, pathname, search)
            note = problems_text(problems, new["lang"])
        touched = {i for i, _ in trigs if i != "url"}
        at_url = new
        for trig, prop in trigs:
            if trig != "url":
                new = _next_state(new, trig, prop, layers=layers, metric=metric, base=base, drill=drill, ctl=ctl,
                                  clicks=clicks) or new
        if new == ui:
            if not touched and not note:
                return (no_update,) * n_out
            # Refused (an incomplete date range, a stale click): put the touched controls back to the state.
            return (no_update,) * 3 + tuple(_controls(engine, ui, note, ui, shown_note, keep=touched))
        if new == at_url and from_url:   # the URL already says it
            return (no_update, no_update, new, *_controls(engine, new, note, ui, shown_note))
        path = new["path"] if new["path"] != pathname else no_update
        return (path, ps.query(new), new, *_controls(engine, new, note, ui, shown_note, keep=touched))


def _controls(engine, s, note: str, before=None, shown_note=None, keep=()) -> list:
    """Values of the layer/metric/basemap controls, the notice and every filter control for state s.

    With `before` (the state the page showed) a control whose value is the same in both is left alone:
    every value sent costs the browser a pass over the layout. The controls in `keep` (the ones the user
    just touched) are always sent, so a control the state normalised shows the state's value."""
    try:
        ref = reference.load(engine)
    except Exception:  # noqa: BLE001
        ref = {"districts": [], "streets": [], "sources": [], "classes": [], "majors": [], "departments": [],
               "area": {}}

    def values(state):
        vals = filters_panel.values(ref, state, state["lang"])
        # dcc.DatePickerRange throws on a null date sent by a callback: leave it alone outside a custom range.
        vals = [no_update if v is None and k[0] == "f-dates" else v for k, v in zip(filters_panel.CONTROLS, vals)]
        return [state["layers"], state["metric"], state["base"], *vals]

    ids = ["layers", "metric", "basemap", *[i for i, _ in filters_panel.CONTROLS]]
    new = values(s)
    if before is not None:
        old = values(before)
        new = [v if i in keep or v != o else no_update for i, v, o in zip(ids, new, old)]
    notice = [note, {} if note else {"display": "none"}]
    if shown_note is not None and (shown_note or "") == note:
        notice = [no_update, no_update]
    return [*new[:3], *notice, *new[3:]]


def _next_state(ui, trig, prop, *, layers, metric, base, drill, ctl, clicks) -> dict | None:
    """The state after one user action (trig = the id of what changed)."""
    from datetime import date, timedelta
    new = dict(ui)
    if trig == "layers":
        new["layers"] = [x for x in LAYERS if x in (layers or [])]
    elif trig == "metric":
        new["metric"] = metric
    elif trig == "basemap":
        new["base"] = base
    elif trig == "lang-btn":
        new["lang"] = "en" if ui.get("lang") != "en" else "zh"
    elif trig == "f-reset":
        new = dict(ps.default_state(lang=ui["lang"], base=ui["base"]), layers=ui["layers"], metric=ui["metric"])
    elif trig == "drill":
        if not drill:
            return None
        if drill.get("grid"):
            new["grid"] = None if ui.get("grid") == drill["grid"] else drill["grid"]
        else:
            new = ps.with_area(ui, drill["level"], drill["code"])
    elif trig == "chart-click":
        return charts_panel.click_to_filter(clicks.get("chart"), clicks.get("click"), ui)
    elif trig == "f-range":
        rng = ctl[("f-range", "value")] or ps.DEFAULT_RANGE
        new["range"] = rng
        if rng == "custom":  # start from the days the previous range showed, as whole days
            start, end = ps.period(ui)
            new["start"] = start.date().isoformat()
            new["end"] = ((end - timedelta(minutes=1)).date() + timedelta(days=1)).isoformat()
        else:
            new["start"] = new["end"] = None
    elif trig == "f-dates":
        a, b = ctl[("f-dates", "start_date")], ctl[("f-dates", "end_date")]
        if not a or not b:
            return None
        a, b = date.fromisoformat(a[:10]), date.fromisoformat(b[:10])
        if b < a:
            a, b = b, a
        new.update(range="custom", start=a.isoformat(), end=(b + timedelta(days=1)).isoformat())
    elif trig == "f-district":
        v = ctl[("f-district", "value")]
        new = ps.with_area(ui, "district" if v else None, v)
    elif trig == "f-street":
        v = ctl[("f-street", "value")]
        district, _ = ps.area(ui)
        new = ps.with_area(ui, "street", v) if v else ps.with_area(ui, "district" if district else None, district)
    elif trig == "f-overdue":
        new["overdue_only"] = bool(ctl[("f-overdue", "value")])
    elif trig in filters_panel.KEY_OF:
        key = filters_panel.KEY_OF[trig]
        new[key] = list(ctl[(trig, "value")] or [])
        if key == "majors" and new["classes"]:
            # keep only minor classes of the chosen majors (the cascade)
            new["classes"] = [c for c in new["classes"] if not new["majors"] or c[:3] in new["majors"]]
    else:
        return None
    return new


# ---------------------------------------------------------------- panels that follow the state

_panel_memo = _Memo(ttl=30.0)


def _cases_version(engine):
    """The mark of the cases columns the panels read (layers.cube): it moves at most every cube.lag()
    seconds, so a burst of writes does not empty the memo for every request."""
    from layers import cube
    with engine.connect() as conn:
        return cube.snapshot(conn).mark


def panel_rows(engine, f):
    """The breakdowns (layers.breakdown) of one filter, shared by the KPI and chart callbacks."""
    from layers import kpis
    return _panel_memo.get(("rows", f, _cases_version(engine)), lambda: _with_conn(engine, kpis.rows, f))


def kpi_values(engine, f):
    from layers import kpis
    return _panel_memo.get(("kpis", f, _cases_version(engine)),
                           lambda: _with_conn(engine, lambda conn, g: kpis.compute(conn, g, data=panel_rows(engine, g)), f))


def chart_data(engine, f):
    from layers import charts
    return _panel_memo.get(("charts", f, _cases_version(engine)),
                           lambda: _with_conn(engine, lambda conn, g: charts.all_data(conn, g, data=panel_rows(engine, g)), f))


def row_count(engine, f) -> int:
    """The table's row count: the cases reported in the period, i.e. the current period of the breakdown
    the KPI tiles already read (same WHERE), so the table costs no count of its own."""
    rep, _ = panel_rows(engine, f)
    return sum(n for p, _, _, _, n in rep if p == 0)


def _with_conn(engine, fn, *args):
    with engine.connect() as conn:
        return fn(conn, *args)


def register_panels(app, engine) -> None:
    from dash import ClientsideFunction  # noqa: F401 - the purge below is inline

    # The panels follow "panel-ui": the state, released once the map has drawn its grids (at once after the
    # first paint), so the first render's layer downloads and drawing never queue behind KPI queries. The
    # same moment opens the live stream (window.cgztMapDrawn, read by assets/live_stream.js).
    app.clientside_callback(
        """function (ui) {
            if (!ui) { return window.dash_clientside.no_update; }
            const want = (ui.layers || []).indexOf('grids') >= 0, t0 = Date.now();
            return new Promise(function (resolve) {
                (function wait() {
                    const m = (window.cgztMaps || [])[0]; let n = 0;
                    if (m && window.L) { m.eachLayer(function (l) {
                        if (l instanceof L.GeoJSON && l.options.pane === 'grids') { n += l.getLayers().length; } }); }
                    if (!want || n > 0 || Date.now() - t0 > 5000) {
                        window.cgztMapDrawn = true;  // assets/live_stream.js: the live stream may open
                        resolve(ui);
                    } else { setTimeout(wait, 40); }
                })();
            });
        }""",
        Output("panel-ui", "data"), Input("ui", "data"))

    @app.callback(Output("kpis", "children"), Output("charts", "children"), Output("table-wrap", "children"),
                  Output("panels-shown", "data"), Input("panel-ui", "data"), State("panels-shown", "data"))
    def panels(ui, shown):
        """KPI tiles, charts and table in one answer. The charts and the table enter the page after the map
        has drawn (panel-ui), so plotly's and ag-grid's bundles load after the first paint; from then on the
        graphs stay and only the figures that changed are sent to them (set_props: plotly re-plots in place,
        no new components for Dash to register), and the table re-reads its rows itself (the purge below)."""
        from dash import set_props

        from layers.charts import figures
        if not ui:
            return (no_update,) * 4
        f, lang, shown = ps.filters(ui), ui["lang"], dict(shown or {})
        tiles = kpis_panel.parts(kpi_values(engine, f), lang)
        figs = figures(chart_data(engine, f), lang, charts_panel.titles(lang))
        digests = {c: _digest(figs[c]) for c in charts_panel.CHARTS}
        record = {"kpis": tiles, "charts": digests}
        if not shown.get("charts"):
            return kpis_panel.tiles(tiles), charts_panel.graphs(figs), table_panel.layout(lang).children, record
        # The tiles stay; only their leaves that moved are set (a new tree of them cost the browser ~120 ms).
        for cid, props in kpis_panel.updates(shown.get("kpis") or {}, tiles).items():
            set_props(cid, props)
        for c in charts_panel.CHARTS:
            if shown["charts"].get(c) != digests[c]:
                set_props(f"ch-{c}", {"figure": figs[c]})
        return no_update, no_update, no_update, record

    app.clientside_callback(
        """function () {
            const t = window.dash_clientside.callback_context.triggered_id, i = %s.indexOf((t || '').slice(8));
            const r = arguments[i];
            if (i >= 0 && r && window.cgzt) { window.cgzt.map.restyle(t.slice(8), r.url, r.hideout); }
            return window.dash_clientside.no_update;
        }""" % json.dumps(list(RESTYLED_IN_PLACE)),
        Output("restyle-done", "data"), [Input(f"restyle-{name}", "data") for name in RESTYLED_IN_PLACE],
        prevent_initial_call=True)

    # A chart click becomes a filter through `sync` (its store carries the time, so the same bar twice counts).
    app.clientside_callback(
        """function () {
            const t = window.dash_clientside.callback_context.triggered_id;
            const clicks = Array.from(arguments), charts = %s;
            const i = t ? charts.indexOf(t.slice(3)) : -1;
            if (i < 0 || !clicks[i]) { return window.dash_clientside.no_update; }
            return {chart: charts[i], click: clicks[i], t: Date.now() / 1000};
        }""" % json.dumps(list(charts_panel.CHARTS)),
        Output("chart-click", "data"), [Input(f"ch-{c}", "clickData") for c in charts_panel.CHARTS],
        prevent_initial_call=True)

    app.clientside_callback(
        """function (ui) {
            const api = window.dash_ag_grid && window.dash_ag_grid.getApi && (() => {
                try { return window.dash_ag_grid.getApi('table'); } catch (e) { return null; } })();
            if (api) { api.purgeInfiniteCache(); }
            return window.dash_clientside.no_update;
        }""",
        Output("table-purge", "data"), Input("ui", "data"), prevent_initial_call=True)

    @app.callback(Output("table", "getRowsResponse"), Output("table-total", "children"),
                  Input("table", "getRowsRequest"), State("ui", "data"), prevent_initial_call=True)
    def rows(req, ui):
        from layers import table
        if not req or not ui:
            return no_update, no_update
        f = ps.filters(ui)
        total = row_count(engine, f)
        with engine.connect() as conn:
            data = table.page(conn, f, req.get("startRow", 0), req.get("endRow", table_panel.BLOCK),
                              req.get("sortModel"), ui["lang"])
        return {"rowData": data, "rowCount": total}, t("rows_total", ui["lang"], n=f"{total:,}")


_OPTION_OUTPUTS = (("f-range", "options"), ("f-district", "options"), ("f-source", "options"),
                   ("f-major", "options"), ("f-status", "options"), ("f-overdue", "options"),
                   ("f-btype", "options"), ("f-bstate", "options"), ("f-smode", "options"), ("f-suse", "options"))
_TEXT_OUTPUTS = tuple((i, "children") for i in filters_panel.LABELS) + _OPTION_OUTPUTS + (
    ("table", "columnDefs"), ("t-table", "children"))
# What `follow` may write (follow_changes decides which of them actually change).
FOLLOW = CHROME + _TEXT_OUTPUTS + (("texts-lang", "data"), ("grp-base", "children"), ("grp-boundaries", "children"),
                                   ("grp-grids", "children"), ("grp-berths", "children"), ("legend", "children"),
                                   ("crumbs", "children"), ("exports", "children"), ("shown", "data"))
