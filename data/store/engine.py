"""Engines for the store. DATABASE_URL picks PostgreSQL; otherwise one SQLite file in WAL mode."""
import os
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


def make_engine(url: str | None = None, **kw) -> Engine:
    u = _normalise(url or database_url())
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u, connect_args={"timeout": 30, "check_same_thread": False}, **kw)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if u.get_backend_name() == "postgresql":
        kw.setdefault("pool_pre_ping", True)  # connections that died with a server restart are replaced
        # Fail fast when the server is unreachable (a dropped network would otherwise hang a request).
        kw.setdefault("connect_args", {}).setdefault("connect_timeout", 5)
        kw.setdefault("pool_timeout", 10)
        kw.setdefault("pool_size", 5)
        kw.setdefault("max_overflow", 10)
        return create_engine(u, **kw)
    raise ValueError(f"unsupported database {u.get_backend_name()!r}: use sqlite or postgresql")


def kind(engine: Engine) -> str:
    """'sqlite' or 'postgresql'."""
    return engine.dialect.name


def redacted(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
