"""Faults of the store: PostgreSQL going away and coming back (through a TCP proxy we cut), and an SQLite
file that is read-only or full. Each gets a fast 503 with Retry-After and a clear reason, no write is half
done, and service resumes by itself; a retried creation with its idempotency key makes exactly one case."""
import socket
import threading
import time
import uuid

import pytest
import requests
from sqlalchemy import event, func, select, text
from werkzeug.serving import make_server

from data.demo.seed import seed
from data.store import make_engine
from data.store.schema import Case, CaseEvent
from dashboard.server import create_app
from tests.test_api_support import auth, inside_grid, make_token


class TcpProxy:
    """127.0.0.1:<port> -> target, which the test can cut (dropping every connection) and restore."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.port = None
        self.listener = None
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port or 0))
        self.port = self.listener.getsockname()[1]
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        try:  # shutdown wakes the accept() blocked in the other thread; close alone leaves it listening
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.conns.clear()


class Served:
    def __init__(self, engine):
        self.app = create_app(engine)
        self.http = make_server("127.0.0.1", 0, self.app.server, threaded=True)
        self.base = f"http://127.0.0.1:{self.http.server_port}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self):
        self.http.shutdown()


def body(engine, i=0):
    lon, lat, _ = inside_grid(engine, i)
    return {"lon": lon, "lat": lat, "class_code": "E0101", "source_code": "public",
            "description": f"fault test {uuid.uuid4().hex[:8]}"}


def post(base, token, b, key):
    return requests.post(f"{base}/api/v1/cases", json=b, timeout=20,
                         headers={**auth(token), "Idempotency-Key": key})


@pytest.fixture
def store(fresh_engine):
    seed(fresh_engine, scale="test", seed=5)
    return fresh_engine


def counts(engine):
    with engine.connect() as c:
        return (c.execute(select(func.count()).select_from(Case)).scalar(),
                c.execute(select(func.count()).select_from(CaseEvent)).scalar())


@pytest.mark.only_db("postgresql")
def test_postgresql_outage_gives_fast_503s_then_recovers_without_losing_or_doubling_a_case(store):
    token = make_token(store, "fault-reporter", "report")
    proxy = TcpProxy(store.url.port or 5432)
    proxy.start()
    url = store.url.set(host="127.0.0.1", port=proxy.port)
    served = Served(make_engine(url))
    try:
        assert post(served.base, token, body(store), "before").status_code == 201
        proxy.cut()
        b = body(store, 1)
        t0 = time.perf_counter()
        r = post(served.base, token, b, "during-outage")
        took = time.perf_counter() - t0
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"].isdigit()
        assert r.json()["error"] == "store_unavailable"
        assert took < 10, f"the 503 took {took:.1f} s: a client should not hang while the store is down"
        assert requests.get(served.base + "/healthz", timeout=20).status_code == 503

        proxy.start()  # the database is back, on the same address
        deadline = time.time() + 30
        while True:
            r = post(served.base, token, b, "during-outage")
            if r.status_code != 503 or time.time() > deadline:
                break
            time.sleep(0.5)
        assert r.status_code == 201, r.text
        again = post(served.base, token, b, "during-outage")
        assert again.status_code == 200 and again.json()["code"] == r.json()["code"]
        with store.connect() as c:
            n = c.execute(select(func.count()).select_from(Case).where(Case.description == b["description"])).scalar()
        assert n == 1
    finally:
        served.close()
        proxy.cut()


def _engine_with(store, pragma: str):
    engine = make_engine(store.url)

    @event.listens_for(engine, "connect")
    def _limit(dbapi_conn, _record):
        if pragma == "full":  # the file may not grow by one page: what a full disk looks like to SQLite
            pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
            dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")
        else:
            dbapi_conn.execute("PRAGMA query_only = ON")
    return engine


@pytest.mark.only_db("sqlite")
@pytest.mark.parametrize("fault, code", [("read_only", "store_read_only"), ("full", "store_full")])
def test_sqlite_read_only_or_full_refuses_writes_cleanly(store, fault, code, monkeypatch):
    # The session key normally is generated into the store on first start, which a read-only store refuses.
    monkeypatch.setenv("CGZT_SECRET_KEY", "k" * 48)
    token = make_token(store, "fault-reporter", "report")
    before = counts(store)
    served = Served(_engine_with(store, fault))
    try:
        for i in range(40):  # cases until the last page is used up, whatever the free space inside it
            r = post(served.base, token, {**body(store, i), "description": "x" * 1900}, f"k{i}")
            if r.status_code == 503:
                break
        assert r.status_code == 503, r.text
        assert r.json()["error"] == code and r.headers["Retry-After"]
        assert requests.get(served.base + "/api/v1/cases?limit=5", headers=auth(token), timeout=20).status_code == 200  # reads go on
    finally:
        served.close()
    with store.connect() as c:
        assert c.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    after = counts(store)
    if fault == "read_only":
        assert after == before
    # Every case that exists has its 'report' event: no write was half done.
    with store.connect() as c:
        orphans = c.execute(text("SELECT count(*) FROM cases WHERE NOT EXISTS "
                                 "(SELECT 1 FROM case_events e WHERE e.case_id = cases.id)")).scalar()
    assert orphans == 0
