"""Load: 200 viewers and 20 liaisons on a copy of the full PostgreSQL store, over real HTTP, for 5 minutes.

    python bench/load.py [--minutes 5] [--ramp 120] [--viewers 200] [--liaisons 20] [--workers 3] [--threads 150]
                         [--naive-minutes 1] [--write-rate 2] [--fault none|pg-restart|kill-worker]

What it does, in order:
1. Clones cgzt_full (`createdb -T`, dropped at the end; --template for another source), migrates the copy and
   adds the bench's users to it with data.users: viewers and supervisors (city-wide and of one district) and
   liaisons of the departments holding the most dispatched cases, plus an API token for the writer.
2. Serves it with gunicorn (`dashboard.wsgi:server`, gunicorn.conf.py's threaded workers: --workers processes,
   --threads each; each open map holds a live stream, and so a thread).
3. Records what a browser sends: a signed-in headless Chromium (the Debian one, as tests/browser_fixtures.py
   launches it) loads the map page, lets the live stream open, changes the district filter, drills into a
   grid and resets (the filter and drill go through `dash_clientside.set_props`, what the dropdown and a
   map click do), and as a liaison opens /cases, opens a dispatched case, accepts it and sends feedback.
   Every request (method, URL, body, start and end time) is kept per action. The requests of one action
   are split into waves: a request started after an earlier request of the action had come back belongs
   to a later wave (it may depend on that answer).
4. Drives the server from ONE asyncio process (aiohttp): every simulated user signs in through POST /login
   with the form's CSRF token and then replays the recorded actions wave by wave, with its own cookies and
   X-CSRFToken header. Each user keeps the Dash component state like the renderer does: a callback body's
   inputs and states are filled from the values earlier answers set (a drill-down starts from the user's
   current filter, the workspace confirms the version the server showed); what Dash does in the browser
   (the panel-ui copy of ui) is done the same way here.
   Static GETs revalidate with If-None-Match / If-Modified-Since; fingerprinted files cached for a year are
   not fetched again. Each viewer holds the live stream open as assets/live_stream.js does (GET
   /live/stream, Server-Sent Events; reconnecting with Last-Event-ID when the server ends it, after
   Retry-After when refused) and every --think seconds (exponential) changes a filter, drills down or
   resets, or reloads the page. Liaisons work their own share of their department's dispatched cases:
   open, accept, feed back. A writer POSTs /api/v1/cases at --write-rate per second with an
   Idempotency-Key (its 503s retried with the same key), so the streams carry news.
   The users sign in and load the map at random moments of the first --ramp seconds (a shift arriving);
   the measured window is the --minutes after it. The ramp's requests are summed on one line apart.
5. Prints per request kind count, p50/p95/p99 ms and errors (not 2xx/304, or no answer in --timeout s); the
   live push's latency (from the writer's 201 to each viewer's stream carrying the case); the
   server's CPU (gunicorn processes, and the PostgreSQL backends of the bench database, read by psutil)
   and the client's own CPU (process_time). Then the same load, shorter (--naive-minutes), against the
   naive baseline: `python app.py serve` (Flask's single-process development server).

Faults (--fault, in the gunicorn run; bench/faults.py runs both): `pg-restart` restarts the local PostgreSQL
cluster half-way (`pg_ctlcluster --skip-systemctl-redirect 15 main restart`; it is started again in a
finally if it is down) and prints the 503s with Retry-After against other errors, the time from the
database's return to the first success, and checks every case whose POST got 201 is in the store exactly
once (its idempotency key is its description). `kill-worker` SIGKILLs one gunicorn worker half-way and
prints the errors and how long until gunicorn had a new worker serving.

Target: p95 <= 500 ms for every kind and zero errors.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import api as api_bench  # noqa: E402  bench/api.py: server start and stop

from dashboard.live_stream import STREAM_PATH  # noqa: E402
from tests.browser_fixtures import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  the Debian chromium, as the tests use it

PG_ADMIN = ["-h", "127.0.0.1", "-U", "postgres"]
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"
PASSWORD = "bench-" + uuid.uuid4().hex
UPDATE = "/_dash-update-component"
LONG_CACHE = 86400          # a file cached this long is not fetched again (fingerprinted Dash bundles)


# ---------------------------------------------------------------------------------------------- the store

def clone(template: str) -> tuple[str, str]:
    name = f"bench_load_{uuid.uuid4().hex[:6]}"
    subprocess.run(["createdb", *PG_ADMIN, "-T", template, name], check=True)
    return PG + name, name


def drop(name: str) -> None:
    subprocess.run(["dropdb", *PG_ADMIN, "--force", "--if-exists", name], check=False)


def prepare(url: str, viewers: int, liaisons: int) -> dict:
    """Users, a writer token, grid points and each liaison's own dispatched cases, in the copied store."""
    from shapely import point_on_surface
    from sqlalchemy import func, select

    from data import tokens, users, workflow
    from data.store import make_engine
    from data.store.migrate import upgrade
    from data.store.schema import Case, District, Grid
    engine = make_engine(url)
    upgrade(engine)
    tag = uuid.uuid4().hex[:4]
    with engine.begin() as conn:
        districts = conn.execute(select(District.code).order_by(District.code)).scalars().all()
        grids = conn.execute(select(Grid.code, Grid.geom)).all()
        # The departments with the most work in hand; the generated store moves cases on from "dispatched"
        # quickly, so the copy gets fresh dispatches: its reported cases, registered and dispatched to them.
        per_dept = conn.execute(select(Case.department_code, func.count()).where(Case.status.in_(
            ("dispatched", "handling"))).group_by(Case.department_code).order_by(func.count().desc())).all()
        depts = [d for d, n in per_dept if d][:max(1, min(10, liaisons))]
        setup = workflow.Actor("bench-setup", "supervisor")
        fresh = conn.execute(select(Case.id, Case.version).where(Case.status == "reported")
                             .order_by(Case.id).limit(max(0, liaisons * 20))).all()
        for j, c in enumerate(fresh):
            workflow.apply(conn, c.id, "register", setup, expected_version=c.version)
            workflow.apply(conn, c.id, "dispatch", setup, expected_version=c.version + 1,
                           department=depts[j % len(depts)])
        people = []
        # Viewers: the command floor and district offices; a fifth of them supervisors (they read the same).
        for i in range(viewers):
            role = "supervisor" if i % 5 == 4 else "viewer"
            dist = [] if i % 2 == 0 else [districts[i % len(districts)]]
            name = f"bench-{tag}-{role[:3]}-{i}"
            users.add(conn, name, PASSWORD, role, districts=dist, actor="bench")
            people.append({"name": name, "kind": "viewer", "role": role, "districts": dist})
        for i in range(liaisons):
            dept = depts[i % len(depts)]
            name = f"bench-{tag}-lia-{i}"
            users.add(conn, name, PASSWORD, "liaison", department=dept, actor="bench")
            people.append({"name": name, "kind": "liaison", "department": dept})
        # The recorder's own users: never part of the measured load.
        users.add(conn, f"bench-{tag}-rec-v", PASSWORD, "viewer", actor="bench")
        users.add(conn, f"bench-{tag}-rec-l", PASSWORD, "liaison", department=depts[0], actor="bench")
        token = tokens.add(conn, f"bench-load-{tag}", "operate")
        cases = {d: conn.execute(select(Case.code).where(Case.status == "dispatched", Case.department_code == d)
                                 .order_by(Case.deadline_at).limit(400)).scalars().all() for d in depts}
    engine.dispose()
    # Each liaison of a department gets its own share of the department's cases: no two act on one case.
    rec_case = cases[depts[0]].pop(0)
    by_dept = defaultdict(list)
    for p in people:
        if p["kind"] == "liaison":
            by_dept[p["department"]].append(p)
    for d, ps in by_dept.items():
        for j, p in enumerate(ps):
            p["cases"] = cases[d][j::len(ps)]
    points = [(p.x, p.y) for p in (point_on_surface(g) for _, g in grids[::7])]
    return {"people": people, "token": token, "points": points, "districts": districts,
            "grids": [c for c, _ in grids], "rec_viewer": f"bench-{tag}-rec-v", "rec_liaison": f"bench-{tag}-rec-l",
            "rec_case": rec_case, "departments": depts}


