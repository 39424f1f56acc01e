"""What a request gets when the store cannot serve it: a fast 503 with Retry-After, never a hang or a bare 500.

Why: during a PostgreSQL restart, or with an SQLite file that is read-only, full or locked, every client
(Dash's renderer, the API, Open311 apps, the simulator, a wall screen) must be told plainly to retry, and
the write it asked for must not have happened at all. Writes run in one transaction each, so an error
raised inside one rolls it back; this module only turns the error into an answer. The engine
replaces connections that died with the server (data/store/engine.py pings a pooled connection that sat
idle; a request on one that died in use gets this 503 and the pool is dropped), so service resumes by
itself once the database is back.
"""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5

# (text in the driver's message, code, what people are told)
_KNOWN = (
    ("readonly database", "store_read_only",
     "the store is read-only (file permissions or a read-only mount); reads work, writes are refused"),
    ("database or disk is full", "store_full",
     "the store's disk is full; free space on it, then retry"),
    ("database is locked", "store_busy", "the store is busy with another writer; retry in a moment"),
    ("disk I/O error", "store_io_error", "the store's disk reported an I/O error; check the disk, then retry"),
)


def classify(exc: BaseException) -> tuple[str, str]:
    """(code, message) for a database error: a known SQLite condition, else 'store_unavailable'."""
    text = str(getattr(exc, "orig", None) or exc)
    for needle, code, message in _KNOWN:
        if needle in text:
            return code, message
    return "store_unavailable", "the database cannot be reached right now (restarting or down); retry shortly"


def _wants_json() -> bool:
    p = request.path
    return (p.startswith(("/api/", "/open311/", "/_dash-", "/layers/", "/export/"))
            or request.accept_mimetypes.best == "application/json" or request.is_json)


def unavailable(exc: BaseException) -> Response:
    code, message = classify(exc)
    first = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
    log.warning("503 %s on %s %s: %s", code, request.method, request.path, first)
    if _wants_json():
        resp = jsonify({"error": code, "detail": message, "retry_after": RETRY_AFTER_S})
    else:
        resp = Response(f"<!doctype html><meta charset=utf-8><title>503</title><h1>暂时无法访问数据 · Store "
                        f"unavailable</h1><p>{message}</p><p>Retry in {RETRY_AFTER_S} s.</p>",
                        mimetype="text/html")
    resp.status_code = 503
    resp.headers["Retry-After"] = str(RETRY_AFTER_S)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def install(server: Flask) -> None:
    """Register the handlers; programming errors (anything not from the database) stay 500s."""
    for exc_type in (OperationalError, InterfaceError, PoolTimeout):
        server.register_error_handler(exc_type, unavailable)
