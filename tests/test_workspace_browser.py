"""The case workspace in a real browser: a liaison accepts a dispatched case and sends feedback with a photo,
a supervisor of the case's district verifies and closes it, and the history shows each step with who and
when; the photo is served back to them and to nobody outside the case's scope. Both databases.
"""
import io

import pytest
import requests
from sqlalchemy import select, text

from data import audit
from data.statuses import OPEN
from data.store.schema import Case, CaseEvent, CasePhoto
from tests.browser_fixtures import screenshot, wait_counts


@pytest.fixture(scope="module")
def ws_store(module_engine):
    from data.demo.seed import seed
    seed(module_engine, scale="test", seed=13)
    return module_engine


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("photos")


@pytest.fixture(scope="module")
def ws_base(ws_store, live_server, photo_dir):
    return live_server(ws_store.url.render_as_string(hide_password=False), CGZT_PHOTO_DIR=str(photo_dir))


def _png() -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def _dispatched_case(engine) -> dict:
    """A new case, reported through intake as the API would, then registered and dispatched through the
    workflow by a command actor. (The seed's own 'reported' cases are the last hour's: at some times of day
    there is one or none.)"""
    from data import intake, workflow
    from data.store.schema import Department
    from tests.test_api_support import inside_grid
    cols = (Case.id, Case.code, Case.department_code, Case.district_code, Case.version)
    lon, lat, _ = inside_grid(engine, 0)
    with engine.begin() as conn:
        made, _ = intake.report(conn, lon=lon, lat=lat, class_code="E0101", source_code="public",
                                reporter="tests", auto_register=False)
        c = conn.execute(select(*cols).where(Case.id == made["id"])).one()
        dept = c.department_code or conn.execute(select(Department.code).order_by(Department.code)).scalar()
        setup = workflow.Actor("setup", "supervisor")
        workflow.apply(conn, c.id, "register", setup, expected_version=c.version)
        workflow.apply(conn, c.id, "dispatch", setup, expected_version=c.version + 1, department=dept)
        return dict(conn.execute(select(*cols).where(Case.id == c.id)).mappings().one())


def _open_case(page, code):
    page.fill("#ws-open-code", code)
    page.click("#ws-open-btn")
    page.wait_for_function("c => (document.querySelector('#ws-case-code') || {}).textContent === c", arg=code)


def _act(page, action, note=None, files=None, expect="", timeout=20_000):
    page.click(f"#ws-actions button[data-action={action}]")
    page.wait_for_selector("#ws-confirm-box", state="visible")
    if note is not None:
        page.fill("#ws-note", note)
    if files:
        page.set_input_files("#ws-upload input[type=file]", files)
        page.wait_for_function("() => document.querySelector('#ws-upload-list').textContent.length > 0")
    page.click("#ws-confirm")
    page.wait_for_function("t => document.querySelector('#ws-msg').textContent.includes(t)", arg=expect,
                           timeout=timeout)
    assert "ws-msg-ok" in page.get_attribute("#ws-msg", "class"), page.text_content("#ws-msg")


def _history(page) -> list[list[str]]:
    return page.eval_on_selector_all("#ws-history tbody tr",
                                     "rows => rows.map(r => [...r.cells].map(c => c.textContent))")


