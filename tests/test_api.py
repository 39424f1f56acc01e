"""The /api/v1 case API over real HTTP on both databases: creation, idempotency, scopes, deadlines through
the working calendar, transitions with optimistic concurrency, listing with filters, bbox and paging, and
clear 4xx answers for bad input."""
import threading
from datetime import datetime

import numpy as np
import pytest
import requests
from sqlalchemy import func, select

from dashboard.api import v1
from data.store import meta
from data.store.schema import Case, CaseClass, CaseEvent, IdempotencyKey
from data.workcalendar import WorkCalendar
from tests.test_api_support import (api_base, api_store, auth, inside_grid, make_token,  # noqa: F401
                                    operate_token, read_token, report_token)


def post_case(base, token, body, key=None):
    h = auth(token)
    if key:
        h["Idempotency-Key"] = key
    return requests.post(f"{base}/api/v1/cases", json=body, headers=h, timeout=30)


def transition(base, token, code, **body):
    return requests.post(f"{base}/api/v1/cases/{code}/transitions", json=body, headers=auth(token), timeout=30)


def naive(s):
    return datetime.fromisoformat(s).replace(tzinfo=None)


def test_create_locates_routes_and_records(api_base, api_store, report_token):
    lon, lat, grid = inside_grid(api_store, 3)
    with api_store.connect() as conn:
        before = meta.get(conn, "version:cases")
    r = post_case(api_base, report_token, {"lon": lon, "lat": lat, "class_code": "E0101", "source_code": "public",
                                           "description": "路口暴露垃圾", "address": "测试路1号"})
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["grid_code"] == grid and grid.startswith(c["community_code"]) and grid.startswith(c["street_code"])
    assert c["status"] == "reported" and c["version"] == 1 and c["registered_at"] is None
    assert c["department_code"] == f"{c['district_code']}HW"      # sanitation of the case's district
    assert r.headers["Location"] == f"/api/v1/cases/{c['code']}"
    with api_store.connect() as conn:
        ev = conn.execute(select(CaseEvent.action, CaseEvent.to_status).join(Case, Case.id == CaseEvent.case_id)
                          .where(Case.code == c["code"])).all()
        assert [tuple(e) for e in ev] == [("report", "reported")]
        assert meta.get(conn, "version:cases") != before


def test_inspector_report_is_registered_with_a_calendar_deadline(api_base, api_store, report_token):
    lon, lat, _ = inside_grid(api_store, 5)
    c = post_case(api_base, report_token, {"lon": lon, "lat": lat, "class_code": "E0104",
                                           "source_code": "inspector"}).json()
    assert c["status"] == "registered" and c["version"] == 2
    with api_store.connect() as conn:
        cal = WorkCalendar.from_store(conn)
        lim = conn.execute(select(CaseClass.limit_value, CaseClass.limit_unit).where(CaseClass.code == "E0104")).one()
    want = cal.add(np.array([naive(c["registered_at"])], dtype="datetime64[s]"), [lim.limit_value],
                   [lim.limit_unit])[0].astype(datetime)
    assert naive(c["deadline_at"]) == want


def test_deadline_through_transition_and_extension(api_base, api_store, report_token, operate_token):
    lon, lat, _ = inside_grid(api_store, 6)
    c = post_case(api_base, report_token, {"lon": lon, "lat": lat, "class_code": "E0101",
                                           "source_code": "hotline"}).json()
    r = transition(api_base, operate_token, c["code"], action="register", expected_version=1)
    assert r.status_code == 200, r.text
    reg = r.json()
    with api_store.connect() as conn:
        cal = WorkCalendar.from_store(conn)
    at = np.array([naive(reg["registered_at"])], dtype="datetime64[s]")
    assert naive(reg["deadline_at"]) == cal.add(at, [4], ["work_hours"])[0].astype(datetime)
    code, v = c["code"], reg["version"]
    for action in ("dispatch", "accept"):
        got = transition(api_base, operate_token, code, action=action, expected_version=v).json()
        v = got["version"]
    ext = transition(api_base, operate_token, code, action="extend", expected_version=v, note="需协调", extend_hours=8)
    assert ext.status_code == 200, ext.text
    base = np.array([naive(reg["deadline_at"])], dtype="datetime64[s]")
    assert naive(ext.json()["deadline_at"]) == cal.add(base, [8], ["work_hours"])[0].astype(datetime)


