"""The live push (dashboard/live_stream.py): one hub per process hands news to every stream; GET /live/stream
over real HTTP with login on (401 without it, 400 for a bad Last-Event-ID, resume after a reconnect, 503 when
a process is full, the stream ends for a disabled user). Both databases."""
import json
import queue
import time

import pytest
import requests
from sqlalchemy import select

from dashboard import live_stream
from data import users
from data.store.schema import Case
from tests.test_api_support import api_base, api_store  # noqa: F401
from tests.test_auth import _login, _user
from tests.test_live import add_event


def _case_ids(engine, n=2):
    with engine.connect() as conn:
        return conn.execute(select(Case.id).order_by(Case.id).limit(n)).scalars().all()


def test_a_hub_hands_news_to_every_listener_and_stops_when_they_leave(api_store):
    hub = live_stream.Hub(api_store, every=0.05)
    (a, why_a), (b, why_b) = hub.subscribe(), hub.subscribe()
    assert a is not None and b is not None and why_a == why_b == ""
    assert hub.thread is not None and hub.count() == 2
    with api_store.begin() as conn:
        eid = add_event(conn, _case_ids(api_store, 1)[0])
    for q in (a, b):
        got = []
        deadline = time.monotonic() + 10
        while eid not in [r["event"] for r in got]:
            got += q.get(timeout=max(0.01, deadline - time.monotonic()))
        assert [r["event"] for r in got].count(eid) == 1
    thread = hub.thread
    hub.unsubscribe(a)
    hub.unsubscribe(b)
    thread.join(timeout=5)
    assert not thread.is_alive() and hub.thread is None    # nobody listens: no more queries
    # The next listener starts it again, at the newest event (nothing old is replayed as news).
    c, _ = hub.subscribe()
    time.sleep(0.3)
    with pytest.raises(queue.Empty):
        c.get(timeout=0.2)
    hub.unsubscribe(c)


def test_a_full_process_refuses_a_stream(api_store, monkeypatch):
    monkeypatch.setenv("CGZT_MAX_STREAMS", "1")
    hub = live_stream.Hub(api_store, every=0.05)
    q, _ = hub.subscribe()
    assert q is not None
    assert hub.subscribe() == (None, "busy")
    hub.unsubscribe(q)
    q2, why = hub.subscribe()
    assert q2 is not None and why == ""
    hub.unsubscribe(q2)


class Stream:
    """A GET /live/stream read message by message, as EventSource does."""

    def __init__(self, http, base, **headers):
        self.resp = http.get(base + live_stream.STREAM_PATH, headers=headers, stream=True, timeout=(10, 30))
        self.lines = self.resp.iter_lines(decode_unicode=True)

    def next(self) -> dict:
        msg = {}
        for line in self.lines:
            if line == "":
                if msg:
                    return msg
                continue
            if line.startswith(":"):
                msg.setdefault("comments", 0)
                continue
            key, _, value = line.partition(": ")
            msg[key] = value
        raise AssertionError("the stream ended")

    def until(self, pred, seconds=15) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self.next()
            if pred(msg):
                return msg
        raise AssertionError("no such message in time")

    def close(self):
        self.resp.close()


def _codes(msg):
    return [r["code"] for r in json.loads(msg["data"])] if msg.get("event") == "cases" else []


def test_the_stream_over_http(api_store, api_base):
    url = api_store.url.render_as_string(hide_password=False)
    anon = requests.get(api_base + live_stream.STREAM_PATH, timeout=30)
    assert anon.status_code == 401 and anon.json()["error"] == "login_required"
    http, r = _login(api_base, _user(url, "viewer"))
    assert r.status_code == 302
    bad = http.get(api_base + live_stream.STREAM_PATH, headers={"Last-Event-ID": "x1"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"] == "bad_cursor"

    s = Stream(http, api_base)
    assert s.resp.status_code == 200 and s.resp.headers["Content-Type"].startswith("text/event-stream")
    assert s.resp.headers["Cache-Control"] == "no-store"
    assert s.next() == {"retry": "1000"}
    hello = s.next()
    assert hello["event"] == "hello" and json.loads(hello["data"])["statuses"]["closed"]["zh"] == "结案"
    first = s.next()
    assert first["event"] == "cases" and len(json.loads(first["data"])) == 12   # the ticker's context
    start = int(first["id"])

    a, b = _case_ids(api_store)
    with api_store.begin() as conn:
        e1 = add_event(conn, a)
    msg = s.until(lambda m: m.get("event") == "cases")
    rows = json.loads(msg["data"])
    assert [r["event"] for r in rows] == [e1] and int(msg["id"]) == e1
    s.close()

    # A reconnect (the browser sends the last id it had) gets what it missed, to any process.
    with api_store.begin() as conn:
        e2 = add_event(conn, b)
    again = Stream(http, api_base, **{"Last-Event-ID": str(e1)})
    again.next(), again.next()
    resumed = again.next()
    assert [r["event"] for r in json.loads(resumed["data"])] == [e2] and int(resumed["id"]) == e2
    again.close()
    old = Stream(http, api_base, **{"Last-Event-ID": str(start)})
    old.next(), old.next()
    assert [r["event"] for r in json.loads(old.next()["data"])] == [e1, e2]
    old.close()


def test_a_disabled_users_stream_ends(api_store, api_base):
    url = api_store.url.render_as_string(hide_password=False)
    name = _user(url, "viewer")
    http, _ = _login(api_base, name)
    s = Stream(http, api_base)
    s.next(), s.next(), s.next()
    with api_store.begin() as conn:
        users.disable(conn, name, actor="tests")
    time.sleep(2.5)   # dashboard.auth re-reads users at most every USER_TTL_S
    with api_store.begin() as conn:
        eid = add_event(conn, _case_ids(api_store, 1)[0])
    with pytest.raises(AssertionError, match="the stream ended"):
        s.until(lambda m: str(eid) == m.get("id"))
    s.close()


def test_a_full_server_answers_503_with_retry_after(api_store, live_server):
    url = api_store.url.render_as_string(hide_password=False)
    base = live_server(url, CGZT_MAX_STREAMS="1")
    http, _ = _login(base, _user(url, "viewer"))
    s = Stream(http, base)
    assert s.resp.status_code == 200
    full = http.get(base + live_stream.STREAM_PATH, timeout=30)
    assert full.status_code == 503 and full.headers["Retry-After"] == "2" and full.json()["error"] == "busy"
    s.close()
