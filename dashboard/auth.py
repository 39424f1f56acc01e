"""Login, sessions, CSRF, security headers and request limits for the dashboard's Flask server.

Why on the server: every route (pages, Dash callbacks, layers, exports) passes one before_request hook, so
a rule cannot be skipped by calling an endpoint directly. What each part does:

- Sessions are Flask's signed cookies (HttpOnly, SameSite=Lax, Secure when CGZT_SECURE_COOKIES=1). The
  signing key is CGZT_SECRET_KEY, or one generated once and kept in the store's meta table, so a session
  made on one worker is valid on every worker. Workers cache the signed-in users and ask whether users
  changed (data.users.version) at most every USER_TTL_S seconds: a disabled user is logged out, and a new
  scope applies, on every worker within that time (within USER_MAX_AGE_S for edits made in SQL rather
  than through the app). (A signed cookie cannot be revoked server-side before it expires; logout clears
  it in the browser and sessions expire after CGZT_SESSION_HOURS.)
- Login is required for every path except /login, /healthz, static files and the token-authenticated
  paths in TOKEN_PATHS (/api/v1/..., /open311/..., /wall...): those use their own tokens, carry no
  cookies, and their owners (dashboard/api, the wall) check the token on every request.
- CSRF: a random token per session. Forms send it as `csrf_token`; Dash's renderer sends the cookie named
  by Dash(csrf_token_name=...) back as the X-CSRFToken header on every callback POST (double submit, the
  mechanism Dash itself provides); both are compared with the session's copy on POST/PUT/PATCH/DELETE.
- Headers on every response: a Content-Security-Policy that allows the app's own origin (plus the tile
  servers of the basemaps as images, and the hashes of Dash's inline scripts), frame-ancestors from
  CGZT_FRAME_ANCESTORS, X-Content-Type-Options, Referrer-Policy.
- Bodies above CGZT_MAX_REQUEST_BYTES (default 16 MiB) get a clear 413 before anything reads them.
"""
from __future__ import annotations

import functools
import hmac
import json
import os
import secrets
import threading
import time
import weakref
from datetime import timedelta
from html import escape
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, g, jsonify, redirect, request, session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from dashboard.i18n import t
from data import audit, users
from data.store import meta as store_meta
from data.store.schema import Meta
from layers.scope import NOTHING, UNRESTRICTED, Scope

TOKEN_PATHS = ("/api/v1", "/open311", "/wall")      # token-authenticated: never cookies, never CSRF
API_PATHS = ("/api/v1", "/open311")   # never read the session either (the wall does: a signed-in admin needs no token)
PUBLIC_PATHS = ("/login", "/healthz", "/favicon.ico", "/_favicon.ico")
STATIC_PREFIXES = ("/assets/", "/_dash-component-suites/")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
CSRF_HEADER = "X-CSRFToken"
CSRF_FIELD = "csrf_token"
# Basemap tile servers (dashboard/map_page.py): images only; nothing else may come from elsewhere.
TILE_ORIGINS = ("https://tile.openstreetmap.org", "https://*.tianditu.gov.cn", "https://*.is.autonavi.com")
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
SECRET_META_KEY = "session_secret"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def session_cookie_name() -> str:
    """CGZT_SESSION_COOKIE (default cgzt_session): two apps on one host need different names."""
    return os.environ.get("CGZT_SESSION_COOKIE", "").strip() or "cgzt_session"


def csrf_cookie_name() -> str:
    """The readable cookie Dash's renderer copies into the X-CSRFToken header."""
    return session_cookie_name() + "_csrf"


def max_request_bytes() -> int:
    raw = os.environ.get("CGZT_MAX_REQUEST_BYTES", "").strip()
    try:
        return int(raw) if raw else DEFAULT_MAX_BYTES
    except ValueError:
        raise ValueError(f"CGZT_MAX_REQUEST_BYTES must be a number of bytes, got {raw!r}") from None


def frame_ancestors() -> str:
    """CGZT_FRAME_ANCESTORS: origins allowed to embed the app (e.g. a wall's frame), space or comma separated."""
    origins = [o for o in os.environ.get("CGZT_FRAME_ANCESTORS", "").replace(",", " ").split() if o]
    for o in origins:
        u = urlsplit(o)
        if o != "'self'" and (u.scheme not in ("http", "https") or not u.netloc or u.path not in ("", "/")):
            raise ValueError(f"CGZT_FRAME_ANCESTORS: {o!r} is not an origin such as https://wall.example.cn")
    return " ".join(origins) or "'none'"


