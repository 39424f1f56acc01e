"""Single-case API throughput: POST /api/v1/cases and GET /api/v1/cases/{code}, on a copy of the full store.

    python bench/api.py --db sqlite|postgresql|both [--seconds 10] [--connections 8] [--workers 3]
                        [--client wrk|python] [--modes post,get] [--cpu-requests 300]

Serves the real app with gunicorn (the production entry dashboard.wsgi:server, configured as in
docs/deploy.md) and, as the naive baseline in the same run, with `python app.py serve` (Flask's development
server). The load comes from wrk (Debian package `wrk`: C, epoll, a few percent of one core) through a Lua
script that bench writes per run: POST with the token, a unique Idempotency-Key per request and a random
point from a list drawn from the store's own grids; GET of random existing case codes. Without wrk the
Python client threads do the same (and take a good part of the 2 cores themselves: the figures are then a
floor). Prints requests/s, p50/p95/p99 latency, non-2xx and socket errors, and the CPU seconds each side
used per request: the server's processes (gunicorn master and workers, or the dev server), PostgreSQL's
backends for the copied database, the client, and whatever else ran on the machine meanwhile, so a
requests/s figure can be explained (or discounted) from the same run.

After each POST run the copy is checked: every 201 the client saw names a case that exists, no two 201s
name the same case, every case the token made carries its own idempotency key, and at most --connections
more cases per POST run (the warm-up is one) exist than 201s were counted: requests still in flight when
wrk stops are completed by the server but never counted.

Before the HTTP runs it also measures the app's CPU per request in-process (Flask's test client, no HTTP,
no client): the figure that hardly moves with the machine's load, so changes to the code compare.

The shared full stores are never written: SQLite is copied to /tmp (the backup API: a consistent snapshot
even while the shared file's WAL is being written), PostgreSQL is cloned with createdb -T and dropped
afterwards. The bulk import rate (the issue's third figure) is bench/import.py's.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FULL_SQLITE = "/work/full/full.sqlite"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"
PG_TEMPLATE = "cgzt_full"
CLASSES = ["E0101", "E0102", "E0104", "E0201", "E0301"]
# The production worker configuration, as docs/deploy.md gives it: sync workers, one more than the cores (a
# worker waiting on the database, the SQLite write lock or a PostgreSQL round trip, leaves its core to the
# others). Chosen by measurement (bench/README.md "API throughput"); gthread workers made SQLite writers
# in one process queue on the busy handler's sleeps.
WORKERS = (os.cpu_count() or 2) + 1
WORKER_CLASS = "sync"
THREADS = 1


def copy_store(db: str) -> tuple[str, callable]:
    if db == "sqlite":
        dst = f"/tmp/bench_api_{uuid.uuid4().hex[:6]}.sqlite"
        src = sqlite3.connect(f"file:{FULL_SQLITE}?mode=ro", uri=True)
        out = sqlite3.connect(dst)
        src.backup(out)
        out.close()
        src.close()
        return f"sqlite:///{dst}", lambda: [Path(dst + s).unlink(missing_ok=True)
                                      for s in ("", "-wal", "-shm", ".writers")]
    name = f"bench_api_{uuid.uuid4().hex[:6]}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", "-T", PG_TEMPLATE, name], check=True)
    return PG + name, lambda: subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", name])


def prepare(url: str) -> tuple[str, list]:
    """A fresh 'operate' token and one point inside each grid of the store."""
    from shapely import point_on_surface
    from sqlalchemy import select

    from data.store import make_engine
    from data.store.migrate import upgrade
    from data.store.schema import Grid
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        pts = [point_on_surface(g) for g in conn.execute(select(Grid.geom)).scalars()]
    engine.dispose()
    return new_token(url), [(p.x, p.y) for p in pts]


def new_token(url: str) -> str:
    """An 'operate' token of its own: a run's cases are then exactly the ones its token made."""
    from data import tokens
    from data.store import make_engine
    engine = make_engine(url)
    with engine.begin() as conn:
        token = tokens.add(conn, f"bench-{uuid.uuid4().hex[:6]}", "operate")
    engine.dispose()
    return token


