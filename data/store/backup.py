"""Backups of the store: a consistent copy taken while the dashboard serves, and a restore that replaces
the store only after the copy has been checked.

SQLite: sqlite3's online backup API copies the pages under one read transaction, so a backup taken during
writes is the state of one instant (a plain file copy of a WAL database is not). The copy is written to a
temporary name and renamed only once it passes `PRAGMA quick_check`. Restore checks the file first
(SQLite header, quick_check, the store's tables, a schema revision this program knows), takes an exclusive
lock on the live store (so it refuses while another process writes), writes the checked copy next to it and
swaps it in with os.replace after removing the target's -wal/-shm files: a stale WAL replayed onto another
database would corrupt it.

PostgreSQL: pg_dump --format=custom and pg_restore --clean --if-exists --single-transaction, so a failed
restore leaves the database as it was. The same two CLI commands cover both stores (docs/deploy.md).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from data.store.migrate import _config

SQLITE_MAGIC = b"SQLite format 3\x00"
REQUIRED_TABLES = ("alembic_version", "meta", "districts", "grids", "cases", "case_events")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what was left untouched."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    bytes: int
    revision: str | None
    cases: int | None
    seconds: float

    def summary(self) -> str:
        cases = "?" if self.cases is None else f"{self.cases:,}"
        return (f"{self.path}: {self.bytes / 1e6:,.1f} MB, schema revision {self.revision}, {cases} cases, "
                f"{self.seconds:.1f} s")


def _known_revisions() -> set[str]:
    return {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}


def _sqlite_path(engine: Engine) -> Path:
    db = engine.url.database
    if not db or db == ":memory:":
        raise BackupError("an in-memory SQLite store has nothing to back up")
    return Path(db)


# ---------------------------------------------------------------- SQLite

def _check_sqlite_file(path: Path) -> tuple[str | None, int | None]:
    """(schema revision, case count) of a store file, or BackupError saying what is wrong with it."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    with open(path, "rb") as fh:
        if fh.read(16) != SQLITE_MAGIC:
            raise BackupError(f"{path}: not an SQLite database (wrong header)")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ok = con.execute("PRAGMA quick_check").fetchall()
            if ok != [("ok",)]:
                raise BackupError(f"{path}: damaged: {'; '.join(r[0] for r in ok[:5])}")
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = [t for t in REQUIRED_TABLES if t not in names]
            if missing:
                raise BackupError(f"{path}: not a 城管一张图 store (missing tables: {', '.join(missing)})")
            revision = (con.execute("SELECT version_num FROM alembic_version").fetchone() or (None,))[0]
            cases = con.execute("SELECT count(*) FROM cases").fetchone()[0]
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: unreadable as a store: {exc}") from None
    if revision not in _known_revisions():
        raise BackupError(f"{path}: schema revision {revision!r} is unknown to this program "
                          f"(made by a newer version?); restore it with that version")
    return revision, cases


def _sqlite_backup(engine: Engine, dest: Path) -> BackupInfo:
    t0 = time.perf_counter()
    src_path = _sqlite_path(engine)
    if not src_path.is_file():
        raise BackupError(f"{src_path}: the store does not exist")
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(str(src_path), timeout=30)
    dst = sqlite3.connect(str(tmp))
    try:
        with dst:
            src.backup(dst, pages=4096)  # in steps, so writers are not blocked for the whole copy
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
    finally:
        dst.close()
        src.close()
    try:
        revision, n = _check_sqlite_file(tmp)
    except BackupError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dest)
    return BackupInfo(dest, dest.stat().st_size, revision, n, time.perf_counter() - t0)


