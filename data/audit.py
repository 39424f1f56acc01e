"""The audit log: one row per login, failed login, logout and write, kept in the store.

Why one function: every way a write can happen (the workflow, the API, imports, the CLI, user management)
must leave the same kind of row, and the row must commit or roll back with the write it describes, so
`record` takes the caller's connection and never opens a transaction of its own.
"""
from __future__ import annotations

import json
import re

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data.store.schema import AuditLog

_KIND = re.compile(r"^[a-z][a-z0-9_.]{0,31}$")
_LIMITS = {"actor": 64, "target": 128, "remote": 64}
_INSERT = AuditLog.__table__.insert()   # built once: every write adds a row (bench/README.md, API throughput)


def record(conn: Connection, actor: str, kind: str, target=None, detail=None, remote=None) -> None:
    """Add one audit row in the caller's transaction.

    actor   who: a user name, 'token:<name>' for an API token, 'cli', 'system'
    kind    what: 'login', 'login_failed', 'logout', 'write', 'user_add', ... (lower-case identifier)
    target  what it was done to (a case code, a user name, a layer), optional
    detail  anything JSON-serialisable (a dict of changed fields, a reason), optional
    remote  the client's address, optional
    """
    insert(conn, [row(actor, kind, target, detail, remote)])


def row(actor: str, kind: str, target=None, detail=None, remote=None) -> dict:
    """One checked audit row, to insert later with others in one statement (a new case's report and
    registration)."""
    if not _KIND.match(kind or ""):
        raise ValueError(f"audit kind {kind!r} must be a lower-case identifier such as 'login' or 'write'")
    if not actor or not str(actor).strip():
        raise ValueError("an audit row needs an actor")
    values = {"actor": str(actor), "target": None if target is None else str(target),
              "remote": None if remote is None else str(remote)}
    for key, n in _LIMITS.items():
        if values[key] is not None and len(values[key]) > n:
            values[key] = values[key][: n - 1] + "…"
    text = None if detail is None else json.dumps(detail, ensure_ascii=False, default=str, sort_keys=True)
    return {"at": _now(), "kind": kind, "detail": text, **values}


def insert(conn: Connection, rows: list[dict]) -> None:
    conn.execute(_INSERT, rows[0] if len(rows) == 1 else rows)


def recent(conn: Connection, limit: int = 100, kind: str | None = None, actor: str | None = None) -> list[dict]:
    """The newest rows first, detail decoded; for the admin view and tests."""
    a = AuditLog.__table__.c
    q = select(AuditLog.__table__).order_by(a.at.desc(), a.id.desc()).limit(limit)
    if kind is not None:
        q = q.where(a.kind == kind)
    if actor is not None:
        q = q.where(a.actor == actor)
    out = []
    for r in conn.execute(q).mappings():
        row = dict(r)
        row["detail"] = None if row["detail"] is None else json.loads(row["detail"])
        out.append(row)
    return out


def _now():
    from layers.filters import now_cst
    return now_cst()