def start(kind: str, url: str, port: int, workers: int, worker_class: str = WORKER_CLASS, threads: int = THREADS):
    env = dict(os.environ, DATABASE_URL=url, PYTHONUNBUFFERED="1")
    log = open(f"/tmp/bench_api_{kind}_{port}.log", "wb")
    if kind == "gunicorn":
        cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", worker_class, "--threads", str(threads),
               "--timeout", "120", "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT), "dashboard.wsgi:server"]
    else:
        cmd = [sys.executable, "app.py", "serve", "--no-seed", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    import requests
    deadline = time.monotonic() + 900     # workers import the whole app: slow on a busy machine
    try:
        while time.monotonic() < deadline:
            try:
                # A worker's first request runs Dash's layout validation (the map page at full scale:
                # tens of seconds on a busy machine), hence gunicorn's --timeout 120 as in docs/deploy.md.
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=120).status_code == 200:
                    settle(proc)
                    return proc
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} exited; see /tmp/bench_api_{kind}_{port}.log")
            time.sleep(0.25)
    except BaseException:
        stop(proc)   # Ctrl-C while waiting must not leave a server behind
        raise
    stop(proc)
    raise RuntimeError(f"{kind} did not become healthy in 900 s; see /tmp/bench_api_{kind}_{port}.log")


def settle(proc, idle_cores: float = 0.15, limit_s: float = 180.0) -> None:
    """Wait until the server and its workers are idle: each process loads the case columns in the background
    at start (layers/cube.py, ~10 s of CPU at full scale), which a run must not count as request cost."""
    import psutil
    t0 = time.monotonic()
    root = psutil.Process(proc.pid)

    def cpu() -> float:
        total = 0.0
        for p in [root, *root.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total
    last = cpu()
    while time.monotonic() - t0 < limit_s:
        time.sleep(1.0)
        now = cpu()
        if now - last < idle_cores:
            break
        last = now
    print(f"server settled (start-up loads done) after {time.monotonic() - t0:.0f} s", flush=True)


def stop(proc) -> None:
    """The server and every worker it forked (its own session)."""
    os.killpg(proc.pid, 15)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(30)


# -- CPU accounting ----------------------------------------------------------------------------------

class CpuMeter:
    """CPU seconds (user + system) of the server's process tree and of PostgreSQL's backends serving the
    copied database, between start() and stop(). Processes that exit during the run lose their last
    seconds (none do: gunicorn workers and pooled backends live for the whole run)."""

    def __init__(self, server_pid: int, pg_db: str | None):
        import psutil
        self.psutil, self.server_pid, self.pg_db = psutil, server_pid, pg_db

    def _procs(self) -> dict:
        ps = self.psutil
        out = {}
        try:
            root = ps.Process(self.server_pid)
            for p in [root] + root.children(recursive=True):
                out[p.pid] = ("server", p)
        except ps.NoSuchProcess:
            pass
        if self.pg_db:
            for p in ps.process_iter(["name", "cmdline"]):
                cmd = " ".join(p.info["cmdline"] or [])
                if cmd.startswith("postgres: ") and f" {self.pg_db} " in cmd:
                    out[p.pid] = ("postgres", p)
        return out

    def _sample(self) -> dict:
        got = {}
        for pid, (role, p) in self._procs().items():
            try:
                t = p.cpu_times()
                got[pid] = (role, t.user + t.system)
            except self.psutil.NoSuchProcess:
                pass
        return got

    def start(self):
        self.t0, self.s0, self.m0 = time.perf_counter(), self._sample(), self.psutil.cpu_times()

    def stop(self) -> dict:
        s1, m1, wall = self._sample(), self.psutil.cpu_times(), time.perf_counter() - self.t0
        used = {"server": 0.0, "postgres": 0.0}
        for pid, (role, cpu) in s1.items():
            used[role] += cpu - self.s0.get(pid, (role, 0.0))[1]
        busy = lambda t: t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)  # noqa: E731
        used["machine"] = busy(m1) - busy(self.m0)
        used["wall"] = wall
        return used


# -- wrk -----------------------------------------------------------------------------------------------