def secret_key(engine: Engine) -> str:
    """CGZT_SECRET_KEY, else the store's generated key (created once; racing workers all read the winner's)."""
    env = os.environ.get("CGZT_SECRET_KEY", "").strip()
    if env:
        if len(env) < 32:
            raise ValueError("CGZT_SECRET_KEY must be at least 32 characters (e.g. python -c "
                             "'import secrets; print(secrets.token_urlsafe(48))')")
        return env
    with engine.connect() as conn:
        key = store_meta.get(conn, SECRET_META_KEY)
    if key:
        return key
    try:
        with engine.begin() as conn:
            conn.execute(Meta.__table__.insert().values(key=SECRET_META_KEY,
                                                        value=json.dumps(secrets.token_urlsafe(48))))
    except IntegrityError:
        pass  # another worker stored one first: use theirs
    with engine.connect() as conn:
        return store_meta.get(conn, SECRET_META_KEY)


# -- who is asking ---------------------------------------------------------------------------------

USER_TTL_S = 2.0      # how often a worker asks whether users changed (data.users.version)
USER_MAX_AGE_S = 60.0  # and re-reads a user even when they did not (an edit made in SQL, not through the app)
_known: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()   # engine -> _Known
_known_lock = threading.Lock()


class _Known:
    """A worker's signed-in users of one store, valid while the users' version stays what it read."""

    def __init__(self):
        self.checked, self.version, self.users = float("-inf"), None, {}   # users: uid -> (read at, user)


def current_user() -> users.User | None:
    """The signed-in, active user of this request, or None. A worker asks whether users changed at most
    every USER_TTL_S (one query for all its users) and re-reads a user when they did, or USER_MAX_AGE_S
    after the last read; reading the user per request was two queries in each of 200 open maps' polls."""
    if "cgzt_user" not in g:
        uid = session.get("uid")
        user = None
        if uid is not None:
            engine = _state().engine
            with _known_lock:
                known = _known.setdefault(engine, _Known())
            now = time.monotonic()
            if now - known.checked >= USER_TTL_S:
                with engine.connect() as conn:
                    v = users.version(conn)
                with _known_lock:
                    if v != known.version:
                        known.users.clear()
                    known.version, known.checked = v, now
            with _known_lock:
                hit = known.users.get(uid)
            if hit is not None and now - hit[0] < USER_MAX_AGE_S:
                user = hit[1]
            else:
                with engine.connect() as conn:
                    user = users.get(conn, uid)
                with _known_lock:
                    if len(known.users) > 10000:
                        known.users.clear()
                    known.users[uid] = (now, user)
        g.cgzt_user = user
    return g.cgzt_user


def current_scope() -> Scope:
    """What this request may see: the user's scope; everything when auth is off (tests, tools); nothing
    for a request without a user."""
    if not _state().enabled:
        return UNRESTRICTED
    user = current_user()
    return user.scope if user is not None else NOTHING


def request_scope() -> Scope:
    """current_scope() inside a request; UNRESTRICTED outside one (benches, the CLI, tests calling a panel
    function directly), so code shared by both can always ask."""
    from flask import has_app_context, has_request_context
    if not (has_request_context() and has_app_context()):
        return UNRESTRICTED
    return current_scope()


def require_role(*roles: str):
    """Decorator for Flask views: 403 unless the signed-in user has one of `roles` (auth off: allowed)."""
    def wrap(view):
        @functools.wraps(view)
        def inner(*a, **kw):
            if _state().enabled:
                user = current_user()
                if user is None or user.role not in roles:
                    return _refuse(403, "forbidden", f"this needs the role {' or '.join(roles)}")
            return view(*a, **kw)
        return inner
    return wrap


def remote_addr() -> str | None:
    return request.remote_addr


