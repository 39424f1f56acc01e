"""`python app.py backup` / `restore` on both stores: a round trip brings the data back exactly, and a bad
file, a missing confirmation or a busy store changes nothing."""
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from data.demo.seed import seed
from data.store.backup import BackupError, backup, restore

ROOT = Path(__file__).resolve().parents[1]


def cli(url, *args):
    env = dict(os.environ, DATABASE_URL=url)
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def state(engine):
    with engine.connect() as c:
        return (c.execute(text("SELECT count(*) FROM cases")).scalar(),
                c.execute(text("SELECT count(*) FROM case_events")).scalar(),
                c.execute(text("SELECT coalesce(sum(version), 0) FROM cases")).scalar(),
                c.execute(text("SELECT count(*) FROM meta WHERE key = 'after-backup'")).scalar())


def damage(engine):
    """What happens after the backup: cases deleted, a meta row added."""
    with engine.begin() as c:
        ids = [r[0] for r in c.execute(text("SELECT id FROM cases ORDER BY id LIMIT 50"))]
        c.execute(text("DELETE FROM case_events WHERE case_id IN (%s)" % ",".join(map(str, ids))))
        c.execute(text("DELETE FROM cases WHERE id IN (%s)" % ",".join(map(str, ids))))
        c.execute(text("INSERT INTO meta (key, value) VALUES ('after-backup', '1')"))


@pytest.fixture
def store(fresh_engine):
    seed(fresh_engine, scale="test", seed=3)
    return fresh_engine


def test_round_trip_through_the_cli(store, tmp_path):
    url = store.url.render_as_string(hide_password=False)
    before = state(store)
    f = tmp_path / "store.backup"
    r = cli(url, "backup", str(f))
    assert r.returncode == 0, r.stderr
    assert f.is_file() and f.stat().st_size > 0
    assert f"{before[0]:,} cases" in r.stdout
    assert not list(tmp_path.glob("*.partial"))

    damage(store)
    damaged = state(store)
    assert damaged != before

    r = cli(url, "restore", str(f))  # no --yes: nothing happens
    assert r.returncode == 1 and "--yes" in r.stderr
    assert state(store) == damaged

    r = cli(url, "restore", str(f), "--yes")
    assert r.returncode == 0, r.stderr
    store.dispose()
    assert state(store) == before


@pytest.mark.parametrize("content", [b"not a database at all\n", None])
def test_a_bad_file_is_refused_and_the_store_is_untouched(store, tmp_path, content, db_kind):
    url = store.url.render_as_string(hide_password=False)
    bad = tmp_path / "bad.backup"
    if content is None:  # a real backup cut short
        good = tmp_path / "good.backup"
        backup(store, good)
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    else:
        bad.write_bytes(content)
    damage(store)
    damaged = state(store)
    r = cli(url, "restore", str(bad), "--yes")
    assert r.returncode == 2
    assert "restore failed, the store was not changed" in r.stderr
    store.dispose()
    assert state(store) == damaged


def test_backup_of_a_missing_tool_or_dir_is_a_clear_error(store, tmp_path):
    with pytest.raises(BackupError, match="is a directory"):
        backup(store, tmp_path)
    with pytest.raises(BackupError, match="no such file"):
        restore(store, tmp_path / "nothing-here.backup")


@pytest.mark.only_db("sqlite")  # the online-copy mechanics are SQLite's; pg_dump takes one snapshot by design
def test_sqlite_backup_during_writes_is_one_consistent_instant(store, tmp_path):
    path = store.url.database
    stop = threading.Event()
    written = []

    def writer():
        con = sqlite3.connect(path, timeout=30)
        i = 0
        while not stop.is_set():
            with con:  # each pair is one transaction: a consistent copy has both rows or neither
                con.execute("INSERT INTO meta (key, value) VALUES (?, '1')", (f"w{i}a",))
                con.execute("INSERT INTO meta (key, value) VALUES (?, '1')", (f"w{i}b",))
            written.append(i)
            i += 1
        con.close()

    th = threading.Thread(target=writer)
    th.start()
    try:
        while len(written) < 20:
            pass
        f = tmp_path / "live.backup"
        backup(store, f)
    finally:
        stop.set()
        th.join()
    con = sqlite3.connect(f)
    keys = {r[0] for r in con.execute("SELECT key FROM meta WHERE key LIKE 'w%'")}
    con.close()
    assert keys, "the copy saw none of the writes made before it started"
    pairs = {k[:-1] for k in keys}
    assert all(p + "a" in keys and p + "b" in keys for p in pairs), "a transaction was split by the copy"


@pytest.mark.only_db("sqlite")  # PostgreSQL restores inside one transaction and waits for locks instead
def test_sqlite_restore_refuses_while_the_store_is_written(store, tmp_path):
    f = tmp_path / "s.backup"
    backup(store, f)
    busy = sqlite3.connect(store.url.database, timeout=1)
    busy.execute("BEGIN IMMEDIATE")
    busy.execute("INSERT INTO meta (key, value) VALUES ('busy', '1')")
    try:
        with pytest.raises(BackupError, match="in use by another process"):
            restore(store, f)
    finally:
        busy.rollback()
        busy.close()
    assert Path(store.url.database).is_file()
    assert not Path(store.url.database + ".restoring").exists()