WRK_LUA = r"""
-- written by bench/api.py for one run
local mode, token, points, codes, out = %(mode)s, %(token)s, %(points)s, %(codes)s, %(out)s
local classes = {"E0101", "E0102", "E0104", "E0201", "E0301"}
local threads, counter, file = {}, 0, nil
n201, n200, other = 0, 0, 0   -- globals: done() reads them from each thread with thread:get

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(tid * 7919 + os.time())
  file = io.open(out .. "." .. tid, "w")
  file:setvbuf("line")   -- wrk may never close a thread's state: each line must be out at once
  prefix = string.format("%%s-%%d-", out:match("[^/]*$"), tid)
end

function request()
  if mode == "get" then
    return wrk.format("GET", "/api/v1/cases/" .. codes[math.random(#codes)],
                      {["Authorization"] = "Bearer " .. token})
  end
  counter = counter + 1
  local p = points[math.random(#points)]
  local body = string.format('{"lon": %%.7f, "lat": %%.7f, "class_code": "%%s", "source_code": "public"}',
                             p[1], p[2], classes[math.random(#classes)])
  return wrk.format("POST", "/api/v1/cases", {["Authorization"] = "Bearer " .. token,
                    ["Content-Type"] = "application/json", ["Idempotency-Key"] = prefix .. counter}, body)
end

function response(status, headers, body)
  if status == 201 then
    n201 = n201 + 1
    file:write(headers["Location"] or "?", "\n")
  elseif status == 200 then
    n200 = n200 + 1
  else
    other = other + 1
    if other <= 3 then io.stderr:write(status, " ", body:sub(1, 300), "\n") end
  end
end

function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("n201"); b = b + t:get("n200"); c = c + t:get("other")
  end
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p95_us": %%d, ' ..
    '"p99_us": %%d, "n201": %%d, "n200": %%d, "other": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d}\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), a, b, c, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def _lua(v) -> str:
    if isinstance(v, str):
        return json.dumps(v)   # a JSON string literal is a valid Lua string literal for these characters
    if isinstance(v, (list, tuple)):
        return "{" + ",".join(_lua(x) for x in v) + "}"
    return repr(float(v))


def load_wrk(base: str, token: str, points: list, codes: list, mode: str, seconds: float, connections: int,
             threads: int) -> dict:
    run = f"/tmp/bench_api_wrk_{uuid.uuid4().hex[:8]}"
    script = Path(run + ".lua")
    script.write_text(WRK_LUA % {"mode": _lua(mode), "token": _lua(token), "points": _lua(points[:20000]),
                                 "codes": _lua(codes or ["none"]), "out": _lua(run)})
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)   # wrk is the only child reaped meanwhile
    proc = subprocess.Popen(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "30s",
                             "-s", str(script), base], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}\n{err}")
    r = json.loads(line[6:])
    created = []
    for f in Path("/tmp").glob(Path(run).name + ".*"):
        if f.suffix != ".lua":
            created += [ln.rsplit("/", 1)[-1] for ln in f.read_text().split()]
            f.unlink()
    script.unlink()
    dur = r["duration_us"] / 1e6
    return {"n": r["requests"], "rps": r["requests"] / dur, "p50": r["p50_us"] / 1000, "p95": r["p95_us"] / 1000,
            "p99": r["p99_us"] / 1000, "ok": r["n201"] + r["n200"], "n201": r["n201"], "non2xx": r["other"],
            "socket_errors": r["connect"] + r["read"] + r["write"] + r["timeout"], "created": created,
            "client_cpu": (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime), "stderr": err.strip()[:600]}


def load_python(base: str, token: str, points: list, codes: list, mode: str, seconds: float, connections: int,
                threads: int = 0) -> dict:
    """The fallback client: one thread per connection, as fast as answers come back."""
    import requests
    lat_ms, created, counts, lock = [], [], {"ok": 0, "n201": 0, "non2xx": 0, "socket_errors": 0}, threading.Lock()
    until = time.perf_counter() + seconds
    c0 = time.process_time()

    def worker(seed):
        rng = random.Random(seed)
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {token}"
        mine, made, local = [], [], {k: 0 for k in counts}
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            try:
                if mode == "get":
                    r = s.get(f"{base}/api/v1/cases/{rng.choice(codes)}", timeout=60)
                else:
                    lon, lat = rng.choice(points)
                    r = s.post(base + "/api/v1/cases", json={"lon": lon, "lat": lat, "class_code": rng.choice(CLASSES),
                                                             "source_code": "public"},
                               headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=60)
            except requests.RequestException:
                local["socket_errors"] += 1
                continue
            mine.append((time.perf_counter() - t0) * 1000)
            if r.status_code in (200, 201):
                local["ok"] += 1
                if r.status_code == 201:
                    local["n201"] += 1
                    made.append(r.headers["Location"].rsplit("/", 1)[-1])
            else:
                local["non2xx"] += 1
        with lock:
            lat_ms.extend(mine)
            created.extend(made)
            for k, v in local.items():
                counts[k] += v
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    wall = time.perf_counter() - t0
    lat_ms.sort()
    pct = lambda q: lat_ms[min(len(lat_ms) - 1, int(q * len(lat_ms)))] if lat_ms else float("nan")  # noqa: E731
    return {"n": len(lat_ms), "rps": len(lat_ms) / wall, "p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99),
            "created": created, "client_cpu": time.process_time() - c0, "stderr": "", **counts}


# -- checks on the copy ----------------------------------------------------------------------------------

def case_codes(url: str, reporter: str) -> tuple[set, int, int]:
    """What the token `reporter` left in the copy: (codes of the cases its idempotency keys point at, its
    keys, its 'report' events: one per case it made, keyed or not)."""
    from sqlalchemy import func, select

    from data.store import make_engine
    from data.store.schema import ApiToken, Case, CaseEvent, IdempotencyKey
    engine = make_engine(url)
    keyed = select(IdempotencyKey.case_id).join(ApiToken, ApiToken.id == IdempotencyKey.token_id).where(
        ApiToken.name == reporter)
    with engine.connect() as conn:
        codes = set(conn.execute(select(Case.code).where(Case.id.in_(keyed))).scalars())
        keys = conn.execute(select(func.count()).select_from(keyed.subquery())).scalar()
        reported = conn.execute(select(func.count()).select_from(CaseEvent).where(
            CaseEvent.action == "report", CaseEvent.actor == f"api:{reporter}"[:64])).scalar()
    engine.dispose()
    return codes, keys, reported


def token_name(url: str, token: str) -> str:
    from sqlalchemy import select

    from data import tokens
    from data.store import make_engine
    from data.store.schema import ApiToken
    engine = make_engine(url)
    with engine.connect() as conn:
        name = conn.execute(select(ApiToken.name).where(ApiToken.token_hash == tokens.digest(token))).scalar()
    engine.dispose()
    return name


def sample_codes(url: str, n: int = 5000) -> list:
    from sqlalchemy import select

    from data.store import make_engine
    from data.store.schema import Case
    engine = make_engine(url)
    with engine.connect() as conn:
        top = conn.execute(select(Case.id).order_by(Case.id.desc()).limit(1)).scalar() or 0
        ids = random.Random(3).sample(range(1, top + 1), min(n, top))
        codes = list(conn.execute(select(Case.code).where(Case.id.in_(ids))).scalars())
    engine.dispose()
    return codes


# -- in-process CPU ------------------------------------------------------------------------------------

def cpu_per_request(url: str, token: str, points: list, n: int, codes: list | None = None) -> dict:
    """CPU milliseconds of one POST (with an Idempotency-Key, as the HTTP runs send) and of one GET inside
    this process (the app through Flask's test client, no HTTP, no client threads): unlike requests/s it
    hardly moves with the machine's load, so runs compare. On PostgreSQL the database server's own CPU is
    not in it (the HTTP runs count it)."""
    from dashboard.server import create_app
    from data.store import make_engine
    engine = make_engine(url)
    client = create_app(engine).server.test_client()
    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {token}"}
    made, out = [], {}
    for mode in ("post", "get"):
        cpu, wall = [], []
        for i in range(n + 20):
            c0, w0 = time.process_time(), time.perf_counter()
            if mode == "post":
                lon, lat = rng.choice(points)
                r = client.post("/api/v1/cases", json={"lon": lon, "lat": lat, "class_code": "E0101",
                                                       "source_code": "public"},
                                headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
                want = 201
            else:
                r = client.get(f"/api/v1/cases/{rng.choice(made)}", headers=headers)
                want = 200
            if r.status_code != want:
                raise RuntimeError(f"{mode.upper()} answered {r.status_code}: {r.get_data(as_text=True)[:300]}")
            if mode == "post":
                made.append(r.json["code"])
            if i >= 20:   # the first requests build the per-version caches
                cpu.append((time.process_time() - c0) * 1000)
                wall.append((time.perf_counter() - w0) * 1000)
        cpu.sort()
        wall.sort()
        out[mode] = {"cpu_p50": cpu[len(cpu) // 2], "cpu_mean": sum(cpu) / len(cpu), "wall_p50": wall[len(wall) // 2]}
    engine.dispose()
    return out


# -- main ------------------------------------------------------------------------------------------------

def run_server(db: str, kind: str, url: str, points: list, a) -> list:
    """Start one server, warm it up, run each mode, check the copy; one result row per mode."""
    token = new_token(url)
    port = 18000 + random.randrange(1000)
    proc = start(kind, url, port, a.workers, a.worker_class, a.threads)
    pg_db = url.rsplit("/", 1)[-1] if db == "postgresql" else None
    load = load_wrk if a.client == "wrk" else load_python
    base = f"http://127.0.0.1:{port}"
    reporter = token_name(url, token)
    rows = []
    try:
        warm = load(base, token, points, [], "post", 3, a.connections, a.wrk_threads)   # every worker, every cache
        n201, post_runs = warm["n201"], 1
        seen = list(warm["created"])
        codes = sample_codes(url)
        for mode in a.modes:
            meter = CpuMeter(proc.pid, pg_db)
            meter.start()
            r = load(base, token, points, codes, mode, a.seconds, a.connections, a.wrk_threads)
            r["cpu"] = meter.stop()
            if mode == "post":
                n201 += r["n201"]
                seen += r["created"]
                post_runs += 1
            rows.append((db, kind, mode, r))
            print_row(db, kind, mode, r, a)
    finally:
        stop(proc)
    stored, keys, reported = case_codes(url, reporter)
    missing = set(seen) - stored
    dup = len(seen) - len(set(seen))
    extra = reported - len(set(seen))
    ok = (not missing and not dup and keys == len(stored) == reported and len(seen) == n201
          and 0 <= extra <= a.connections * post_runs)
    print(f"{db:<10} {kind:<10} check: {n201} answered 201, {reported} cases reported by the token, {keys} "
          f"idempotency keys; 201s naming no stored case: {len(missing)}, duplicate 201s: {dup}, cases beyond the "
          f"201s (in flight when a run stopped, <= {a.connections * post_runs} allowed): {extra} -> {'OK' if ok else 'FAILED'}",
          flush=True)
    if not ok:
        raise SystemExit(f"{db} {kind}: the store does not match the answers (see above)")
    return rows


def print_row(db, kind, mode, r, a) -> None:
    c = r["cpu"]
    n = max(r["n"], 1)
    client = f", client {1000 * r['client_cpu'] / n:.2f}" if r.get("client_cpu") is not None else ""
    other = c["machine"] - c["server"] - c["postgres"] - (r.get("client_cpu") or 0)
    print(f"{db:<10} {kind:<10} {mode:<4} {r['rps']:8.1f} req/s  p50 {r['p50']:6.1f}  p95 {r['p95']:6.1f}  "
          f"p99 {r['p99']:6.1f} ms  n={r['n']} non-2xx={r['non2xx']} socket errors={r['socket_errors']}  | CPU ms/req:"
          f" server {1000 * c['server'] / n:.2f}, postgres {1000 * c['postgres'] / n:.2f}{client}; machine busy "
          f"{c['machine'] / c['wall']:.2f} of {os.cpu_count()} cores, of which other processes "
          f"{other / c['wall']:.2f}", flush=True)
    if r.get("stderr"):
        print("   client said:", r["stderr"].replace("\n", " | "), flush=True)


def main(argv=None) -> int:
    global FULL_SQLITE, PG_TEMPLATE
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="both", choices=["sqlite", "postgresql", "both"])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=8, help="concurrent connections (wrk -c / client threads)")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk -t (one is plenty below 10k req/s)")
    ap.add_argument("--workers", type=int, default=WORKERS, help="gunicorn -w")
    ap.add_argument("--worker-class", default=WORKER_CLASS, help="gunicorn -k (sync, gthread)")
    ap.add_argument("--threads", type=int, default=THREADS, help="gunicorn --threads (gthread)")
    ap.add_argument("--client", default="wrk" if shutil.which("wrk") else "python", choices=["wrk", "python"])
    ap.add_argument("--modes", default="post,get", help="post, get or both, comma-separated")
    ap.add_argument("--servers", default="gunicorn,flask-dev", help="gunicorn, flask-dev (the naive baseline)")
    ap.add_argument("--cpu-requests", type=int, default=300, help="sequential in-process requests per mode for the "
                                                                  "CPU figure; 0 skips it")
    ap.add_argument("--from-sqlite", default="/work/full/full.sqlite", help="the SQLite store to copy")
    ap.add_argument("--from-pg", default="cgzt_full", help="the PostgreSQL database to clone")
    a = ap.parse_args(argv)
    FULL_SQLITE, PG_TEMPLATE = a.from_sqlite, a.from_pg
    a.modes = [m for m in a.modes.split(",") if m]
    if not shutil.which("wrk"):
        print("wrk not found (apt-get install wrk): the Python client threads share the cores with the server",
              flush=True)
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}; client {a.client} with "
          f"{a.connections} connections; gunicorn -w {a.workers} -k {a.worker_class} --threads {a.threads}", flush=True)
    rows, cpu_rows = [], []
    for db in (["sqlite", "postgresql"] if a.db == "both" else [a.db]):
        url, drop = copy_store(db)
        try:
            token, points = prepare(url)
            if a.cpu_requests:
                c = cpu_per_request(url, token, points, a.cpu_requests)
                cpu_rows.append((db, c))
                for mode, m in c.items():
                    print(f"{db:<10} in-process CPU per {mode.upper()}: mean {m['cpu_mean']:.2f} ms, p50 "
                          f"{m['cpu_p50']:.2f} ms (wall p50 {m['wall_p50']:.2f} ms)", flush=True)
            for kind in a.servers.split(","):
                rows += run_server(db, "gunicorn" if kind == "gunicorn" else "flask-dev", url, points, a)
        finally:
            drop()
    label = {"gunicorn": f"gunicorn -w {a.workers} -k {a.worker_class}" + (f" --threads {a.threads}"
                                                                           if a.threads > 1 else ""),
             "flask-dev": "flask-dev (naive)"}
    print("\n| store | server | request | requests/s | p50 ms | p95 ms | p99 ms | non-2xx | server CPU ms/req "
          "| postgres CPU ms/req | other load, cores |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for db, kind, mode, r in rows:
        c, n = r["cpu"], max(r["n"], 1)
        other = (c["machine"] - c["server"] - c["postgres"] - (r.get("client_cpu") or 0)) / c["wall"]
        print(f"| {db} | {label[kind]} | {'POST /api/v1/cases' if mode == 'post' else 'GET /api/v1/cases/{code}'} "
              f"| {r['rps']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {r['non2xx'] + r['socket_errors']} "
              f"| {1000 * c['server'] / n:.2f} | {1000 * c['postgres'] / n:.2f} | {other:.2f} |")
    if cpu_rows:
        print("\n| store | in-process app CPU per POST, mean ms | per GET, mean ms |\n| --- | ---: | ---: |")
        for db, c in cpu_rows:
            print(f"| {db} | {c['post']['cpu_mean']:.2f} | {c['get']['cpu_mean']:.2f} |")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