def csrf_token() -> str:
    """This session's CSRF token, created on first use."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


# -- wiring ----------------------------------------------------------------------------------------

class _AuthState:
    def __init__(self, engine: Engine, enabled: bool, script_hashes: list[str]):
        self.engine = engine
        self.enabled = enabled
        self.script_hashes = script_hashes


def _state() -> _AuthState:
    from flask import current_app
    return current_app.extensions["cgzt_auth"]


def dash_options() -> dict:
    """Keyword arguments for dash.Dash so its renderer sends our CSRF cookie as the header we check."""
    return {"csrf_token_name": csrf_cookie_name(), "csrf_header_name": CSRF_HEADER}


def install(server: Flask, engine: Engine, enabled: bool = True, script_hashes: list[str] | None = None) -> None:
    """Add sessions, the login routes, the login/CSRF hook, security headers and the size limit.

    enabled=False keeps the headers and the size limit but requires no login and no CSRF token: for tests
    and tools that drive the app without people (never for serving).
    """
    limit = max_request_bytes()
    server.config.update(
        MAX_CONTENT_LENGTH=limit,
        SESSION_COOKIE_NAME=session_cookie_name(), SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=_flag("CGZT_SECURE_COOKIES"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=float(os.environ.get("CGZT_SESSION_HOURS", "12"))),
    )
    state = _AuthState(engine, enabled, list(script_hashes or []))
    server.extensions["cgzt_auth"] = state
    ancestors = frame_ancestors()
    # The signing key is read (or made) when the first session is opened, not here: a server that starts
    # while the store is down still comes up, and API-only use never writes the key into a store.
    if enabled:
        server.session_interface = _StoreKeySessions(engine)

    @server.before_request
    def _guard():
        if request.content_length is not None and request.content_length > limit:
            raise RequestEntityTooLarge()
        path = request.path
        if _sessionless(path):
            return None
        if not state.enabled:
            return None
        if request.method in UNSAFE_METHODS and not _csrf_ok():
            audit_safe("csrf_refused", target=path)
            return _refuse(403, "csrf", t("csrf_failed", _lang()))
        if path in PUBLIC_PATHS:
            return None
        if current_user() is None:
            if _wants_json(path):
                return _refuse(401, "login_required", t("login_required", _lang()))
            return redirect("/login?" + urlencode({"next": _next_target()}))
        return None

    @server.after_request
    def _headers(resp: Response):
        resp.headers.update(_security_headers(tuple(state.script_hashes), ancestors))
        if state.enabled and not _sessionless(request.path) and server.secret_key:
            token = csrf_token()
            if request.cookies.get(csrf_cookie_name()) != token:
                resp.set_cookie(csrf_cookie_name(), token, httponly=False, samesite="Lax",
                                secure=server.config["SESSION_COOKIE_SECURE"], path="/")
        return resp

    @server.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc):
        return _refuse(413, "too_large", t("too_large", _lang(), limit=_human(limit)))

    @server.get("/login")
    def login_page():
        if state.enabled and current_user() is not None:
            return redirect(_safe_next(request.args.get("next")))
        return _login_html(_lang(), request.args.get("next", "/"), None, 200)

    @server.post("/login")
    def login_submit():
        lang = _lang()
        name = request.form.get("name", "")
        nxt = request.form.get("next", "/")
        try:
            user = users.authenticate(engine, name, request.form.get("password", ""), remote=remote_addr())
        except users.LoginFailed as exc:
            if exc.reason == "locked" or exc.locked_until is not None:
                msg = t("login_locked", lang, until=exc.locked_until.strftime("%H:%M"))
            else:
                msg = t("login_failed", lang)
            return _login_html(lang, nxt, msg, 401, name=name)
        session.clear()  # a new session: nothing from before the login carries over
        session.permanent = True
        session["uid"] = user.id
        session["csrf"] = secrets.token_urlsafe(32)
        g.cgzt_user = user
        return redirect(_safe_next(nxt))

    @server.post("/logout")
    def logout():
        user = current_user()
        if user is not None:
            audit_safe("logout", target=user.name)
        session.clear()
        g.cgzt_user = None
        return redirect("/login")


class _StoreKeySessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions whose key comes from secret_key(engine) on first use. The API paths,
    which never use the session, get Flask's null session: no serializer is built and no cookie is read for
    each API request."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def open_session(self, app, request):
        if any(request.path.startswith(p + "/") for p in API_PATHS):
            return None   # Flask then uses make_null_session()
        return super().open_session(app, request)

    def get_signing_serializer(self, app):
        if not app.secret_key:
            try:
                app.secret_key = secret_key(self.engine)
            except SQLAlchemyError:
                return None  # store down: no session for this request (the health probe still answers)
        return super().get_signing_serializer(app)


def audit_safe(kind: str, target=None, detail=None) -> None:
    """Record an audit row for this request in its own transaction (for events that are not a write)."""
    user = current_user() if _state().enabled else None
    with _state().engine.begin() as conn:
        audit.record(conn, user.name if user else "-", kind, target=target, detail=detail, remote=remote_addr())


def _sessionless(path: str) -> bool:
    """Paths that never use the session: token-authenticated ones, static files, the health probe (which
    must answer 503 by itself while the store is down)."""
    return _is_token_path(path) or path.startswith(STATIC_PREFIXES) or path == "/healthz"


def _is_token_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in TOKEN_PATHS)


def _csrf_ok() -> bool:
    expected = session.get("csrf")
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
    return bool(expected) and bool(sent) and hmac.compare_digest(str(expected), str(sent))


def _wants_json(path: str) -> bool:
    """Dash's XHRs, layer and export fetches get a 401 JSON; a page load gets the login page."""
    if path.startswith(("/_dash-", "/layers/", "/live/")):
        return True
    if request.headers.get("X-Requested-With"):
        return True
    if request.method != "GET":
        return request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data")
    accept = request.accept_mimetypes
    return accept.best == "application/json" or (accept.accept_json and not accept.accept_html)


