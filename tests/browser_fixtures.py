"""Pytest plugin: a live dashboard server and a real Chromium driven through Playwright.

Registered from tests/conftest.py (``pytest_plugins = ["tests.browser_fixtures"]``).

Fixtures
    live_server   session-scoped factory: ``base = live_server(database_url)`` starts
                  ``python app.py serve --no-seed`` on a free port with DATABASE_URL set, waits for
                  ``GET /healthz`` == 200 and returns the base URL. One server per URL per session.
    browser       session-scoped Playwright Browser on the Debian chromium (/usr/lib/chromium/chromium).
    page          a fresh 1600x900 page per test; an init script captures every Leaflet map into
                  ``window.__maps``; console errors are collected in ``page.console_errors``.

    logged_in_page  factory: ``logged_in_page(base, database_url, role="liaison", department=...)`` adds a user
                  of that role to the server's store, signs a fresh browser context in and returns its page.

Every live server gets its own session cookie name (CGZT_SESSION_COOKIE, ports share cookies) and a test
admin signed in over HTTP right after it starts; its cookies go into every ``page`` context, so pages open
signed in as that admin. For an anonymous page make a context of your own from ``browser``.

Helpers
    layer_counts(page)        drawn features per map pane and per GeoJSON layer, from Leaflet's own state.
    wait_for_maps(page, n)    wait until n Leaflet maps exist.
    screenshot(page, name)    write artifacts/<name>.png and return its path.

The Debian browser is the only one used: never run ``playwright install``. When Playwright or the browser is
missing the browser tests are skipped, except under CI=true where they fail.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/lib/chromium/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
VIEWPORT = {"width": 1600, "height": 900}
SERVER_START_TIMEOUT = float(os.environ.get("LIVE_SERVER_TIMEOUT", "90"))
IN_CI = os.environ.get("CI", "").lower() == "true"

# Leaflet may be loaded after init scripts run (Dash loads dash-leaflet's bundle late), so hook window.L as
# soon as it is assigned: an accessor property catches the assignment, a poll catches anything else.
CAPTURE_MAPS_JS = r"""
(() => {
  if (window.__mapCaptureInstalled) return;
  window.__mapCaptureInstalled = true;
  window.__maps = window.__maps || [];
  const hook = (L) => {
    if (!L || !L.Map || L.Map.__captureHooked) return;
    L.Map.__captureHooked = true;
    L.Map.addInitHook(function () { window.__maps.push(this); });
  };
  let current = window.L;
  if (current) { hook(current); return; }
  try {
    Object.defineProperty(window, 'L', {
      configurable: true, enumerable: true,
      get() { return current; },
      set(v) { current = v; hook(v); },
    });
  } catch (e) { /* fall back to polling */ }
  const poll = setInterval(() => {
    if (window.L && window.L.Map) { hook(window.L); clearInterval(poll); }
  }, 5);
})();
"""

# Per map: features drawn in each pane, and per GeoJSON layer (key "<pane>:<id or index>") its feature count.
# Cluster layers count their visible markers; grouping layers are walked, not counted.
LAYER_COUNTS_JS = r"""
() => {
  const L = window.L;
  const maps = window.__maps || [];
  return maps.map((map, mi) => {
    const panes = {};
    const geojson = {};
    const seen = new Set();
    const isGroup = (l) => typeof l.getLayers === 'function';
    const leafCount = (l) => {
      if (!isGroup(l)) return 1;
      let n = 0; l.getLayers().forEach(c => { n += leafCount(c); }); return n;
    };
    const paneOf = (l) => (l.options && l.options.pane) || (l instanceof L.Marker ? 'markerPane' : 'overlayPane');
    let gi = 0;
    map.eachLayer((layer) => {
      if (L.GeoJSON && layer instanceof L.GeoJSON) {
        const o = layer.options || {};
        const key = paneOf(layer) + ':' + (o.id || o.dashId || ('geojson' + gi));
        gi += 1;
        geojson[key] = (geojson[key] || 0) + leafCount(layer);
      }
      if (isGroup(layer) || (L.GridLayer && layer instanceof L.GridLayer) || (L.Renderer && layer instanceof L.Renderer)) return;
      const id = L.stamp(layer);
      if (seen.has(id)) return;
      seen.add(id);
      const p = paneOf(layer);
      panes[p] = (panes[p] || 0) + 1;
    });
    return {map: mi, panes, geojson};
  });
}
"""


def _unavailable(why: str):
    if IN_CI:
        pytest.fail(f"CI=true and {why}", pytrace=False)
    pytest.skip(why)


def die_with_parent() -> None:
    """In a child process (Popen preexec_fn): get SIGTERM when the test process dies, even by SIGKILL or a
    timeout, so no server outlives the run (Linux prctl PR_SET_PDEATHSIG; elsewhere nothing)."""
    import ctypes
    import signal
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, limit: int = 6000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no output)"
    return text[-limit:] or "(empty)"


class LiveServer:
    """One ``python app.py serve`` subprocess; stop() and start() again bring it back on the same port (a
    restart under an open page)."""

    def __init__(self, database_url: str, log_dir: Path, extra_env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir, self.starts = log_dir, 0
        self.database_url = database_url
        self.env = dict(os.environ, DATABASE_URL=database_url, PYTHONUNBUFFERED="1",
                        CGZT_SESSION_COOKIE=f"cgzt_session_{self.port}")
        self.env.update(extra_env or {})
        self.session_cookie = self.env["CGZT_SESSION_COOKIE"]
        self.start()

    def start(self):
        self.starts += 1
        self.log = self.log_dir / f"server-{self.port}-{self.starts}.log"
        self._log_fh = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", "serve", "--no-seed", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=self._log_fh, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=die_with_parent)
        return self

    def wait_ready(self, timeout: float = SERVER_START_TIMEOUT):
        import requests
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"dashboard server exited with code {self.proc.returncode} before /healthz answered;"
                            f" its output:\n{_tail(self.log)}", pytrace=False)
            try:
                r = requests.get(self.url + "/healthz", timeout=2)
                if r.status_code == 200:
                    return self
                last = f"HTTP {r.status_code}: {r.text[:300]}"
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}"
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"dashboard server at {self.url} did not answer GET /healthz with 200 within {timeout:.0f} s"
                    f" (last: {last}); its output:\n{_tail(self.log)}", pytrace=False)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log_fh.close()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """Factory: ``live_server(database_url) -> base URL``. Servers are shared per URL for the session."""
    servers: dict[str, LiveServer] = {}
    log_dir = tmp_path_factory.mktemp("live_server")

    def start(database_url: str, **extra_env) -> str:
        key = database_url + repr(sorted(extra_env.items()))
        server = servers.get(key)
        if server is not None and server.proc.poll() is not None:
            servers.pop(key).stop()
            server = None
        if server is None:
            server = LiveServer(database_url, log_dir, extra_env)
            servers[key] = server
            server.wait_ready()
            if not extra_env.get("CGZT_SECURE_COOKIES"):  # Secure cookies never travel over plain http
                cookies = sign_in(server.url, database_url, f"test-admin-{server.port}", role="admin")
                _SIGNED_IN.extend(cookies)
                for context in list(_OPEN_CONTEXTS):
                    context.add_cookies(cookies)
        return server.url

    yield start
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -r tests/requirements.txt)")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    except Exception as exc:  # noqa: BLE001 - report any launch problem the same way
        pw.stop()
        _unavailable(f"Chromium at {CHROMIUM} did not start: {exc}")
    yield b
    b.close()
    pw.stop()


_SIGNED_IN: list[dict] = []      # cookies of the test admin of every live server started in this session
_OPEN_CONTEXTS: list = []


def sign_in(base_url: str, database_url: str, name: str, role: str = "admin", **user_kw) -> list[dict]:
    """Add user `name` (random password) to the store, sign in through POST /login and return the
    session cookies in Playwright's add_cookies() format."""
    import secrets

    import requests

    from data import users
    from data.store.engine import make_engine
    password = secrets.token_urlsafe(16)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            users.add(conn, name, password, role, actor="tests", **user_kw)
    finally:
        engine.dispose()
    http = requests.Session()
    form = http.get(base_url + "/login", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    r = http.post(base_url + "/login", data={"name": name, "password": password, "csrf_token": token, "next": "/"},
                  allow_redirects=False, timeout=30)
    assert r.status_code == 302, f"test sign-in of {name} failed: HTTP {r.status_code}: {r.text[:300]}"
    return [{"name": c.name, "value": c.value, "url": base_url} for c in http.cookies]


def new_page(browser, viewport: dict | None = None, cookies: list | None = None):
    """A page in a fresh context as every browser test opens one: zh-CN in Shanghai's time zone, Leaflet maps
    captured (window.__maps), a 30 s default timeout and console errors collected in page.console_errors.
    The caller closes page.context."""
    context = browser.new_context(viewport=viewport or VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.add_init_script(CAPTURE_MAPS_JS)
    if cookies:
        context.add_cookies(cookies)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    pg.console_errors = []
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.on("pageerror", lambda e: pg.console_errors.append(f"pageerror: {e.stack or e}"))
    return pg


@pytest.fixture
def logged_in_page(browser):
    """Factory: ``logged_in_page(base, database_url, role="viewer", districts=[...])`` -> a signed-in page."""
    contexts = []

    def make(base_url: str, database_url: str, role: str = "admin", **user_kw):
        import uuid
        name = f"test-{role}-{uuid.uuid4().hex[:8]}"
        pg = new_page(browser, cookies=sign_in(base_url, database_url, name, role, **user_kw))
        contexts.append(pg.context)
        pg.user_name = name
        return pg

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(browser, request):
    pg = new_page(browser, cookies=_SIGNED_IN)
    context = pg.context
    _OPEN_CONTEXTS.append(context)
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        try:
            screenshot(pg, "failed-" + request.node.nodeid)
        except Exception:  # noqa: BLE001 - a failed screenshot must not hide the real failure
            pass
    _OPEN_CONTEXTS.remove(context)
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


def wait_for_maps(page, n: int = 1, timeout: float = 30_000):
    """Wait until at least n Leaflet maps were created on the page."""
    page.wait_for_function("n => (window.__maps || []).length >= n", arg=n, timeout=timeout)


def wait_counts(page, want: dict, timeout=30_000):
    """Wait until the first map's GeoJSON layers draw exactly `want` features per pane (None: pane absent)."""
    page.wait_for_function("""(want) => {
        const m = (window.__maps || [])[0]; if (!m) return false;
        const out = {};
        m.eachLayer(l => { if (l instanceof L.GeoJSON) { out[l.options.pane] = (out[l.options.pane] || 0) + l.getLayers().length; } });
        return Object.entries(want).every(([k, v]) => v === null ? !(k in out) : out[k] === v);
    }""", arg=want, timeout=timeout)


def layer_counts(page) -> list[dict]:
    """Per captured map: ``{"map": i, "panes": {pane: drawn features}, "geojson": {"<pane>:<id>": features}}``."""
    return page.evaluate(LAYER_COUNTS_JS)


def screenshot(page, name: str) -> Path:
    """Save a full-viewport screenshot as artifacts/<name>.png (name sanitised) and return the path."""
    ARTIFACTS.mkdir(exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:150] or "page"
    path = ARTIFACTS / f"{safe}.png"
    page.screenshot(path=str(path))
    return path
