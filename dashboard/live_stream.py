"""Live cases pushed to the open map pages: GET /live/stream, Server-Sent Events from one poller per process.

Why push and not a poll per page: 200 open maps polling twice a second were 400 requests a second before any
news, and with a writer's two cases a second each page also ran its own Dash poll callback (bench/load.py:
61 of 104 requests a second, half of a 2-core server). Here each server process runs one `Hub` thread that
follows case_events with the cursor of dashboard/live.py (`poll`: gaps that commit late are still delivered)
and hands each batch of news to every stream the process holds. A page's cost is then one open connection
and a few bytes per event; the store gets one small query per process every TICK_S, whatever the viewers.
Several processes and servers need nothing between them: each hub reads the shared store.

What a stream sends (assets/live_stream.js draws it):
- `retry` and a `hello` event with the labels the page needs (status names and colours, the ticker's title);
- a `cases` event with the last TICKER events the user may see, or, on a reconnect (the browser sends
  Last-Event-ID), the events after the last one it had;
- a `cases` event for each batch of news within the user's scope; every message carries `id:` (the newest
  event id considered, shown or not), so a reconnect to any process resumes where this one stopped;
- a comment every HEARTBEAT_S, which also re-checks the user: a disabled user's stream ends within that.

Streams hold a thread each (gunicorn's gthread workers, gunicorn.conf.py; the dev server's threads), so a
process takes at most CGZT_MAX_STREAMS and answers 503 with Retry-After beyond that (the page retries, and
its new connection may land on another process); and a stream ends after MAX_S, when the page reconnects,
which spreads long-lived pages over the processes again.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time

from flask import Response, g, jsonify, request, stream_with_context
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from dashboard.colours import STATUS_COLOURS
from dashboard.i18n import t
from data.statuses import STATUSES
from data.store.schema import CaseEvent

STREAM_PATH = "/live/stream"
TICK_S = 0.25         # how often a process's hub asks the store for news: at most this much added latency
HEARTBEAT_S = 15.0    # a comment this often keeps proxies from closing an idle stream and re-checks the user
MAX_S = 300.0         # a stream then ends and the page reconnects (to any process) with Last-Event-ID
RETRY_MS = 1000       # the browser's reconnect delay after a stream ends
WAIT_HUB_S = 5.0      # how long a new stream waits for its process's hub to have read the newest event

log = logging.getLogger(__name__)


def max_streams() -> int:
    """Streams one process holds at once (each holds a thread): gunicorn.conf.py sets it from its thread
    count; the dev server's threads are unbounded."""
    return int(os.environ.get("CGZT_MAX_STREAMS", "200"))


class Hub:
    """One per process and store: a thread that follows case_events (live.poll) while any stream listens,
    and puts each batch of news on every listener's queue. It stops when the last listener leaves, and the
    next one starts it again at the newest event."""

    def __init__(self, engine, every: float = TICK_S):
        self.engine, self.every = engine, every
        self.lock = threading.Lock()
        self.listeners: set[queue.SimpleQueue] = set()
        self.thread: threading.Thread | None = None
        self.ready = threading.Event()   # the running thread has its cursor
        self.failed_at = 0.0

    def subscribe(self) -> tuple[queue.SimpleQueue | None, str]:
        """(a queue that gets every batch of news from now on, ""), or (None, why): "busy" when the process
        holds max_streams(), "store" when its hub could not read the store within WAIT_HUB_S."""
        q: queue.SimpleQueue = queue.SimpleQueue()
        with self.lock:
            if len(self.listeners) >= max_streams():
                return None, "busy"
            self.listeners.add(q)
            if self.thread is None:
                self.ready.clear()
                self.thread = threading.Thread(target=self._run, name="live-hub", daemon=True)
                self.thread.start()
        if not self.ready.wait(WAIT_HUB_S):
            self.unsubscribe(q)
            return None, "store"
        return q, ""

    def unsubscribe(self, q) -> None:
        with self.lock:
            self.listeners.discard(q)

    def count(self) -> int:
        with self.lock:
            return len(self.listeners)

    def _run(self) -> None:
        from dashboard.live import poll
        cursor = None
        while True:
            with self.lock:
                if not self.listeners:
                    self.thread = None
                    return
                listeners = list(self.listeners)
            try:
                with self.engine.connect() as conn:
                    got = poll(conn, cursor)
            except Exception:  # the store is down or restarting: keep trying, log once a minute
                if time.monotonic() - self.failed_at > 60:
                    log.warning("live hub cannot read case_events; retrying", exc_info=True)
                    self.failed_at = time.monotonic()
                time.sleep(1.0)
                continue
            if got is not None:
                first = cursor is None
                cursor, fresh = got
                if first:
                    self.ready.set()   # a first poll returns context, not news: streams read their own
                elif fresh:
                    for q in listeners:
                        q.put(fresh)
            time.sleep(self.every)