def _next_target() -> str:
    qs = request.query_string.decode("latin-1")
    return request.path + ("?" + qs if qs else "")


def _safe_next(nxt: str | None) -> str:
    """Only a local path: an open redirect to another site through ?next= is refused."""
    if not nxt or not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:
        return "/"
    u = urlsplit(nxt)
    return "/" if (u.scheme or u.netloc) else nxt


def _lang() -> str:
    try:
        values = request.values
    except HTTPException:  # an oversized or malformed body: the query string alone decides
        values = request.args
    lang = values.get("lang") or ""
    if lang not in ("zh", "en"):
        nxt = values.get("next") or ""
        lang = "en" if "lang=en" in nxt else "zh"
    return lang


def _refuse(status: int, code: str, message: str):
    if _wants_json(request.path):
        resp = jsonify({"error": code, "message": message, **({"login": "/login"} if status == 401 else {})})
    else:
        resp = Response(f"<!doctype html><meta charset=utf-8><title>{status}</title><p>{escape(message)}</p>",
                        mimetype="text/html")
    resp.status_code = status
    return resp


def _human(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MiB" if n >= 1024 * 1024 else f"{n} B"


@functools.lru_cache(maxsize=8)
def _security_headers(script_hashes: tuple[str, ...], ancestors: str) -> dict:
    """The same for every response of one app: built once, not per request. (Callers must not change it.)"""
    headers = {"Content-Security-Policy": _csp(list(script_hashes), ancestors), "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "same-origin", "Cross-Origin-Opener-Policy": "same-origin"}
    if ancestors == "'none'":
        headers["X-Frame-Options"] = "DENY"
    return headers


def _csp(script_hashes: list[str], ancestors: str) -> str:
    scripts = " ".join(["'self'"] + script_hashes)
    return "; ".join([
        "default-src 'self'",
        f"script-src {scripts}",
        "style-src 'self' 'unsafe-inline'",           # plotly and Leaflet inject <style> and style attributes
        f"img-src 'self' data: blob: {' '.join(TILE_ORIGINS)}",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        f"frame-ancestors {ancestors}",
    ])


def _login_html(lang: str, nxt: str, error: str | None, status: int, name: str = "") -> Response:
    other = "en" if lang == "zh" else "zh"
    demo = False
    try:
        with _state().engine.connect() as conn:
            demo = bool(store_meta.get(conn, "demo", False))
    except Exception:  # noqa: BLE001 - the notice is optional; the form must render anyway
        pass
    switch = "/login?" + urlencode({"lang": other, "next": _safe_next(nxt)})
    body = f"""<!doctype html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(t('login_title', lang))} · {escape(t('title', lang))}</title>
<link rel="stylesheet" href="/assets/auth.css"></head>
<body class="cgzt-auth-page">
<main class="cgzt-auth-box">
<div class="cgzt-auth-head"><h1>{escape(t('title', lang))}</h1>
<a class="cgzt-auth-lang" href="{escape(switch)}">{escape(t('lang_switch', lang))}</a></div>
<p class="cgzt-auth-sub">{escape(t('subtitle', lang))}</p>
{f'<p class="cgzt-auth-error" role="alert">{escape(error)}</p>' if error else ''}
<form method="post" action="/login">
<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token())}">
<input type="hidden" name="next" value="{escape(_safe_next(nxt))}">
<input type="hidden" name="lang" value="{lang}">
<label>{escape(t('login_name', lang))}<input name="name" autocomplete="username" required autofocus
 value="{escape(name)}"></label>
<label>{escape(t('login_password', lang))}<input name="password" type="password"
 autocomplete="current-password" required></label>
<button type="submit">{escape(t('login_submit', lang))}</button>
</form>
{f'<p class="cgzt-auth-demo">{escape(t("login_demo", lang))}</p>' if demo else ''}
</main></body></html>"""
    resp = Response(body, status=status, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def user_badge_html(lang: str = "zh") -> str:
    """The signed-in user, a link to the case workspace and a sign-out form, for the top of every page
    (dashboard/server.py)."""
    if not _state().enabled:
        return ""
    user = current_user()
    if user is None:
        return ""
    return (f'<form class="cgzt-auth-badge" method="post" action="/logout">'
            f'<span title="{escape(t("role_" + user.role, lang))}">{escape(user.display_name)}</span>'
            f'<a class="cgzt-auth-ws" href="/cases{"?lang=en" if lang == "en" else ""}">{escape(t("ws_title", lang))}</a>'
            f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token())}">'
            f'<button type="submit">{escape(t("logout", lang))}</button></form>')


__all__ = ["install", "current_user", "current_scope", "request_scope", "require_role", "csrf_token", "dash_options",
           "audit_safe", "TOKEN_PATHS", "user_badge_html"]
