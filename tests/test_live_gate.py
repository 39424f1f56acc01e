"""The per-worker idle gate of the live poll: an idle cursor is answered from one snapshot without a query,
and news, a late gap and a settlement still reach poll(). Both databases."""
from sqlalchemy import event, func, select, text

from dashboard import live
from data.store.schema import Case, CaseEvent
from tests.test_api_support import api_base, api_store  # noqa: F401
from tests.test_live import add_event


def _count_queries(engine):
    n = [0]
    event.listen(engine, "before_cursor_execute", lambda *a, **k: n.__setitem__(0, n[0] + 1))
    return n


def test_idle_polls_share_one_snapshot_and_news_passes(api_store):
    gate = live.IdleGate(api_store, every=3600)   # one snapshot for the whole test unless refreshed by hand
    with api_store.connect() as conn:
        cursor, _ = live.poll(conn, None, now=0)
    n = _count_queries(api_store)
    assert gate.idle(cursor, now=1)
    first = n[0]
    assert first >= 1
    for i in range(50):
        assert gate.idle(cursor, now=1 + i / 100)
    assert n[0] == first, "idle polls after the snapshot must not query the store"

    with api_store.begin() as conn:
        case_id = conn.execute(select(Case.id).limit(1)).scalar()
        eid = add_event(conn, case_id)
    assert gate.idle(cursor, now=2), "the snapshot is only refreshed every `every` seconds"
    gate.taken = float("-inf")                   # the snapshot is now stale
    assert not gate.idle(cursor, now=2)
    with api_store.connect() as conn:
        cursor, fresh = live.poll(conn, cursor, now=2)
    assert [r["event"] for r in fresh] == [eid]
    assert gate.idle(cursor, now=3)              # delivered: idle again, from the same snapshot
    assert not gate.idle(cursor, now=2 + live.GRACE_S + 1), "a due settlement must reach poll()"


def test_a_late_gap_below_a_delivered_id_is_not_hidden(api_store):
    with api_store.begin() as conn:
        case_id = conn.execute(select(Case.id).limit(1)).scalar()
        top = conn.execute(select(func.max(CaseEvent.id))).scalar()
    gate = live.IdleGate(api_store, every=0)     # a fresh snapshot on every call
    with api_store.connect() as conn:
        cursor, _ = live.poll(conn, None, now=0)
    with api_store.begin() as conn:
        high = add_event(conn, case_id, event_id=top + 5)
    assert not gate.idle(cursor, now=1)
    with api_store.connect() as conn:
        cursor, fresh = live.poll(conn, cursor, now=1)
    assert [r["event"] for r in fresh] == [high] and gate.idle(cursor, now=1.5)
    with api_store.begin() as conn:
        add_event(conn, case_id, event_id=top + 2)
    assert not gate.idle(cursor, now=2)
    with api_store.connect() as conn:
        cursor, fresh = live.poll(conn, cursor, now=2)
    assert [r["event"] for r in fresh] == [top + 2]
    if api_store.dialect.name == "postgresql":
        with api_store.begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('case_events', 'id'), "
                              "(SELECT max(id) FROM case_events))"))


def test_a_cursor_older_than_the_snapshot_goes_to_the_store(api_store):
    gate = live.IdleGate(api_store, every=3600)
    with api_store.connect() as conn:
        cursor, _ = live.poll(conn, None, now=0)
    assert gate.idle(cursor, now=1)
    old = {"low": cursor["low"] - 3, "seen": []}
    assert not gate.idle(old, now=1), "a low below the snapshot's floor cannot be answered from it"
    gate.taken = float("-inf")
    assert not gate.idle(old, now=2), "three events above that low were never delivered to it"


def test_the_page_asks_over_http_before_it_polls(api_store, api_base):
    """GET /live/idle (assets/poll_gate.js asks it before each poll callback): login required, a clear 400
    for a malformed cursor, idle for an up-to-date cursor, not idle once an event is written."""
    import json
    import time

    import requests

    from tests.test_auth import _login, _user
    ask = api_base + live.IDLE_PATH
    hdr = {"X-Requested-With": "fetch"}
    anon = requests.get(ask, params={"c": '{"low": 0, "seen": []}'}, headers=hdr, timeout=30)
    assert anon.status_code == 401 and anon.json()["error"] == "login_required"

    http, r = _login(api_base, _user(api_store.url.render_as_string(hide_password=False), "viewer"))
    assert r.status_code == 302
    bad = http.get(ask, params={"c": "not json"}, headers=hdr, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"] == "bad_cursor"

    with api_store.connect() as conn:
        cursor, _ = live.poll(conn, None)
    c = json.dumps(cursor)
    ok = http.get(ask, params={"c": c}, headers=hdr, timeout=30)
    assert ok.status_code == 200 and ok.json() == {"idle": True} and "no-store" in ok.headers["Cache-Control"]

    with api_store.begin() as conn:
        add_event(conn, conn.execute(select(Case.id).limit(1)).scalar())
    deadline = time.monotonic() + 5     # the server's snapshot is at most SNAPSHOT_S old
    while http.get(ask, params={"c": c}, headers=hdr, timeout=30).json()["idle"]:
        assert time.monotonic() < deadline, "a new event never made the cursor busy"
        time.sleep(0.1)
