"""Cases on the map: a small GeoJSON per viewport, one case's detail, and the search box.

Why aggregates: 1M cases are 144 MB of GeoJSON; a viewport needs at most a few hundred features. Below
zoom 16 the map gets one point per area (count, open, overdue) from a GROUP BY on the stored codes;
from zoom 16 the individual cases in the bbox, capped.

Zoom breaks (Leaflet zoom, 256 px tiles, Ningbo's latitude): a district is 20-80 km across and fills
the screen around zoom 10-11; a street (2-10 km) around 12-13; a unit grid (~100-300 m) becomes a
readable shape at 14-15; at 16 a screen is ~1.5 x 0.8 km, where individual cases can be told apart.

Coordinates are WGS84/CGCS2000 like the store; a GCJ-02 basemap shifts them in the browser.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import shapely
from sqlalchemy import case, func, select

from data.statuses import OPEN, STATUSES
from data.store import meta
from data.store.schema import (CaseClass, CaseEvent, CaseSource, Community, Department, District, Grid,
                               Street)
from layers.filters import Filters, cases, code_range, is_overdue, now_cst

ZOOM_STREET, ZOOM_GRID, ZOOM_CASES = 12, 14, 16
CASE_CAP = 3000
SEARCH_LIMIT = 20


def level_for_zoom(zoom: int) -> str:
    """'district' below 12, 'street' at 12-13, 'grid' at 14-15, 'case' from 16 (see module docstring)."""
    if zoom < ZOOM_STREET:
        return "district"
    if zoom < ZOOM_GRID:
        return "street"
    if zoom < ZOOM_CASES:
        return "grid"
    return "case"


@dataclass(frozen=True)
class _Areas:
    codes: np.ndarray      # str codes
    names: list
    label_xy: np.ndarray   # (n, 2) lon/lat of a point inside each area
    bbox: np.ndarray       # (n, 4) minx, miny, maxx, maxy
    index: dict            # code -> row


_centroids: dict = {}
_centroid_lock = threading.Lock()


def _load_areas(conn, level: str) -> _Areas:
    if level == "district":
        t = District.__table__.c
        rows = conn.execute(select(t.code, t.name, t.geom, t.minx, t.miny, t.maxx, t.maxy).order_by(t.code)).all()
    elif level == "street":
        t = Street.__table__.c
        rows = conn.execute(select(t.code, t.name, t.geom, t.minx, t.miny, t.maxx, t.maxy).order_by(t.code)).all()
    else:
        t = Grid.__table__.c
        rows = conn.execute(select(t.code, t.code, t.geom, t.minx, t.miny, t.maxx, t.maxy).order_by(t.code)).all()
    if not rows:
        return _Areas(np.array([], dtype=object), [], np.zeros((0, 2)), np.zeros((0, 4)), {})
    geoms = np.array([r[2] for r in rows], dtype=object)
    # point_on_surface, not centroid: a crescent-shaped street's centroid can fall in its neighbour.
    pts = shapely.point_on_surface(geoms)
    codes_ = np.array([r[0] for r in rows], dtype=object)
    return _Areas(codes_, [r[1] for r in rows], shapely.get_coordinates(pts),
                  np.array([r[3:7] for r in rows], dtype=float), {c: i for i, c in enumerate(codes_)})


def areas(conn, level: str) -> _Areas:
    """Label points and bboxes of one level, computed once per boundaries/grids data version per process."""
    versions = meta.versions(conn)
    key = (str(conn.engine.url), level, versions.get("boundaries"), versions.get("grids"))
    hit = _centroids.get(key)
    if hit is not None:
        return hit
    with _centroid_lock:
        hit = _centroids.get(key)
        if hit is None:
            for k in [k for k in _centroids if k[:2] == key[:2]]:
                del _centroids[k]
            hit = _centroids[key] = _load_areas(conn, level)
    return hit


_agg_memo: dict = {}
AGG_TTL_S = 5.0


def _aggregate(conn, level: str, filters: Filters, now, cache: bool = True) -> dict[str, tuple[int, int, int]]:
    """{code: (count, open, overdue)} of cases reported in the period, per grid rolled up, over the
    in-process case columns (layers.cube; the GROUP BY cost SQLite 45-85 ms of CPU city-wide for 30 days).

    The SQL does not depend on the bbox (areas are clipped in Python), so pans at one zoom level reuse
    the result: memoised per (store, level, filters, cases data version) for AGG_TTL_S seconds, which
    also bounds how stale "overdue now" can get when a writer does not bump the cases version.
    """
    key = None
    if cache:
        key = (str(conn.engine.url), level, filters, meta.get(conn, "version:cases"), now if now else None)
        hit = _agg_memo.get(key)
        if hit is not None and time.monotonic() - hit[0] < AGG_TTL_S:
            return hit[1]
    from layers import cube
    now = now or now_cst()
    n = {"district": 6, "street": 9, "grid": 15}[level]
    snap = cube.snapshot(conn)
    t = snap.t
    is_open = cube.rows_in(snap, OPEN)
    overdue = is_open & (t["deadline_at"] != cube.NA) & (t["deadline_at"] < cube.us(now))
    out = cube.per_area(snap, cube.mask(conn, snap, filters, now, "reported"), n, is_open, overdue)
    if key is not None:
        if len(_agg_memo) > 256:
            _agg_memo.clear()
        _agg_memo[key] = (time.monotonic(), out)
    return out


def view(conn, zoom: int, bbox, filters: Filters, now=None, cap: int = CASE_CAP, cache: bool = True) -> dict:
    """GeoJSON FeatureCollection for the viewport: aggregates below zoom 16, capped cases from 16.

    bbox = (west, south, east, north) in degrees. The collection carries level, zoom and, for cases,
    total (all matching cases in the bbox) and truncated (more than `cap`, the newest `cap` are sent).
    Aggregate features: Point at the area's label point, properties level, code, name, count (reported
    in the period), open, overdue (of those, open / overdue now); areas in view with no case are sent
    with zeros so the map can label them, except areas outside the signed-in user's districts
    (aggregates are memoised for a few seconds, see _aggregate; cache=False forces the query). Case
    features: id, code, status, major_code, class_code, overdue, priority, reported_at.
    """
    west, south, east, north = (float(v) for v in bbox)
    if not (west < east and south < north):
        raise ValueError(f"bbox must be (west, south, east, north) with west < east, south < north: {bbox}")
    level = level_for_zoom(int(zoom))
    if level == "case":
        return _cases_in_bbox(conn, (west, south, east, north), filters, now or now_cst(), cap, int(zoom))
    a = areas(conn, level)
    inside = ((a.bbox[:, 0] <= east) & (a.bbox[:, 2] >= west) & (a.bbox[:, 1] <= north) & (a.bbox[:, 3] >= south))
    if filters.area and len(a.codes):
        # A selected street shows its own grids only; a selected district its streets.
        inside &= np.array([str(c).startswith(filters.area) or filters.area.startswith(str(c)) for c in a.codes])
    if not filters.scope.all and len(a.codes):
        inside &= np.array([filters.scope.covers_area(c) for c in a.codes])
    agg = _aggregate(conn, level, filters, now, cache) if inside.any() else {}
    features = []
    for i in np.flatnonzero(inside):
        code = str(a.codes[i])
        n, o, d = agg.get(code, (0, 0, 0))
        x, y = a.label_xy[i]
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(x, 6), round(y, 6)]},
                         "properties": {"level": level, "code": code, "name": a.names[i],
                                        "count": n, "open": o, "overdue": d}})
    return {"type": "FeatureCollection", "level": level, "zoom": int(zoom), "features": features,
            "total": sum(f["properties"]["count"] for f in features), "truncated": False}


def _cases_in_bbox(conn, bbox, filters, now, cap, zoom) -> dict:
    """The newest `cap` matching cases in the box. Which ones: a mask over the process's case columns
    (layers.cube, with lon/lat), then their fields by primary key. SQLite has no two-dimensional index: its
    lon/lat index ranges over longitude only and read every case of that strip of the city, 42 ms median
    and 78 ms p95 at zoom 16 (bench/viewport.py); PostgreSQL's GiST probe took 15."""
    from layers import cube
    west, south, east, north = bbox
    snap = cube.snapshot(conn)
    m = (snap.lon >= west) & (snap.lon <= east) & (snap.lat >= south) & (snap.lat <= north)
    m &= cube.mask(conn, snap, filters, now, "reported")
    idx = np.flatnonzero(m)
    newest = idx[np.lexsort((snap.ids[idx], snap.t["reported_at"][idx]))[::-1][:cap]]
    ids = [int(i) for i in snap.ids[newest]]
    c = cases.c
    overdue = case((is_overdue(cases, now), True), else_=False).label("is_overdue")
    rows = conn.execute(select(c.id, c.code, c.status, c.major_code, c.class_code, c.priority, c.reported_at, c.lon,
                               c.lat, overdue).where(c.id.in_(ids))
                        .order_by(c.reported_at.desc(), c.id.desc())).all() if ids else []
    features = [{"type": "Feature", "id": r.id,
                 "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
                 "properties": {"id": r.id, "code": r.code, "status": r.status, "major_code": r.major_code,
                                "class_code": r.class_code, "overdue": bool(r.is_overdue), "priority": r.priority,
                                "reported_at": r.reported_at.isoformat(timespec="seconds")}}
                for r in rows]
    return {"type": "FeatureCollection", "level": "case", "zoom": zoom, "features": features,
            "total": int(len(idx)), "truncated": len(idx) > cap}


