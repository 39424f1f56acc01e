"""Live cases on the map: a half-second cursor poll over case_events, drawn in the "live" pane and a ticker.

Why a poll and not push: it works on Flask, with any number of server processes over one store. While
nothing happens a poll costs no query at all: each worker process keeps one snapshot of the newest event
ids (`IdleGate`, refreshed at most every SNAPSHOT_S by whichever poll finds it stale) and answers an idle
cursor from it. 200 pages polling every 500 ms are 400 requests/s; one indexed COUNT each was most of a
worker's time (bench/load.py), a snapshot per worker is a handful of queries per second. The page asks
GET /live/idle first (assets/poll_gate.js `poll.live`): a plain Flask route that answers from the gate,
a fraction of the CPU of a Dash callback request (JSON body, callback dispatch, four props). Only when
that says "not idle" does the Dash callback run and read the store.

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

import json
import threading
import time
from bisect import bisect_right
from urllib.parse import parse_qs, urlparse

import dash_leaflet as dl
from dash import ClientsideFunction, Input, Output, State, dcc, html, no_update
from flask import jsonify, request
from sqlalchemy import func, select

from dashboard.colours import STATUS_COLOURS
from dashboard.i18n import t
from data.statuses import STATUSES
from data.store.schema import Case, CaseClass, CaseEvent

POLL_MS = 1000      # the wall screen's default (dashboard/wall.py, ?poll= overrides it)
MAP_POLL_MS = 500   # the map page: a 1 s poll alone put p95 at the 1 s target (bench/live.py); idle polls are cheap
GRACE_S = 10.0      # how long a gap below a delivered id may take to commit and still be shown
KEEP = 60           # changed cases kept on the map
TICKER = 12         # rows in the ticker
BATCH = 2000        # most events read per poll (a burst beyond it is read on the next polls)
SNAPSHOT_S = 0.15   # a worker's idle snapshot is at most this old: it adds at most that to the live latency
SNAPSHOT_ROWS = 5000
IDLE_PATH = "/live/idle"


_COLUMNS = (CaseEvent.id, CaseEvent.at, CaseEvent.action, CaseEvent.to_status, Case.code, Case.lon, Case.lat,
            Case.status, Case.priority, Case.class_code, CaseClass.name, CaseClass.name_en, Case.address,
            Case.grid_code, Case.department_code)


def layout_parts() -> list:
    return [
        dcc.Interval(id="live-interval", interval=MAP_POLL_MS),
        dcc.Store(id="live-tick", data=0),   # bumped by assets/poll_gate.js: one poll in flight at a time
        dcc.Store(id="live-cursor", data=None),
        html.Div(id="live-ticker", className="live-ticker"),
    ]


def map_layer():
    return dl.Pane(name="live", children=[dl.LayerGroup(id="grp-live")], style={"zIndex": 650})


def _event_query():
    return (select(*_COLUMNS).join(Case, Case.id == CaseEvent.case_id)
            .join(CaseClass, CaseClass.code == Case.class_code))


def _row(r) -> dict:
    return {"event": r.id, "at": r.at.strftime("%H:%M:%S") if r.at else "", "action": r.action,
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


class IdleGate:
    """One worker's snapshot of the event ids above the lowest cursor it has been asked about lately.

    `idle(cursor)` is True only when, as of a snapshot at most SNAPSHOT_S old, every event above the cursor's
    low-water mark is one it has already delivered and none of its ids is due to settle: then poll() would
    return None, and no query is made. Anything else (news, a settlement, a cursor older than the snapshot
    covers) says False and the caller runs poll() against the store, so what is delivered and the cursor
    rules (gaps, GRACE_S) stay poll()'s. A gap that commits late is in the next snapshot, so it is found
    within SNAPSHOT_S, as before within one poll.
    """

    def __init__(self, engine, every: float = SNAPSHOT_S, rows: int = SNAPSHOT_ROWS):
        self.engine, self.every, self.rows = engine, every, rows
        self.lock = threading.Lock()
        self.taken = float("-inf")
        self.ids: list[int] = []        # ascending, every committed id > floor as of `taken`
        self.floor: int | None = None
        self.lows: dict[int, int] = {}  # 10 s bucket -> lowest cursor low asked about in it

    def idle(self, cursor: dict, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        low = int(cursor["low"])
        seen = cursor["seen"]
        if any(ts <= now - GRACE_S for _, ts in seen):
            return False
        with self.lock:
            bucket = int(now // 10)
            self.lows[bucket] = min(self.lows.get(bucket, low), low)
            if time.monotonic() - self.taken > self.every:
                self._refresh(bucket)
            if self.floor is None or low < self.floor:
                return False
            above = self.ids[bisect_right(self.ids, low):]
        known = {int(i) for i, _ in seen}
        return all(i in known for i in above)

    def _refresh(self, bucket: int) -> None:
        for b in [b for b in self.lows if b < bucket - 3]:
            del self.lows[b]
        p = min(self.lows.values())
        with self.engine.connect() as conn:
            ids = conn.execute(select(CaseEvent.id).where(CaseEvent.id > p).order_by(CaseEvent.id.desc())
                               .limit(self.rows)).scalars().all()
        self.ids = sorted(ids)
        # Truncated: complete only above the oldest id read.
        self.floor = p if len(ids) < self.rows else self.ids[0] - 1
        self.taken = time.monotonic()


def merge(cases: list[dict], fresh: list[dict], flash: bool = True) -> list[dict]:
    """The latest state per case, newest first, at most KEEP; a case reported while watching is `new`."""
    by_code = {c["code"]: c for c in cases}
    for r in fresh:
        old = by_code.pop(r["code"], None)
        r = dict(r, new=flash and ((r["action"] == "report") or bool(old and old.get("new"))))
        by_code[r["code"]] = r
    out = sorted(by_code.values(), key=lambda c: c["event"], reverse=True)
    return out[:KEEP]


def _lang() -> str:
    from flask import request
    try:
        q = parse_qs(urlparse(request.referrer or "").query)
    except RuntimeError:
        return "zh"
    return "en" if q.get("lang", [""])[0] == "en" else "zh"


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
    from dashboard.auth import request_scope
    gate = IdleGate(engine)

    @app.callback(Output("live-cursor", "data"), Output("grp-live", "children"), Output("live-ticker", "children"),
                  Input("live-tick", "data"), State("live-cursor", "data"), prevent_initial_call=True)
    def live_poll(_n, state):
        """The first call comes with the interval's first tick once the map has drawn (assets/poll_gate.js):
        an answer that lands before the first paint costs the browser a render pass it has no time for."""
        cursor = None if not state else {"low": state["low"], "seen": state["seen"]}
        if cursor is not None and gate.idle(cursor):
            return no_update, no_update, no_update
        with engine.connect() as conn:
            got = poll(conn, cursor)
        if got is None:
            return no_update, no_update, no_update
        cursor, fresh = got
        # The cursor walks every event (so it advances the same for everyone); what is shown is only the
        # signed-in user's scope: a liaison never sees another department's changes.
        scope = request_scope()
        if not scope.all:
            fresh = [r for r in fresh if scope.permits(r["grid"], r["dept"])]
        cases = merge((state or {}).get("cases", []), fresh, flash=bool(state))
        if state and not fresh:   # only the low-water mark moved: nothing to redraw
            return {**cursor, "cases": cases}, no_update, no_update
        lang = _lang()
        return {**cursor, "cases": cases}, markers(cases, lang), ticker(cases, lang)

    @app.server.get(IDLE_PATH)
    def live_idle():
        """{"idle": true} when the cursor in ?c= has nothing new (then the page skips its poll callback).
        Login is checked by dashboard.auth like every path; the answer says only whether to poll."""
        try:
            cursor = json.loads(request.args.get("c", ""))
            cursor = {"low": int(cursor["low"]), "seen": [(int(i), float(ts)) for i, ts in cursor["seen"]]}
        except (ValueError, TypeError, KeyError, IndexError):
            resp = jsonify({"error": "bad_cursor", "detail": "c must be the live cursor as JSON"})
            resp.status_code = 400
        else:
            resp = jsonify({"idle": gate.idle(cursor)})
        resp.headers["Cache-Control"] = "no-store"
        return resp

    # The interval only asks; assets/poll_gate.js asks /live/idle, and lets a tick through when there is
    # news and the last poll has come back.
    app.clientside_callback(ClientsideFunction("poll", "live"), Output("live-tick", "data"),
                            Input("live-interval", "n_intervals"), State("live-tick", "data"),
                            State("live-cursor", "data"), prevent_initial_call=True)