def _sqlite_restore(engine: Engine, src: Path) -> BackupInfo:
    t0 = time.perf_counter()
    revision, n = _check_sqlite_file(src)
    target = _sqlite_path(engine)
    engine.dispose()  # our own pooled connections would otherwise hold the old file open
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(target.name + ".restoring")
    shutil.copyfile(src, staged)
    lock = None
    try:
        if target.exists():
            lock = sqlite3.connect(str(target), timeout=2)
            try:
                lock.execute("BEGIN EXCLUSIVE")
            except sqlite3.OperationalError as exc:
                raise BackupError(f"{target}: the store is in use by another process ({exc}); stop the "
                                  f"dashboard and try again. Nothing was changed.") from None
        for suffix in ("-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        os.replace(staged, target)
    finally:
        if lock is not None:
            lock.close()
        staged.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):  # closing the lock on the replaced inode may have left fresh ones
        p = Path(str(target) + suffix)
        if p.exists() and p.stat().st_size == 0:
            p.unlink(missing_ok=True)
    return BackupInfo(target, target.stat().st_size, revision, n, time.perf_counter() - t0)


# ---------------------------------------------------------------- PostgreSQL

def _pg_args(engine: Engine) -> tuple[list[str], dict]:
    u = engine.url
    args = ["--host", u.host or "127.0.0.1", "--port", str(u.port or 5432), "--username", u.username or "postgres",
            "--no-password"]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    return args, env


def _run(cmd: list[str], env: dict, what: str) -> str:
    if shutil.which(cmd[0]) is None:
        raise BackupError(f"{cmd[0]} is not installed (Debian: postgresql-client); {what} needs it")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BackupError(f"{what} failed ({cmd[0]} exit {proc.returncode}): {proc.stderr.strip()[:800]}")
    return proc.stdout


def _pg_state(engine: Engine) -> tuple[str | None, int]:
    with engine.connect() as conn:
        return (conn.execute(text("SELECT version_num FROM alembic_version")).scalar(),
                conn.execute(text("SELECT count(*) FROM cases")).scalar())


def _pg_backup(engine: Engine, dest: Path) -> BackupInfo:
    t0 = time.perf_counter()
    args, env = _pg_args(engine)
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    try:
        _run(["pg_dump", *args, "--format=custom", "--no-owner", "--file", str(tmp), engine.url.database],
             env, "backup")
        listing = _run(["pg_restore", "--list", str(tmp)], env, "checking the backup")
    except BackupError:
        tmp.unlink(missing_ok=True)
        raise
    if "TABLE DATA public cases" not in listing:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"{engine.url.database}: not a 城管一张图 store (no cases table)")
    os.replace(tmp, dest)
    rev, n = _pg_state(engine)
    return BackupInfo(dest, dest.stat().st_size, rev, n, time.perf_counter() - t0)


def _pg_restore(engine: Engine, src: Path) -> BackupInfo:
    t0 = time.perf_counter()
    if not src.is_file():
        raise BackupError(f"{src}: no such file")
    args, env = _pg_args(engine)
    listing = _run(["pg_restore", "--list", str(src)], env, "reading the backup")
    if "TABLE DATA public cases" not in listing:
        raise BackupError(f"{src}: not a backup of a 城管一张图 store (no cases table)")
    engine.dispose()
    # One transaction: if anything fails, the database is left exactly as it was.
    _run(["pg_restore", *args, "--dbname", engine.url.database, "--clean", "--if-exists", "--no-owner",
          "--single-transaction", "--exit-on-error", str(src)], env, "restore")
    rev, n = _pg_state(engine)
    return BackupInfo(src, src.stat().st_size, rev, n, time.perf_counter() - t0)


# ---------------------------------------------------------------- entry points

def backup(engine: Engine, dest: str | Path) -> BackupInfo:
    """Write a consistent copy of the store to `dest` (never a half-written file at that name)."""
    dest = Path(dest)
    if dest.is_dir():
        raise BackupError(f"{dest} is a directory; give a file name")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if engine.dialect.name == "sqlite":
        return _sqlite_backup(engine, dest)
    return _pg_backup(engine, dest)


def restore(engine: Engine, src: str | Path) -> BackupInfo:
    """Replace the store with a checked backup; on any error the store is left as it was."""
    src = Path(src)
    if engine.dialect.name == "sqlite":
        return _sqlite_restore(engine, src)
    return _pg_restore(engine, src)
