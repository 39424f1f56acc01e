"""JSON API /api/v1: create, list, read and move cases. The document at /api/v1/openapi.json describes it
(dashboard/api/openapi.py) and tests/test_api_openapi.py holds real responses against it."""
from __future__ import annotations

import base64
import json
from datetime import timedelta

from flask import Blueprint, jsonify, request
from sqlalchemy import and_, bindparam, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from data import intake, tokens, workflow
from data.store import meta
from data.store.schema import Case
from dashboard.api import openapi
from dashboard.api.common import (ApiError, bearer, case_json, check_size, class_names, events_json,
                                  request_hash)
from layers.filters import Filters, now_cst, where

PAGE_DEFAULT, PAGE_MAX = 100, 1000
CREATE_FIELDS = {"lon", "lat", "class_code", "source_code", "description", "address", "priority", "crs"}
TRANSITION_FIELDS = {"action", "expected_version", "note", "department", "extend_hours", "role",
                     "actor_department"}
LIST_KEYS = {"bbox", "limit", "cursor", "offset"}
WIDE_BBOX = 0.01   # square degrees (~1 km x 1 km is 0.0001): above it SQLite lists by period, not by place


def _json_body(allowed: set) -> dict:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
    try:
        body = json.loads(request.get_data(cache=False) or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(422, "unknown_field", f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return body


def _error(e: ApiError):
    resp = jsonify({"error": e.error, "detail": e.detail, **e.extra})
    resp.status_code = e.status
    if e.status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="cgzt"'
    return resp


def _auth(conn, scopes, token: str | None = None) -> tokens.Token:
    try:
        return tokens.authenticate(conn, token if token is not None else bearer(), scopes)
    except tokens.Forbidden as exc:
        raise ApiError(403, "forbidden", str(exc)) from None
    except tokens.Unauthorized as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None


def _int(name, v, lo, hi) -> int:
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise ApiError(400, "bad_parameter", f"{name} must be an integer, got {v!r}") from None
    if not lo <= n <= hi:
        raise ApiError(400, "bad_parameter", f"{name} must be between {lo} and {hi}")
    return n


def _bbox(s: str):
    try:
        w, s_, e, n = (float(x) for x in s.split(","))
    except ValueError:
        raise ApiError(400, "bad_parameter", "bbox must be four numbers w,s,e,n (WGS84 degrees)") from None
    if not (w < e and s_ < n and -180 <= w <= 180 and -180 <= e <= 180 and -90 <= s_ <= 90 and -90 <= n <= 90):
        raise ApiError(400, "bad_parameter", "bbox must be w,s,e,n with w < e and s < n, in degrees")
    return w, s_, e, n


def _cursor(s: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(s.encode() + b"==").decode())
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_parameter", "cursor is not one this API returned") from None


_CASE_BY_CODE = select(Case.__table__).where(Case.__table__.c.code == bindparam("code"))


def _case_by_code(conn, code: str) -> dict:
    c = conn.execute(_CASE_BY_CODE, {"code": code}).mappings().first()
    if c is None:
        raise ApiError(404, "not_found", f"no case with code {code!r}")
    return dict(c)


def create_case(conn, token: tokens.Token, body: dict, key: str | None,
                versions: dict | None = None) -> tuple[dict, bool]:
    """Shared by the API and Open311: intake.report with the token's idempotency scope."""
    idem = intake.Idempotency(token.id, key, request_hash(body)) if key is not None else None
    return intake.report(conn, lon=body.get("lon"), lat=body.get("lat"), class_code=body.get("class_code"),
                         source_code=body.get("source_code"), description=body.get("description"),
                         address=body.get("address"), priority=body.get("priority"),
                         crs=body.get("crs") or "wgs84", reporter=f"api:{token.name}", idempotency=idem,
                         versions=versions)


def create_with_retry(engine: Engine, token: str | None, body: dict, key: str | None):
    """One transaction; a concurrent request with the same key loses on the key's primary key and then
    returns the winner's case."""
    for attempt in range(2):
        try:
            with intake.write_transaction(engine) as conn:
                who = _auth(conn, tokens.REPORT_SCOPES, token)
                versions = meta.versions(conn)
                case, created = create_case(conn, who, body, key, versions)
                names = class_names(conn, versions)
            return case, created, names
        except IntegrityError:
            if attempt or key is None:
                raise ApiError(409, "conflict", "a concurrent request interfered; retry") from None
        except intake.IdempotencyMismatch as exc:
            raise ApiError(422, "idempotency_key_reused", str(exc)) from None
        except intake.IntakeError as exc:
            raise ApiError(422, "invalid_case", str(exc)) from None
    raise AssertionError("unreachable")


def blueprint(engine: Engine) -> Blueprint:
    bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
    bp.register_error_handler(ApiError, _error)
    bp.before_request(check_size)

    @bp.errorhandler(404)
    def _nf(_e):
        return _error(ApiError(404, "not_found", f"no such endpoint: {request.method} {request.path}"))

    @bp.errorhandler(405)
    def _na(_e):
        return _error(ApiError(405, "method_not_allowed", f"{request.method} is not allowed on {request.path}"))

    @bp.get("/openapi.json")
    def spec():
        resp = jsonify(openapi.document())
        resp.headers["Cache-Control"] = "no-cache"
        return resp

    @bp.post("/cases")
    def post_case():
        body = _json_body(CREATE_FIELDS)
        key = request.headers.get("Idempotency-Key")
        case, created, names = create_with_retry(engine, bearer() or "", body, key)
        resp = jsonify(case_json(case, names))
        resp.status_code = 201 if created else 200
        resp.headers["Location"] = f"/api/v1/cases/{case['code']}"
        if key is not None:
            resp.headers["Idempotent-Replayed"] = "false" if created else "true"
        return resp

    @bp.get("/cases")
    def list_cases():
        args = request.args.to_dict(flat=True)
        paging = {k: args.pop(k) for k in list(args) if k in LIST_KEYS}
        if "start" not in args and "end" not in args:
            # Include what was reported this very second: the period is half-open.
            args["end"] = (now_cst() + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
        try:
            filters = Filters.from_query(args)
        except ValueError as exc:
            raise ApiError(400, "bad_filter", str(exc)) from None
        limit = _int("limit", paging.get("limit", PAGE_DEFAULT), 1, PAGE_MAX)
        if "cursor" in paging and "offset" in paging:
            raise ApiError(400, "bad_parameter", "give cursor or offset, not both")
        offset = _int("offset", paging["offset"], 0, 10_000_000) if "offset" in paging else 0
        c = Case.__table__.c
        clauses = where(filters)
        if "bbox" in paging:
            w, s, e, n = _bbox(paging["bbox"])
            lon, lat = c.lon, c.lat
            if engine.dialect.name == "sqlite" and (e - w) * (n - s) > WIDE_BBOX:
                # SQLite's planner walks the lon/lat index over a whole-city box and sorts a million rows
                # (13 s at full scale); "+ 0" hides that index so it takes the period's instead (1.2 s).
                lon, lat = c.lon + 0, c.lat + 0
            clauses += [lon >= w, lon <= e, lat >= s, lat <= n]
        if "cursor" in paging:
            clauses.append(c.id < _cursor(paging["cursor"]))
        q = select(Case.__table__).where(and_(*clauses)).order_by(c.id.desc()).limit(limit + 1).offset(offset)
        with engine.begin() as conn:
            _auth(conn, tokens.READ_SCOPES)
            rows = [dict(r) for r in conn.execute(q).mappings()]
            names = class_names(conn)
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = base64.urlsafe_b64encode(str(rows[-1]["id"]).encode()).decode().rstrip("=") if more else None
        return jsonify({"items": [case_json(r, names) for r in rows], "limit": limit, "offset": offset,
                        "next_cursor": nxt, "filters": filters.to_query()})

    @bp.get("/cases/<code>")
    def get_case(code):
        with engine.begin() as conn:
            _auth(conn, tokens.READ_SCOPES)
            case = _case_by_code(conn, code)
            out = case_json(case, class_names(conn))
            out["events"] = events_json(conn, case["id"])
            out["actions"] = workflow.allowed(case["status"], workflow.Actor("api", "supervisor"))
        return jsonify(out)

    @bp.post("/cases/<code>/transitions")
    def transition(code):
        body = _json_body(TRANSITION_FIELDS)
        action = body.get("action")
        if not isinstance(action, str) or not action:
            raise ApiError(422, "invalid_transition", "action is required, e.g. 'register'")
        ev = body.get("expected_version")
        if not isinstance(ev, int) or isinstance(ev, bool):
            raise ApiError(422, "invalid_transition", "expected_version (an integer: the case's version you saw) "
                                                      "is required")
        role = body.get("role", "supervisor")
        if role not in ("supervisor", "liaison"):
            raise ApiError(422, "invalid_transition", "role must be 'supervisor' or 'liaison'")
        hours = body.get("extend_hours")
        if hours is not None and (not isinstance(hours, int) or isinstance(hours, bool)):
            raise ApiError(422, "invalid_transition", "extend_hours must be an integer")
        for k in ("note", "department", "actor_department"):
            if body.get(k) is not None and not isinstance(body[k], str):
                raise ApiError(422, "invalid_transition", f"{k} must be text")
        try:
            with intake.write_transaction(engine) as conn:
                token = _auth(conn, tokens.OPERATE_SCOPES)
                case = _case_by_code(conn, code)
                actor = workflow.Actor(f"api:{token.name}", role, body.get("actor_department"))
                workflow.apply(conn, case["id"], action, actor, expected_version=ev, note=body.get("note"),
                               department=body.get("department"), extend_hours=hours, now=now_cst())
                meta.bump(conn, "cases")
                out = case_json(dict(conn.execute(select(Case).where(Case.id == case["id"])).mappings().one()),
                                class_names(conn))
        except workflow.Conflict as exc:
            with engine.connect() as conn:
                cur = conn.execute(select(Case.version, Case.status).where(Case.code == code)).first()
            raise ApiError(409, "conflict", str(exc), current_version=cur.version, current_status=cur.status) from None
        except workflow.WorkflowError as exc:
            raise ApiError(422, "illegal_transition", str(exc)) from None
        return jsonify(out)

    return bp
