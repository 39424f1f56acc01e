"""What the API and Open311 share: request limits, tokens from the request, case rows as JSON."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

from flask import request
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from data.statuses import OPEN, STATUSES
from data.store.schema import CaseEvent, Department

MAX_BODY = 64 * 1024
CST = timezone(timedelta(hours=8))


class ApiError(Exception):
    """An answer other than success: HTTP status, a short error code and a sentence for people."""

    def __init__(self, status: int, error: str, detail: str, **extra):
        super().__init__(detail)
        self.status, self.error, self.detail, self.extra = status, error, detail, extra


def check_size() -> None:
    n = request.content_length
    if n is not None and n > MAX_BODY:
        raise ApiError(413, "too_large", f"request body of {n} bytes exceeds the {MAX_BODY}-byte limit")


def bearer() -> str | None:
    h = request.headers.get("Authorization", "")
    if h[:7].lower() == "bearer ":
        return h[7:].strip() or None
    return None


def request_hash(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def iso(d: datetime | None) -> str | None:
    return None if d is None else d.replace(tzinfo=CST).isoformat()


def case_json(c: dict, class_names: dict | None = None, now: datetime | None = None) -> dict:
    from layers.filters import now_cst
    now = now or now_cst()
    is_open = c["status"] in OPEN
    out = {k: c[k] for k in ("id", "code", "status", "class_code", "major_code", "kind", "source_code", "priority",
                             "lon", "lat", "grid_code", "community_code", "street_code", "district_code",
                             "setback_id", "department_code", "description", "address", "version",
                             "rework_count", "return_count")}
    out["status_name"] = STATUSES[c["status"]][0]
    out["status_name_en"] = STATUSES[c["status"]][1]
    out["open"] = is_open
    out["overdue"] = bool(c["overdue"]) if not is_open else bool(c["deadline_at"] and now > c["deadline_at"])
    for k in ("reported_at", "registered_at", "dispatched_at", "accepted_at", "handled_at", "closed_at",
              "deadline_at", "updated_at"):
        out[k] = iso(c[k])
    if class_names is not None:
        out["class_name"], out["class_name_en"] = class_names.get(c["class_code"], (None, None))
    return out


def class_names(conn: Connection, versions: dict | None = None) -> dict:
    """code -> (name, English name), from the reference snapshot data.intake keeps per data version.
    versions: meta.versions() when the caller has read them in this transaction."""
    from data import intake
    return intake.reference(conn, versions).class_names


_EVENTS = (select(CaseEvent.__table__).where(CaseEvent.__table__.c.case_id == bindparam("case_id"))
           .order_by(CaseEvent.__table__.c.id))


def events_json(conn: Connection, case_id: int) -> list[dict]:
    rows = conn.execute(_EVENTS, {"case_id": case_id}).mappings()
    return [{"at": iso(r["at"]), "actor": r["actor"], "action": r["action"], "from_status": r["from_status"],
             "to_status": r["to_status"], "department_code": r["department_code"], "note": r["note"]} for r in rows]


def department_name(conn: Connection, code: str | None) -> str | None:
    if not code:
        return None
    return conn.execute(select(Department.name).where(Department.code == code)).scalar()
