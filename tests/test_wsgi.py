"""The production entry point: gunicorn with several workers over one store serves the same data from every
worker, and refuses to start on a store whose schema is behind."""
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from data.store import make_engine
from data.store.migrate import upgrade
from tests.browser_fixtures import die_with_parent, sign_in

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn(url: str, port: int, workers: int = 2, **env_extra):
    env = dict(os.environ, DATABASE_URL=url, **env_extra)
    return subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
                             "--timeout", "120", "dashboard.wsgi:server"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=die_with_parent)


def wait_up(proc, port, timeout=90.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            return False
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            time.sleep(0.3)
    return False


def stop(proc):
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def test_workers_serve_one_store_alike(seeded_url):
    '''Also "a session works on every worker": the session key is shared through the store.'''
    port = free_port()
    proc = gunicorn(seeded_url, port, workers=2)
    try:
        assert wait_up(proc, port), stop(proc)
        # Many requests land on both workers; every one must describe the same store and the same layer bytes.
        health = [requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json() for _ in range(12)]
        assert {h["status"] for h in health} == {"ok"}
        assert len({repr(sorted(h["versions"].items())) for h in health}) == 1
        # One sign-in, then requests spread over both workers: the session and the layer bytes hold on each.
        base = f"http://127.0.0.1:{port}"
        http = requests.Session()
        for c in sign_in(base, seeded_url, f"wsgi-{uuid.uuid4().hex[:8]}", role="viewer"):
            http.cookies.set(c["name"], c["value"])
        assert requests.get(base + "/layers/grids.pbf", timeout=60).status_code == 401  # no session, no layer
        etags = set()
        for _ in range(8):
            r = http.get(base + "/layers/grids.pbf", timeout=60)
            assert r.status_code == 200
            etags.add(r.headers["ETag"])
        assert len(etags) == 1
    finally:
        out = stop(proc)
    assert "Booting worker" in out


def test_live_news_reaches_streams_on_every_worker(seeded_url):
    """Live updates reach browsers connected to any worker: with two workers each allowed two streams
    (gunicorn.conf.py's threaded workers), four pages' streams are held by both, a full worker refuses a
    fifth with 503 and Retry-After, other requests are still answered, and one new event reaches all four."""
    import json

    from sqlalchemy import select

    from data.store.schema import Case
    from tests.test_live import add_event
    port = free_port()
    proc = gunicorn(seeded_url, port, workers=2, CGZT_MAX_STREAMS="2")
    streams = []
    try:
        assert wait_up(proc, port), stop(proc)
        base = f"http://127.0.0.1:{port}"
        cookies = sign_in(base, seeded_url, f"wsgi-{uuid.uuid4().hex[:8]}", role="viewer")
        refused = []
        for _ in range(60):
            if len(streams) == 4:
                break
            http = requests.Session()
            for c in cookies:
                http.cookies.set(c["name"], c["value"])
            r = http.get(base + "/live/stream", stream=True, timeout=(10, 30))
            if r.status_code == 503:
                refused.append(r.headers.get("Retry-After"))
                r.close()
                time.sleep(0.1)
                continue
            assert r.status_code == 200, r.text
            streams.append(r)
        assert len(streams) == 4, f"only {len(streams)} streams after {len(refused)} refusals"
        assert set(refused) <= {"2"}
        r = requests.get(base + "/live/stream", cookies={c["name"]: c["value"] for c in cookies}, timeout=10)
        assert r.status_code == 503 and r.json()["error"] == "busy"          # both workers are full
        assert requests.get(base + "/healthz", timeout=10).status_code == 200
        engine = make_engine(seeded_url)
        with engine.begin() as conn:
            eid = add_event(conn, conn.execute(select(Case.id).limit(1)).scalar())
        engine.dispose()
        for s in streams:
            lines = s.iter_lines(decode_unicode=True)
            deadline = time.monotonic() + 20
            got = []
            while eid not in got:
                assert time.monotonic() < deadline, "a stream never carried the new event"
                line = next(lines)
                if line.startswith("data: ["):
                    got += [r["event"] for r in json.loads(line[6:])]
    finally:
        for s in streams:
            s.close()
        stop(proc)


def test_a_store_behind_the_schema_is_refused(db_kind, request, tmp_path_factory):
    from tests.conftest import _fresh_url
    if db_kind == "sqlite":
        url = _fresh_url(db_kind, request, tmp_path_factory)
    else:  # an empty database, not the migrated template
        server = request.getfixturevalue("pg_server")
        url = server.url(server.create())
    engine = make_engine(url)
    upgrade(engine, "0004")
    engine.dispose()
    port = free_port()
    proc = gunicorn(url, port, workers=1)
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("gunicorn kept running on a store behind the schema")
    out = stop(proc)
    assert proc.returncode != 0
    assert "run `python app.py migrate` once" in out
