"""The wall screen `/wall` (city) and `/wall/<adcode>` (a district): dark, large, live, unattended.

Why this shape:
- Read-only kiosk access: `/wall?token=...` with a token of scope `wall` (data/tokens.py). The token sits in
  a dcc.Store and every wall callback checks it again on the server, so revoking it blanks the screen at its
  next update (a clientside gate hides every panel and stops the polls) and a crafted callback request
  with a bad token gets nothing. A signed-in user (dashboard.auth.current_user, when present) may also look.
- Same numbers as the map page: KPI tiles from layers.kpis, rates from layers.metrics, the grid choropleth
  built by map_page.grids_layers (restyled through `hideout` only; the geometry URL never changes while the
  data version stays), the live feed through dashboard/live.py's cursor, merge, markers and ticker.
- Unattended: callbacks that cannot read the store fail (HTTP 500), and assets/wall.js watches the
  callback requests: while they fail it shows a banner with the time of the last good data, and when they
  succeed again it hides it; no reload is needed. Lists are bounded (live.KEEP cases, live.TICKER rows).

Query: token, lang=en, tour=<s> (districts, or a district's streets, every s seconds; default 60 on the
city wall and off on district walls; 0 turns it off), refresh=<s> (KPIs, index, grid colours; default 30),
poll=<ms> (live feed; default live.POLL_MS, at least 50, faster only for benches), metric=<grid metric>.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import timedelta
from urllib.parse import parse_qs

import dash_leaflet as dl
from dash import ClientsideFunction, Input, Output, State, dcc, html, no_update
from sqlalchemy.exc import SQLAlchemyError

from dashboard import live
from dashboard import page_state as ps
from dashboard.i18n import t
from data import tokens

log = logging.getLogger(__name__)

_PATH = re.compile(r"^/wall(?:/([0-9]{6}))?/?$")
DEFAULT_REFRESH_S = 30
CITY_TOUR_S = 60
MIN_POLL_MS = 50
WINDOW_DAYS = 7          # the window of the rates and of the operation index's flows
TILES = ("reported", "open", "overdue", "close_rate", "ontime_rate", "occupancy")


def is_wall_path(path: str | None) -> bool:
    return bool(_PATH.match(path or ""))


def options(path: str, query: str) -> dict:
    """The wall's settings from its URL; bad numbers fall back to the defaults."""
    m = _PATH.match(path or "")
    adcode = m.group(1) if m else None
    q = parse_qs((query or "").lstrip("?"))
    one = lambda k: (q.get(k) or [None])[-1]  # noqa: E731

    def num(key, default, lo, hi):
        try:
            v = int(one(key))
        except (TypeError, ValueError):
            return default
        return v if v == 0 and key == "tour" else max(lo, min(v, hi))
    metric = one("metric") if one("metric") in ps.METRICS else "open"
    return {"adcode": adcode, "token": one("token") or "", "lang": "en" if one("lang") == "en" else "zh",
            "tour": num("tour", 0 if adcode else CITY_TOUR_S, 5, 3600),
            "refresh": num("refresh", DEFAULT_REFRESH_S, 2, 3600),
            "poll": num("poll", live.POLL_MS, MIN_POLL_MS, 60_000), "metric": metric}


# ---------------------------------------------------------------- access

def _signed_in() -> bool:
    """A signed-in user who may see the whole city (dashboard.auth, issue 6) may look at the wall too.

    Only a city-wide scope: the wall shows city and district totals, which a liaison or a district-scoped
    viewer must not see. Without dashboard.auth (or outside a request) nobody is signed in.
    """
    try:
        from dashboard import auth
        user = auth.current_user()
    except Exception:  # noqa: BLE001 - no auth module, no request or no session: not signed in
        return False
    scope = getattr(user, "scope", None)
    return bool(user is not None and scope is not None and getattr(scope, "all", False))


def check(engine, token: str) -> str | None:
    """None when the wall may show data, else the reason (for the screen). Store errors propagate."""
    try:
        with engine.begin() as conn:
            tokens.authenticate(conn, token or None, ("wall",))
        return None
    except tokens.TokenError as exc:
        if _signed_in():
            return None
        return str(exc)


# ---------------------------------------------------------------- layout

def _ui(opts: dict) -> dict:
    """The map page's state for the wall's choropleth: its area, metric and language, default layers."""
    s = ps.default_state(lang=opts["lang"])
    s["layers"] = ["boundaries", "grids"]
    s["metric"] = opts["metric"]
    if opts["adcode"]:
        s["path"] = f"/district/{opts['adcode']}"
    return s


def _grid_key(layer) -> str:
    return hashlib.sha1(json.dumps([layer.url, layer.hideout], sort_keys=True, default=str).encode()).hexdigest()


