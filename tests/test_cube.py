"""The in-process case columns (layers.cube) follow the store's writers: a case reported and a case closed
after the columns were loaded show in the very next read, patched in without a full reload, and the
numbers equal raw SQL on the store."""
from datetime import timedelta

from sqlalchemy import text

from data import intake, workflow
from data.statuses import OPEN
from layers import breakdown, cube
from layers.filters import Filters
from tests.test_api_support import inside_grid

OPEN_SQL = "('" + "', '".join(OPEN) + "')"


def raw_now(conn, now):
    return {"open": conn.execute(text(f"SELECT count(*) FROM cases WHERE status IN {OPEN_SQL}")).scalar(),
            "overdue": conn.execute(text(f"SELECT count(*) FROM cases WHERE status IN {OPEN_SQL} AND deadline_at < :n"),
                                    {"n": now}).scalar(),
            "setbacks": conn.execute(text(f"SELECT count(DISTINCT setback_id) FROM cases WHERE status IN {OPEN_SQL}"
                                          )).scalar()}


def closed_count(f, conn):
    return sum(r[3] for r in breakdown.due(conn, f) if r[0] == 0)


def _to_verifying(engine, case_id: int) -> int:
    """Move a case step by step to 'verifying' as a supervisor; returns its version there."""
    steps = {"reported": "register", "registered": "dispatch", "dispatched": "accept", "handling": "feedback",
             "handled": "verify"}
    actor = workflow.Actor("值班长", "supervisor")
    while True:
        with engine.begin() as conn:
            status, version = conn.execute(text("SELECT status, version FROM cases WHERE id = :i"),
                                           {"i": case_id}).one()
            if status == "verifying":
                return version
            action = steps[status]
            workflow.apply(conn, case_id, action, actor, expected_version=version,
                           note="done (test)" if action == "feedback" else None)


def test_writes_after_the_load_are_read(fresh_engine):
    from data.demo.seed import seed
    engine = fresh_engine
    seed(engine, scale="test", seed=3)
    with engine.connect() as conn:
        newest = conn.execute(text("SELECT max(deadline_at) FROM cases")).scalar()
    f = Filters(start=breakdown.now_cst() - timedelta(days=400), end=breakdown.now_cst() + timedelta(days=400))
    with engine.connect() as conn:
        now = breakdown.now_cst()
        assert breakdown.now_state(conn, f, now) == raw_now(conn, now)
        closed_before = closed_count(f, conn)
        loaded = cube._cubes[engine].loaded_at
        assert newest is not None

    lon, lat, _ = inside_grid(engine, 0)
    with engine.begin() as conn:
        case, created = intake.report(conn, lon=lon, lat=lat, class_code="E0101", source_code="public",
                                      reporter="test")
    assert created
    with engine.connect() as conn:
        now = breakdown.now_cst()
        assert breakdown.now_state(conn, f, now) == raw_now(conn, now)
    # The new case through the workflow to verifying: the seeded statuses depend on the time of day (a
    # 'verifying' case to pick was not always there), this one always is.
    cid, version = case["id"], _to_verifying(engine, case["id"])
    with engine.begin() as conn:
        workflow.apply(conn, cid, "close", workflow.Actor("值班长", "supervisor"), expected_version=version)
    with engine.connect() as conn:
        now = breakdown.now_state(conn, f)
        assert now["open"] == raw_now(conn, breakdown.now_cst())["open"]
        # The closed case's deadline lies in f's period: 结案 moves up by exactly one.
        assert closed_count(f, conn) == closed_before + 1
        assert sum(r[4] for r in breakdown.reported(conn, f) if r[0] == 0 and r[3] == "closed") == conn.execute(
            text("SELECT count(*) FROM cases WHERE status = 'closed' AND reported_at >= :s AND reported_at < :e"),
            {"s": f.start, "e": f.end}).scalar()
    assert cube._cubes[engine].loaded_at == loaded, "patched in, not reloaded"


def test_panels_trail_the_store_by_at_most_the_lag(fresh_engine, monkeypatch):
    """Within the lag a process answers from the columns it holds, without asking the store (a write is not
    seen yet); once the lag has passed, the next read sees it."""
    from data.demo.seed import seed
    engine = fresh_engine
    seed(engine, scale="test", seed=4)
    monkeypatch.setenv("CGZT_PANEL_LAG_S", "600")
    with engine.connect() as conn:
        before = cube.snapshot(conn)
    lon, lat, _ = inside_grid(engine, 0)
    with engine.begin() as conn:
        case, _ = intake.report(conn, lon=lon, lat=lat, class_code="E0101", source_code="public", reporter="test")
    asked = []
    with engine.connect() as conn:
        from sqlalchemy import event
        event.listen(conn, "before_cursor_execute", lambda *a: asked.append(a[2]))
        held = cube.snapshot(conn)
        assert held is before and case["id"] not in held.ids and asked == []
        # The lag has passed (a short max_age, as after 600 s): the mark is asked for and the case patched in.
        fresh = cube.snapshot(conn, max_age=0)
    assert fresh is not before and case["id"] in fresh.ids and asked
