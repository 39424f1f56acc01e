"""PostgreSQL connections are pinged only after sitting idle (data/store/engine.py): a pooled connection that
died while idle is replaced before a request gets it; one used within the idle window is not pinged."""
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from data.store.engine import make_engine


def _kill_pooled_backend(engine) -> None:
    """Check a connection out and back in, then end its backend from another session."""
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    admin = make_engine(engine.url, poolclass=None)
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        conn.commit()
    admin.dispose()


@pytest.mark.only_db("postgresql")
def test_a_connection_that_died_while_idle_is_replaced(fresh_engine):
    engine = make_engine(fresh_engine.url, ping_idle_s=0, pool_size=1, max_overflow=0)
    try:
        _kill_pooled_backend(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.only_db("postgresql")
def test_no_ping_within_the_idle_window(fresh_engine):
    """The same kill inside the window reaches the request: proof that busy connections skip the ping
    (the request then gets a 503 from dashboard/faults.py and the pool is dropped)."""
    engine = make_engine(fresh_engine.url, ping_idle_s=3600, pool_size=1, max_overflow=0)
    try:
        _kill_pooled_backend(engine)
        with pytest.raises(OperationalError):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        with engine.connect() as conn:   # the failure dropped the pool: the next checkout connects afresh
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