def grid_layers(engine, opts: dict, versions: dict) -> tuple[list, str | None]:
    """The map page's grid choropleth (same builder, same JS style), under the wall's own id."""
    from dashboard import map_page
    from dashboard.router import wall_layer_url
    layers = map_page.grids_layers(engine, _ui(opts), versions)
    for layer in layers:
        layer.id, layer.url = "wall-grids", wall_layer_url(layer.url, opts.get("token"))
    return layers, (_grid_key(layers[0]) if layers else None)


def boundary_layers(opts: dict, versions: dict) -> list:
    from dashboard import map_page
    from dashboard.router import wall_layer_url
    layers = map_page.boundaries_layers(_ui(opts), versions)
    for layer in layers:
        layer.id, layer.url = "wall-boundaries", wall_layer_url(layer.url, opts.get("token"))
    return layers


def tour_areas(ref: dict, adcode: str | None, lang: str) -> list[dict]:
    """The stops of the tour: the districts of the city, or the streets of a district, with their bounds."""
    from dashboard.panels import reference
    rows = [r for r in ref["streets"] if r[0].startswith(adcode)] if adcode else ref["districts"]
    out = []
    for r in rows:
        b = reference.bounds(ref, r[0])
        if b:
            out.append({"code": r[0], "name": reference.name(ref, r[0], lang), "bounds": b})
    return out


def denied(message: str, lang: str):
    """A blank screen that says why; it contains no data and polls nothing."""
    return html.Div(id="wall-root", className="wall wall-denied", children=[
        html.Div([html.Div(t("wall_denied_title", lang), className="wall-blank-title"),
                  html.Div(message, className="wall-blank-why")], id="wall-blank", className="wall-blank")])


def layout(engine, path: str, query: str):
    from dashboard import map_page
    from dashboard.panels import reference
    from layers import cache
    opts = options(path, query)
    lang = opts["lang"]
    groups: dict = {"grids": [], "boundaries": []}
    key, stops, area_name, bounds = None, [], t("city", lang), None
    try:
        why = check(engine, opts["token"])
        if why:
            return denied(why, lang)
        ref = reference.load(engine)
        if opts["adcode"] and opts["adcode"] not in ref["area"]:
            return denied(t("wall_unknown_area", lang, code=opts["adcode"]), lang)
        with engine.connect() as conn:
            versions = cache.versions_all(conn)
        groups["grids"], key = grid_layers(engine, opts, versions)
        groups["boundaries"] = boundary_layers(opts, versions)
        stops = tour_areas(ref, opts["adcode"], lang)
        if opts["adcode"]:
            area_name = reference.name(ref, opts["adcode"], lang)
            bounds = reference.bounds(ref, opts["adcode"])
        bounds = bounds or map_page.data_bounds(engine)
    except SQLAlchemyError as exc:
        # The store is down: render the frame; the callbacks check the token and fill it once it is back.
        log.warning("wall layout without data (store unreadable): %s", str(exc).splitlines()[0][:300])
    extent = map_page.initial_extent(bounds)
    home = {"bounds": bounds, "name": area_name}
    return html.Div(id="wall-root", className="wall", **{"data-lang": lang}, children=[
        dcc.Store(id="wall-opts", data={k: opts[k] for k in ("token", "adcode", "lang", "metric")}),
        dcc.Store(id="wall-grids-key", data=key),
        dcc.Store(id="wall-live-cursor", data=None),
        dcc.Store(id="wall-urgent", data=None),
        dcc.Store(id="wall-deny-live", data=None),
        dcc.Store(id="wall-deny-refresh", data=None),
        dcc.Store(id="wall-tour-stops", data={"stops": stops, "home": home, "every": opts["tour"]}),
        dcc.Interval(id="wall-refresh", interval=opts["refresh"] * 1000),
        dcc.Interval(id="wall-live-interval", interval=opts["poll"]),
        dcc.Store(id="wall-refresh-tick", data=0),
        dcc.Store(id="wall-live-tick", data=0),
        dcc.Interval(id="wall-tour", interval=max(opts["tour"], 1) * 1000, disabled=not opts["tour"]),
        html.Header(className="wall-header", children=[
            html.Div(t("wall_title", lang), className="wall-title"),
            html.Div(area_name, id="wall-area", className="wall-area"),
            html.Div(id="wall-tour-label", className="wall-tour-label"),
            html.Div(className="wall-spacer"),
            html.Div([html.Span(t("wall_updated", lang), className="wall-updated-label"),
                      html.Span("—", id="wall-updated", className="wall-updated-time")], className="wall-updated"),
            html.Div(id="wall-clock", className="wall-clock"),
        ]),
        html.Main(className="wall-body", children=[
            html.Section(id="wall-kpis", className="wall-panel wall-kpis"),
            html.Section(className="wall-panel wall-mapwrap", children=[dl.Map(
                id="wall-map", **extent, minZoom=7, maxZoom=18, preferCanvas=True, zoomControl=False,
                attributionControl=False, trackViewport=False, children=[
                    dl.Pane(name="grids", children=[dl.LayerGroup(groups["grids"], id="wall-grp-grids")]),
                    dl.Pane(name="boundaries", children=[dl.LayerGroup(groups["boundaries"], id="wall-grp-bnd")]),
                    dl.Pane(name="live", style={"zIndex": 650}, children=[dl.LayerGroup(id="wall-live")]),
                    dl.ScaleControl(position="bottomleft", imperial=False)])]),
            html.Section(className="wall-side", children=[
                html.Div(id="wall-index", className="wall-panel wall-index"),
                html.Div(id="wall-ticker", className="wall-panel wall-ticker"),
            ]),
        ]),
        html.Div(id="wall-alert", className="wall-alert"),
        html.Div([html.Span(t("wall_offline", lang), className="wall-banner-text"),
                  html.Span("—", id="wall-banner-time", className="wall-banner-time")],
                 id="wall-banner", className="wall-banner", **{"data-since": t("wall_offline_since", lang)}),
        html.Div(id="wall-blank", className="wall-blank"),
    ])


