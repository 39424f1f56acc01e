"""data.intake under concurrent writers, on both databases: every report gets its own daily number and
nothing fails, and the reference snapshot follows a reload of the reference tables."""
import threading

import pytest

from sqlalchemy import func, select

from data import intake
from data.store import meta
from data.store.schema import Case, CaseClass
from tests.test_api_support import api_store, inside_grid  # noqa: F401

WRITERS = 16


def test_concurrent_reports_all_get_distinct_numbers(api_store):
    """16 writers released together: on PostgreSQL they used to draw the same daily number and give up
    after 8 retries; the numbering lock makes them take turns instead."""
    lon, lat, _ = inside_grid(api_store, 3)
    gate = threading.Barrier(WRITERS)
    codes, errors = [], []

    def write(i):
        try:
            gate.wait(timeout=30)
            with intake.write_transaction(api_store) as conn:
                case, created = intake.report(conn, lon=lon, lat=lat, class_code="E0101", source_code="public",
                                              description=f"writer {i}")
            codes.append(case["code"])
        except Exception as exc:  # noqa: BLE001 - every failure is reported by the assert below
            errors.append(repr(exc))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    [t.start() for t in threads]
    [t.join(120) for t in threads]
    assert errors == []
    assert len(codes) == WRITERS and len(set(codes)) == WRITERS
    seqs = sorted(int(c[-6:]) for c in codes)
    assert seqs == list(range(seqs[0], seqs[0] + WRITERS))          # consecutive: no number skipped
    with api_store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Case).where(Case.code.in_(codes))).scalar() == WRITERS


def test_reference_snapshot_follows_a_reload(api_store):
    """A class renamed by a reference reload (which bumps the boundaries version) is seen by the next case."""
    with api_store.connect() as conn:
        before = intake.reference(conn).class_names["E0101"]
    with api_store.begin() as conn:
        conn.execute(CaseClass.__table__.update().where(CaseClass.code == "E0101").values(name="测试改名"))
        meta.bump(conn, "boundaries")
    try:
        with api_store.connect() as conn:
            assert intake.reference(conn).class_names["E0101"][0] == "测试改名"
    finally:
        with api_store.begin() as conn:
            conn.execute(CaseClass.__table__.update().where(CaseClass.code == "E0101").values(name=before[0]))
            meta.bump(conn, "boundaries")


@pytest.mark.only_db("sqlite")
def test_sqlite_writers_queue_on_the_lock_file(api_store):
    """A writer waits in the kernel on <store>.writers while another process holds it (here: this test), and
    goes on the moment it is released, instead of polling SQLite's lock with sleeps."""
    import fcntl
    import os
    import time
    path = api_store.url.database + ".writers"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    done = threading.Event()

    def write():
        with intake.write_transaction(api_store) as conn:
            meta.bump(conn, "cases")
        done.set()
    t = threading.Thread(target=write)
    t.start()
    try:
        assert not done.wait(1.0)          # queued behind the holder
    finally:
        released = time.monotonic()
        os.close(fd)
    assert done.wait(10)
    assert time.monotonic() - released < 0.5
    t.join(10)