_STAGES = ("reported_at", "registered_at", "dispatched_at", "accepted_at", "handled_at", "closed_at")


def detail(conn, case_id: int, now=None) -> dict | None:
    """Everything the side panel shows about one case, with its timeline from case_events; None if absent.

    overdue is computed now (open and past deadline); stored_overdue is the flag the workflow wrote.
    """
    now = now or now_cst()
    c = cases.c
    ct, st_, dt = CaseClass.__table__, CaseSource.__table__, Department.__table__
    cc, src, dep = ct.c, st_.c, dt.c
    q = (select(cases, cc.name.label("class_name"), cc.name_en.label("class_name_en"),
                cc.major_name, cc.major_name_en, src.name.label("source_name"), src.name_en.label("source_name_en"),
                dep.name.label("department_name"), dep.name_en.label("department_name_en"))
         .select_from(cases.join(ct, cc.code == c.class_code)
                      .outerjoin(st_, src.code == c.source_code)
                      .outerjoin(dt, dep.code == c.department_code))
         .where(c.id == int(case_id)))
    r = conn.execute(q).mappings().first()
    if r is None:
        return None
    iso = (lambda d: d.isoformat(timespec="seconds") if d is not None else None)
    st = STATUSES.get(r["status"], (r["status"], r["status"], None))
    out = {
        "id": r["id"], "code": r["code"], "kind": r["kind"],
        "class_code": r["class_code"], "class_name": r["class_name"], "class_name_en": r["class_name_en"],
        "major_code": r["major_code"], "major_name": r["major_name"], "major_name_en": r["major_name_en"],
        "source_code": r["source_code"], "source_name": r["source_name"], "source_name_en": r["source_name_en"],
        "status": r["status"], "status_name": st[0], "status_name_en": st[1],
        "department_code": r["department_code"], "department_name": r["department_name"],
        "department_name_en": r["department_name_en"], "priority": r["priority"],
        "address": r["address"], "description": r["description"], "lon": r["lon"], "lat": r["lat"],
        "grid_code": r["grid_code"], "community_code": r["community_code"], "street_code": r["street_code"],
        "district_code": r["district_code"], "setback_id": r["setback_id"],
        "deadline_at": iso(r["deadline_at"]),
        "overdue": bool(r["status"] in OPEN and r["deadline_at"] is not None and r["deadline_at"] < now),
        "stored_overdue": bool(r["overdue"]), "rework_count": r["rework_count"], "return_count": r["return_count"],
        "version": r["version"], "updated_at": iso(r["updated_at"]),
    }
    for s in _STAGES:
        out[s] = iso(r[s])
    e = CaseEvent.__table__.c
    out["timeline"] = [
        {"at": iso(ev.at), "actor": ev.actor, "action": ev.action, "from": ev.from_status, "to": ev.to_status,
         "department_code": ev.department_code, "note": ev.note}
        for ev in conn.execute(select(e.at, e.actor, e.action, e.from_status, e.to_status, e.department_code, e.note)
                               .where(e.case_id == int(case_id)).order_by(e.at, e.id))]
    return out