# ---------------------------------------------------------------- panels

def kpi_tiles(values: dict, rates: dict, lang: str) -> list:
    """Six big tiles: today's reports, open and overdue now, the rates of the window, berth occupancy."""
    from dashboard.panels.kpis import _change, _fmt
    out = []
    for key in TILES:
        if key in rates:
            num, den = rates[key]
            value = 100.0 * num / den if den else None
            sub, change = (f"{num:,}/{den:,}" if den else None), html.Span(
                t("wall_window", lang, days=WINDOW_DAYS), className="cgzt-kpi-ch")
        else:
            k = values[key]
            value = k.value
            sub = f"{k.num:,}/{k.den:,}" if key == "occupancy" and k.den else None
            change = _change(k, lang)
        label = t("wall_reported_today", lang) if key == "reported" else t(f"kpi_{key}", lang)
        out.append(html.Div(className="wall-kpi", id=f"wall-kpi-{key}",
                            **{"data-value": "" if value is None else str(round(value, 4))}, children=[
            html.Div(label, className="wall-kpi-label"),
            html.Div(_fmt(key, value, lang), className="wall-kpi-value"),
            html.Div(sub or "", className="wall-kpi-sub"),
            change]))
    return out


def index_panel(index, lang: str) -> list:
    from layers.operation_index import DIMENSIONS, NAMES

    def fmt(v):
        return "—" if v is None else f"{v:.0f}"

    def band(v):
        return "none" if v is None else ("good" if v >= 80 else "fair" if v >= 60 else "poor")
    name = lambda k: NAMES[k][1 if lang == "en" else 0]  # noqa: E731
    overall = index.scores["overall"]
    rows = [html.Div(className=f"wall-dim wall-band-{band(index.scores[d])}", id=f"wall-dim-{d}",
                     **{"data-value": "" if index.scores[d] is None else f"{index.scores[d]:.4f}"}, children=[
        html.Span(name(d), className="wall-dim-name"),
        html.Span(className="wall-dim-bar", children=[html.Span(
            className="wall-dim-fill", style={"width": f"{index.scores[d] or 0:.1f}%"})]),
        html.Span(fmt(index.scores[d]), className="wall-dim-value")]) for d in DIMENSIONS]
    return [html.Div(className=f"wall-index-head wall-band-{band(overall)}", children=[
        html.Span(name("overall"), className="wall-index-title"),
        html.Span(fmt(overall), id="wall-index-overall", className="wall-index-value")]),
        html.Div(rows, className="wall-dims")]


def urgent_of(fresh: list[dict]) -> dict | None:
    """The newest urgent case reported while the wall is watching: the map goes there and it flashes."""
    hits = [r for r in fresh if r["priority"] == "urgent" and r["action"] == "report"]
    if not hits:
        return None
    r = max(hits, key=lambda r: r["event"])
    return {"code": r["code"], "lat": r["lat"], "lon": r["lon"], "event": r["event"], "name": r["name"],
            "name_en": r["name_en"], "address": r["address"]}


# ---------------------------------------------------------------- callbacks

def refusal(why: str, lang: str | None) -> str:
    return f"{t('wall_denied_title', lang or 'zh')} — {why}"


