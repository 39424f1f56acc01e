"""Nobody gets across their scope by any path, on a real server with login on, both databases.

A liaison of department A, a supervisor and a viewer of district X sign in over HTTP and then craft requests
the page would never send: Dash callbacks POSTed straight to /_dash-update-component with another
department's or district's case code, photo URLs of cases they may not see, the API with a session instead
of a token. A wall token reads but every write through it is refused. Each refusal is checked in the store
too: the case is unchanged and no audit row of the user names it.
"""
import json
import secrets

import pytest
import requests
from sqlalchemy import func, select

from data import audit, tokens, users
from data.statuses import OPEN
from data.store.schema import Case, CaseEvent
from tests.test_photos import _image

PASSWORD = "cross-scope-" + secrets.token_hex(8)
X, Y = "330203", "330205"


@pytest.fixture(scope="module")
def xs_store(module_engine):
    from data.demo.seed import seed
    seed(module_engine, scale="test", seed=19)
    return module_engine


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("xs_photos")


@pytest.fixture(scope="module")
def base(xs_store, live_server, photo_dir):
    return live_server(xs_store.url.render_as_string(hide_password=False), CGZT_PHOTO_DIR=str(photo_dir))


@pytest.fixture(scope="module")
def world(xs_store):
    """Departments A and B with open cases of their own, and an open case in each district."""
    with xs_store.connect() as conn:
        depts = conn.execute(select(Case.department_code).where(Case.status.in_(OPEN),
                                                                Case.department_code.is_not(None))
                             .group_by(Case.department_code).order_by(func.count().desc())).scalars().all()
        a, b = depts[0], depts[1]

        def one(*where):
            return dict(conn.execute(select(Case.id, Case.code, Case.version, Case.status, Case.department_code,
                                            Case.grid_code, Case.description)
                                     .where(Case.status.in_(OPEN), *where).order_by(Case.id).limit(1))
                        .mappings().one())
        return {"A": a, "B": b, "case_a": one(Case.department_code == a), "case_b": one(Case.department_code == b),
                "case_x": one(Case.grid_code.startswith(X)), "case_y": one(Case.grid_code.startswith(Y))}


