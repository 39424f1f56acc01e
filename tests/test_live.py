"""The live cursor over case_events on both databases, including ids that commit out of order."""
import pytest
from sqlalchemy import func, select, text

from dashboard import live
from data.store.schema import Case, CaseEvent
from tests.test_api_support import api_store  # noqa: F401


def add_event(conn, case_id, action="verify", event_id=None):
    values = dict(case_id=case_id, at=func.now(), actor="test", action=action, from_status="handled",
                  to_status="verifying")
    if event_id is not None:
        values["id"] = event_id
    return conn.execute(CaseEvent.__table__.insert().values(**values).returning(CaseEvent.id)).scalar_one()


def test_no_update_until_something_commits(api_store):
    with api_store.connect() as conn:
        cursor, context = live.poll(conn, None, now=0)
        assert len(context) == live.TICKER and [r["event"] for r in context] == sorted(r["event"] for r in context)
        assert live.poll(conn, cursor, now=1) is None
    with api_store.begin() as conn:
        case_id = conn.execute(select(Case.id).limit(1)).scalar()
        eid = add_event(conn, case_id)
    with api_store.connect() as conn:
        cursor, fresh = live.poll(conn, cursor, now=2)
        assert [r["event"] for r in fresh] == [eid]
        assert live.poll(conn, cursor, now=3) is None          # delivered once
        # After the grace period the id settles into the low-water mark and `seen` empties.
        cursor, fresh = live.poll(conn, cursor, now=2 + live.GRACE_S + 1)
        assert fresh == [] and cursor["low"] == eid and cursor["seen"] == []


def test_a_gap_that_fills_later_is_delivered(api_store):
    """Simulate a lower id becoming visible after a higher one (what concurrent PostgreSQL writers do)."""
    with api_store.begin() as conn:
        case_id = conn.execute(select(Case.id).limit(1)).scalar()
        top = conn.execute(select(func.max(CaseEvent.id))).scalar()
    with api_store.connect() as conn:
        cursor, _ = live.poll(conn, None, now=0)
    with api_store.begin() as conn:
        high = add_event(conn, case_id, event_id=top + 5)
    with api_store.connect() as conn:
        cursor, fresh = live.poll(conn, cursor, now=1)
    assert [r["event"] for r in fresh] == [high]
    with api_store.begin() as conn:
        add_event(conn, case_id, event_id=top + 2)            # the gap fills, within the grace period
    with api_store.connect() as conn:
        cursor, fresh = live.poll(conn, cursor, now=2)
    assert [r["event"] for r in fresh] == [top + 2]
    if api_store.dialect.name == "postgresql":
        with api_store.begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('case_events', 'id'), "
                              "(SELECT max(id) FROM case_events))"))


@pytest.mark.only_db("postgresql")   # SQLite serialises writers: its ids always commit in order
def test_postgresql_out_of_order_commits(api_store):
    with api_store.connect() as conn:
        case_id = conn.execute(select(Case.id).limit(1)).scalar()
        cursor, _ = live.poll(conn, None, now=0)
    slow, fast = api_store.connect(), api_store.connect()
    tx_slow = slow.begin()
    first = add_event(slow, case_id)          # takes the lower id, commits last
    with fast.begin():
        second = add_event(fast, case_id)
    assert second > first
    with api_store.connect() as conn:
        cursor, fresh = live.poll(conn, cursor, now=1)
    assert [r["event"] for r in fresh] == [second]
    tx_slow.commit()
    with api_store.connect() as conn:
        cursor, fresh = live.poll(conn, cursor, now=2)
    assert [r["event"] for r in fresh] == [first]
    slow.close()
    fast.close()


def test_merge_keeps_latest_state_per_case_and_marks_new():
    a1 = {"event": 1, "code": "A", "action": "report", "status": "reported", "priority": "urgent"}
    b1 = {"event": 2, "code": "B", "action": "close", "status": "closed", "priority": "normal"}
    a2 = {"event": 3, "code": "A", "action": "register", "status": "registered", "priority": "urgent"}
    out = live.merge([], [a1, b1])
    out = live.merge(out, [a2])
    assert [(c["code"], c["status"], c["new"]) for c in out] == [("A", "registered", True), ("B", "closed", False)]
    assert all(not c["new"] for c in live.merge([], [a1], flash=False))
