"""The OpenAPI 3.1 document of /api/v1. Its schemas are JSON Schema 2020-12, so tests validate real
responses against them with jsonschema; keep it next to the code it describes (dashboard/api/v1.py)."""
from __future__ import annotations

from data.statuses import PRIORITIES, STATUSES
from data.workflow import ACTIONS

S, N, I, B = {"type": "string"}, {"type": "number"}, {"type": "integer"}, {"type": "boolean"}


def _null(t: dict) -> dict:
    return {"type": [t["type"], "null"], **{k: v for k, v in t.items() if k != "type"}}


DT = {"type": ["string", "null"], "format": "date-time"}
CASE_PROPS = {
    "id": I, "code": S, "status": {"type": "string", "enum": list(STATUSES)}, "status_name": S,
    "status_name_en": S, "open": B, "overdue": B, "class_code": S, "class_name": _null(S),
    "class_name_en": _null(S), "major_code": S, "kind": S, "source_code": S,
    "priority": {"type": "string", "enum": list(PRIORITIES)}, "lon": N, "lat": N, "grid_code": S,
    "community_code": S, "street_code": S, "district_code": S, "setback_id": _null(I),
    "department_code": _null(S), "description": _null(S), "address": _null(S), "version": I,
    "rework_count": I, "return_count": I,
    **{k: DT for k in ("reported_at", "registered_at", "dispatched_at", "accepted_at", "handled_at", "closed_at",
                       "deadline_at", "updated_at")},
}
CASE = {"type": "object", "properties": CASE_PROPS, "required": sorted(CASE_PROPS), "additionalProperties": False}
EVENT = {"type": "object", "additionalProperties": False,
         "required": ["at", "actor", "action", "from_status", "to_status", "department_code", "note"],
         "properties": {"at": {"type": "string", "format": "date-time"}, "actor": S, "action": S,
                        "from_status": _null(S), "to_status": S, "department_code": _null(S), "note": _null(S)}}
CASE_DETAIL = {"type": "object", "additionalProperties": False,
               "properties": {**CASE_PROPS, "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                              "actions": {"type": "array", "items": S}},
               "required": sorted(CASE_PROPS) + ["events", "actions"]}
CASE_LIST = {"type": "object", "additionalProperties": False, "required": ["items", "limit", "offset", "next_cursor",
                                                                            "filters"],
             "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Case"}},
                            "limit": I, "offset": I, "next_cursor": _null(S),
                            "filters": {"type": "object", "additionalProperties": S}}}
ERROR = {"type": "object", "required": ["error", "detail"],
         "properties": {"error": S, "detail": S, "current_version": I, "current_status": S}}
NEW_CASE = {"type": "object", "additionalProperties": False, "required": ["lon", "lat", "class_code", "source_code"],
            "properties": {"lon": N, "lat": N, "class_code": {"type": "string", "pattern": "^[A-Z][0-9]{4}$"},
                           "source_code": S, "description": {"type": "string", "maxLength": 2000},
                           "address": {"type": "string", "maxLength": 128},
                           "priority": {"type": "string", "enum": list(PRIORITIES)},
                           "crs": {"type": "string", "enum": ["wgs84", "gcj02", "cgcs2000", "EPSG:4326", "EPSG:4490"],
                                   "default": "wgs84"}}}
TRANSITION = {"type": "object", "additionalProperties": False, "required": ["action", "expected_version"],
              "properties": {"action": {"type": "string", "enum": list(ACTIONS)}, "expected_version": I,
                             "note": S, "department": S, "extend_hours": I,
                             "role": {"type": "string", "enum": ["supervisor", "liaison"], "default": "supervisor"},
                             "actor_department": S}}


def _err(desc: str) -> dict:
    return {"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(desc: str, ref: str, headers: dict | None = None) -> dict:
    out = {"description": desc, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}
    if headers:
        out["headers"] = headers
    return out


AUTH_ERRORS = {"401": _err("missing, unknown or revoked token"), "403": _err("the token's scope does not allow this")}
CODE = {"name": "code", "in": "path", "required": True, "schema": S, "description": "case code, e.g. NB20261122000001"}
FILTER_PARAMS = [
    {"name": "start", "in": "query", "schema": S, "description": "period start (reported_at), YYYY-MM-DD[THH:MM[:SS]]"},
    {"name": "end", "in": "query", "schema": S, "description": "period end, exclusive; default now"},
    {"name": "district", "in": "query", "schema": S, "description": "6-digit district code"},
    {"name": "street", "in": "query", "schema": S, "description": "9-digit street code"},
    *({"name": n, "in": "query", "schema": S, "description": f"comma-separated {n}"}
      for n in ("sources", "classes", "majors", "statuses", "departments")),
    {"name": "overdue_only", "in": "query", "schema": {"type": "string", "enum": ["0", "1", "true", "false"]}},
    {"name": "bbox", "in": "query", "schema": S, "description": "w,s,e,n in WGS84 degrees"},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
    {"name": "cursor", "in": "query", "schema": S, "description": "next_cursor of the previous page"},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
]


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "城管一张图 case API", "version": "1.0.0",
                 "description": "Create, list, read and move city-management cases. Tokens: "
                                "`python app.py tokens add NAME --scope report|read|operate` (a wall token is refused here)."},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Case": CASE, "CaseDetail": CASE_DETAIL, "CaseList": CASE_LIST, "Event": EVENT,
                        "Error": ERROR, "NewCase": NEW_CASE, "Transition": TRANSITION},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/openapi.json": {"get": {"summary": "this document", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1 document",
                                                            "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/cases": {
                "post": {
                    "summary": "report a case (scope report or operate)",
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 128},
                                    "description": "a retry with the same key and body returns the first case"}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewCase"}}}},
                    "responses": {"201": _ok("created", "Case", {"Location": {"schema": S}}),
                                  "200": _ok("a retry: the case the first request created", "Case"),
                                  "400": _err("malformed JSON"), **AUTH_ERRORS, "413": _err("body too large"),
                                  "415": _err("not JSON"), "422": _err("invalid case or reused idempotency key")},
                },
                "get": {
                    "summary": "list cases, newest first (scope read, report or operate)",
                    "parameters": FILTER_PARAMS,
                    "responses": {"200": _ok("a page of cases", "CaseList"), "400": _err("bad filter or paging"),
                                  **AUTH_ERRORS},
                },
            },
            "/cases/{code}": {"get": {
                "summary": "one case with its events", "parameters": [CODE],
                "responses": {"200": _ok("the case", "CaseDetail"), **AUTH_ERRORS, "404": _err("no such case")}}},
            "/cases/{code}/transitions": {"post": {
                "summary": "take a workflow action (scope operate: a trusted integration acting for the command centre)", "parameters": [CODE],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Transition"}}}},
                "responses": {"200": _ok("the case after the action", "Case"), "400": _err("malformed JSON"),
                              **AUTH_ERRORS, "404": _err("no such case"),
                              "409": _err("the case changed since expected_version (current_version given)"),
                              "413": _err("body too large"), "415": _err("not JSON"),
                              "422": _err("illegal transition, with the workflow's reason")}}},
        },
    }
