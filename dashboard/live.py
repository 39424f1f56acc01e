"""Live cases: the cursor over case_events, and the wall's markers and ticker.

The map page gets its live cases pushed (dashboard/live_stream.py, drawn by assets/live_stream.js); the wall
(dashboard/wall.py) polls through `poll` and draws with `markers` and `ticker`. Both follow case_events with
the cursor below.

Why the cursor is more than "the highest event id seen": on PostgreSQL serial ids are taken when a
transaction inserts, not when it commits, so with several writers id 41 may become visible after id 42.
The cursor keeps a low-water mark `low` and the ids above it already delivered (`seen`, each with the time
it was first seen). A poll counts the events above `low`; if that equals len(seen) nothing is new. An id
leaves `seen` (and `low` moves up to it) only GRACE_S seconds after it was first seen, so a gap below it
has that long to commit and still be delivered.

Mounting contract (the map page): `*layout_parts()` beside the map, `map_layer()` inside dl.Map, and
`register(app, engine)` once.
"""
from __future__ import annotations

import time

import dash_leaflet as dl
from dash import Input, Output, dcc, html
from sqlalchemy import func, select

from dashboard.colours import STATUS_COLOURS
from dashboard.i18n import t
from data.statuses import STATUSES
from data.store.schema import Case, CaseClass, CaseEvent

POLL_MS = 1000      # the wall screen's default (dashboard/wall.py, ?poll= overrides it)
GRACE_S = 10.0      # how long a gap below a delivered id may take to commit and still be shown
KEEP = 60           # changed cases kept on the map
TICKER = 12         # rows in the ticker
BATCH = 2000        # most events read per poll (a burst beyond it is read on the next polls)


_COLUMNS = (CaseEvent.id, CaseEvent.at, CaseEvent.case_id, CaseEvent.action, CaseEvent.to_status, Case.code,
            Case.lon, Case.lat, Case.status, Case.priority, Case.class_code, CaseClass.name, CaseClass.name_en,
            Case.address, Case.grid_code, Case.department_code)


def layout_parts() -> list:
    """The ticker, filled by assets/live_stream.js (no Dash callback writes it), the store its language
    callback answers to, and `live-click`, where the script puts the case a marker or ticker row click opens
    (the map page's `live_clicked`)."""
    return [html.Div(id="live-ticker", className="live-ticker"), dcc.Store(id="live-lang"),
            dcc.Store(id="live-click")]


def map_layer():
    """The pane assets/live_stream.js draws its markers in, above the other layers."""
    return dl.Pane(name="live", children=[], style={"zIndex": 650})


def _event_query():
    return (select(*_COLUMNS).join(Case, Case.id == CaseEvent.case_id)
            .join(CaseClass, CaseClass.code == Case.class_code))


def _row(r) -> dict:
    return {"event": r.id, "id": r.case_id, "at": r.at.strftime("%H:%M:%S") if r.at else "", "action": r.action,
            "code": r.code, "lon": r.lon, "lat": r.lat, "status": r.status, "priority": r.priority,
            "class": r.class_code, "name": r.name, "name_en": r.name_en, "address": r.address or "",
            "grid": r.grid_code, "dept": r.department_code}


def poll(conn, cursor: dict | None, now: float | None = None) -> tuple[dict, list[dict]] | None:
    """Advance the cursor: (new cursor, new event rows in id order), or None when nothing changed.

    A first call (cursor None) starts at the newest event and returns the last TICKER events as context.
    """
    now = time.time() if now is None else now
    if cursor is None:
        rows = conn.execute(_event_query().order_by(CaseEvent.id.desc()).limit(TICKER)).all()
        hi = conn.execute(select(func.max(CaseEvent.id))).scalar() or 0
        return {"low": hi, "seen": []}, [_row(r) for r in reversed(rows)]
    low, seen = int(cursor["low"]), [tuple(s) for s in cursor["seen"]]
    count = conn.execute(select(func.count()).select_from(CaseEvent).where(CaseEvent.id > low)).scalar()
    fresh = []
    if count != len(seen):
        known = {i for i, _ in seen}
        rows = conn.execute(_event_query().where(CaseEvent.id > low).order_by(CaseEvent.id)
                            .limit(BATCH + len(known))).all()
        fresh = [_row(r) for r in rows if r.id not in known][:BATCH]
        seen += [(r["event"], now) for r in fresh]
    # Ids seen long enough ago are settled: the low-water mark moves up to the highest of them.
    settled = [i for i, ts in seen if ts <= now - GRACE_S]
    if settled:
        low = max(low, max(settled))
        seen = [(i, ts) for i, ts in seen if i > low]
    if not fresh and not settled:
        return None
    return {"low": low, "seen": [list(s) for s in seen]}, fresh


def merge(cases: list[dict], fresh: list[dict], flash: bool = True) -> list[dict]:
    """The latest state per case, newest first, at most KEEP; a case reported while watching is `new`."""
    by_code = {c["code"]: c for c in cases}
    for r in fresh:
        old = by_code.pop(r["code"], None)
        r = dict(r, new=flash and ((r["action"] == "report") or bool(old and old.get("new"))))
        by_code[r["code"]] = r
    out = sorted(by_code.values(), key=lambda c: c["event"], reverse=True)
    return out[:KEEP]


def markers(cases: list[dict], lang: str = "zh") -> list:
    out = []
    for c in cases:
        urgent = c["priority"] == "urgent" and c.get("new")
        classes = "live-marker" + (" live-new" if c.get("new") else "") + (" live-urgent" if urgent else "")
        colour = STATUS_COLOURS.get(c["status"], "#90a4ae")
        name = c["name_en"] if lang == "en" else c["name"]
        status = STATUSES.get(c["status"], (c["status"], c["status"]))[1 if lang == "en" else 0]
        out.append(dl.DivMarker(
            id=f"live-{c['code']}", position=[c["lat"], c["lon"]], pane="live",
            title=f"{c['code']} {name} · {status}",
            iconOptions={"className": classes, "iconSize": [18, 18], "iconAnchor": [9, 9], "popupAnchor": [0, -9],
                         "html": f'<span class="live-dot" style="background:{colour}"></span>'},
        ))
    return out


def ticker(cases: list[dict], lang: str = "zh") -> list:
    rows = []
    for c in sorted(cases, key=lambda c: c["event"], reverse=True)[:TICKER]:
        name = c["name_en"] if lang == "en" else c["name"]
        status = STATUSES.get(c["status"], (c["status"], c["status"]))[1 if lang == "en" else 0]
        urgent = c["priority"] == "urgent"
        rows.append(html.Li([
            html.Span(c["at"], className="live-time"),
            html.Span(c["code"], className="live-code"),
            html.Span(name, className="live-class"),
            html.Span(status, className="live-status", style={"color": STATUS_COLOURS.get(c["status"])}),
        ], className="live-row" + (" live-row-urgent" if urgent else ""), **{"data-code": c["code"]}))
    return [html.Div(t("live_title", lang), className="live-head"), html.Ul(rows, className="live-list")]


def register(app, engine) -> None:
    from dashboard import live_stream
    live_stream.register(app, engine)
    # The ticker's language follows the page's state; the script keeps its cases and redraws in place.
    app.clientside_callback(
        """function (ui) {
            if (ui && window.cgztLive) { window.cgztLive.lang(ui.lang); }
            return window.dash_clientside.no_update;
        }""", Output("live-lang", "data"), Input("ui", "data"))
