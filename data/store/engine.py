"""Engines for the store. DATABASE_URL picks PostgreSQL; otherwise one SQLite file in WAL mode."""
import os
import time
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SQLITE_PATH = ROOT / "instance" / "cgzt.sqlite"


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}"


def _normalise(url: str):
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


PING_IDLE_S = 5.0


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Replace a pooled PostgreSQL connection that died (a server restart, a dropped network) before it is
    handed out, but only when it sat idle for idle_s: SQLAlchemy's pool_pre_ping costs a round trip on
    every checkout (every API request: ~0.15 ms of CPU and a PostgreSQL wake-up). A connection that dies
    while in use still fails that request (503, dashboard/faults.py) and SQLAlchemy then drops the whole
    pool, so the next request connects afresh."""
    from sqlalchemy import exc

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn, record):
        record.info["cgzt_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy):
        since = record.info.get("cgzt_idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as e:  # noqa: BLE001 - any failure: give the pool a new connection instead
            raise exc.DisconnectionError(f"idle connection failed its ping: {e}") from e


def make_engine(url: str | None = None, **kw) -> Engine:
    u = _normalise(url or database_url())
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u, connect_args={"timeout": 30, "check_same_thread": False}, **kw)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if u.get_backend_name() == "postgresql":
        ping = kw.pop("ping_idle_s", PING_IDLE_S)
        if kw.get("pool_pre_ping"):
            ping = None   # the caller asked for a ping on every checkout
        # Fail fast when the server is unreachable (a dropped network would otherwise hang a request).
        kw.setdefault("connect_args", {}).setdefault("connect_timeout", 5)
        kw.setdefault("pool_timeout", 10)
        kw.setdefault("pool_size", 5)
        kw.setdefault("max_overflow", 10)
        engine = create_engine(u, **kw)
        if ping is not None:
            _ping_when_idle(engine, ping)
        return engine
    raise ValueError(f"unsupported database {u.get_backend_name()!r}: use sqlite or postgresql")


def kind(engine: Engine) -> str:
    """'sqlite' or 'postgresql'."""
    return engine.dialect.name


def redacted(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
