"""Single-case API throughput: POST /api/v1/cases from a concurrent client, on a copy of the full store.

    python bench/api.py --db sqlite|postgresql|both [--seconds 15] [--clients 16] [--workers 4]

Serves the real app with gunicorn (--workers processes of the production entry dashboard.wsgi:server) and, as
the naive baseline in the same run, with `python app.py serve` (Flask's single-process development server). Each client thread reports cases at
random points inside the store's grids as fast as answers come back. Prints requests/s, p50 and p95
latency and the error count per server. Target: >= 200 requests/s on 2 cores. The shared full stores are
never written: SQLite is copied to /tmp, PostgreSQL is cloned with createdb -T and dropped afterwards.
The client threads run on the same cores as the server: they take CPU from it, so the figures are a floor.

The bulk import rate (the issue's third figure) is bench/import.py's: `python bench/import.py`.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
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


def copy_store(db: str) -> tuple[str, callable]:
    if db == "sqlite":
        dst = f"/tmp/bench_api_{uuid.uuid4().hex[:6]}.sqlite"
        shutil.copyfile(FULL_SQLITE, dst)
        return f"sqlite:///{dst}", lambda: [Path(p).unlink(missing_ok=True) for p in (dst, dst + "-wal", dst + "-shm")]
    name = f"bench_api_{uuid.uuid4().hex[:6]}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", "-T", "cgzt_full", name], check=True)
    return PG + name, lambda: subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", name])


def prepare(url: str) -> tuple[str, list]:
    from shapely import point_on_surface
    from sqlalchemy import select

    from data import tokens
    from data.store import make_engine
    from data.store.migrate import upgrade
    from data.store.schema import Grid
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        token = tokens.add(conn, f"bench-{uuid.uuid4().hex[:6]}", "operate")
        pts = [point_on_surface(g) for g in conn.execute(select(Grid.geom)).scalars()]
    engine.dispose()
    return token, [(p.x, p.y) for p in pts]


def start(kind: str, url: str, port: int, workers: int):
    env = dict(os.environ, DATABASE_URL=url, PYTHONUNBUFFERED="1")
    log = open(f"/tmp/bench_api_{kind}_{port}.log", "wb")
    if kind == "gunicorn":
        cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT),
               "dashboard.wsgi:server"]
    else:
        cmd = [sys.executable, "app.py", "serve", "--no-seed", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    import requests
    deadline = time.monotonic() + 900     # workers import the whole app: slow on a busy machine
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} exited; see /tmp/bench_api_{kind}_{port}.log")
        time.sleep(0.25)
    stop(proc)
    raise RuntimeError(f"{kind} did not become healthy in 900 s; see /tmp/bench_api_{kind}_{port}.log")


def stop(proc) -> None:
    """The server and every worker it forked (its own session)."""
    os.killpg(proc.pid, 15)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(30)


def load(base: str, token: str, points: list, seconds: float, clients: int) -> dict:
    import requests
    lat_ms, errors, lock = [], [0], threading.Lock()
    classes = ["E0101", "E0102", "E0104", "E0201", "E0301"]
    stop = time.perf_counter() + seconds

    def worker(seed):
        rng = random.Random(seed)
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {token}"
        mine = []
        while time.perf_counter() < stop:
            lon, lat = rng.choice(points)
            t0 = time.perf_counter()
            r = s.post(base + "/api/v1/cases", json={"lon": lon, "lat": lat, "class_code": rng.choice(classes),
                                                     "source_code": "public"}, timeout=60)
            mine.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 201:
                with lock:
                    errors[0] += 1
        with lock:
            lat_ms.extend(mine)
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    wall = time.perf_counter() - t0
    lat_ms.sort()
    pct = lambda q: lat_ms[min(len(lat_ms) - 1, int(q * len(lat_ms)))] if lat_ms else float("nan")  # noqa: E731
    return {"n": len(lat_ms), "rps": len(lat_ms) / wall, "p50": pct(0.5), "p95": pct(0.95), "errors": errors[0]}


def cpu_per_request(url: str, token: str, points: list, n: int) -> dict:
    """CPU milliseconds of one POST inside this process (the app through Flask's test client, no HTTP, no
    client threads): unlike requests/s it hardly moves with the machine's load, so runs compare. On
    PostgreSQL the database server's own CPU is not in it."""
    from dashboard.server import create_app
    from data.store import make_engine
    engine = make_engine(url)
    client = create_app(engine).server.test_client()
    rng = random.Random(7)
    cpu, wall = [], []
    for i in range(n + 20):
        lon, lat = rng.choice(points)
        c0, w0 = time.process_time(), time.perf_counter()
        r = client.post("/api/v1/cases", json={"lon": lon, "lat": lat, "class_code": "E0101", "source_code": "public"},
                        headers={"Authorization": f"Bearer {token}"})
        if r.status_code != 201:
            raise RuntimeError(f"POST answered {r.status_code}: {r.get_data(as_text=True)[:300]}")
        if i >= 20:   # the first requests build the per-version caches
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
    engine.dispose()
    cpu.sort()
    wall.sort()
    return {"cpu_p50": cpu[len(cpu) // 2], "cpu_mean": sum(cpu) / len(cpu), "wall_p50": wall[len(wall) // 2]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="both", choices=["sqlite", "postgresql", "both"])
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--cpu-requests", type=int, default=200, help="sequential in-process POSTs for the CPU figure")
    a = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}", flush=True)
    rows, cpu_rows = [], []
    for db in (["sqlite", "postgresql"] if a.db == "both" else [a.db]):
        url, drop = copy_store(db)
        try:
            token, points = prepare(url)
            c = cpu_per_request(url, token, points, a.cpu_requests)
            cpu_rows.append((db, c))
            print(f"{db:<10} in-process CPU per POST: mean {c['cpu_mean']:.1f} ms, p50 {c['cpu_p50']:.1f} ms"
                  f" (wall p50 {c['wall_p50']:.1f} ms): at most {2000 / c['cpu_mean']:.0f} req/s on 2 cores"
                  f" before HTTP and client costs", flush=True)
            for kind in ("gunicorn", "flask-dev (naive)"):
                port = 18000 + random.randrange(1000)
                proc = start(kind.split()[0], url, port, a.workers)
                try:
                    load(f"http://127.0.0.1:{port}", token, points, 2, a.clients)   # warm up every worker
                    r = load(f"http://127.0.0.1:{port}", token, points, a.seconds, a.clients)
                finally:
                    stop(proc)
                label = f"{kind} x{a.workers}" if kind == "gunicorn" else kind
                rows.append((db, label, r))
                print(f"{db:<10} {label:<18} {r['rps']:8.1f} req/s  p50 {r['p50']:6.1f} ms  p95 {r['p95']:6.1f} ms"
                      f"  n={r['n']} errors={r['errors']}", flush=True)
        finally:
            drop()
    print("\n| store | server | requests/s | p50 ms | p95 ms | errors |\n| --- | --- | ---: | ---: | ---: | ---: |")
    for db, label, r in rows:
        print(f"| {db} | {label} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['errors']} |")
    print("\n| store | app CPU per POST, mean ms | p50 ms | ceiling on 2 cores, req/s |\n| --- | ---: | ---: | ---: |")
    for db, c in cpu_rows:
        print(f"| {db} | {c['cpu_mean']:.1f} | {c['cpu_p50']:.1f} | {2000 / c['cpu_mean']:.0f} |")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
