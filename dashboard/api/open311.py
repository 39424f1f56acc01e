"""Open311 GeoReport v2 at /open311/v2/, so existing Open311 apps and clients can report into the centre.

Services are the minor case classes, grouped by major class in `group`; a service request is a case
(service_request_id = case code). Status is the spec's open/closed with the detailed stage in
status_notes. Every resource is served as .json and .xml; errors are the spec's list of {code,
description} in the requested format with the HTTP status. Reports are created by data.intake, like every
other case.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

from flask import Blueprint, Response, json, request
from sqlalchemy import and_, select
from sqlalchemy.engine import Engine

from data.statuses import OPEN, STATUSES, TERMINAL
from data.store.schema import Case, CaseClass, Department
from dashboard.api.common import ApiError, check_size, iso
from dashboard.api.v1 import create_with_retry
from layers.filters import CST, now_cst

SPEC = "http://wiki.open311.org/GeoReport_v2"
DEFAULT_DAYS, MAX_REQUESTS = 90, 1000
SOURCE = "public"   # Open311 reports come from the public's apps
FMT = "<any(json, xml):fmt>"
POST_FIELDS = {"api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id",
               "email", "device_id", "account_id", "first_name", "last_name", "phone", "description",
               "media_url", "attribute[priority]"}


def _xml(root: str, item: str, rows: list[dict]) -> bytes:
    top = ET.Element(root)
    for row in rows:
        el = ET.SubElement(top, item)
        _fill(el, row)
    return b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(top, encoding="utf-8")


def _fill(el, row: dict) -> None:
    for k, v in row.items():
        child = ET.SubElement(el, k)
        if isinstance(v, list):
            singular = {"attributes": "attribute", "values": "value", "endpoints": "endpoint",
                        "formats": "format", "keywords": "keyword"}.get(k, "item")
            for x in v:
                sub = ET.SubElement(child, singular)
                if isinstance(x, dict):
                    _fill(sub, x)
                else:
                    sub.text = str(x)
        elif isinstance(v, dict):
            _fill(child, v)
        elif isinstance(v, bool):
            child.text = "true" if v else "false"
        elif v is not None:
            child.text = str(v)


def _send(fmt: str, root: str, item: str, rows, status: int = 200, single: bool = False) -> Response:
    if fmt == "xml":
        if single:
            top = ET.Element(root)
            _fill(top, rows)
            body = b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(top, encoding="utf-8")
        else:
            body = _xml(root, item, rows)
        return Response(body, status=status, mimetype="text/xml")
    return Response(json.dumps(rows, ensure_ascii=False), status=status, mimetype="application/json")


def _error_response(e: ApiError) -> Response:
    fmt = "xml" if request.path.endswith(".xml") else "json"
    return _send(fmt, "errors", "error", [{"code": e.status, "description": e.detail}], status=e.status)


def _service(r) -> dict:
    return {"service_code": r.code, "service_name": r.name,
            "description": f"{r.major_name} / {r.name} ({r.name_en}); 处置时限 {r.limit_value} "
                           f"{'工作小时' if r.limit_unit == 'work_hours' else '工作日'}",
            "metadata": True, "type": "realtime", "keywords": ",".join([r.major_name, r.name_en]),
            "group": r.major_name}


def _stage_note(c) -> str:
    zh, en, _ = STATUSES[c["status"]]
    return f"{zh} ({en})"


def _request(c, names: dict, depts: dict) -> dict:
    return {
        "service_request_id": c["code"], "status": "open" if c["status"] in OPEN else "closed",
        "status_notes": _stage_note(c), "service_name": names.get(c["class_code"]), "service_code": c["class_code"],
        "description": c["description"], "agency_responsible": depts.get(c["department_code"]),
        "service_notice": None, "requested_datetime": iso(c["reported_at"]),
        "updated_datetime": iso(c["updated_at"]), "expected_datetime": iso(c["deadline_at"]),
        "address": c["address"], "address_id": None, "zipcode": None, "lat": c["lat"], "long": c["lon"],
        "media_url": None,
    }


def _date(name: str, s: str) -> datetime:
    try:
        d = datetime.fromisoformat(s.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be a W3C date-time such as 2026-11-22T08:00:00+08:00") from None
    return d.astimezone(CST).replace(tzinfo=None) if d.tzinfo else d


def blueprint(engine: Engine) -> Blueprint:
    bp = Blueprint("open311", __name__, url_prefix="/open311/v2")
    bp.register_error_handler(ApiError, _error_response)
    bp.before_request(check_size)

    @bp.errorhandler(404)
    def _nf(_e):
        return _error_response(ApiError(404, "not_found", f"no such resource: {request.path}"))

    @bp.errorhandler(405)
    def _na(_e):
        return _error_response(ApiError(405, "method_not_allowed", f"{request.method} is not allowed here"))

    def names_and_depts(conn):
        names = dict(conn.execute(select(CaseClass.code, CaseClass.name)).all())
        depts = dict(conn.execute(select(Department.code, Department.name)).all())
        return names, depts

    @bp.get(f"/discovery.{FMT}")
    def discovery(fmt):
        base = request.host_url.rstrip("/") + "/open311/v2/"
        doc = {"changeset": "2026-11-22T00:00:00+08:00", "contact": "宁波市城市管理指挥中心",
               "key_service": "python app.py tokens add NAME --scope report",
               "endpoints": [{"specification": SPEC, "url": base, "changeset": "2026-11-22T00:00:00+08:00",
                              "type": "production", "formats": ["text/xml", "application/json"]}]}
        return _send(fmt, "discovery", "", doc, single=True)

    @bp.get(f"/services.{FMT}")
    def services(fmt):
        with engine.connect() as conn:
            rows = conn.execute(select(CaseClass).order_by(CaseClass.code)).all()
        return _send(fmt, "services", "service", [_service(r) for r in rows])

    @bp.get(f"/services/<code>.{FMT}")
    def service_definition(code, fmt):
        with engine.connect() as conn:
            r = conn.execute(select(CaseClass).where(CaseClass.code == code)).first()
        if r is None:
            raise ApiError(404, "not_found", f"no service with service_code {code!r}")
        doc = {"service_code": r.code, "attributes": [{
            "variable": True, "code": "priority", "datatype": "singlevaluelist", "required": False,
            "datatype_description": "normal or urgent", "order": 1, "description": "紧急程度 (priority)",
            "values": [{"key": "normal", "name": "一般 (normal)"}, {"key": "urgent", "name": "紧急 (urgent)"}]}]}
        return _send(fmt, "service_definition", "", doc, single=True)

    @bp.post(f"/requests.{FMT}")
    def post_request(fmt):
        form = request.form
        unknown = sorted(k for k in form if k not in POST_FIELDS)
        if unknown:
            raise ApiError(400, "bad_parameter", f"unknown parameter(s): {', '.join(unknown)}")
        key = form.get("api_key")
        for need in ("service_code",):
            if not form.get(need):
                raise ApiError(400, "bad_parameter", f"{need} is required")
        if not (form.get("lat") and form.get("long")):
            raise ApiError(400, "bad_parameter", "lat and long are required (address_string alone cannot be located)")
        body = {"lon": form.get("long"), "lat": form.get("lat"), "class_code": form.get("service_code"),
                "source_code": SOURCE, "description": form.get("description"),
                "address": form.get("address_string"), "priority": form.get("attribute[priority]") or None}
        try:
            case, _created, _names = create_with_retry(engine, key or "", body, None)
        except ApiError as e:
            if e.status in (401, 403):
                raise ApiError(403, e.error, f"api_key: {e.detail}") from None
            raise ApiError(400 if e.status == 422 else e.status, e.error, e.detail) from None
        return _send(fmt, "service_requests", "request",
                     [{"service_request_id": case["code"], "service_notice": "已受理，请等待核实 (received)",
                       "account_id": form.get("account_id") or None}], status=201)

    @bp.get(f"/requests.{FMT}")
    def get_requests(fmt):
        a = request.args
        c = Case.__table__.c
        clauses = []
        ids = [s.strip() for s in a.get("service_request_id", "").split(",") if s.strip()]
        if ids:
            if len(ids) > MAX_REQUESTS:
                raise ApiError(400, "bad_parameter", f"at most {MAX_REQUESTS} service_request_id values")
            clauses.append(c.code.in_(ids))
        else:
            end = _date("end_date", a["end_date"]) if a.get("end_date") else now_cst() + timedelta(seconds=1)
            start = _date("start_date", a["start_date"]) if a.get("start_date") else end - timedelta(days=DEFAULT_DAYS)
            if start >= end:
                raise ApiError(400, "bad_parameter", "start_date must be before end_date")
            if end - start > timedelta(days=DEFAULT_DAYS):
                raise ApiError(400, "bad_parameter", f"the date range may span at most {DEFAULT_DAYS} days")
            clauses += [c.reported_at >= start, c.reported_at < end]
            if a.get("service_code"):
                clauses.append(c.class_code.in_([s.strip() for s in a["service_code"].split(",") if s.strip()]))
            if a.get("status"):
                want = {s.strip() for s in a["status"].split(",") if s.strip()}
                if not want <= {"open", "closed"}:
                    raise ApiError(400, "bad_parameter", "status must be open, closed or both (comma-separated)")
                if want == {"open"}:
                    clauses.append(c.status.in_(OPEN))
                elif want == {"closed"}:
                    clauses.append(c.status.in_(TERMINAL))
        q = select(Case.__table__).where(and_(*clauses)).order_by(c.reported_at.desc(), c.id.desc()).limit(MAX_REQUESTS)
        with engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
            names, depts = names_and_depts(conn)
        return _send(fmt, "service_requests", "request", [_request(r, names, depts) for r in rows])

    @bp.get(f"/requests/<rid>.{FMT}")
    def get_request(rid, fmt):
        with engine.connect() as conn:
            r = conn.execute(select(Case.__table__).where(Case.code == rid)).mappings().first()
            if r is None:
                raise ApiError(404, "not_found", f"no service request {rid!r}")
            names, depts = names_and_depts(conn)
        return _send(fmt, "service_requests", "request", [_request(r, names, depts)])

    return bp
