"""API tokens: issued once, shown once, stored only as a SHA-256, each with one scope.

Scopes: `report` may create cases and move them through the workflow (and read); `read` may only read;
`wall` is a wall screen's read-only token. A revoked token stops working at once on every worker because
the check reads the shared store.
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from data import audit
from data.clock import now_cst
from data.store.schema import ApiToken

log = logging.getLogger(__name__)

# report: create cases (hotline, video AI, public apps); read: list and read cases; operate: a trusted
# integration that also moves cases through the workflow (a dispatch system, the simulator); wall: the
# kiosk screens, which read through the wall pages only, never through the API.
SCOPES = ("report", "read", "operate", "wall")
REPORT_SCOPES = ("report", "operate")
READ_SCOPES = ("read", "report", "operate")
OPERATE_SCOPES = ("operate",)
PREFIX = "cgzt_"
_NAME = re.compile(r"^[\w.@-]{1,64}$")
TOUCH_EVERY = timedelta(minutes=1)   # last_used_at is written at most this often per token
# Built once: every API request runs the look-up, and building the statement cost 5x running it.
_BY_HASH = select(ApiToken.id, ApiToken.name, ApiToken.scope, ApiToken.revoked_at,
                  ApiToken.last_used_at).where(ApiToken.token_hash == bindparam("h"))
_TOUCH = update(ApiToken).where(ApiToken.id == bindparam("token_id")).values(last_used_at=bindparam("now"))


class TokenError(ValueError):
    """Bad token input (name, scope) or an unknown/revoked/insufficient token; the message says which."""


class Unauthorized(TokenError):
    pass


class Forbidden(TokenError):
    pass


@dataclass(frozen=True)
class Token:
    id: int
    name: str
    scope: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return now_cst()


def add(conn: Connection, name: str, scope: str, actor: str = "cli") -> str:
    """Create a token and return it: the only time it is ever visible."""
    if not _NAME.match(name or ""):
        raise TokenError(f"token name {name!r}: 1-64 letters, digits, '_', '.', '@' or '-'")
    if scope not in SCOPES:
        raise TokenError(f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        with conn.begin_nested():
            conn.execute(ApiToken.__table__.insert().values(name=name, scope=scope, token_hash=digest(token),
                                                            created_at=_now()))
    except IntegrityError:
        raise TokenError(f"a token named {name!r} already exists (revoked ones too); pick another name") from None
    audit.record(conn, actor, "token_add", target=name, detail={"scope": scope})
    return token


def listing(conn: Connection) -> list[dict]:
    rows = conn.execute(select(ApiToken.name, ApiToken.scope, ApiToken.created_at, ApiToken.last_used_at,
                               ApiToken.revoked_at).order_by(ApiToken.name)).mappings().all()
    return [dict(r) for r in rows]


def revoke(conn: Connection, name: str, actor: str = "cli") -> None:
    done = conn.execute(update(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
                        .values(revoked_at=_now()))
    if done.rowcount != 1:
        raise TokenError(f"no active token named {name!r}")
    audit.record(conn, actor, "token_revoke", target=name)


def authenticate(conn: Connection, token: str | None, scopes: tuple[str, ...]) -> Token:
    """The token's identity if it is known, not revoked and of one of `scopes`; raises otherwise."""
    if not token:
        raise Unauthorized("a token is required: send 'Authorization: Bearer <token>'")
    row = conn.execute(_BY_HASH, {"h": digest(token)}).first()
    if row is None:
        raise Unauthorized("unknown token")
    if row.revoked_at is not None:
        raise Unauthorized(f"token {row.name!r} was revoked")
    if row.scope not in scopes:
        raise Forbidden(f"token {row.name!r} has scope {row.scope!r}; this needs {' or '.join(scopes)}")
    now = _now()
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        _touch(conn, row.id, now)
    return Token(row.id, row.name, row.scope)


def _touch(conn: Connection, token_id: int, now: datetime) -> None:
    """Record the use, best effort: a read-only or full store must still let a valid token read.

    On PostgreSQL a refused statement aborts the transaction, so the update runs in a savepoint; on SQLite
    a refused write leaves the transaction usable as it is.
    """
    params = {"token_id": token_id, "now": now}
    try:
        if conn.dialect.name == "postgresql":
            with conn.begin_nested():
                conn.execute(_TOUCH, params)
        else:
            conn.execute(_TOUCH, params)
    except DBAPIError as exc:
        log.warning("token last_used_at not recorded: %s", str(exc.orig).splitlines()[0][:200])