def _event(kind: str | None, data=None, event_id: int | None = None) -> str:
    out = f"id: {event_id}\n" if event_id is not None else ""
    if kind is not None:
        out += f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n"
    return out + "\n"


def hello() -> dict:
    """The labels the page's script needs, in both languages (the language switches without a reload)."""
    return {"statuses": {code: {"zh": names[0], "en": names[1], "colour": STATUS_COLOURS.get(code, "#90a4ae")}
                         for code, names in STATUSES.items()},
            "title": {"zh": t("live_title", "zh"), "en": t("live_title", "en")}}


def _start(conn, after: int | None) -> tuple[list[dict], int]:
    """What a new stream shows first: the events after `after` (a reconnect), else the last TICKER ones;
    and the id to resume from."""
    from dashboard.live import BATCH, TICKER, _event_query, _row
    top = conn.execute(select(func.max(CaseEvent.id))).scalar() or 0
    if after is None:
        rows = conn.execute(_event_query().order_by(CaseEvent.id.desc()).limit(TICKER)).all()[::-1]
    else:
        rows = conn.execute(_event_query().where(CaseEvent.id > after).order_by(CaseEvent.id).limit(BATCH)).all()
    return [_row(r) for r in rows], max([top, *(r.id for r in rows)])


def register(app, engine) -> Hub:
    from dashboard.auth import current_user, request_scope
    hub = Hub(engine)

    @app.server.get(STREAM_PATH)
    def live_stream():
        """Login is checked by dashboard.auth like every path (401 JSON without a session)."""
        raw = request.headers.get("Last-Event-ID") or request.args.get("after")
        try:
            after = int(raw) if raw not in (None, "") else None
            if after is not None and after < 0:
                raise ValueError
        except ValueError:
            resp = jsonify({"error": "bad_cursor", "detail": "Last-Event-ID must be a case event id"})
            resp.status_code = 400
            return resp
        scope = request_scope()
        user = current_user()
        q, why = hub.subscribe()
        if q is None:
            resp = jsonify({"error": why, "detail": "this server holds as many live streams as it can; retry"
                            if why == "busy" else "the store cannot be read; retry"})
            resp.status_code, resp.headers["Retry-After"] = 503, "2"
            return resp
        try:
            with engine.connect() as conn:
                first, last = _start(conn, after)
        except Exception:
            hub.unsubscribe(q)
            raise   # dashboard.faults answers 503 when the store is down

        def mine(rows):
            return rows if scope.all else [r for r in rows if scope.permits(r["grid"], r["dept"])]

        def still_signed_in() -> bool:
            if user is None:   # auth off (tests, tools)
                return True
            g.pop("cgzt_user", None)
            try:
                now = current_user()
            except SQLAlchemyError:   # the store is busy or restarting: ask again at the next wake
                return True
            return now is not None and now.id == user.id and now.scope == user.scope

        def stream():
            nonlocal last
            try:
                yield f"retry: {RETRY_MS}\n\n" + _event("hello", hello()) + _event("cases", mine(first), last)
                end = time.monotonic() + MAX_S
                while time.monotonic() < end:
                    try:
                        rows = q.get(timeout=HEARTBEAT_S)
                    except queue.Empty:
                        rows = None
                    if not still_signed_in():
                        return
                    if rows is None:
                        yield ": ping\n\n"
                        continue
                    while True:   # a stream that fell behind sends what queued up as one message
                        try:
                            rows = rows + q.get_nowait()
                        except queue.Empty:
                            break
                    last = max(last, rows[-1]["event"])
                    shown = mine(rows)
                    yield _event("cases", shown, last) if shown else _event(None, None, last)
            finally:
                hub.unsubscribe(q)

        resp = Response(stream_with_context(stream()), mimetype="text/event-stream")
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Accel-Buffering"] = "no"   # nginx: pass each message on at once
        return resp

    return hub