def search(conn, q: str, limit: int = SEARCH_LIMIT) -> list[dict]:
    """Search-box hits: [{kind, code, label, bbox | point}], at most `limit`, exact matches first.

    Digits: grid / street / community / district codes by prefix. Anything else: case code (exact, then
    prefix), street and community names (contains). Areas carry bbox [w, s, e, n] to fly to; cases a
    point [lon, lat]. Every lookup is an indexed range or a scan of a small table (<= a few thousand rows).
    """
    q = (q or "").strip()
    if not q or len(q) > 64:
        return []
    out: list[dict] = []

    def add(rows, kind, label_of, point=False):
        for r in rows:
            if len(out) >= limit:
                return
            hit = {"kind": kind, "code": r.code, "label": label_of(r)}
            if point:
                hit["point"] = [r.lon, r.lat]
            else:
                hit["bbox"] = [r.minx, r.miny, r.maxx, r.maxy]
            out.append(hit)

    left = lambda: limit - len(out)  # noqa: E731
    if q.isdigit():
        for table, kind in ((District, "district"), (Street, "street"), (Community, "community"), (Grid, "grid")):
            t = table.__table__.c
            name = t.name if "name" in t else t.code
            if left() <= 0:
                break
            if len(q) <= {"district": 6, "street": 9, "community": 12, "grid": 15}[kind]:
                rows = conn.execute(select(t.code, name.label("name"), t.minx, t.miny, t.maxx, t.maxy)
                                    .where(code_range(t.code, q)).order_by(t.code).limit(left())).all()
                add(rows, kind, lambda r, k=kind: f"{r.name} {r.code}" if k != "grid" else f"网格 {r.code}")
    c = cases.c
    if left() > 0:
        exact = conn.execute(select(c.code, c.lon, c.lat, c.status).where(c.code == q)).all()
        add(exact, "case", lambda r: f"案件 {r.code}", point=True)
        if left() > 0 and len(q) >= 4:
            pre = conn.execute(select(c.code, c.lon, c.lat, c.status)
                               .where(c.code > q, c.code < q + "\uffff").order_by(c.code).limit(left())).all()
            add(pre, "case", lambda r: f"案件 {r.code}", point=True)
    if not q.isdigit():
        esc = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        for table, kind in ((Street, "street"), (Community, "community")):
            if left() <= 0:
                break
            t = table.__table__.c
            starts = case((t.name.like(esc + "%", escape="\\"), 0), else_=1)
            rows = conn.execute(select(t.code, t.name, t.minx, t.miny, t.maxx, t.maxy)
                                .where(t.name.like("%" + esc + "%", escape="\\")).order_by(starts, t.name, t.code)
                                .limit(left())).all()
            add(rows, kind, lambda r: f"{r.name} {r.code}")
    return out


__all__ = ["view", "detail", "search", "level_for_zoom", "areas", "ZOOM_STREET", "ZOOM_GRID", "ZOOM_CASES",
           "CASE_CAP"]