def _total(pairs: dict) -> tuple[int, int]:
    """(numerator, denominator) summed over the district rows of metrics.counts: the whole scope."""
    return sum(v[0] for v in pairs.values()), sum(v[1] for v in pairs.values())


def register(app, engine) -> None:
    from dashboard import map_page
    from layers import cache, metrics
    from layers import operation_index as oi
    from layers.filters import Filters, now_cst

    @app.callback(Output("wall-kpis", "children"), Output("wall-index", "children"),
                  Output("wall-grp-grids", "children"), Output("wall-grids-key", "data"),
                  Output("wall-updated", "children"), Output("wall-deny-refresh", "data"),
                  Input("wall-refresh-tick", "data"), State("wall-opts", "data"), State("wall-grids-key", "data"))
    def wall_refresh(_n, opts, key):
        why = check(engine, (opts or {}).get("token"))
        if why:
            return [], [], [], None, "", refusal(why, (opts or {}).get("lang"))
        lang, adcode = opts.get("lang", "zh"), opts.get("adcode")
        now = now_cst()
        start, end = ps.period({"range": "today"}, now)
        values = map_page.kpi_values(engine, Filters(start=start, end=end, district=adcode))
        window = Filters(start=now - timedelta(days=WINDOW_DAYS), end=now, district=adcode)
        with engine.connect() as conn:
            rates = {m: _total(metrics.counts(conn, m, "district", window, now)) for m in ("close_rate", "ontime_rate")}
            index = oi.compute(conn, window, now)
            versions = cache.versions_all(conn)
        layers, new_key = grid_layers(engine, opts, versions)
        grids = no_update if new_key == key else layers
        return (kpi_tiles(values, rates, lang), index_panel(index, lang), grids, new_key,
                now.strftime("%H:%M:%S"), None)

    @app.callback(Output("wall-live-cursor", "data"), Output("wall-live", "children"),
                  Output("wall-ticker", "children"), Output("wall-urgent", "data"), Output("wall-deny-live", "data"),
                  Input("wall-live-tick", "data"), State("wall-live-cursor", "data"),
                  State("wall-opts", "data"))
    def wall_live(_n, state, opts):
        why = check(engine, (opts or {}).get("token"))
        if why:
            return None, [], [], None, refusal(why, (opts or {}).get("lang"))
        cursor = None if not state else {"low": state["low"], "seen": state["seen"]}
        with engine.connect() as conn:
            got = live.poll(conn, cursor)
        if got is None:
            return no_update, no_update, no_update, no_update, no_update
        cursor, fresh = got
        cases = live.merge((state or {}).get("cases", []), fresh, flash=bool(state))
        if state and not fresh:
            return {**cursor, "cases": cases}, no_update, no_update, no_update, no_update
        lang = opts.get("lang", "zh")
        urgent = urgent_of(fresh) if state else None
        return ({**cursor, "cases": cases}, live.markers(cases, lang), live.ticker(cases, lang),
                urgent or no_update, no_update)

    # Ticks: an interval reaches the server only when that callback's previous request has returned
    # (assets/poll_gate.js). Dash drops the answer of a request overtaken by a newer one of the same
    # callback, so a poll faster than the round trip would never update.
    for interval, tick in (("wall-live-interval", "wall-live-tick"), ("wall-refresh", "wall-refresh-tick")):
        app.clientside_callback(ClientsideFunction("poll", "tick"), Output(tick, "data"),
                                Input(interval, "n_intervals"), State(tick, "data"), prevent_initial_call=True)

    # The gate: either callback saying "no" blanks the screen and stops every poll.
    app.clientside_callback(ClientsideFunction("wall", "gate"),
                            Output("wall-root", "className"), Output("wall-blank", "children"),
                            Output("wall-live-interval", "disabled"), Output("wall-refresh", "disabled"),
                            Output("wall-tour", "disabled"),
                            Input("wall-deny-live", "data"), Input("wall-deny-refresh", "data"),
                            State("wall-tour-stops", "data"), prevent_initial_call=True)
    # Tour stops and urgent cases move the map (viewport) and say where it is.
    app.clientside_callback(ClientsideFunction("wall", "move"),
                            Output("wall-map", "viewport"), Output("wall-tour-label", "children"),
                            Output("wall-alert", "children"), Output("wall-alert", "className"),
                            Input("wall-tour", "n_intervals"), Input("wall-urgent", "data"),
                            State("wall-tour-stops", "data"), State("wall-opts", "data"),
                            prevent_initial_call=True)


__all__ = ["is_wall_path", "options", "layout", "register", "check", "kpi_tiles", "index_panel", "urgent_of",
           "tour_areas"]
