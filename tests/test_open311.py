"""Open311 GeoReport v2 over real HTTP, in JSON and XML, against the spec's field lists."""
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from data.statuses import OPEN
from data.store.schema import Case, CaseClass
from tests.test_api_support import api_base, api_store, inside_grid, read_token, report_token  # noqa: F401

# Field lists of GeoReport v2 (wiki.open311.org/GeoReport_v2).
SERVICE = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
REQUEST = {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
           "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
           "address", "address_id", "zipcode", "lat", "long", "media_url"}
ATTRIBUTE = {"variable", "code", "datatype", "required", "datatype_description", "order", "description", "values"}


def get(base, path, fmt, **params):
    r = requests.get(f"{base}/open311/v2/{path}.{fmt}", params=params, timeout=30)
    if fmt == "xml":
        assert r.headers["Content-Type"].startswith("text/xml")
        return r, ET.fromstring(r.content)
    assert r.headers["Content-Type"].startswith("application/json")
    return r, r.json()


def items(fmt, doc, root, item):
    if fmt == "json":
        return doc
    assert doc.tag == root
    return [{c.tag: c for c in el} for el in doc.findall(item)]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_discovery_and_services(api_base, api_store, fmt):
    r, doc = get(api_base, "discovery", fmt)
    assert r.status_code == 200
    if fmt == "json":
        assert doc["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert "application/json" in doc["endpoints"][0]["formats"]
    else:
        assert doc.tag == "discovery" and doc.find("endpoints/endpoint/specification").text.endswith("GeoReport_v2")
    r, doc = get(api_base, "services", fmt)
    services = items(fmt, doc, "services", "service")
    with api_store.connect() as conn:
        classes = {r.code: r.major_name for r in conn.execute(select(CaseClass.code, CaseClass.major_name))}
    assert len(services) == len(classes)
    for s in services:
        assert set(s) == SERVICE
        code = s["service_code"] if fmt == "json" else s["service_code"].text
        group = s["group"] if fmt == "json" else s["group"].text
        assert classes[code] == group     # minor classes grouped by their major class
    r, doc = get(api_base, "services/E0101", fmt)
    if fmt == "json":
        assert doc["service_code"] == "E0101" and set(doc["attributes"][0]) == ATTRIBUTE
    else:
        assert doc.tag == "service_definition" and doc.find("service_code").text == "E0101"
        assert {c.tag for c in doc.find("attributes/attribute")} == ATTRIBUTE
    r, doc = get(api_base, "services/NOPE", fmt)
    assert r.status_code == 404
    errs = doc if fmt == "json" else [{"code": e.find("code").text, "description": e.find("description").text}
                                      for e in doc.findall("error")]
    assert int(errs[0]["code"]) == 404 and errs[0]["description"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_post_and_read_requests(api_base, api_store, report_token, read_token, fmt):
    lon, lat, grid = inside_grid(api_store, 30 if fmt == "json" else 31)
    form = {"api_key": report_token, "service_code": "E0101", "lat": str(lat), "long": str(lon),
            "address_string": "中山路1号", "description": "暴露垃圾", "attribute[priority]": "urgent"}
    r = requests.post(f"{api_base}/open311/v2/requests.{fmt}", data=form, timeout=30)
    assert r.status_code == 201, r.text
    if fmt == "json":
        rid = r.json()[0]["service_request_id"]
    else:
        rid = ET.fromstring(r.content).find("request/service_request_id").text
    with api_store.connect() as conn:
        c = conn.execute(select(Case).where(Case.code == rid)).mappings().one()
    assert c["grid_code"] == grid and c["source_code"] == "public" and c["priority"] == "urgent"
    r, doc = get(api_base, f"requests/{rid}", fmt)
    (one,) = items(fmt, doc, "service_requests", "request")
    assert set(one) == REQUEST
    val = (lambda k: one[k]) if fmt == "json" else (lambda k: one[k].text)
    assert val("status") == "open" and "上报" in val("status_notes") and val("service_code") == "E0101"
    assert float(val("long")) == pytest.approx(lon) and val("agency_responsible")
    # Errors: bad key, missing location, unknown service; each in the spec's error format.
    for bad, status in (({**form, "api_key": read_token}, 403), ({**form, "api_key": "nope"}, 403),
                        ({k: v for k, v in form.items() if k != "lat"}, 400), ({**form, "service_code": "X9"}, 400),
                        ({**form, "lat": "north"}, 400), ({**form, "colour": "red"}, 400)):
        r = requests.post(f"{api_base}/open311/v2/requests.{fmt}", data=bad, timeout=30)
        assert r.status_code == status, r.text
        if fmt == "json":
            assert r.json()[0]["code"] == status and r.json()[0]["description"]
        else:
            e = ET.fromstring(r.content)
            assert e.tag == "errors" and e.find("error/code").text == str(status)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_request_filters(api_base, api_store, fmt):
    with api_store.connect() as conn:
        top = conn.execute(select(func.max(Case.reported_at))).scalar()
        start = top.replace(hour=0, minute=0, second=0)
        want_open = conn.execute(select(func.count()).select_from(Case).where(
            Case.reported_at >= start, Case.reported_at <= top, Case.class_code == "E0101",
            Case.status.in_(OPEN))).scalar()
        codes = conn.execute(select(Case.code).order_by(Case.id).limit(3)).scalars().all()
    end = top + timedelta(seconds=1)     # end_date is exclusive
    r, doc = get(api_base, "requests", fmt, service_code="E0101", status="open",
                 start_date=start.isoformat() + "+08:00", end_date=end.isoformat() + "+08:00")
    rows = items(fmt, doc, "service_requests", "request")
    assert len(rows) == want_open
    assert all((x["status"] if fmt == "json" else x["status"].text) == "open" for x in rows)
    r, doc = get(api_base, "requests", fmt, service_request_id=",".join(codes))
    got = [(x["service_request_id"] if fmt == "json" else x["service_request_id"].text)
           for x in items(fmt, doc, "service_requests", "request")]
    assert sorted(got) == sorted(codes)
    for bad in ({"status": "maybe"}, {"start_date": "yesterday"},
                {"start_date": "2020-01-01T00:00:00+08:00", "end_date": "2021-01-01T00:00:00+08:00"}):
        r, _ = get(api_base, "requests", fmt, **bad)
        assert r.status_code == 400
    r, _ = get(api_base, "requests/NOPE", fmt)
    assert r.status_code == 404