def _session(base, engine, role, **kw) -> requests.Session:
    name = f"xs-{role}-{secrets.token_hex(4)}"
    with engine.begin() as conn:
        users.add(conn, name, PASSWORD, role, actor="tests", **kw)
    http = requests.Session()
    import re
    form = http.get(base + "/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    r = http.post(base + "/login", data={"name": name, "password": PASSWORD, "csrf_token": token, "next": "/"},
                  allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text
    http.user_name = name
    http.get(base + "/cases", timeout=30)                    # the page sets the CSRF cookie Dash sends back
    return http


@pytest.fixture(scope="module")
def liaison_a(base, xs_store, world):
    return _session(base, xs_store, "liaison", department=world["A"])


@pytest.fixture(scope="module")
def supervisor_x(base, xs_store):
    return _session(base, xs_store, "supervisor", districts=[X])


@pytest.fixture(scope="module")
def viewer_x(base, xs_store):
    return _session(base, xs_store, "viewer", districts=[X])


# -- a Dash client that sends what the page would not -------------------------------------------------

def _outputs(spec: str):
    if not spec.startswith(".."):
        i, p = spec.rsplit(".", 1)
        return {"id": i, "property": p}
    return [dict(zip(("id", "property"), part.rsplit(".", 1))) for part in spec.strip(".").split("...")]


def dash_call(http, base, output: str, values: dict, changed: list[str]):
    """POST one callback to /_dash-update-component; values map 'id.prop' to a value (wildcard inputs: a list
    of (id dict, value)). Returns (status, {id: {prop: value}})."""
    deps = http.get(base + "/_dash-dependencies", timeout=30).json()
    found = [d for d in deps if output in d["output"]]
    if len(found) > 1:   # an output several callbacks write (allow_duplicate): the one whose inputs changed
        found = [d for d in found if {c.rsplit(".", 1)[0] for c in changed} <= {i["id"] for i in d["inputs"]}]
    cb = found[0]

    def entry(spec):
        v = values.get(f'{spec["id"]}.{spec["property"]}')
        if spec["id"].startswith("{"):
            return [{"id": i, "property": spec["property"], "value": val} for i, val in (v or [])]
        return {"id": spec["id"], "property": spec["property"], "value": v}
    body = {"output": cb["output"], "outputs": _outputs(cb["output"]), "inputs": [entry(i) for i in cb["inputs"]],
            "state": [entry(s) for s in cb["state"]], "changedPropIds": changed}
    csrf = next((c.value for c in http.cookies if c.name.endswith("_csrf")), "")
    r = http.post(base + "/_dash-update-component", json=body, headers={"X-CSRFToken": csrf}, timeout=60)
    return r.status_code, (r.json().get("response", {}) if r.status_code == 200 else r.text)


def queue(http, base):
    status, out = dash_call(http, base, "ws-queue.children", {"ws-refresh.data": 1, "ws-lang.data": "zh"},
                            ["ws-refresh.data"])
    assert status == 200, out
    return [f["properties"]["code"] for f in out["ws-points"]["data"]["features"]], out["ws-count"]["children"]


def detail(http, base, code):
    status, out = dash_call(http, base, "ws-detail.children", {"ws-selected.data": {"code": code},
                                                               "ws-refresh.data": 0, "ws-lang.data": "zh"},
                            ["ws-selected.data"])
    assert status == 200, out
    return out


def act(http, base, code, version, action, note="crafted"):
    status, out = dash_call(http, base, "ws-pending.data", {
        "ws-confirm.n_clicks": 1, "ws-pending.data": {"action": action, "code": code},
        "ws-seen.data": {"code": code, "version": version}, "ws-note.value": note, "ws-hours.value": 8,
        "ws-refresh.data": 0, "ws-lang.data": "zh"}, ["ws-confirm.n_clicks"])
    assert status == 200, out
    return out


def _unchanged(engine, case, user_name):
    with engine.connect() as conn:
        now = conn.execute(select(Case.version, Case.status).where(Case.id == case["id"])).one()
        events = conn.execute(select(func.count()).select_from(CaseEvent)
                              .where(CaseEvent.case_id == case["id"], CaseEvent.actor == user_name)).scalar()
        trail = [r for r in audit.recent(conn, limit=500, actor=user_name) if r["target"] == case["code"]]
    assert (now.version, now.status) == (case["version"], case["status"])
    assert events == 0 and trail == []


# -- the liaison --------------------------------------------------------------------------------------

def test_liaison_queue_is_their_department_only(base, xs_store, world, liaison_a):
    assert 'href="/cases"' in liaison_a.get(base + "/", timeout=30).text      # every page links the workspace
    codes, count = queue(liaison_a, base)
    with xs_store.connect() as conn:
        mine = set(conn.execute(select(Case.code).where(Case.department_code == world["A"],
                                                        Case.status.in_(OPEN))).scalars())
    assert codes and set(codes) <= mine and world["case_b"]["code"] not in codes
    assert str(len(mine)) in count


def test_liaison_cannot_read_another_departments_case_by_a_crafted_callback(base, world, liaison_a):
    out = detail(liaison_a, base, world["case_a"]["code"])
    assert out["ws-seen"]["data"]["code"] == world["case_a"]["code"]
    b = world["case_b"]
    out = detail(liaison_a, base, b["code"])
    assert out["ws-seen"]["data"] is None and out["ws-actions"]["children"] == []
    text = json.dumps(out, ensure_ascii=False)
    assert "未找到" in text and (not b["description"] or b["description"] not in text)
    assert b["grid_code"] not in text


def test_a_click_merged_with_a_case_reload_opens_the_confirmation(base, world, liaison_a):
    """Dash sends inputs changed in the same round as one request: an action click that arrives with the
    case's reload (ws-seen) is still a click, whichever the renderer lists first."""
    a = world["case_a"]
    button = {"type": "ws-act", "action": "accept"}
    seen = {"code": a["code"], "version": a["version"]}
    click = json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"    # as the renderer names it
    for changed in (["ws-seen.data", click], [click, "ws-seen.data"]):
        status, out = dash_call(liaison_a, base, "ws-pending.data", {
            '{"action":["ALL"],"type":"ws-act"}.n_clicks': [(button, 1)],
            "ws-seen.data": seen, "ws-refresh.data": 0, "ws-lang.data": "zh"}, changed)
        assert status == 200, out
        assert out["ws-pending"]["data"] == {"action": "accept", "code": a["code"]}
        assert out["ws-confirm-box"]["style"] == {}


@pytest.mark.parametrize("action", ["accept", "return", "feedback", "ask_extension", "close", "dispatch"])
def test_liaison_cannot_act_on_another_departments_case(base, xs_store, world, liaison_a, action):
    b = world["case_b"]
    out = act(liaison_a, base, b["code"], b["version"], action)
    assert out["ws-msg"]["className"] == "ws-msg ws-msg-error", out
    assert "不存在或不在您的权限范围内" in out["ws-msg"]["children"]   # in Chinese, and no hint that it exists
    _unchanged(xs_store, b, liaison_a.user_name)


def test_photos_of_another_departments_case_are_not_served(base, xs_store, world, liaison_a, supervisor_x,
                                                           photo_dir):
    from data import photos
    b = world["case_b"]
    checked = photos.check_all([("b.png", _image("PNG"))])
    with photos.written(checked, photo_dir) as names, xs_store.begin() as conn:
        ev = conn.execute(select(func.max(CaseEvent.id)).where(CaseEvent.case_id == b["id"])).scalar()
        (pid,) = photos.link(conn, b["id"], ev, checked, names, "someone")
    assert liaison_a.get(f"{base}/cases/photos/{pid}", timeout=10).status_code == 404
    assert requests.get(f"{base}/cases/photos/{pid}", timeout=10, allow_redirects=False).status_code in (302, 401)
    admin = _session(base, xs_store, "admin")
    r = admin.get(f"{base}/cases/photos/{pid}", timeout=10)
    assert r.status_code == 200 and r.content == checked[0].data
    within = supervisor_x.get(f"{base}/cases/photos/{pid}", timeout=10).status_code
    assert within == (200 if b["grid_code"].startswith(X) else 404)


# -- the supervisor and the viewer --------------------------------------------------------------------

def test_supervisor_sees_and_acts_in_their_district_only(base, xs_store, world, supervisor_x):
    codes, _ = queue(supervisor_x, base)
    with xs_store.connect() as conn:
        grids = dict(conn.execute(select(Case.code, Case.grid_code).where(Case.code.in_(codes))).all())
    assert codes and all(g.startswith(X) for g in grids.values())
    y = world["case_y"]
    out = detail(supervisor_x, base, y["code"])
    assert out["ws-seen"]["data"] is None
    for action in ("park", "close", "verify", "extend", "reopen"):
        out = act(supervisor_x, base, y["code"], y["version"], action)
        assert out["ws-msg"]["className"] == "ws-msg ws-msg-error"
    _unchanged(xs_store, y, supervisor_x.user_name)


def test_viewer_reads_in_scope_but_every_write_is_refused(base, xs_store, world, viewer_x):
    codes, _ = queue(viewer_x, base)
    assert codes
    x = world["case_x"]
    out = detail(viewer_x, base, x["code"])
    assert out["ws-seen"]["data"]["code"] == x["code"]
    assert "只读" in json.dumps(out["ws-actions"], ensure_ascii=False)
    for action in ("park", "accept", "feedback", "close", "register"):
        out = act(viewer_x, base, x["code"], x["version"], action)
        assert out["ws-msg"]["className"] == "ws-msg ws-msg-error"
        assert "只读账号不能办理案件" in out["ws-msg"]["children"]
    _unchanged(xs_store, x, viewer_x.user_name)
    assert detail(viewer_x, base, world["case_y"]["code"])["ws-seen"]["data"] is None


# -- without a session, with a session on the API, with the wall token ----------------------------------

def test_callbacks_and_pages_need_a_session(base, world):
    anon = requests.Session()
    r = anon.post(base + "/_dash-update-component", json={"output": "ws-selected.data"}, timeout=10)
    assert r.status_code in (401, 403)
    r = anon.get(base + "/cases", timeout=10, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_the_api_takes_tokens_not_sessions(base, liaison_a):
    """API tokens are integrations, not people: a signed-in session on /api/v1 is refused, not scoped."""
    r = liaison_a.get(base + "/api/v1/cases", timeout=10)
    assert r.status_code == 401
    r = liaison_a.post(base + "/api/v1/cases/NB0/transitions", json={"action": "accept", "expected_version": 1},
                       timeout=10)
    assert r.status_code == 401


def test_a_wall_token_reads_the_wall_but_every_write_is_refused(base, xs_store, world):
    with xs_store.begin() as conn:
        wall = tokens.add(conn, "xs-wall", "wall")
    assert requests.get(f"{base}/wall/?token={wall}", timeout=30).status_code == 200
    hdr = {"Authorization": f"Bearer {wall}"}
    x = world["case_x"]
    r = requests.post(f"{base}/api/v1/cases", headers=hdr, timeout=10,
                      json={"lon": 121.55, "lat": 29.87, "class_code": "E0101", "source_code": "public"})
    assert r.status_code == 403, r.text
    r = requests.post(f"{base}/api/v1/cases/{x['code']}/transitions", headers=hdr, timeout=10,
                      json={"action": "park", "expected_version": x["version"], "note": "x"})
    assert r.status_code == 403, r.text
    r = requests.post(f"{base}/open311/v2/requests.json", timeout=10,
                      data={"api_key": wall, "service_code": "E0101", "lat": 29.87, "long": 121.55})
    assert r.status_code in (401, 403), r.text
    # The token is no session: the map's and the workspace's callbacks stay closed to it.
    r = requests.post(f"{base}/_dash-update-component?token={wall}", headers=hdr, timeout=10,
                      json={"output": "ws-selected.data", "inputs": [], "changedPropIds": []})
    assert r.status_code in (401, 403)
    with xs_store.connect() as conn:
        assert conn.execute(select(Case.version).where(Case.id == x["id"])).scalar() == x["version"]
        assert not [r for r in audit.recent(conn, limit=200) if r["actor"] in ("api:xs-wall", "token:xs-wall")
                    and r["kind"] != "login"]


# -- the map page's paths: export, search, the live feed ------------------------------------------------

def test_exports_hold_only_the_users_scope(base, xs_store, world, liaison_a, supervisor_x):
    q = "/export/cases.csv?start=2020-01-01&end=2030-01-01"
    text = liaison_a.get(base + q, timeout=60).text
    with xs_store.connect() as conn:
        mine = conn.execute(select(func.count()).select_from(Case).where(Case.department_code == world["A"])).scalar()
    assert world["case_a"]["code"] in text and world["case_b"]["code"] not in text
    assert len(text.strip().splitlines()) == mine + 1                                  # header + A's cases only
    text = supervisor_x.get(base + q, timeout=60).text
    assert world["case_x"]["code"] in text and world["case_y"]["code"] not in text
    geo = liaison_a.get(base + q.replace(".csv", ".geojson"), timeout=60).text
    assert world["case_b"]["code"] not in geo and world["case_a"]["code"] in geo


def test_the_map_search_does_not_find_another_departments_case(base, world, liaison_a):
    def search(code):
        status, out = dash_call(liaison_a, base, "..map.viewport...detail.children", {
            "search-btn.n_clicks": 1, "search.value": code, "ui.data": {"lang": "zh"}}, ["search-btn.n_clicks"])
        assert status == 200, out
        return out
    found = search(world["case_a"]["code"])
    assert "viewport" in found.get("map", {})
    lost = json.dumps(search(world["case_b"]["code"]), ensure_ascii=False)
    assert "未找到" in lost and '"viewport"' not in lost


def test_a_crafted_case_click_of_another_department_shows_nothing(base, world, liaison_a):
    def click(case):
        status, out = dash_call(liaison_a, base, "...table.dashGridOptions", {
            "cases.clickData": {"type": "Feature", "properties": {"id": case["id"], "code": case["code"]},
                                "geometry": {"type": "Point", "coordinates": [121.5, 29.8]}},
            "ui.data": {"lang": "zh"}, "map.zoom": 15}, ["cases.clickData"])
        assert status == 200, out
        return json.dumps(out, ensure_ascii=False)
    mine = click(world["case_a"])
    assert world["case_a"]["grid_code"] in mine
    other = click(world["case_b"])
    assert "未找到" in other and world["case_b"]["grid_code"] not in other
    assert not world["case_b"]["description"] or world["case_b"]["description"] not in other


def test_a_crafted_live_click_of_another_department_shows_nothing(base, world, liaison_a):
    """The live markers' and ticker's click (live-click) names a case id: the server opens it only in scope,
    and a malformed id is "not found", not an error."""
    def click(data):
        status, out = dash_call(liaison_a, base, "table.selectedRows", {"live-click.data": data,
                                                                        "ui.data": {"lang": "zh"}},
                                ["live-click.data"])
        assert status == 200, out
        return out
    a, b = world["case_a"], world["case_b"]
    mine = click({"id": a["id"], "code": a["code"], "fly": True, "t": 1})
    assert a["grid_code"] in json.dumps(mine["detail"], ensure_ascii=False)
    assert mine["table"]["selectedRows"] == {"ids": [str(a["id"])]}
    assert mine["map"]["viewport"]["zoom"] == 17 and mine["grp-highlight"]["children"]   # a ticker row flies
    other = click({"id": b["id"], "code": b["code"], "fly": True, "t": 2})
    text = json.dumps(other, ensure_ascii=False)
    assert "未找到" in text and b["grid_code"] not in text
    assert "map" not in other and other["grp-highlight"]["children"] == []
    assert other["table"]["selectedRows"] == {"ids": []}
    for junk in ({"id": "1 OR 1=1", "code": "x"}, {"id": {"a": 1}}, {"id": [1]}):
        assert "未找到" in json.dumps(click(junk), ensure_ascii=False)


def test_the_live_stream_carries_only_the_users_scope(base, xs_store, world, liaison_a):
    """The pushed live cases (GET /live/stream) are filtered per user on the server: another department's
    news moves the stream's id but never reaches the liaison."""
    from tests.test_live import add_event
    from tests.test_live_stream import Stream
    s = Stream(liaison_a, base)
    s.next(), s.next()
    context = json.loads(s.next()["data"])
    assert all(r["dept"] == world["A"] for r in context)
    with xs_store.begin() as conn:
        other = add_event(conn, world["case_b"]["id"])
    with xs_store.begin() as conn:
        mine = add_event(conn, world["case_a"]["id"])
    got, last = [], 0
    while last < mine:
        msg = s.next()
        last = int(msg.get("id", last))
        if msg.get("event") == "cases":
            got += json.loads(msg["data"])
    s.close()
    assert [r["event"] for r in got] == [mine] and other not in [r["event"] for r in got]
    assert {r["code"] for r in got} == {world["case_a"]["code"]}