def test_idempotent_retry_returns_the_first_case(api_base, api_store, report_token):
    lon, lat, _ = inside_grid(api_store, 7)
    body = {"lon": lon, "lat": lat, "class_code": "E0102", "source_code": "public"}
    first = post_case(api_base, report_token, body, key="retry-1")
    again = post_case(api_base, report_token, body, key="retry-1")
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["code"] == first.json()["code"]
    # Racing retries (a client that timed out and resent at once) still make one case.
    out = []
    threads = [threading.Thread(target=lambda: out.append(post_case(api_base, report_token, body, key="race-1")))
               for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert {r.status_code for r in out} <= {200, 201} and len({r.json()["code"] for r in out}) == 1
    with api_store.connect() as conn:
        n = conn.execute(select(func.count()).select_from(IdempotencyKey)
                         .where(IdempotencyKey.key.in_(["retry-1", "race-1"]))).scalar()
        assert n == 2
        assert conn.execute(select(func.count()).select_from(Case).where(
            Case.code.in_([first.json()["code"], out[0].json()["code"]]))).scalar() == 2
    other = post_case(api_base, report_token, {**body, "class_code": "E0101"}, key="retry-1")
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"


def test_token_scopes(api_base, api_store, report_token, read_token):
    lon, lat, _ = inside_grid(api_store, 8)
    body = {"lon": lon, "lat": lat, "class_code": "E0101", "source_code": "public"}
    assert requests.post(f"{api_base}/api/v1/cases", json=body, timeout=30).status_code == 401
    assert post_case(api_base, "cgzt_not-a-token", body).status_code == 401
    r = post_case(api_base, read_token, body)
    assert r.status_code == 403 and "scope" in r.json()["detail"]
    assert requests.get(f"{api_base}/api/v1/cases?limit=1", headers=auth(read_token), timeout=30).status_code == 200
    wall = make_token(api_store, "wall-1", "wall")   # the kiosk reads through the wall pages only
    assert requests.get(f"{api_base}/api/v1/cases?limit=1", headers=auth(wall), timeout=30).status_code == 403
    assert transition(api_base, wall, "NB00000000000000", action="register", expected_version=1).status_code == 403
    # A reporting system (hotline, public app) creates cases but never moves them: that takes 'operate'.
    mine = post_case(api_base, report_token, body).json()
    r = transition(api_base, report_token, mine["code"], action="register", expected_version=mine["version"])
    assert r.status_code == 403 and "operate" in r.json()["detail"]
    temp = make_token(api_store, "temp", "report")
    assert post_case(api_base, temp, body).status_code == 201
    from data import tokens
    with api_store.begin() as conn:
        tokens.revoke(conn, "temp")
    r = post_case(api_base, temp, body)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_concurrent_transitions_one_wins_one_conflicts(api_base, api_store, report_token, operate_token):
    lon, lat, _ = inside_grid(api_store, 9)
    c = post_case(api_base, report_token, {"lon": lon, "lat": lat, "class_code": "E0101",
                                           "source_code": "hotline"}).json()
    barrier = threading.Barrier(2)
    out = {}

    def act(name, action, note=None):
        barrier.wait()
        out[name] = transition(api_base, operate_token, c["code"], action=action, expected_version=1, note=note)
    ts = [threading.Thread(target=act, args=("a", "register")),
          threading.Thread(target=act, args=("b", "reject", "重复上报"))]
    [t.start() for t in ts]
    [t.join() for t in ts]
    codes = sorted(r.status_code for r in out.values())
    assert codes == [200, 409], [r.text for r in out.values()]
    loser = next(r for r in out.values() if r.status_code == 409).json()
    winner = next(r for r in out.values() if r.status_code == 200).json()
    assert loser["current_version"] == 2 and loser["current_status"] == winner["status"]
    with api_store.connect() as conn:
        ev = conn.execute(select(CaseEvent.action).join(Case, Case.id == CaseEvent.case_id)
                          .where(Case.code == c["code"]).order_by(CaseEvent.id)).scalars().all()
    assert ev == ["report", {"registered": "register", "rejected": "reject"}[winner["status"]]]


def test_illegal_and_bad_transitions(api_base, api_store, report_token, operate_token):
    lon, lat, _ = inside_grid(api_store, 10)
    c = post_case(api_base, report_token, {"lon": lon, "lat": lat, "class_code": "E0101",
                                           "source_code": "hotline"}).json()
    r = transition(api_base, operate_token, c["code"], action="close", expected_version=1)
    assert r.status_code == 422 and "cannot" in r.json()["detail"] and r.json()["error"] == "illegal_transition"
    r = transition(api_base, operate_token, c["code"], action="reject", expected_version=1)
    assert r.status_code == 422 and "note" in r.json()["detail"]
    r = transition(api_base, operate_token, c["code"], action="fly", expected_version=1)
    assert r.status_code == 422 and "unknown action" in r.json()["detail"]
    r = transition(api_base, operate_token, c["code"], action="register")
    assert r.status_code == 422 and "expected_version" in r.json()["detail"]
    assert transition(api_base, operate_token, "NB19990101000001", action="register",
                      expected_version=1).status_code == 404
    r = transition(api_base, operate_token, c["code"], action="register", expected_version=7)
    assert r.status_code == 409 and r.json()["current_version"] == 1


@pytest.mark.parametrize("body,status,error", [
    (b"{not json", 400, "malformed_json"),
    (b"[1, 2]", 400, "malformed_json"),
    (b'{"lon": 121.5, "lat": 29.8, "class_code": "E0101", "source_code": "public", "colour": "red"}', 422,
     "unknown_field"),
    (b'{"lon": "east", "lat": 29.8, "class_code": "E0101", "source_code": "public"}', 422, "invalid_case"),
    (b'{"lon": 116.4, "lat": 39.9, "class_code": "E0101", "source_code": "public"}', 422, "invalid_case"),
    (b'{"lon": 121.5, "lat": 29.8, "class_code": "X9999", "source_code": "public"}', 422, "invalid_case"),
    (b'{"lon": 121.5, "lat": 29.8, "class_code": "E0101", "source_code": "pigeon"}', 422, "invalid_case"),
])
def test_bad_input_is_a_clear_4xx(api_base, report_token, body, status, error):
    r = requests.post(f"{api_base}/api/v1/cases", data=body, timeout=30,
                      headers={**auth(report_token), "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error"] == error and r.json()["detail"]


def test_outside_grids_size_limit_and_media_type(api_base, report_token):
    r = post_case(api_base, report_token, {"lon": 116.4, "lat": 39.9, "class_code": "E0101", "source_code": "public"})
    assert "outside every unit grid" in r.json()["detail"]
    big = requests.post(f"{api_base}/api/v1/cases", data=b"{" + b" " * 70_000 + b"}", timeout=30,
                        headers={**auth(report_token), "Content-Type": "application/json"})
    assert big.status_code == 413 and big.json()["error"] == "too_large"
    form = requests.post(f"{api_base}/api/v1/cases", data={"lon": "1"}, headers=auth(report_token), timeout=30)
    assert form.status_code == 415


def test_gcj02_input_is_stored_as_wgs84(api_base, api_store, report_token):
    from data.crs import wgs84_to_gcj02
    lon, lat, grid = inside_grid(api_store, 11)
    glon, glat = wgs84_to_gcj02([lon], [lat])
    c = post_case(api_base, report_token, {"lon": float(glon[0]), "lat": float(glat[0]), "class_code": "E0101",
                                           "source_code": "public", "crs": "gcj02"}).json()
    assert abs(c["lon"] - lon) < 1e-7 and abs(c["lat"] - lat) < 1e-7 and c["grid_code"] == grid


def test_list_filters_bbox_and_paging(api_base, api_store, read_token):
    with api_store.connect() as conn:
        grid = conn.execute(select(Case.grid_code).group_by(Case.grid_code)
                            .order_by(func.count().desc()).limit(1)).scalar()
        district = grid[:6]
        lo = conn.execute(select(func.min(Case.lon), func.min(Case.lat), func.max(Case.lon), func.max(Case.lat))
                          .where(Case.district_code == district)).one()
    w, s, e, n = lo[0], lo[1], (lo[0] + lo[2]) / 2, (lo[1] + lo[3]) / 2
    q = {"district": district, "start": "2000-01-01", "end": "2100-01-01", "bbox": f"{w},{s},{e},{n}", "limit": 7}
    with api_store.connect() as conn:
        want = set(conn.execute(select(Case.code).where(
            Case.district_code == district, Case.lon >= w, Case.lon <= e, Case.lat >= s, Case.lat <= n)).scalars())
    got, cursor, pages = [], None, 0
    while True:
        r = requests.get(f"{api_base}/api/v1/cases", params={**q, **({"cursor": cursor} if cursor else {})},
                         headers=auth(read_token), timeout=30)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 7
        got += [c["code"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(got) == len(set(got)) and set(got) == want and pages >= 2
    by_offset = requests.get(f"{api_base}/api/v1/cases", params={**q, "offset": 7}, headers=auth(read_token),
                             timeout=30).json()
    assert [c["code"] for c in by_offset["items"]] == got[7:14]
    # Both query plans on SQLite: a box around one case is narrow (lon/lat index), a city-wide box is listed by
    # period and must give exactly what no box gives.
    wide = {**q, "bbox": "100,0,150,60", "limit": 50}
    assert 50 * 60 > v1.WIDE_BBOX
    no_box = {k: v for k, v in wide.items() if k != "bbox"}
    pages = [requests.get(f"{api_base}/api/v1/cases", params=p, headers=auth(read_token), timeout=30).json()["items"]
             for p in (wide, no_box)]
    assert len(pages[0]) == 50 and [c["code"] for c in pages[0]] == [c["code"] for c in pages[1]]
    one = r.json()["items"][0] if r.json()["items"] else by_offset["items"][0]
    box = f"{one['lon'] - 1e-4},{one['lat'] - 1e-4},{one['lon'] + 1e-4},{one['lat'] + 1e-4}"
    near = requests.get(f"{api_base}/api/v1/cases", params={**q, "bbox": box, "limit": 1000},
                        headers=auth(read_token), timeout=30).json()["items"]
    assert one["code"] in [c["code"] for c in near]
    assert all(abs(c["lon"] - one["lon"]) <= 1e-4 and abs(c["lat"] - one["lat"]) <= 1e-4 for c in near)
    for bad in ({"bbox": "1,2,3"}, {"limit": "0"}, {"district": "999999"}, {"colour": "red"},
                {"cursor": "@@@"}, {"statuses": "flying"}):
        r = requests.get(f"{api_base}/api/v1/cases", params=bad, headers=auth(read_token), timeout=30)
        assert r.status_code == 400 and r.json()["detail"], (bad, r.text)


def test_read_one_case_with_events(api_base, api_store, read_token):
    with api_store.connect() as conn:
        cid, code = conn.execute(select(Case.id, Case.code).order_by(Case.id).limit(1)).one()
        n = conn.execute(select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == cid)).scalar()
    r = requests.get(f"{api_base}/api/v1/cases/{code}", headers=auth(read_token), timeout=30)
    assert r.status_code == 200 and r.json()["code"] == code and len(r.json()["events"]) == n
    r = requests.get(f"{api_base}/api/v1/cases/NOPE", headers=auth(read_token), timeout=30)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
