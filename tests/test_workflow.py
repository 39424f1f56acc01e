"""Every legal and illegal transition of the case workflow, roles, departments and concurrent edits."""
from datetime import datetime

import pandas as pd
import pytest
import shapely
from sqlalchemy import select

from data.reference import load
from data.statuses import STATUSES
from data.store.bulk import load_frame
from data.store.schema import Case, CaseEvent
from data.workflow import ACTIONS, Actor, Conflict, WorkflowError, apply

T0 = datetime(2026, 11, 23, 9, 0)
SQUARE = shapely.MultiPolygon([shapely.box(121.54, 29.86, 121.56, 29.88)])
SUPER = Actor("值班长", "supervisor")
LIAISON = Actor("市政联络员", "liaison", "330203SZ")
OTHER = Actor("环卫联络员", "liaison", "330203HW")


@pytest.fixture(scope="module")
def store(module_engine):
    """One district, street, community and grid, the reference tables, and no cases yet."""
    bbox = dict(minx=121.54, miny=29.86, maxx=121.56, maxy=29.88)
    with module_engine.begin() as conn:
        load_frame(conn, "districts", pd.DataFrame([dict(code="330203", name="海曙区", name_en="Haishu",
                                                         area_m2=1.0, geom=SQUARE, **bbox)]))
        load_frame(conn, "streets", pd.DataFrame([dict(code="330203001", district_code="330203", name="鼓楼街道",
                                                       name_en="Gulou", kind="街道", area_m2=1.0, geom=SQUARE, **bbox)]))
        load_frame(conn, "communities", pd.DataFrame([dict(code="330203001001", street_code="330203001",
                                                           district_code="330203", name="测试社区", area_m2=1.0,
                                                           geom=SQUARE, **bbox)]))
        load_frame(conn, "grids", pd.DataFrame([dict(code="330203001001001", community_code="330203001001",
                                                     street_code="330203001", district_code="330203",
                                                     area_m2=1.0, inspector="张三", geom=SQUARE, **bbox)]))
        load(conn)
    return module_engine


_serial = iter(range(1, 10**6))


def make_case(engine, status, department="330203SZ", version=1):
    row = dict(code=f"NB20261123{next(_serial):06d}", source_code="inspector",
               kind="component", major_code="C01", class_code="C0108", lon=121.55, lat=29.87,
               grid_code="330203001001001", community_code="330203001001", street_code="330203001",
               district_code="330203", status=status, department_code=department, priority="normal",
               reported_at=T0, updated_at=T0, version=version, overdue=False, rework_count=0, return_count=0,
               deadline_at=datetime(2026, 11, 25, 9, 0))
    with engine.begin() as conn:
        return conn.execute(Case.__table__.insert().values(**row)).inserted_primary_key[0]


def act(engine, case_id, action, actor=SUPER, **kw):
    kw.setdefault("note", "理由")
    with engine.begin() as conn:
        version = conn.execute(select(Case.version).where(Case.id == case_id)).scalar()
        return apply(conn, case_id, action, actor, expected_version=version, now=T0, **kw)


LEGAL = [(s, a.name) for a in ACTIONS.values() for s in a.sources]
ILLEGAL = [(s, a.name) for a in ACTIONS.values() for s in STATUSES if s not in a.sources]


@pytest.mark.parametrize("status,action", LEGAL)
def test_every_legal_transition(store, status, action):
    cid = make_case(store, status)
    actor = LIAISON if ACTIONS[action].roles == ("liaison",) else SUPER
    out = act(store, cid, action, actor, extend_hours=4, department="330203SZ")
    expected = ACTIONS[action].target or status
    assert out["status"] == expected
    with store.connect() as conn:
        assert conn.execute(select(Case.status, Case.version).where(Case.id == cid)).one() == (expected, 2)
        ev = conn.execute(select(CaseEvent).where(CaseEvent.case_id == cid)).mappings().one()
    assert (ev["action"], ev["from_status"], ev["to_status"], ev["actor"]) == (action, status, expected, actor.name)


@pytest.mark.parametrize("status,action", ILLEGAL)
def test_every_illegal_transition_is_refused(store, status, action):
    cid = make_case(store, status)
    with pytest.raises(WorkflowError, match="cannot"):
        act(store, cid, action)
    with store.connect() as conn:
        assert conn.execute(select(Case.status, Case.version).where(Case.id == cid)).one() == (status, 1)
        assert conn.execute(select(CaseEvent.id).where(CaseEvent.case_id == cid)).first() is None


def test_liaison_acts_only_on_own_department(store):
    cid = make_case(store, "dispatched")
    with pytest.raises(WorkflowError, match="not assigned"):
        act(store, cid, "accept", OTHER)
    assert act(store, cid, "accept", LIAISON)["status"] == "handling"


def test_roles_are_checked(store):
    cid = make_case(store, "verifying")
    with pytest.raises(WorkflowError, match="may not close"):
        act(store, cid, "close", LIAISON)


def test_note_required_for_return(store):
    cid = make_case(store, "dispatched")
    with pytest.raises(WorkflowError, match="needs a note"):
        act(store, cid, "return", LIAISON, note="  ")


def test_register_sets_deadline_from_class_limit(store):
    cid = make_case(store, "reported")
    out = act(store, cid, "register")
    # 路灯 (C0108): 2 working days from Monday 09:00
    assert out["deadline_at"] == datetime(2026, 11, 25, 9, 0)


def test_extension_moves_deadline_in_working_hours(store):
    cid = make_case(store, "handling")
    out = act(store, cid, "extend", extend_hours=4)
    assert out["deadline_at"] == datetime(2026, 11, 25, 14, 30)  # 09:00 + 3h to 12:00, + 1h after lunch


def test_concurrent_edit_one_wins(store):
    """Two people open the same case (version 1); the first to act wins, the second is told."""
    cid = make_case(store, "verifying")
    with store.begin() as conn:
        apply(conn, cid, "close", SUPER, expected_version=1, now=T0)
    with pytest.raises(Conflict, match="changed since you opened it"):
        with store.begin() as conn:
            apply(conn, cid, "rework", Actor("另一位值班长", "supervisor"), expected_version=1, note="x", now=T0)
    with store.connect() as conn:
        assert conn.execute(select(Case.status, Case.version).where(Case.id == cid)).one() == ("closed", 2)
        assert [e.action for e in conn.execute(select(CaseEvent.action).where(CaseEvent.case_id == cid))] == ["close"]


def test_full_path_with_return_and_rework(store):
    cid = make_case(store, "reported", department=None)
    for action, actor in [("register", SUPER), ("dispatch", SUPER), ("return", LIAISON), ("dispatch", SUPER),
                          ("accept", LIAISON), ("feedback", LIAISON), ("verify", SUPER), ("rework", SUPER),
                          ("accept", LIAISON), ("feedback", LIAISON), ("verify", SUPER), ("close", SUPER)]:
        act(store, cid, action, actor, department="330203SZ")
    with store.connect() as conn:
        case = conn.execute(select(Case).where(Case.id == cid)).mappings().one()
        n = conn.execute(select(CaseEvent.id).where(CaseEvent.case_id == cid)).all()
    assert (case["status"], case["return_count"], case["rework_count"], case["version"]) == ("closed", 1, 1, 13)
    assert len(n) == 12 and case["closed_at"] == T0 and case["overdue"] is False
