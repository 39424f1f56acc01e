"""Login, sessions, CSRF, headers and limits over real HTTP against `python app.py serve` on both databases."""
import json
import re
import secrets
import time

import pytest
import requests
from sqlalchemy import select

from data import audit, users
from data.store.engine import make_engine
from data.store.schema import AuditLog
from dashboard.auth import USER_TTL_S

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def base(live_server, seeded_url):
    return live_server(seeded_url)


@pytest.fixture(scope="module")
def strict_base(live_server, seeded_url):
    """A server configured for production behind TLS: Secure cookies, one framing origin, a small body limit."""
    return live_server(seeded_url, CGZT_SECURE_COOKIES="1", CGZT_FRAME_ANCESTORS="https://wall.example.cn",
                       CGZT_MAX_REQUEST_BYTES="4096")


def _user(seeded_url, role="admin", **kw) -> str:
    name = f"t-{role}-{secrets.token_hex(4)}"
    engine = make_engine(seeded_url)
    with engine.begin() as conn:
        users.add(conn, name, PASSWORD, role, **kw)
    engine.dispose()
    return name


def _csrf_from_form(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _login(base, name, password=PASSWORD, next_="/") -> tuple[requests.Session, requests.Response]:
    http = requests.Session()
    token = _csrf_from_form(http.get(base + "/login", timeout=10).text)
    r = http.post(base + "/login", data={"name": name, "password": password, "csrf_token": token, "next": next_},
                  allow_redirects=False, timeout=30)
    return http, r


def _csrf_cookie(http: requests.Session) -> str:
    return next(c.value for c in http.cookies if c.name.endswith("_csrf"))


def _audit(seeded_url, actor):
    engine = make_engine(seeded_url)
    with engine.connect() as conn:
        rows = audit.recent(conn, actor=actor)
    engine.dispose()
    return rows


@pytest.mark.browser
def test_login_is_required_for_pages_and_xhr_but_not_for_public_paths(base):
    r = requests.get(base + "/?lang=en", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/login?next=%2F%3Flang%3Den"
    for path in ("/_dash-layout", "/_dash-dependencies", "/layers/grids.pbf", "/export/cases.csv"):
        r = requests.get(base + path, allow_redirects=False, timeout=10, headers={"Accept": "application/json"})
        assert r.status_code == 401, (path, r.status_code)
        assert r.json()["error"] == "login_required" and r.json()["login"] == "/login"
    r = requests.post(base + "/_dash-update-component", json={}, timeout=10)
    assert r.status_code in (401, 403)  # no session: no CSRF token, no user
    assert requests.get(base + "/healthz", timeout=10).status_code == 200
    assert requests.get(base + "/assets/auth.css", timeout=10).status_code == 200
    login = requests.get(base + "/login", timeout=10)
    assert login.status_code == 200 and "登录" in login.text and "/assets/auth.css" in login.text
    assert "Sign in" in requests.get(base + "/login?lang=en", timeout=10).text
    # Token-authenticated paths are left to their own checks: never a redirect to the login form.
    for path in ("/api/v1/cases", "/open311/v2/discovery.json"):
        r = requests.get(base + path, allow_redirects=False, timeout=10)
        assert r.status_code != 302 and "login" not in r.headers.get("Location", ""), (path, r.status_code)


@pytest.mark.browser
def test_login_sets_a_safe_session_cookie_and_opens_the_page(base, seeded_url):
    name = _user(seeded_url)
    http, r = _login(base, name, next_="/?lang=en")
    assert r.status_code == 302 and r.headers["Location"] == "/?lang=en"
    cookie = next(h for h in r.raw.headers.getlist("Set-Cookie") if h.startswith("cgzt_session_") and "_csrf=" not in h)
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert "httponly" in flags and "samesite=lax" in flags and "secure" not in flags
    page = http.get(base + "/", allow_redirects=False, timeout=30)
    assert page.status_code == 200 and "_dash-renderer" in page.text and "cgzt-auth-badge" in page.text
    assert [r["kind"] for r in _audit(seeded_url, name)] == ["login"]
    assert _audit(seeded_url, name)[0]["remote"] == "127.0.0.1"


@pytest.mark.browser
def test_secure_cookies_when_configured(strict_base):
    r = requests.get(strict_base + "/login", timeout=10)
    cookies = r.raw.headers.getlist("Set-Cookie")
    assert len(cookies) == 2  # the session and the CSRF cookie Dash reads
    for cookie in cookies:
        assert "secure" in {f.strip().lower() for f in cookie.split(";")[1:]}, cookie


@pytest.mark.browser
def test_wrong_password_is_refused_audited_and_locks(base, seeded_url):
    name = _user(seeded_url, "viewer")
    http, r = _login(base, name, password="not the password")
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    _, r = _login(base, "no-such-user", password="not the password")
    assert r.status_code == 401 and "用户名或密码错误" in r.text  # the same answer: names are not revealed
    for _ in range(4):  # default policy: 5 failures in a row lock the account
        _login(base, name, password="not the password")
    _, r = _login(base, name)
    assert r.status_code == 401 and "锁定" in r.text
    kinds = [row["kind"] for row in _audit(seeded_url, name)]
    assert kinds.count("login_failed") == 6 and "lockout" in kinds and "login" not in kinds


@pytest.mark.browser
def test_login_form_needs_its_csrf_token(base, seeded_url):
    name = _user(seeded_url)
    http = requests.Session()
    http.get(base + "/login", timeout=10)
    r = http.post(base + "/login", data={"name": name, "password": PASSWORD}, allow_redirects=False, timeout=10)
    assert r.status_code == 403
    assert _audit(seeded_url, name) == []  # refused before any password check


@pytest.mark.browser
def test_next_cannot_redirect_to_another_site(base, seeded_url):
    name = _user(seeded_url)
    for evil in ("//evil.example.com/", "https://evil.example.com/", "/\\evil.example.com"):
        _, r = _login(base, name, next_=evil)
        assert r.status_code == 302 and r.headers["Location"] == "/", (evil, r.headers["Location"])


@pytest.mark.browser
def test_logout_needs_csrf_ends_the_session_and_is_audited(base, seeded_url):
    name = _user(seeded_url)
    http, _ = _login(base, name)
    assert http.post(base + "/logout", allow_redirects=False, timeout=10).status_code == 403
    assert http.get(base + "/", allow_redirects=False, timeout=30).status_code == 200
    r = http.post(base + "/logout", headers={"X-CSRFToken": _csrf_cookie(http)}, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert http.get(base + "/", allow_redirects=False, timeout=10).status_code == 302
    assert _audit(seeded_url, name)[0]["kind"] == "logout"


@pytest.mark.browser
def test_a_disabled_user_loses_an_open_session(base, seeded_url):
    name = _user(seeded_url, "viewer")
    http, _ = _login(base, name)
    assert http.get(base + "/_dash-layout", timeout=30).status_code == 200
    engine = make_engine(seeded_url)
    with engine.begin() as conn:
        users.disable(conn, name, actor="tests")
    engine.dispose()
    # Workers re-read a user at most every USER_TTL_S seconds: refused within that time, and for good.
    deadline = time.monotonic() + USER_TTL_S + 5
    while http.get(base + "/_dash-layout", timeout=30).status_code == 200:
        assert time.monotonic() < deadline, "a disabled user still served after USER_TTL_S"
        time.sleep(0.2)
    assert http.get(base + "/_dash-layout", timeout=30).status_code == 401


@pytest.mark.browser
def test_a_session_works_on_every_worker(live_server, seeded_url):
    """Two server processes over one store (as behind a balancer): the signing key is shared via the store."""
    a = live_server(seeded_url, CGZT_SESSION_COOKIE="cgzt_shared", WORKER="a")
    b = live_server(seeded_url, CGZT_SESSION_COOKIE="cgzt_shared", WORKER="b")
    assert a != b
    http, r = _login(a, _user(seeded_url))
    assert r.status_code == 302
    assert http.get(b + "/_dash-layout", timeout=30).status_code == 200
    assert requests.get(b + "/_dash-layout", timeout=30).status_code == 401


@pytest.mark.browser
def test_security_headers_on_every_kind_of_response(base, strict_base):
    for path in ("/", "/login", "/healthz", "/assets/auth.css", "/_dash-layout"):
        r = requests.get(base + path, allow_redirects=False, timeout=10)
        csp = r.headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-eval'" not in csp, path
        assert "script-src 'self' 'sha256-" in csp and "object-src 'none'" in csp, path
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Referrer-Policy"] == "same-origin"
        assert r.headers["X-Frame-Options"] == "DENY"
    r = requests.get(strict_base + "/login", timeout=10)
    assert "frame-ancestors https://wall.example.cn" in r.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in r.headers


@pytest.mark.browser
def test_oversized_bodies_get_a_clear_413(strict_base):
    big = json.dumps({"output": "x", "inputs": [], "pad": "x" * 10_000})
    r = requests.post(strict_base + "/_dash-update-component", data=big, timeout=10,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"] == "too_large" and "4096" in r.json()["message"]
    r = requests.post(strict_base + "/login", data={"name": "x" * 10_000}, timeout=10)
    assert r.status_code == 413 and "请求过大" in r.text
    small = requests.post(strict_base + "/login", data={"name": "x"}, timeout=10)
    assert small.status_code == 403  # under the limit the request gets as far as the CSRF check


@pytest.mark.browser
def test_sign_in_through_the_form_then_callbacks_need_the_csrf_header(browser, base, seeded_url):
    """A real browser: the login form, the map, no CSP violation; then a recorded Dash callback POST is
    refused (403) without the X-CSRFToken header and answered with it."""
    from tests.browser_fixtures import VIEWPORT, screenshot, wait_for_maps, CAPTURE_MAPS_JS
    name = _user(seeded_url, "supervisor", districts=["330203"])
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.add_init_script(CAPTURE_MAPS_JS)
    try:
        page = context.new_page()
        errors = []
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        posts = []
        page.on("request", lambda req: "/_dash-update-component" in req.url and posts.append(req))
        page.goto(base + "/")
        assert "/login" in page.url
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        wait_for_maps(page, 1)
        page.wait_for_function("() => document.querySelector('.cgzt-auth-badge') !== null")
        page.wait_for_timeout(1500)
        screenshot(page, "auth-signed-in")
        assert posts, "the page made no callback request"
        assert errors == [], errors  # a CSP violation would be reported here
        req = posts[0]
        assert req.headers.get("x-csrftoken")
        cookies = {c["name"]: c["value"] for c in context.cookies(base)}
        body, url = req.post_data, req.url
    finally:
        context.close()
    plain = {"Content-Type": "application/json"}
    r = requests.post(url, data=body, cookies=cookies, headers=plain, timeout=30)
    assert r.status_code == 403 and r.json()["error"] == "csrf"
    csrf = next(v for k, v in cookies.items() if k.endswith("_csrf"))
    r = requests.post(url, data=body, cookies=cookies, timeout=60,
                      headers={**plain, "X-CSRFToken": csrf})
    assert r.status_code in (200, 204), r.text[:300]
    wrong = requests.post(url, data=body, cookies=cookies, timeout=30,
                          headers={**plain, "X-CSRFToken": "forged"})
    assert wrong.status_code == 403
    engine = make_engine(seeded_url)
    with engine.connect() as conn:
        refused = conn.execute(select(AuditLog.kind).where(AuditLog.actor == name,
                                                          AuditLog.kind == "csrf_refused")).all()
    engine.dispose()
    assert len(refused) == 2


def test_health_probe_answers_503_while_the_store_is_down_with_auth_on():
    """The signing key lives in the store: a server started while the store is down must still say so."""
    from dashboard.server import create_app
    engine = make_engine("postgresql://nobody@127.0.0.1:1/nowhere", pool_pre_ping=False)
    client = create_app(engine, auth=True).server.test_client()
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json["status"] == "unavailable"
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]


def test_a_worker_reads_a_signed_in_user_once_not_per_request(seeded_url, monkeypatch):
    """Requests of one session spread over several USER_TTL_S read the user from the store once: what a
    worker re-reads every USER_TTL_S is the users' version (a query of the meta table), not each user."""
    from sqlalchemy import event

    from dashboard.server import create_app
    monkeypatch.setenv("CGZT_WARM_CUBE", "0")
    name = _user(seeded_url, "viewer")
    engine = make_engine(seeded_url)
    client = create_app(engine).server.test_client()
    token = _csrf_from_form(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token,
                                       "next": "/"}).status_code == 302
    reads = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cur, stmt, *a: reads.append(stmt) if "FROM users" in stmt else None)
    for _ in range(4):
        assert client.get("/live/stream?after=x").status_code == 400   # signed in (not 401), bad cursor
        time.sleep(USER_TTL_S * 0.8)
    assert len(reads) <= 1, reads
    engine.dispose()


def _layout(http, base, path="/"):
    """The map layout the server renders for `path` (read from the Referer, as for the browser's fetch)."""
    r = http.get(base + "/_dash-layout", headers={"Referer": base + path}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    return r.json()


def _find(node, pred):
    if isinstance(node, dict):
        if pred(node):
            return node
        for v in node.get("props", {}).values() if "props" in node else node.values():
            got = _find(v, pred)
            if got is not None:
                return got
    elif isinstance(node, list):
        for v in node:
            got = _find(v, pred)
            if got is not None:
                return got
    return None


def _crumbs(layout) -> list[str]:
    nav = _find(layout, lambda n: n.get("props", {}).get("id") == "crumbs")
    return [c["props"]["children"] for c in nav["props"]["children"] if "cgzt-crumb" in c["props"].get("className", "")
            and "sep" not in c["props"]["className"]]


def test_a_district_supervisor_lands_on_their_districts(base, seeded_url):
    """The city of a supervisor of one district is that district: the map frames it and the breadcrumb is
    named after it (not 宁波市, whose other districts show them nothing); of two, both."""
    from dashboard.map_page import data_bounds, initial_extent
    from dashboard.panels import reference
    engine = make_engine(seeded_url)
    ref, city = reference.load(engine), initial_extent(data_bounds(engine))
    engine.dispose()
    one, two = [d[0] for d in ref["districts"][:2]]
    name = lambda d: reference.name(ref, d, "zh")  # noqa: E731
    http, r = _login(base, _user(seeded_url, "supervisor", districts=[one]))
    assert r.status_code in (302, 303)
    lay = _layout(http, base)
    m = _find(lay, lambda n: n.get("props", {}).get("id") == "map")["props"]
    want = initial_extent(reference.bounds(ref, one))
    assert m["zoom"] == want["zoom"] and m["center"] == pytest.approx(want["center"])
    assert _crumbs(lay) == [name(one)]
    assert _crumbs(_layout(http, base, f"/district/{one}")) == [name(one)]   # not "海曙区 › 海曙区"
    http, _ = _login(base, _user(seeded_url, "supervisor", districts=[one, two]))
    assert _crumbs(_layout(http, base)) == [f"{name(one)}、{name(two)}"]
    http, _ = _login(base, _user(seeded_url, "admin"))
    lay = _layout(http, base)
    assert _crumbs(lay) == ["宁波市"]
    m = _find(lay, lambda n: n.get("props", {}).get("id") == "map")["props"]
    assert m["zoom"] == city["zoom"] and m["center"] == pytest.approx(city["center"])  # the whole city
    assert want != city
