"""The OpenAPI document is the API's contract: every /api/v1 route is in it, and real responses (success
and errors) validate against its schemas."""
import re

import jsonschema
import requests

from tests.test_api_support import (api_base, api_store, auth, inside_grid, operate_token,  # noqa: F401
                                    read_token, report_token)


def _validator(doc, ref):
    schema = {"$ref": f"#/components/schemas/{ref}", "components": doc["components"]}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _response_schema(doc, path, method, status):
    op = doc["paths"][path][method]
    resp = op["responses"][str(status)]
    return resp["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]


def check(doc, path, method, r):
    ref = _response_schema(doc, path, method, r.status_code)
    _validator(doc, ref).validate(r.json())


def test_every_route_is_documented():
    from flask import Flask

    from dashboard.api import v1
    from data.store import make_engine
    app = Flask(__name__)
    app.register_blueprint(v1.blueprint(make_engine("sqlite://")))
    doc = v1.openapi.document()
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule[len("/api/v1"):])
            for m in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((path, m.lower()))
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert routes == documented
    jsonschema.Draft202012Validator.check_schema({"components": doc["components"]})


def test_real_responses_follow_the_document(api_base, api_store, report_token, read_token, operate_token):
    doc = requests.get(f"{api_base}/api/v1/openapi.json", timeout=30).json()
    assert doc["openapi"].startswith("3.")
    lon, lat, _ = inside_grid(api_store, 20)
    r = requests.post(f"{api_base}/api/v1/cases", json={"lon": lon, "lat": lat, "class_code": "E0101",
                                                        "source_code": "hotline"}, headers=auth(report_token))
    assert r.status_code == 201
    check(doc, "/cases", "post", r)
    code = r.json()["code"]
    r = requests.get(f"{api_base}/api/v1/cases", params={"limit": 5}, headers=auth(read_token))
    check(doc, "/cases", "get", r)
    r = requests.get(f"{api_base}/api/v1/cases/{code}", headers=auth(read_token))
    check(doc, "/cases/{code}", "get", r)
    r = requests.post(f"{api_base}/api/v1/cases/{code}/transitions", json={"action": "register", "expected_version": 1},
                      headers=auth(operate_token))
    check(doc, "/cases/{code}/transitions", "post", r)
    # Errors are documented per status and follow the Error schema.
    cases = [
        ("/cases", "post", requests.post(f"{api_base}/api/v1/cases", data=b"{", headers={
            **auth(report_token), "Content-Type": "application/json"})),
        ("/cases", "post", requests.post(f"{api_base}/api/v1/cases", json={})),
        ("/cases", "post", requests.post(f"{api_base}/api/v1/cases", json={"lon": 1}, headers=auth(read_token))),
        ("/cases", "post", requests.post(f"{api_base}/api/v1/cases", json={"lon": 1, "lat": 2, "class_code": "E0101",
                                                                            "source_code": "public"},
                                         headers=auth(report_token))),
        ("/cases", "get", requests.get(f"{api_base}/api/v1/cases", params={"bbox": "x"}, headers=auth(read_token))),
        ("/cases/{code}", "get", requests.get(f"{api_base}/api/v1/cases/NOPE", headers=auth(read_token))),
        ("/cases/{code}/transitions", "post", requests.post(
            f"{api_base}/api/v1/cases/{code}/transitions", json={"action": "register", "expected_version": 1},
            headers=auth(operate_token))),
        ("/cases/{code}/transitions", "post", requests.post(
            f"{api_base}/api/v1/cases/{code}/transitions", json={"action": "close", "expected_version": 2},
            headers=auth(operate_token))),
    ]
    seen = set()
    for path, method, resp in cases:
        assert 400 <= resp.status_code < 500, resp.text
        check(doc, path, method, resp)
        seen.add(resp.status_code)
    assert {400, 401, 403, 404, 409, 422} <= seen
    # And the request bodies the document promises to accept are accepted.
    body = {"lon": lon, "lat": lat, "class_code": "E0102", "source_code": "public", "priority": "urgent",
            "description": "x", "address": "y", "crs": "wgs84"}
    _validator(doc, "NewCase").validate(body)
    assert requests.post(f"{api_base}/api/v1/cases", json=body, headers=auth(report_token)).status_code == 201