def test_liaison_accepts_and_feeds_back_with_a_photo_then_the_supervisor_verifies_and_closes(
        ws_base, ws_store, logged_in_page, browser):
    case = _dispatched_case(ws_store)
    url = ws_store.url.render_as_string(hide_password=False)
    png = _png()

    liaison = logged_in_page(ws_base, url, role="liaison", department=case["department_code"])
    liaison.goto(ws_base + "/cases")
    liaison.wait_for_selector("#ws-queue .ws-row")
    with ws_store.connect() as conn:   # the command map's outlines under the queue: city, districts, streets
        outlines = 1 + sum(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in ("districts", "streets"))
    wait_counts(liaison, {"boundaries": outlines})
    # The queue holds only the liaison's department's open cases, overdue and nearest deadline first.
    with ws_store.connect() as conn:
        dept_open = conn.execute(select(Case.code).where(Case.department_code == case["department_code"],
                                                         Case.status.in_(OPEN))).scalars().all()
    shown = liaison.eval_on_selector_all("#ws-queue .ws-code", "els => els.map(e => e.textContent)")
    assert shown and set(shown) <= set(dept_open)
    _open_case(liaison, case["code"])
    assert sorted(liaison.eval_on_selector_all("#ws-actions button", "b => b.map(x => x.dataset.action)")) == \
        ["accept", "return"]
    # Cancel closes the confirmation and changes nothing.
    liaison.click("#ws-actions button[data-action=accept]")
    liaison.wait_for_selector("#ws-confirm-box", state="visible")
    liaison.click("#ws-cancel")
    liaison.wait_for_selector("#ws-confirm-box", state="hidden")
    with ws_store.connect() as conn:
        assert conn.execute(select(Case.status).where(Case.id == case["id"])).scalar() == "dispatched"

    _act(liaison, "accept", expect="处置中")
    liaison.wait_for_selector("#ws-actions button[data-action=feedback]")
    _act(liaison, "feedback", note="已清理完毕", expect="已反馈",
         files=[{"name": "after.png", "mimeType": "image/png", "buffer": png}])
    liaison.wait_for_function("() => document.querySelectorAll('#ws-history a.ws-photo').length === 1")
    screenshot(liaison, f"workspace-liaison-{ws_store.dialect.name}")

    supervisor = logged_in_page(ws_base, url, role="supervisor", districts=[case["district_code"]])
    supervisor.goto(ws_base + "/cases")
    supervisor.wait_for_selector("#ws-queue .ws-row")
    _open_case(supervisor, case["code"])
    _act(supervisor, "verify", expect="核查中")
    supervisor.wait_for_selector("#ws-actions button[data-action=close]")
    _act(supervisor, "close", expect="结案")
    # The history re-renders after the message: wait for the close step itself, not a row count the
    # pre-close history (dispatch + three steps) already meets.
    supervisor.wait_for_function(
        "() => { const r = document.querySelectorAll('#ws-history tbody tr');"
        " return r.length && r[r.length - 1].textContent.includes('结案 → 结案'); }")
    screenshot(supervisor, f"workspace-supervisor-{ws_store.dialect.name}")

    rows = _history(supervisor)
    steps = [(r[1], r[2]) for r in rows[-4:]]
    assert steps == [(liaison.user_name, "接收 → 处置中"), (liaison.user_name, "处置反馈 → 已反馈"),
                     (supervisor.user_name, "核查 → 核查中"), (supervisor.user_name, "结案 → 结案")]
    assert all(len(r[0]) == 16 for r in rows[-4:])                       # each with its time, to the minute
    assert rows[-3][3] == "已清理完毕" and rows[-3][4] == "after.png"

    with ws_store.connect() as conn:
        events = conn.execute(select(CaseEvent.actor, CaseEvent.action, CaseEvent.id)
                              .where(CaseEvent.case_id == case["id"]).order_by(CaseEvent.id)).all()
        photo = conn.execute(select(CasePhoto).where(CasePhoto.case_id == case["id"])).mappings().one()
        trail = [r for r in audit.recent(conn, limit=50, kind="case_transition") if r["target"] == case["code"] and r["actor"] != "setup"]
    assert [(e.actor, e.action) for e in events[-4:]] == [
        (liaison.user_name, "accept"), (liaison.user_name, "feedback"),
        (supervisor.user_name, "verify"), (supervisor.user_name, "close")]
    assert photo["event_id"] == events[-3].id and photo["mime"] == "image/png" and photo["bytes"] == len(png)
    assert sorted((r["actor"], r["detail"]["action"]) for r in trail) == sorted(
        [(liaison.user_name, "accept"), (liaison.user_name, "feedback"),
         (supervisor.user_name, "verify"), (supervisor.user_name, "close")])

    # The photo comes back byte for byte to people whose scope holds the case, to nobody else.
    href = ws_base + supervisor.get_attribute("#ws-history a.ws-photo", "href")
    for pg in (liaison, supervisor):
        r = pg.request.get(href)
        assert r.status == 200 and r.headers["content-type"] == "image/png" and r.body() == png
    other = logged_in_page(ws_base, url, role="liaison", department=_other_department(ws_store, case))
    assert other.request.get(href).status == 404
    assert requests.get(href, timeout=10, allow_redirects=False).status_code in (302, 401)   # not signed in
    assert not [e for e in liaison.console_errors + supervisor.console_errors if "favicon" not in e]


def _other_department(engine, case) -> str:
    with engine.connect() as conn:
        return conn.execute(select(Case.department_code).where(Case.department_code.is_not(None),
                                                               Case.department_code != case["department_code"])
                            .limit(1)).scalar()


def test_a_stale_version_is_a_clear_conflict(ws_base, ws_store, logged_in_page):
    """Two people on one case: the second, who saw the old version, is told it changed and sees the new state."""
    from data import workflow
    url = ws_store.url.render_as_string(hide_password=False)
    case = _dispatched_case(ws_store)
    liaison = logged_in_page(ws_base, url, role="liaison", department=case["department_code"])
    liaison.goto(ws_base + "/cases")
    liaison.wait_for_selector("#ws-queue .ws-row")
    _open_case(liaison, case["code"])
    with ws_store.begin() as conn:     # someone else accepts it first
        workflow.apply(conn, case["id"], "accept", workflow.Actor("colleague", "liaison", case["department_code"]),
                       expected_version=case["version"])
    liaison.click("#ws-actions button[data-action=accept]")
    liaison.wait_for_selector("#ws-confirm-box", state="visible")
    liaison.click("#ws-confirm")
    liaison.wait_for_function("() => document.querySelector('#ws-msg').className.includes('ws-msg-warn')")
    assert "已被他人更新" in liaison.text_content("#ws-msg") and "处置中" in liaison.text_content("#ws-msg")
    liaison.wait_for_selector("#ws-actions button[data-action=feedback]")   # reloaded: the new state's actions
    with ws_store.connect() as conn:
        assert conn.execute(select(CaseEvent.actor).where(CaseEvent.case_id == case["id"])
                            .order_by(CaseEvent.id.desc()).limit(1)).scalar() == "colleague"
