"""The wall over real HTTP on both databases: kiosk tokens at the layout, at every callback and at the
layer files; what the wall app exposes; its URL options.

Callback requests are built from the wall app's own /wall/_dash-dependencies, so they are exactly what
its renderer would send, with a token chosen by the test (a crafted request must get nothing).
"""
import pytest
import requests

from dashboard import wall
from data import tokens
from tests.test_api_support import api_base, api_store, make_token  # noqa: F401


@pytest.fixture(scope="module")
def wall_token(api_store):
    return make_token(api_store, "wall-screen", "wall")


def layout_text(base, query: str, path: str = "/wall/") -> str:
    r = requests.get(f"{base}/wall/_dash-layout", headers={"Referer": f"{base}{path}?{query}"}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    return r.text


def test_layout_needs_a_wall_token(api_base, api_store, wall_token):
    good = layout_text(api_base, f"token={wall_token}")
    assert "wall-kpis" in good and "wall-denied" not in good
    read = make_token(api_store, "not-a-wall", "read")
    for query, why in (("", "a token is required"), ("token=cgzt_nonsense", "unknown token"),
                       (f"token={read}", "has scope 'read'")):
        text = layout_text(api_base, query)
        assert "wall-denied" in text and why in text, query
        assert "wall-kpis" not in text and "wall-opts" not in text   # no data, nothing polls


def _callback(base, output_id: str) -> dict:
    deps = requests.get(f"{base}/wall/_dash-dependencies", timeout=30).json()
    for cb in deps:
        if f"{output_id}." in cb["output"]:
            return cb
    raise AssertionError(f"no wall callback outputs {output_id}")


def _outputs(spec: str) -> list[dict]:
    parts = spec.strip(".").split("...")
    return [{"id": p.rsplit(".", 1)[0], "property": p.rsplit(".", 1)[1]} for p in parts]


def call(base, output_id, token, trigger, states) -> dict:
    cb = _callback(base, output_id)
    body = {"output": cb["output"], "outputs": _outputs(cb["output"]),
            "inputs": [{"id": trigger[0], "property": trigger[1], "value": 1}],
            "changedPropIds": [f"{trigger[0]}.{trigger[1]}"],
            "state": [{"id": i, "property": p, "value": v} for i, p, v in states(token)]}
    r = requests.post(f"{base}/wall/_dash-update-component", json=body, timeout=60)
    assert r.status_code in (200, 204), r.text[:500]
    return r.json()["response"] if r.status_code == 200 else {}


def _opts(token):
    return {"token": token, "adcode": None, "lang": "zh", "metric": "open"}


def refresh(base, token):
    return call(base, "wall-kpis", token, ("wall-refresh-tick", "data"),
                lambda tok: [("wall-opts", "data", _opts(tok)), ("wall-grids-key", "data", None)])


def live_poll(base, token):
    return call(base, "wall-live", token, ("wall-live-tick", "data"),
                lambda tok: [("wall-live-cursor", "data", None), ("wall-opts", "data", _opts(tok))])


def test_every_callback_checks_the_token_again(api_base, api_store):
    token = make_token(api_store, "wall-revocable", "wall")
    ok = refresh(api_base, token)
    assert "wall-kpi-open" in str(ok["wall-kpis"]["children"]) and ok["wall-deny-refresh"]["data"] is None
    assert "wall-dim-safe" in str(ok["wall-index"]["children"])
    assert live_poll(api_base, token)["wall-ticker"]["children"], "the first poll sends the latest cases"

    with api_store.begin() as conn:
        tokens.revoke(conn, "wall-revocable")
    for resp in (refresh(api_base, token), live_poll(api_base, token)):
        deny = resp.get("wall-deny-refresh", resp.get("wall-deny-live"))["data"]
        assert "was revoked" in deny
        for key in ("wall-kpis", "wall-index", "wall-grp-grids", "wall-live", "wall-ticker"):
            if key in resp:
                assert resp[key]["children"] == [], key
    # A crafted request with someone else's idea of a token gets nothing either.
    assert "unknown token" in refresh(api_base, "cgzt_forged")["wall-deny-refresh"]["data"]


def test_wall_app_runs_only_wall_callbacks(api_base):
    deps = requests.get(f"{api_base}/wall/_dash-dependencies", timeout=30).json()
    assert deps
    for cb in deps:
        for out in _outputs(cb["output"]):
            assert out["id"].startswith("wall-"), cb["output"]


def test_layer_files_need_the_token(api_base, wall_token):
    import json
    text = layout_text(api_base, f"token={wall_token}")
    urls = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("props", {}).get("id") == "wall-grids":
                urls.append(node["props"]["url"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(json.loads(text))
    url = urls[0]
    assert url.startswith("/wall/layers/grids.pbf?v=")
    assert f"token={wall_token}" in url
    r = requests.get(api_base + url, timeout=30)
    assert r.status_code == 200 and int(r.headers["X-Layer-Features"]) > 0
    bare = url.split("&token=")[0]
    r = requests.get(api_base + bare, timeout=30)
    assert r.status_code == 401 and "token is required" in r.json()["error"]


def test_wall_without_slash_keeps_the_query(api_base):
    r = requests.get(f"{api_base}/wall?token=abc&tour=30", allow_redirects=False, timeout=30)
    assert r.status_code == 302 and r.headers["Location"].endswith("/wall/?token=abc&tour=30")


def test_district_wall_and_unknown_district(api_base, api_store, wall_token):
    with api_store.connect() as conn:
        from sqlalchemy import text
        district = conn.execute(text("SELECT district_code FROM grids LIMIT 1")).scalar()
    page = layout_text(api_base, f"token={wall_token}", path=f"/wall/{district}")
    assert "wall-kpis" in page and f'"adcode": "{district}"'.replace(" ", "") in page.replace(" ", "")
    bad = layout_text(api_base, f"token={wall_token}", path="/wall/339999")
    assert "wall-denied" in bad and "339999" in bad


def test_options_from_the_url():
    city = wall.options("/wall/", "token=t")
    assert (city["adcode"], city["tour"], city["poll"], city["refresh"]) == (None, wall.CITY_TOUR_S, 1000, 30)
    district = wall.options("/wall/330203", "token=t")
    assert district["adcode"] == "330203" and district["tour"] == 0
    assert wall.options("/wall/330203", "tour=45")["tour"] == 45
    assert wall.options("/wall/", "tour=0")["tour"] == 0
    assert wall.options("/wall/", "tour=2")["tour"] == 5                 # clamped to the minimum
    assert wall.options("/wall/", "poll=1")["poll"] == wall.MIN_POLL_MS
    assert wall.options("/wall/", "poll=abc&refresh=x&metric=nope")["poll"] == 1000
    assert wall.options("/wall/", "metric=overdue&lang=en")["metric"] == "overdue"
    assert wall.is_wall_path("/wall") and wall.is_wall_path("/wall/330203/") and not wall.is_wall_path("/wallx")
    assert not wall.is_wall_path("/district/330203")


def test_urgent_of_picks_the_newest_urgent_report():
    rows = [{"event": 1, "priority": "urgent", "action": "report", "code": "A", "lat": 1, "lon": 2, "name": "a",
             "name_en": "a", "address": ""},
            {"event": 3, "priority": "urgent", "action": "register", "code": "B", "lat": 1, "lon": 2, "name": "b",
             "name_en": "b", "address": ""},
            {"event": 2, "priority": "urgent", "action": "report", "code": "C", "lat": 5, "lon": 6, "name": "c",
             "name_en": "c", "address": "x"},
            {"event": 4, "priority": "normal", "action": "report", "code": "D", "lat": 1, "lon": 2, "name": "d",
             "name_en": "d", "address": ""}]
    assert wall.urgent_of(rows)["code"] == "C"
    assert wall.urgent_of(rows[3:]) is None