# ---------------------------------------------------------------------------------------------- servers

def start_server(kind: str, url: str, port: int, workers: int, threads: int):
    """bench/api.py's server start (gunicorn or the dev server, healthy and settled after its start-up loads)."""
    return api_bench.start(kind, url, port, workers, worker_class="gthread" if threads > 1 else "sync",
                           threads=threads)


stop_server = api_bench.stop


class CpuMeter:
    """CPU seconds of the server's processes and of the PostgreSQL backends connected to the bench database
    (a backend's title names its database), sampled every second so processes that end still count."""

    def __init__(self, proc, dbname: str):
        self.proc, self.dbname = proc, dbname
        self.first, self.last = {}, {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        import psutil
        procs = []
        try:
            root = psutil.Process(self.proc.pid)
            procs += [("server", root)] + [("server", c) for c in root.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
        for p in psutil.process_iter(["name", "cmdline"]):
            try:
                cmd = " ".join(p.info["cmdline"] or [])
                if p.info["name"] == "postgres" and f" {self.dbname} " in f" {cmd} ":
                    procs.append(("postgres", p))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        for kind, p in procs:
            try:
                c = p.cpu_times()
                v = c.user + c.system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            key = (kind, p.pid, p.create_time())
            self.first.setdefault(key, v)
            self.last[key] = v

    def _run(self):
        while not self.stopped.wait(1.0):
            self._sample()

    def start(self):
        self._sample()
        self.thread.start()
        return self

    def stop(self) -> dict:
        self.stopped.set()
        self.thread.join()
        self._sample()
        out = defaultdict(float)
        for key, v in self.last.items():
            out[key[0]] += v - self.first[key]
        return dict(out)


# ---------------------------------------------------------------------------------------------- recording

def _cookies_for(base: str, name: str) -> list[dict]:
    import requests
    http = requests.Session()
    form = http.get(base + "/login", timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    r = http.post(base + "/login", data={"name": name, "password": PASSWORD, "csrf_token": token, "next": "/"},
                  allow_redirects=False, timeout=60)
    if r.status_code != 302:
        raise RuntimeError(f"sign-in of {name} failed: HTTP {r.status_code}")
    return [{"name": c.name, "value": c.value, "url": base} for c in http.cookies]


class Recorder:
    """Every request a page makes, tagged with the action under way, with its start and end times."""

    def __init__(self, page, base: str):
        self.base, self.phase, self.reqs, self.live = base, None, [], {}
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_end)
        page.on("requestfailed", self._on_end)
        self.page = page

    def _on_request(self, r):
        if not r.url.startswith(self.base) or self.phase is None:
            return
        rec = {"phase": self.phase, "method": r.method, "path": r.url[len(self.base):], "body": r.post_data,
               "t0": time.monotonic(), "t1": None}
        if rec["path"].startswith(STREAM_PATH):
            rec["phase"] = "stream"     # long-lived: replayed by stream_loop
        self.reqs.append(rec)
        self.live[id(r)] = rec

    def _on_end(self, r):
        rec = self.live.pop(id(r), None)
        if rec is not None:
            rec["t1"] = time.monotonic()

    def quiet(self, settle: float = 1.5, timeout: float = 120):
        """Wait until no request of the current action is out and none started for `settle` seconds."""
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            mine = [r for r in self.reqs if r["phase"] == self.phase]
            busy = any(r["t1"] is None for r in mine)
            last = max([r["t1"] or r["t0"] for r in mine], default=0)
            if mine and not busy and time.monotonic() - last > settle:
                return
            self.page.wait_for_timeout(100)
        raise RuntimeError(f"recording: action {self.phase} did not settle in {timeout} s")

    def act(self, phase: str, fn, settle: float = 1.5):
        self.phase = phase
        fn()
        self.quiet(settle)


def waves(reqs: list[dict]) -> list[list[dict]]:
    """Split one action's requests (in start order) into waves: a request that started after an earlier
    request of the same action had ended may depend on its answer, so it goes in a later wave."""
    out, ends = [], []
    for r in sorted(reqs, key=lambda r: r["t0"]):
        if not out or (ends and min(ends) < r["t0"]):
            out.append([])
            ends = []
        out[-1].append(r)
        ends.append(r["t1"] or r["t0"])
    return [[{k: r[k] for k in ("method", "path", "body")} for r in w] for w in out]


def record(base: str, info: dict) -> dict:
    """The actions as a browser makes them: {action: [wave, ...]}."""
    from playwright.sync_api import sync_playwright
    district = info["districts"][len(info["districts"]) // 2]
    grid = next(g for g in info["grids"] if g.startswith(district))
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        ctx = browser.new_context(viewport={"width": 1600, "height": 900}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
        ctx.add_cookies(_cookies_for(base, info["rec_viewer"]))
        page = ctx.new_page()
        page.set_default_timeout(120_000)
        rec = Recorder(page, base)
        rec.act("load", lambda: (page.goto(base + "/"), page.wait_for_selector("#kpis *", timeout=120_000)), 3)
        rec.phase = "idle"
        page.wait_for_timeout(3000)
        set_props = "([id, props]) => window.dash_clientside.set_props(id, props)"
        rec.act("filter", lambda: page.evaluate(set_props, ["f-district", {"value": district}]), 4)
        feature = {"type": "Feature", "properties": {"code": grid}, "geometry": None}
        rec.act("drill", lambda: page.evaluate(set_props, ["grids", {"clickData": feature}]), 4)
        rec.act("reset", lambda: page.click("#f-reset"), 4)
        viewer = rec.reqs
        ctx.close()

        ctx = browser.new_context(viewport={"width": 1600, "height": 900}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
        ctx.add_cookies(_cookies_for(base, info["rec_liaison"]))
        page = ctx.new_page()
        page.set_default_timeout(120_000)
        rec = Recorder(page, base)
        code = info["rec_case"]
        rec.act("ws-load", lambda: (page.goto(base + "/cases"), page.wait_for_selector("#ws-queue .ws-row")))

        def open_case():
            page.fill("#ws-open-code", code)
            page.click("#ws-open-btn")
            page.wait_for_function("c => (document.querySelector('#ws-case-code') || {}).textContent === c",
                                   arg=code)
        rec.act("ws-open", open_case)

        def ask(action):
            def go():
                page.click(f"#ws-actions button[data-action={action}]")
                page.wait_for_selector("#ws-confirm-box", state="visible")
            return go

        def confirm(note=None):
            def go():
                page.click("#ws-confirm")
                page.wait_for_function("() => document.querySelector('#ws-msg').textContent.length > 0")
            return go
        rec.act("ws-ask-accept", ask("accept"))
        rec.act("ws-accept", confirm())
        page.wait_for_selector("#ws-actions button[data-action=feedback]")
        rec.phase = None
        rec.act("ws-ask-feedback", ask("feedback"))
        page.fill("#ws-note", "bench: 已处置")
        rec.act("ws-feedback", confirm())
        msg = page.get_attribute("#ws-msg", "class")
        if "ws-msg-ok" not in (msg or ""):
            raise RuntimeError(f"recording: the liaison's feedback was refused: {page.text_content('#ws-msg')}")
        liaison = rec.reqs
        browser.close()
    finally:
        pw.stop()
    actions = {}
    for reqs in (viewer, liaison):
        for phase in {r["phase"] for r in reqs}:
            if phase not in ("stream", "idle"):
                actions[phase] = waves([r for r in reqs if r["phase"] == phase])
    if not [r for r in viewer if r["phase"] == "stream"]:
        raise RuntimeError("recording: the map page opened no live stream")
    return actions


# ---------------------------------------------------------------------------------------------- replay

def _key(cid, prop) -> tuple:
    if isinstance(cid, str) and cid.startswith("{"):
        cid = json.loads(cid)
    if isinstance(cid, dict):
        cid = json.dumps(cid, sort_keys=True, separators=(",", ":"))
    return cid, prop


def _outputs_name(body: dict) -> str:
    out = body.get("output", "")
    first = out.strip(".").split("...")[0]
    name = first.rsplit(".", 1)[0]
    if name.startswith("{"):
        name = json.loads(name).get("type", name)
    return name


class Stats:
    def __init__(self):
        self.rows = defaultdict(list)      # kind -> [(t, ms, status)]
        self.t0 = time.monotonic()

    def add(self, kind: str, ms: float, status, retry_after: bool = False):
        self.rows[kind].append((time.monotonic() - self.t0, ms, status, retry_after))

    @staticmethod
    def ok(status) -> bool:
        return isinstance(status, int) and (200 <= status < 300 or status == 304)


class User:
    def __init__(self, run, person: dict, rng: random.Random):
        self.run, self.p, self.rng = run, person, rng
        self.state: dict = {}
        # A browser that has used the app before: fingerprinted bundles are in its cache, the rest revalidates.
        self.cached: set = set(run.warm[0])
        self.validators: dict = dict(run.warm[1])
        self.session = None

    async def request(self, kind: str, method: str, path: str, **kw):
        t0 = time.perf_counter()
        status, data, headers, ra = None, None, {}, False
        try:
            async with self.session.request(method, self.run.base + path, allow_redirects=False, **kw) as r:
                data = await r.read()
                status, headers = r.status, r.headers
                ra = status == 503 and "Retry-After" in r.headers
        except asyncio.TimeoutError:
            status = "timeout"
        except Exception as exc:  # noqa: BLE001 - any failure to get an answer is an error of this request
            status = type(exc).__name__
        # The sign-in form answers with its redirect: that is its success.
        self.run.stats.add(kind, (time.perf_counter() - t0) * 1000, 200 if kind == "login POST" and status == 302
                           else status, ra)
        return status, data, headers

    async def sign_in(self) -> bool:
        import aiohttp
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                             timeout=aiohttp.ClientTimeout(total=self.run.timeout),
                                             connector=aiohttp.TCPConnector(limit=8))
        status, data, _ = await self.request("login GET", "GET", "/login")
        if status != 200:
            return False
        token = re.search(rb'name="csrf_token" value="([^"]+)"', data).group(1).decode()
        status, _, _ = await self.request("login POST", "POST", "/login", data={
            "name": self.p["name"], "password": PASSWORD, "csrf_token": token, "next": "/"})
        return status == 302

    def csrf(self) -> str:
        for c in self.session.cookie_jar:
            if c.key.endswith("_csrf"):
                return c.value
        return ""

    def body(self, template: str, overrides: dict | None = None) -> dict:
        body = json.loads(template)
        over = overrides or {}
        for section in ("inputs", "state"):
            for entry in body.get(section, []):
                for e in (entry if isinstance(entry, list) else [entry]):
                    k = _key(e["id"], e["property"])
                    if k in over:
                        e["value"] = over[k]
                    elif k in self.state:
                        e["value"] = self.state[k]
        return body

    def absorb(self, data: bytes) -> None:
        try:
            resp = json.loads(data).get("response", {})
        except (ValueError, AttributeError):
            return
        for cid, props in resp.items():
            for prop, value in props.items():
                if isinstance(value, dict) and "__dash_patch_update" in value:
                    continue
                self.state[_key(cid, prop)] = value
                if cid == "ui" and prop == "data":        # clientside: panel-ui follows ui
                    self.state[("panel-ui", "data")] = value

    async def callback(self, kind: str, template: str, overrides: dict | None = None):
        body = self.body(template, overrides)
        status, data, _ = await self.request(kind, "POST", UPDATE, json=body,
                                             headers={"X-CSRFToken": self.csrf()})
        if status == 200:
            self.absorb(data)
        return status, data

    async def get(self, kind: str, path: str):
        if path in self.cached:
            return
        headers = {}
        etag, modified = self.validators.get(path, (None, None))
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        status, _, h = await self.request(kind, "GET", path, headers=headers)
        if status == 200:
            self.validators[path] = (h.get("ETag"), h.get("Last-Modified"))
            m = re.search(r"max-age=(\d+)", h.get("Cache-Control", ""))
            if m and int(m.group(1)) >= LONG_CACHE:
                self.cached.add(path)

    async def action(self, name: str, overrides: dict | None = None) -> list:
        t0 = time.perf_counter()
        answers = []
        for wave in self.run.actions[name]:
            jobs = []
            for r in wave:
                if r["method"] == "GET":
                    p = urlparse(r["path"]).path
                    kind = ("GET layers" if p.startswith("/layers/") else
                            "GET static" if p.startswith(("/assets/", "/_dash-component-suites/", "/_favicon"))
                            else f"GET {p}")
                    jobs.append(self.get(kind, r["path"]))
                elif r["path"].startswith(UPDATE):
                    kind = f"{name}: {_outputs_name(json.loads(r['body']))}"
                    jobs.append(self.callback(kind, r["body"], overrides))
            answers += await asyncio.gather(*jobs)
        self.run.stats.add(f"action {name} (all waves)", (time.perf_counter() - t0) * 1000, 200)
        return answers

    async def stream_loop(self, until: float):
        """The page's live stream (assets/live_stream.js): held open until `until`; reconnects with
        Last-Event-ID when the server ends it, after Retry-After when refused. Opening is a request kind of
        the table (time to the response's headers); each case the writer made is timed from its 201 to the
        message that carries it (Run.push)."""
        import aiohttp
        from dashboard.live_stream import HEARTBEAT_S, RETRY_MS
        last, wait = None, RETRY_MS / 1000
        timeout = aiohttp.ClientTimeout(total=None, connect=self.run.timeout, sock_read=HEARTBEAT_S + 15)
        while time.monotonic() < until:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = last
            t0 = time.perf_counter()
            status, ra = None, False
            try:
                async with self.session.get(self.run.base + STREAM_PATH, headers=headers, timeout=timeout) as r:
                    status = r.status
                    ra = status == 503 and "Retry-After" in r.headers
                    self.run.stats.add("live stream open", (time.perf_counter() - t0) * 1000, status, ra)
                    if status != 200:
                        wait = float(r.headers.get("Retry-After", 1)) if status == 503 else 1.0
                    else:
                        wait = RETRY_MS / 1000
                        event, data = None, None
                        while time.monotonic() < until:
                            line = await asyncio.wait_for(r.content.readline(), max(0.01, until - time.monotonic()))
                            if not line:
                                break   # the server ended the stream: reconnect
                            line = line.decode().rstrip("\n")
                            if line.startswith("id: "):
                                last = line[4:]
                            elif line.startswith("event: "):
                                event = line[7:]
                            elif line.startswith("data: "):
                                data = line[6:]
                            elif line == "":
                                if event == "cases" and data:
                                    now = time.monotonic()
                                    self.run.arrivals += [(row["code"], now) for row in json.loads(data)
                                                          if row["action"] == "report"]
                                event, data = None, None
            except asyncio.TimeoutError:
                if time.monotonic() >= until:
                    return
                if status is None:
                    self.run.stats.add("live stream open", (time.perf_counter() - t0) * 1000, "timeout")
            except Exception as exc:  # noqa: BLE001 - any failure to get an answer is an error of this request
                if status is None:
                    self.run.stats.add("live stream open", (time.perf_counter() - t0) * 1000, type(exc).__name__)
                else:
                    self.run.stats.add("live stream broken", 0, type(exc).__name__)
            await asyncio.sleep(min(wait, max(0.0, until - time.monotonic())))

    async def viewer(self, until: float):
        await self.action("load")
        poller = asyncio.create_task(self.stream_loop(until))
        try:
            while True:
                # Never past the end: an exponential think time (mean 45 s) of one of 200 viewers runs to
                # ~4 min, and the run sat idle that long after its polls had stopped.
                await asyncio.sleep(min(self.rng.expovariate(1 / self.run.think), max(0.0, until - time.monotonic())))
                if time.monotonic() >= until:
                    break
                x = self.rng.random()
                if x < 0.15:
                    poller.cancel()
                    self.state.clear()
                    await self.action("load")
                    poller = asyncio.create_task(self.stream_loop(until))
                elif x < 0.55:
                    d = self.rng.choice(self.run.info["districts"])
                    await self.action("filter", {("f-district", "value"): d})
                elif x < 0.85:
                    ui = self.state.get(("ui", "data")) or {}
                    area = ui.get("street") or ui.get("district") or ""
                    pool = [g for g in self.run.info["grids"] if g.startswith(area)] or self.run.info["grids"]
                    feature = {"type": "Feature", "properties": {"code": self.rng.choice(pool)}, "geometry": None}
                    await self.action("drill", {("grids", "clickData"): feature})
                else:
                    await self.action("reset")
        finally:
            poller.cancel()

    async def liaison(self, until: float):
        await self.action("ws-load")
        for code in self.p.get("cases", []):
            if time.monotonic() >= until:
                return
            await asyncio.sleep(self.rng.uniform(4, 10))
            await self.action("ws-open", {("ws-open-code", "value"): code})
            seen = self.state.get(("ws-seen", "data"))
            if not seen or seen.get("code") != code:
                self.run.stats.add("workflow: case not opened", 0, "not_opened")
                continue
            for step in ("accept", "feedback"):
                await asyncio.sleep(self.rng.uniform(4, 10))
                await self.action(f"ws-ask-{step}")
                await self.action(f"ws-{step}", {("ws-note", "value"): "bench: 已处置"} if step == "feedback" else None)
                cls = self.state.get(("ws-msg", "className"), "")
                self.run.stats.add(f"workflow {step} done", 0, 200 if "ws-msg-ok" in cls else f"refused:{cls}")
                if "ws-msg-ok" not in cls:
                    break
                self.state.pop(("ws-msg", "className"), None)

    async def main(self, until: float, delay: float):
        await asyncio.sleep(delay)
        try:
            if not await self.sign_in():
                return
            if self.p["kind"] == "viewer":
                await self.viewer(until)
            else:
                await self.liaison(until)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - counted and shown, the other users go on
            self.run.stats.add("client failure (bench bug)", 0, f"{type(exc).__name__}: {exc}"[:80])
        finally:
            if self.session is not None:
                await self.session.close()


class Writer:
    """POST /api/v1/cases at `rate` per second, each with its own Idempotency-Key (also the description);
    a 503 (or no answer) is retried with the same key after its Retry-After, as a client should."""

    def __init__(self, run, rate: float):
        self.run, self.rate = run, rate
        self.created, self.attempted, self.gave_up = [], [], []

    async def one(self, http, rng, until):
        key = uuid.uuid4().hex
        lon, lat = rng.choice(self.run.info["points"])
        body = {"lon": lon, "lat": lat, "class_code": rng.choice(["E0101", "E0102", "E0104", "E0201"]),
                "source_code": "public", "description": key}
        self.attempted.append(key)
        for _ in range(30):
            t0 = time.perf_counter()
            status, ra = None, False
            wait = 1.0
            try:
                async with http.post(self.run.base + "/api/v1/cases", json=body,
                                     headers={"Idempotency-Key": key}) as r:
                    answer = await r.read()
                    status = r.status
                    if status == 201:
                        self.run.posted[json.loads(answer)["code"]] = time.monotonic()
                    ra = status == 503 and "Retry-After" in r.headers
                    wait = float(r.headers.get("Retry-After", 1)) if status == 503 else 1.0
            except asyncio.TimeoutError:
                status = "timeout"
            except Exception as exc:  # noqa: BLE001
                status = type(exc).__name__
            self.run.stats.add("writer POST /api/v1/cases", (time.perf_counter() - t0) * 1000, status, ra)
            if status in (200, 201):
                self.created.append(key)
                return
            if isinstance(status, int) and status != 503:
                self.gave_up.append((key, status))
                return
            await asyncio.sleep(min(wait, 5.0))
        self.gave_up.append((key, status))

    async def main(self, until: float):
        import aiohttp
        rng = random.Random(99)
        tasks = []
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.run.info['token']}"},
                                         timeout=aiohttp.ClientTimeout(total=self.run.timeout)) as http:
            nxt = time.monotonic()
            while time.monotonic() < until:
                tasks.append(asyncio.create_task(self.one(http, rng, until)))
                nxt += rng.expovariate(self.rate)
                await asyncio.sleep(max(0, nxt - time.monotonic()))
            await asyncio.gather(*tasks)


def warm_cache(base: str, actions: dict) -> tuple[set, dict]:
    """What a returning browser has cached for the static GETs the recording made: the paths cached for a
    year (not asked again) and the validators of the others (asked with If-None-Match/If-Modified-Since)."""
    import requests
    cached, validators = set(), {}
    for waves_ in actions.values():
        for wave in waves_:
            for r in wave:
                p = urlparse(r["path"]).path
                if r["method"] != "GET" or not p.startswith(("/assets/", "/_dash-component-suites/", "/_favicon")):
                    continue
                h = requests.get(base + r["path"], timeout=60).headers
                m = re.search(r"max-age=(\d+)", h.get("Cache-Control", ""))
                if m and int(m.group(1)) >= LONG_CACHE:
                    cached.add(r["path"])
                else:
                    validators[r["path"]] = (h.get("ETag"), h.get("Last-Modified"))
    return cached, validators


class Run:
    def __init__(self, base, info, actions, args, seconds, on_measure=None):
        self.base, self.info, self.actions = base, info, actions
        self.think, self.timeout, self.seconds, self.ramp = args.think, args.timeout, seconds, args.ramp
        self.on_measure = on_measure
        self.stats = Stats()
        self.writer = Writer(self, args.write_rate)
        self.events: dict = {}
        self.posted: dict = {}      # case code -> when the writer's 201 came back
        self.arrivals: list = []    # (case code, when a viewer's stream carried it)
        self.warm = (set(), {}) if args.cold else warm_cache(base, actions)

    def push_latency(self, since: float) -> list:
        """ms from the writer's 201 to each stream message carrying the case, for cases posted `since`
        seconds into the run or later (a message that beat the POST's answer counts 0)."""
        t = self.stats.t0 + since
        return sorted(max(0.0, (at - self.posted[c]) * 1000) for c, at in self.arrivals
                      if c in self.posted and self.posted[c] >= t)

    async def main(self, people: list, fault=None):
        # Sign-ins and first page loads spread over the ramp, as a shift arrives; the measured window is the
        # `seconds` after it (the ramp's requests are summed apart, bench/README.md).
        self.stats.t0 = time.monotonic()
        until = self.stats.t0 + self.ramp + self.seconds
        rng = random.Random(1)
        users = [User(self, p, random.Random(i)) for i, p in enumerate(people)]
        tasks = [asyncio.create_task(u.main(until, rng.uniform(0, self.ramp))) for u in users]

        async def measure():
            await asyncio.sleep(self.ramp)
            if self.on_measure:
                self.on_measure()
        tasks.append(asyncio.create_task(measure()))
        tasks.append(asyncio.create_task(self.writer.main(until)))
        if fault is not None:
            tasks.append(asyncio.create_task(fault(self, until)))
        # Every user stops at `until` and a request gives up after the timeout, so the run ends by then; if a
        # task still runs later, say where it is (a bench bug) and stop it instead of hanging.
        done, pending = await asyncio.wait(tasks, timeout=self.ramp + self.seconds + 2 * self.timeout + 60)
        for t in pending:
            self.stats.add("client failure (bench bug)", 0, "still running after the end")
            t.print_stack(limit=6)
            t.cancel()


def pct(xs: list, q: float) -> float:
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def table(stats: Stats, seconds: float, since: float = 0.0, before: float = float("inf")) -> tuple[list[str], dict]:
    """Requests that started in [since, before) seconds of the run."""
    lines = ["| kind | count | per s | p50 ms | p95 ms | p99 ms | errors |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    allms, allerr, worst = [], 0, 0.0
    for kind in sorted(stats.rows):
        rows = [r for r in stats.rows[kind] if since <= r[0] - r[1] / 1000 < before]
        if not rows:
            continue
        ms = sorted(r[1] for r in rows)
        err = sum(1 for r in rows if not Stats.ok(r[2]))
        if not kind.startswith(("action ", "workflow")):
            allms += ms
            allerr += err
            worst = max(worst, pct(ms, 0.95))
        lines.append(f"| {kind} | {len(rows)} | {len(rows) / seconds:.1f} | {pct(ms, .5):.0f} | {pct(ms, .95):.0f} "
                     f"| {pct(ms, .99):.0f} | {err} |")
    allms.sort()
    lines.append(f"| **all requests** | {len(allms)} | {len(allms) / seconds:.1f} | {pct(allms, .5):.0f} | "
                 f"{pct(allms, .95):.0f} | {pct(allms, .99):.0f} | {allerr} |")
    return lines, {"n": len(allms), "p50": pct(allms, .5), "p95": pct(allms, .95), "errors": allerr,
                   "worst_p95": worst}


def error_kinds(stats: Stats) -> dict:
    out = defaultdict(int)
    for kind, rows in stats.rows.items():
        for r in rows:
            if not Stats.ok(r[2]):
                out[f"{r[2]}{' +Retry-After' if r[3] else ''}"] += 1
    return dict(out)


def run_load(label, base, info, actions, args, seconds, people, proc, dbname, fault=None) -> dict:
    meter = CpuMeter(proc, dbname)
    mark = {}

    def measure():      # the ramp is over: CPU counts from here
        meter.start()
        mark.update(c0=time.process_time(), w0=time.perf_counter(), la0=os.getloadavg())
    from map_paint import cpu_probe   # this host's speed: the same code has run 40 % slower a minute later
    probe = cpu_probe()
    run = Run(base, info, actions, args, seconds, on_measure=measure)
    asyncio.run(run.main(people, fault))
    wall = time.perf_counter() - mark["w0"]
    client = time.process_time() - mark["c0"]
    cpu = meter.stop()
    _, ramp_summary = table(run.stats, args.ramp, before=args.ramp)
    lines, summary = table(run.stats, wall, since=args.ramp)
    print(f"\nCPU probe before the run {probe:.0f} ms, after {cpu_probe():.0f} ms (bench/map_paint.py; lower is faster)")
    print(f"\n### {label}: ramp {args.ramp:.0f} s, then {seconds / 60:.1f} min measured, "
          f"{sum(p['kind'] == 'viewer' for p in people)} viewers, {sum(p['kind'] == 'liaison' for p in people)} "
          f"liaisons; load average {mark['la0'][0]:.1f} when measuring began, {os.getloadavg()[0]:.1f} after\n")
    print(f"ramp (sign-ins and first page loads, not in the table): {ramp_summary['n']} requests, p50 "
          f"{ramp_summary['p50']:.0f} ms, p95 {ramp_summary['p95']:.0f} ms, errors {ramp_summary['errors']}\n")
    print("\n".join(lines))
    print(f"\nserver CPU {cpu.get('server', 0):.0f} s ({cpu.get('server', 0) / wall * 100:.0f} % of one core), "
          f"PostgreSQL backends of the bench database {cpu.get('postgres', 0):.0f} s "
          f"({cpu.get('postgres', 0) / wall * 100:.0f} %), client {client:.0f} s ({client / wall * 100:.0f} %) "
          f"over {wall:.0f} s wall; server CPU per request {cpu.get('server', 0) * 1000 / max(1, summary['n']):.1f} ms")
    print(f"writer: {len(run.writer.created)} cases created, {len(run.writer.gave_up)} given up; errors by status: "
          f"{error_kinds(run.stats)}", flush=True)
    push = run.push_latency(args.ramp)
    print(f"live push (writer's 201 -> a viewer's stream carried the case, cases posted after the ramp): "
          f"{len(push)} deliveries, p50 {pct(push, .5):.0f} ms, p95 {pct(push, .95):.0f} ms, "
          f"p99 {pct(push, .99):.0f} ms", flush=True)
    summary["push_p95"] = pct(push, .95)
    summary.update(label=label, wall=wall, cpu=cpu, client=client, run=run)
    return summary


def cpu_by_kind(url: str, info: dict, actions: dict, rounds: int) -> list[str]:
    """App CPU ms per request kind, in this process (Flask's test client, no HTTP, nothing else running in
    it): the viewer's recorded actions replayed `rounds` times (a different district each round, so the
    30 s panel memo does not answer them all) and 50 live streams opened. Unlike latencies under load it
    hardly moves with the machine's load, so it says which requests to make cheaper. PostgreSQL's own CPU
    is not in it."""
    from dashboard.auth import csrf_cookie_name
    from dashboard.server import create_app
    from data.store import make_engine
    engine = make_engine(url)
    client = create_app(engine).server.test_client()
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    r = client.post("/login", data={"name": info["rec_viewer"], "password": PASSWORD, "csrf_token": token,
                                    "next": "/"})
    assert r.status_code == 302, r.status_code
    csrf = client.get_cookie(csrf_cookie_name()).value
    u = User.__new__(User)
    u.state = {}
    cpu = defaultdict(list)

    def post(kind, template, over=None):
        body = u.body(template, over)
        c0 = time.process_time()
        resp = client.post(UPDATE, json=body, headers={"X-CSRFToken": csrf})
        cpu[kind].append((time.process_time() - c0) * 1000)
        if resp.status_code == 200:
            u.absorb(resp.data)
        elif resp.status_code != 204:
            raise RuntimeError(f"{kind}: HTTP {resp.status_code}")

    for i in range(rounds):
        u.state.clear()
        for name in ("load", "filter", "drill", "reset"):
            over = {("f-district", "value"): info["districts"][i % len(info["districts"])],
                    ("grids", "clickData"): {"type": "Feature", "geometry": None,
                                             "properties": {"code": info["grids"][(i * 37) % len(info["grids"])]}}}
            for wave in actions[name]:
                for r in wave:
                    p = urlparse(r["path"]).path
                    if r["method"] == "POST" and p == UPDATE:
                        post(f"{name}: {_outputs_name(json.loads(r['body']))}", r["body"], over)
                    elif r["method"] == "GET" and not p.startswith(("/assets/", "/_dash-component-suites/",
                                                                    "/_favicon")):
                        c0 = time.process_time()
                        client.get(r["path"])
                        cpu["GET layers" if p.startswith("/layers/") else f"GET {p}"].append(
                            (time.process_time() - c0) * 1000)
    for _ in range(50):   # a page's live stream: opened, its first messages read, closed
        c0 = time.process_time()
        resp = client.get(STREAM_PATH, buffered=False)
        next(iter(resp.response))
        resp.close()
        cpu["live stream open (first messages)"].append((time.process_time() - c0) * 1000)
    engine.dispose()
    lines = ["| kind | requests | CPU ms mean | CPU ms max |", "| --- | ---: | ---: | ---: |"]
    for kind, xs in sorted(cpu.items(), key=lambda kv: -sum(kv[1]) / len(kv[1])):
        lines.append(f"| {kind} | {len(xs)} | {sum(xs) / len(xs):.1f} | {max(xs):.1f} |")
    return lines


# ---------------------------------------------------------------------------------------------- faults

def pg_up() -> bool:
    return subprocess.run(["pg_isready", *PG_ADMIN, "-t", "1"], capture_output=True).returncode == 0


def ensure_pg() -> None:
    """Whatever happened, leave the shared PostgreSQL running."""
    if not pg_up():
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "start"], check=False)
        for _ in range(60):
            if pg_up():
                return
            time.sleep(0.5)


async def fault_pg_restart(run: Run, until: float):
    await asyncio.sleep(run.ramp + run.seconds / 2)
    t_cmd = time.monotonic() - run.stats.t0
    print(f"fault: restarting PostgreSQL at t={t_cmd:.1f} s", flush=True)
    proc = await asyncio.create_subprocess_exec("pg_ctlcluster", "--skip-systemctl-redirect", "15", "main",
                                                "restart", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await proc.wait()
    while not await asyncio.to_thread(pg_up):
        await asyncio.sleep(0.1)
    run.events["pg_back"] = time.monotonic() - run.stats.t0
    run.events["pg_cmd"] = t_cmd
    print(f"fault: PostgreSQL accepts connections again at t={run.events['pg_back']:.1f} s", flush=True)


async def fault_kill_worker(run: Run, until: float, proc=None):
    import psutil
    await asyncio.sleep(run.ramp + run.seconds / 2)
    before = {c.pid for c in psutil.Process(run.server.pid).children()}
    victim = sorted(before)[0]
    run.events["killed"] = time.monotonic() - run.stats.t0
    os.kill(victim, signal.SIGKILL)
    print(f"fault: SIGKILL worker {victim} at t={run.events['killed']:.1f} s", flush=True)
    while True:
        now = {c.pid for c in psutil.Process(run.server.pid).children()}
        if len(now - before) >= 1 and len(now) >= len(before):
            run.events["respawned"] = time.monotonic() - run.stats.t0
            run.events["new_pid"] = sorted(now - before)[0]
            break
        await asyncio.sleep(0.05)
    print(f"fault: gunicorn started worker {run.events['new_pid']} at t={run.events['respawned']:.1f} s", flush=True)


def report_fault(kind: str, s: dict, url: str) -> list[str]:
    run: Run = s["run"]
    ev = run.events
    rows = [r + (k,) for k, rs in run.stats.rows.items() for r in rs if not k.startswith(("action ", "workflow"))]
    rows.sort()
    bad = [r for r in rows if not Stats.ok(r[2])]
    with_ra = sum(1 for r in bad if r[2] == 503 and r[3])
    lines = [f"fault {kind}: {len(bad)} failed requests of {len(rows)}: {with_ra} were 503 with Retry-After, "
             f"{len(bad) - with_ra} other ({error_kinds(run.stats)})"]
    if bad:
        lines.append(f"  failures from t={bad[0][0]:.1f} s to t={bad[-1][0]:.1f} s; slowest 503 answer "
                     f"{max([r[1] for r in bad if r[2] == 503], default=0):.0f} ms")
    if kind == "pg-restart" and "pg_back" in ev:
        back = ev["pg_back"]
        firsts = [r for r in rows if r[0] - r[1] / 1000 >= back and Stats.ok(r[2])]
        first_write = [r for r in rows if r[4].startswith("writer") and r[0] - r[1] / 1000 >= back and Stats.ok(r[2])]
        last_bad = bad[-1][0] if bad else back
        lines.append(f"  restart issued t={ev['pg_cmd']:.1f} s, PostgreSQL back t={back:.1f} s; first success "
                     f"started after that: +{(firsts[0][0] - back) if firsts else float('nan'):.2f} s, first case "
                     f"created: +{(first_write[0][0] - back) if first_write else float('nan'):.2f} s; last failure "
                     f"+{last_bad - back:.1f} s")
        lines += check_cases(url, run.writer)
    if kind == "kill-worker" and "killed" in ev:
        lines.append(f"  killed t={ev['killed']:.1f} s, new worker t={ev.get('respawned', float('nan')):.1f} s "
                     f"(+{ev.get('respawned', float('nan')) - ev['killed']:.2f} s)")
        after = [r for r in rows if r[0] > ev["killed"]]
        lines.append(f"  after the kill: {sum(Stats.ok(r[2]) for r in after)} answered, "
                     f"{sum(not Stats.ok(r[2]) for r in after)} failed")
    return lines


def check_cases(url: str, writer: Writer) -> list[str]:
    """Every key whose POST got 201 names exactly one case; no attempted key names two."""
    from sqlalchemy import func, select

    from data.store import make_engine
    from data.store.schema import Case
    engine = make_engine(url)
    with engine.connect() as conn:
        counts = dict(conn.execute(select(Case.description, func.count()).where(Case.description.in_(
            writer.attempted)).group_by(Case.description)).all())
    engine.dispose()
    lost = [k for k in writer.created if counts.get(k, 0) == 0]
    doubled = [k for k, n in counts.items() if n > 1]
    stray = [k for k in counts if k not in set(writer.created)]
    return [f"  cases: {len(writer.created)} POSTs answered 201 ({len(writer.attempted)} keys tried, "
            f"{len(writer.gave_up)} given up); in the store: lost {len(lost)}, doubled {len(doubled)}, "
            f"present without a 201 seen {len(stray)}"]


# ---------------------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--naive-minutes", type=float, default=1, help="0: no naive baseline")
    ap.add_argument("--viewers", type=int, default=200)
    ap.add_argument("--liaisons", type=int, default=20)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--threads", type=int, default=150, help="threads per worker (gunicorn.conf.py)")
    ap.add_argument("--think", type=float, default=45, help="mean seconds between a viewer's actions")
    ap.add_argument("--ramp", type=float, default=120,
                    help="seconds over which the users sign in and load the map, before the measured minutes")
    ap.add_argument("--write-rate", type=float, default=2, help="cases POSTed per second")
    ap.add_argument("--timeout", type=float, default=30, help="seconds before a request counts as an error")
    ap.add_argument("--fault", choices=["none", "pg-restart", "kill-worker"], default="none")
    ap.add_argument("--template", default="cgzt_full", help="database to clone")
    ap.add_argument("--cold", action="store_true", help="every user's browser starts with an empty cache")
    ap.add_argument("--cpu-rounds", type=int, default=5, help="in-process CPU per request kind: rounds (0: skip)")
    a = ap.parse_args(argv)
    if a.template == "cgzt_full" and not Path("/work/full/READY").exists():
        print("waiting for /work/full/READY (the full stores are being built)", flush=True)
        while not Path("/work/full/READY").exists():
            time.sleep(10)
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}", flush=True)
    url, dbname = clone(a.template)
    servers = []
    try:
        t = time.perf_counter()
        info = prepare(url, a.viewers, a.liaisons)
        print(f"prepared {dbname}: {len(info['people'])} users, liaison departments {info['departments']} "
              f"({time.perf_counter() - t:.0f} s)", flush=True)
        port = 18000 + random.randrange(1000)
        proc = start_server("gunicorn", url, port, a.workers, a.threads)
        servers.append(proc)
        base = f"http://127.0.0.1:{port}"
        t = time.perf_counter()
        actions = record(base, info)
        print(f"recorded ({time.perf_counter() - t:.0f} s): " + ", ".join(
            f"{k} {sum(len(w) for w in v)} requests in {len(v)} waves" for k, v in sorted(actions.items())),
            flush=True)
        if a.cpu_rounds > 0:
            t = time.perf_counter()
            lines = cpu_by_kind(url, info, actions, a.cpu_rounds)
            print(f"\nApp CPU per request kind, in-process ({a.cpu_rounds} rounds of the viewer's actions, "
                  f"{time.perf_counter() - t:.0f} s):\n\n" + "\n".join(lines), flush=True)
        fault = None
        if a.fault == "pg-restart":
            fault = fault_pg_restart
        elif a.fault == "kill-worker":
            fault = fault_kill_worker
        Run.server = proc
        label = f"gunicorn -w {a.workers} --threads {a.threads}" + (f", fault {a.fault}" if fault else "")
        try:
            s = run_load(label, base, info, actions, a, a.minutes * 60, info["people"], proc, dbname, fault)
        finally:
            if a.fault == "pg-restart":
                ensure_pg()
        results = [s]
        if fault:
            print("\n".join(report_fault(a.fault, s, url)), flush=True)
        stop_server(servers.pop())
        if a.naive_minutes > 0:
            port = 18000 + random.randrange(1000)
            proc = start_server("flask-dev", url, port, 1, 1)
            servers.append(proc)
            results.append(run_load("naive: python app.py serve (Flask dev server, one process)",
                                    f"http://127.0.0.1:{port}", info, actions, a, a.naive_minutes * 60,
                                    info["people"], proc, dbname))
            stop_server(servers.pop())
        print("\n| server | minutes | requests | p95 ms | worst kind p95 ms | errors | server CPU s | PG CPU s | "
              "client CPU s |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in results:
            print(f"| {r['label']} | {r['wall'] / 60:.1f} | {r['n']} | {r['p95']:.0f} | {r['worst_p95']:.0f} | "
                  f"{r['errors']} | {r['cpu'].get('server', 0):.0f} | {r['cpu'].get('postgres', 0):.0f} | "
                  f"{r['client']:.0f} |")
        met = results[0]["worst_p95"] <= 500 and results[0]["errors"] == 0
        print(f"target (every kind p95 <= 500 ms, zero errors): {'met' if met else 'NOT met'}")
        print(f"load average after: {os.getloadavg()}")
        return 0 if met or fault else 1
    finally:
        for p in servers:
            stop_server(p)
        if a.fault == "pg-restart":
            ensure_pg()
        drop(dbname)


if __name__ == "__main__":
    sys.exit(main())
