"""Per-layer validation and writes. Each function validates everything, raises once, then writes.

All functions share one signature: (conn, source, wgs84 geometries, crs label, replace, problems, result).
"""
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import delete, func, select, update

from data import reference
from data.crs import area_m2
from data.importers.common import (check_extent, check_lengths, check_points, check_polygons,
                                   existing_values, now_cst, parse_datetimes, repair_polygons,
                                   require_columns, require_values, text, to_multi, unique_codes,
                                   vocabulary)
from data.importers.errors import ImportRejected
from data.locate import Locator
from data.statuses import (BERTH_STATES, BERTH_TYPES, REGISTERED_STAGES, SETBACK_MODES, SETBACK_USES, STATUSES,
                           VEHICLES)
from data.store.bulk import load_frame, reset_sequences
from data.store.geometry import bbox_columns
from data.store.schema import (Berth, BerthSession, Case, CaseClass, Community, District, Grid,
                               Setback, Street)

PRIORITY_VOCAB = {"normal": ("普通", "Normal"), "urgent": ("紧急", "Urgent")}
STATUS_VOCAB = {k: (v[0], v[1]) for k, v in STATUSES.items()}
STAGES = ("registered_at", "dispatched_at", "accepted_at", "handled_at", "closed_at")


# --- shared -----------------------------------------------------------------------------------------

def _locator(conn, path) -> Locator:
    try:
        return Locator.from_store(conn)
    except LookupError as exc:
        raise ImportRejected(f"{path}: {exc}") from None


def _assign_codes(problems, codes4: pd.DataFrame, ok: np.ndarray, what: str) -> None:
    outside = ok & codes4["grid_code"].isna().to_numpy()
    problems.add(outside, f"{what} lies outside every unit grid in the store")


def _locate_points(conn, path, frame, geoms, good, problems, what: str) -> None:
    """lon/lat and the four area codes of point rows, or the problems that stop the import.

    Rows already found bad (`good` False) get a dummy point so the vectorised lookup never sees a None.
    """
    pts = np.where(good, geoms, shapely.Point(0, 0))
    frame["lon"], frame["lat"] = shapely.get_x(pts), shapely.get_y(pts)
    codes4 = _locator(conn, path).codes(frame["lon"].to_numpy(), frame["lat"].to_numpy())
    _assign_codes(problems, codes4, good, what)
    problems.raise_if_any()
    for c in codes4.columns:
        frame[c] = codes4[c].to_numpy(object)


def _replace_guard(conn, path, layer: str, count_sql, why: str) -> None:
    n = conn.execute(count_sql).scalar() or 0
    if n:
        raise ImportRejected(f"{path}: --replace refused: {n:,} {why}; replacing the {layer} would break them. "
                             f"Import without --replace to add rows, or remove the dependent rows first.")


def _delete_all(conn, table, result) -> None:
    result.replaced = conn.execute(delete(table)).rowcount or 0


# --- grids ------------------------------------------------------------------------------------------

def _street_kind(code: str) -> str:
    n = int(code[6:9])
    if 1 <= n <= 99:
        return "街道"
    if 100 <= n <= 199:
        return "镇"
    if 200 <= n <= 399:
        return "乡"
    return "其他"


_KIND_EN = {"街道": "Subdistrict", "镇": "Town", "乡": "Township", "其他": "Area"}


def _first_names(codes: pd.Series, names: pd.Series) -> dict:
    df = pd.DataFrame({"c": codes.to_numpy(object), "n": names.to_numpy(object)}).dropna()
    return df.groupby("c")["n"].first().to_dict()


def _union_by(codes: np.ndarray, geoms: np.ndarray) -> dict:
    out = {}
    order = np.argsort(codes, kind="stable")
    codes, geoms = codes[order], geoms[order]
    keys, starts = np.unique(codes, return_index=True)
    bounds = list(starts[1:]) + [len(codes)]
    for k, a, b in zip(keys, starts, bounds):
        u = shapely.union_all(geoms[a:b])
        polys = [p for p in shapely.get_parts(u) if p.geom_type == "Polygon"]
        out[k] = shapely.MultiPolygon(polys)
    return out


def _area_row(geom) -> dict:
    minx, miny, maxx, maxy = geom.bounds
    return {"geom": geom, "area_m2": float(area_m2([geom])[0]),
            "minx": minx, "miny": miny, "maxx": maxx, "maxy": maxy}


def grids(conn, src, geoms, crs_label, replace, problems, result):
    path, attrs = src.path, src.attrs
    require_columns(path, attrs, ["code"], "grids")
    codes = text(attrs, "code")
    ok = require_values(problems, codes, "code")
    shaped = codes.fillna("").str.fullmatch(r"\d{15}").to_numpy(bool)
    problems.add(ok & ~shaped, "grid code must be 15 digits (district 6 + street 3 + community 3 + grid 3)")
    ok &= shaped
    districts = set(conn.execute(select(District.code)).scalars())
    if not districts:
        raise ImportRejected(f"{path}: the store has no districts yet; seed the store (python app.py seed) "
                             f"before importing grids")
    dcodes = codes.fillna("").str[:6]
    for d in sorted(set(dcodes[ok & ~dcodes.isin(districts).to_numpy()])):
        problems.add(ok & (dcodes == d).to_numpy(),
                     f"district {d} (the code's first 6 digits) is not one of the store's districts "
                     f"({', '.join(sorted(districts))})")
    good = check_polygons(problems, geoms, "grids")
    good &= ~check_extent(problems, geoms, crs_label)
    result.repaired = repair_polygons(problems, geoms, good)
    existing = existing_values(conn, "grids", "code", codes[ok]) if not replace else set()
    unique_codes(problems, codes, ok, existing, "grids", replace)
    frame = pd.DataFrame({"code": codes, "inspector": text(attrs, "inspector")})
    community_names = text(attrs, "community_name")
    street_names = text(attrs, "street_name")
    check_lengths(problems, frame, "grids")
    check_lengths(problems, pd.DataFrame({"name": community_names}), "communities")
    check_lengths(problems, pd.DataFrame({"name": street_names}), "streets")
    problems.raise_if_any()

    geoms = to_multi(geoms)
    codes_arr = codes.to_numpy(object)
    frame["community_code"] = codes.str[:12]
    frame["street_code"] = codes.str[:9]
    frame["district_code"] = codes.str[:6]
    frame["area_m2"] = area_m2(geoms)
    bbox_columns(frame, geoms)
    frame["geom"] = geoms

    touched_communities = set(frame["community_code"])
    if replace:
        new_codes = set(codes_arr)
        used = set()
        for model in (Berth, Case, Setback):
            used |= set(conn.execute(select(model.grid_code).distinct()).scalars())
        lost = sorted(used - new_codes)
        if lost:
            raise ImportRejected(
                f"{path}: --replace refused: berths, cases or setbacks refer to {len(lost):,} grid code(s) "
                f"that the new file does not have ({', '.join(lost[:20])}{' and more' if len(lost) > 20 else ''}); "
                f"replacing would leave them pointing at nothing")
        touched_communities |= set(conn.execute(select(Grid.community_code).distinct()).scalars())
        _delete_all(conn, Grid.__table__, result)

    # Streets and communities the store does not know yet are created from the new grids.
    have_streets = set(conn.execute(select(Street.code)).scalars())
    have_comms = set(conn.execute(select(Community.code)).scalars())
    snames = _first_names(frame["street_code"], street_names)
    cnames = _first_names(frame["community_code"], community_names)
    new_streets = sorted(set(frame["street_code"]) - have_streets)
    new_comms = sorted(set(frame["community_code"]) - have_comms)
    if new_streets:
        unions = _union_by(frame["street_code"].to_numpy(object), geoms)
        rows = []
        for s in new_streets:
            kind = _street_kind(s)
            rows.append({"code": s, "district_code": s[:6], "name": snames.get(s, s), "kind": kind,
                         "name_en": f"{_KIND_EN[kind]} {s}", **_area_row(unions[s])})
        load_frame(conn, "streets", pd.DataFrame(rows))
    if new_comms:
        unions = _union_by(frame["community_code"].to_numpy(object), geoms)
        rows = [{"code": c, "street_code": c[:9], "district_code": c[:6], "name": cnames.get(c, c),
                 **_area_row(unions[c])} for c in new_comms]
        load_frame(conn, "communities", pd.DataFrame(rows))
    result.rows = load_frame(conn, "grids", frame)

    # Communities and streets that already existed are re-unioned from all their grids.
    old_comms = sorted(touched_communities - set(new_comms))
    old_streets = sorted({c[:9] for c in touched_communities} - set(new_streets))
    reunioned = 0
    for model, codes_, key in ((Community, old_comms, Grid.community_code), (Street, old_streets, Grid.street_code)):
        if not codes_:
            continue
        rows = conn.execute(select(key, Grid.geom).where(key.in_(codes_))).all()
        if not rows:
            continue
        unions = _union_by(np.array([r[0] for r in rows], dtype=object), np.array([r[1] for r in rows], dtype=object))
        for c, g in unions.items():
            conn.execute(update(model).where(model.code == c).values(**_area_row(g)))
            reunioned += 1
    reference.load(conn)
    from data.store import meta
    meta.bump(conn, "boundaries")
    result.notes.append(f"Created {len(new_streets)} street(s) and {len(new_comms)} communit"
                        f"{'y' if len(new_comms) == 1 else 'ies'} from the grids; re-unioned {reunioned} existing.")


# --- berths -----------------------------------------------------------------------------------------

def berths(conn, src, geoms, crs_label, replace, problems, result):
    path, attrs = src.path, src.attrs
    require_columns(path, attrs, ["code"], "berths")
    codes = text(attrs, "code")
    ok = require_values(problems, codes, "code")
    good = check_points(problems, geoms, "berths")
    good &= ~check_extent(problems, geoms, crs_label)
    frame = pd.DataFrame({
        "code": codes,
        "road_name": text(attrs, "road_name"),
        "segment_code": text(attrs, "segment_code"),
        "berth_type": vocabulary(problems, text(attrs, "berth_type"), BERTH_TYPES, "berth_type", "on_street"),
        "vehicle": vocabulary(problems, text(attrs, "vehicle"), VEHICLES, "vehicle", "motor"),
        "charge_zone": text(attrs, "charge_zone"),
        "sensor": text(attrs, "sensor"),
        "state": vocabulary(problems, text(attrs, "state"), BERTH_STATES, "state", "free"),
        "state_since": parse_datetimes(problems, attrs, "state_since"),
    })
    check_lengths(problems, frame, "berths")
    existing = existing_values(conn, "berths", "code", codes[ok]) if not replace else set()
    unique_codes(problems, codes, ok, existing, "berths", replace)
    _locate_points(conn, path, frame, geoms, good, problems, "the berth")
    if replace:
        _replace_guard(conn, path, "berths", select(func.count()).select_from(BerthSession),
                       "parking sessions record the berths' history")
        _delete_all(conn, Berth.__table__, result)
    result.rows = load_frame(conn, "berths", frame)


# --- setbacks ---------------------------------------------------------------------------------------

_USE_SPLIT = r"[,，、;；/]"


def _uses(problems, values: pd.Series) -> pd.Series:
    lookup = {k: k for k in SETBACK_USES} | {v[0]: k for k, v in SETBACK_USES.items()} | \
             {v[1].lower(): k for k, v in SETBACK_USES.items()}
    out, bad = [], []
    for i, v in enumerate(values.to_numpy(object)):
        if v is None:
            out.append("")
            continue
        items = [p.strip() for p in pd.Series([v]).str.split(_USE_SPLIT, regex=True)[0] if p.strip()]
        mapped = [lookup.get(p.lower() if p.isascii() else p) for p in items]
        if any(m is None for m in mapped):
            bad.append(i)
        out.append(",".join(dict.fromkeys(m for m in mapped if m)))
    problems.add(bad, f"permitted_uses must list uses from {', '.join(f'{k} ({v[0]})' for k, v in SETBACK_USES.items())}")
    return pd.Series(out, index=values.index, dtype=object)


def setbacks(conn, src, geoms, crs_label, replace, problems, result):
    path, attrs = src.path, src.attrs
    require_columns(path, attrs, ["code", "owner", "manager"], "setbacks")
    codes = text(attrs, "code")
    ok = require_values(problems, codes, "code")
    owner, manager = text(attrs, "owner"), text(attrs, "manager")
    require_values(problems, owner, "owner")
    require_values(problems, manager, "manager")
    good = check_polygons(problems, geoms, "setbacks")
    good &= ~check_extent(problems, geoms, crs_label)
    result.repaired = repair_polygons(problems, geoms, good)
    dept = text(attrs, "manager_department_code")
    known = existing_values(conn, "departments", "code", dept)
    for d in sorted(set(dept.dropna()) - known):
        problems.add((dept == d).to_numpy(), f"manager_department_code {d!r} is not a department in the store")
    frame = pd.DataFrame({
        "code": codes, "road_name": text(attrs, "road_name"), "segment_code": text(attrs, "segment_code"),
        "owner": owner, "user": text(attrs, "user"), "manager": manager, "manager_department_code": dept,
        "mode": vocabulary(problems, text(attrs, "mode"), SETBACK_MODES, "mode", "self"),
        "permitted_uses": _uses(problems, text(attrs, "permitted_uses")),
    })
    check_lengths(problems, frame, "setbacks")
    existing = existing_values(conn, "setbacks", "code", codes[ok]) if not replace else set()
    unique_codes(problems, codes, ok, existing, "setbacks", replace)
    safe = np.where(good, geoms, shapely.box(0, 0, 1, 1))
    codes4 = _locator(conn, path).codes_for_shapes(safe)
    _assign_codes(problems, codes4, good, "the setback's representative point")
    problems.raise_if_any()
    geoms = to_multi(geoms)
    for c in codes4.columns:
        frame[c] = codes4[c].to_numpy(object)
    frame["area_m2"] = area_m2(geoms)
    bbox_columns(frame, geoms)
    frame["geom"] = geoms
    if replace:
        _replace_guard(conn, path, "setbacks", select(func.count()).select_from(Case).where(Case.setback_id.is_not(None)),
                       "cases are linked to setbacks")
        _delete_all(conn, Setback.__table__, result)
    result.rows = load_frame(conn, "setbacks", frame)


# --- cases ------------------------------------------------------------------------------------------

def deadlines(conn, registered_at: pd.Series, values: np.ndarray, units: np.ndarray) -> pd.Series:
    """Deadlines: registration time plus the class's limit in working time, on the store's calendar."""
    from data.workcalendar import WorkCalendar, add_working_time
    out = pd.Series(pd.NaT, index=registered_at.index, dtype="datetime64[us]")
    has = registered_at.notna().to_numpy()
    if has.any():
        starts = registered_at[has].to_numpy().astype("datetime64[s]")
        got = add_working_time(starts, values[has].astype(float), units[has], WorkCalendar.from_store(conn))
        out.iloc[np.flatnonzero(has)] = np.asarray(got).astype("datetime64[us]")
    return out


def _reserve_ids(conn, n: int) -> np.ndarray:
    """Ids for the new cases, known before the load so the import events can point at them."""
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(
            f"SELECT nextval(pg_get_serial_sequence('cases', 'id')) FROM generate_series(1, {int(n)})").scalars()
        return np.fromiter(rows, dtype=np.int64, count=n)
    start = (conn.execute(select(func.max(Case.id))).scalar() or 0) + 1
    return np.arange(start, start + n, dtype=np.int64)


def _setbacks_of(conn, frame: pd.DataFrame, eligible: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Setback id and manager department for cases of setback classes whose point lies in a setback."""
    ids = pd.Series(pd.array([pd.NA] * len(frame), dtype="Int64"), index=frame.index)
    depts = pd.Series(np.full(len(frame), None, dtype=object), index=frame.index, dtype=object)
    if not eligible.any():
        return ids, depts
    rows = conn.execute(select(Setback.id, Setback.manager_department_code, Setback.geom)).all()
    if not rows:
        return ids, depts
    tree = shapely.STRtree(np.array([r[2] for r in rows], dtype=object))
    cand = np.flatnonzero(eligible)
    pts = shapely.points(frame["lon"].to_numpy()[cand], frame["lat"].to_numpy()[cand])
    pi, si = tree.query(pts, predicate="within")
    first = np.unique(pi, return_index=True)[1]
    pi, si = pi[first], si[first]
    ids.iloc[cand[pi]] = np.array([rows[i][0] for i in si], dtype=np.int64)
    depts.iloc[cand[pi]] = np.array([rows[i][1] for i in si], dtype=object)
    return ids, depts


def cases(conn, src, geoms, crs_label, replace, problems, result):
    path, attrs = src.path, src.attrs
    require_columns(path, attrs, ["code", "class_code", "source_code", "reported_at"], "cases")
    n = len(attrs)
    codes = text(attrs, "code")
    ok = require_values(problems, codes, "code")
    good = check_points(problems, geoms, "cases")
    good &= ~check_extent(problems, geoms, crs_label)

    classes = pd.DataFrame(conn.execute(select(CaseClass.code, CaseClass.kind, CaseClass.major_code,
                                               CaseClass.limit_value, CaseClass.limit_unit,
                                               CaseClass.department_kind, CaseClass.in_setback)).all(),
                           columns=["code", "kind", "major_code", "limit_value", "limit_unit", "department_kind",
                                    "in_setback"])
    if classes.empty:
        raise ImportRejected(f"{path}: the store has no case classes; seed the store first")
    classes = classes.set_index("code")
    cls = text(attrs, "class_code")
    require_values(problems, cls, "class_code")
    for c in sorted(set(cls.dropna()) - set(classes.index)):
        problems.add((cls == c).to_numpy(), f"class_code {c!r} is not a case class in the store")
    srcs = text(attrs, "source_code")
    require_values(problems, srcs, "source_code")
    known_sources = existing_values(conn, "case_sources", "code", srcs)
    for s in sorted(set(srcs.dropna()) - known_sources):
        problems.add((srcs == s).to_numpy(), f"source_code {s!r} is not a case source in the store")
    reported = parse_datetimes(problems, attrs, "reported_at")
    problems.add(reported.isna().to_numpy() & text(attrs, "reported_at").isna().to_numpy(), "reported_at is empty; it is required")
    stages = {s: parse_datetimes(problems, attrs, s) for s in STAGES}
    for s, v in stages.items():
        problems.add((v < reported).to_numpy(), f"{s} is earlier than reported_at")
    status = vocabulary(problems, text(attrs, "status"), STATUS_VOCAB, "status", "reported")
    priority = vocabulary(problems, text(attrs, "priority"), PRIORITY_VOCAB, "priority", "normal")
    # Indicators count registered cases by registered_at and closures by closed_at: both must be there.
    problems.add(status.isin(REGISTERED_STAGES).to_numpy() & stages["registered_at"].isna().to_numpy(),
                 "a registered case (status past 'reported') needs registered_at")
    problems.add((status == "closed").to_numpy() & stages["closed_at"].isna().to_numpy(),
                 "a closed case needs closed_at")
    dept = text(attrs, "department_code")
    frame = pd.DataFrame({"code": codes, "source_code": srcs, "class_code": cls,
                          "description": text(attrs, "description"), "address": text(attrs, "address"),
                          "department_code": dept, "status": status, "priority": priority})
    check_lengths(problems, frame, "cases")
    existing = existing_values(conn, "cases", "code", codes[ok]) if not replace else set()
    unique_codes(problems, codes, ok, existing, "cases", replace)
    _locate_points(conn, path, frame, geoms, good, problems, "the case")

    cinfo = classes.reindex(cls.to_numpy(object))
    frame["kind"] = cinfo["kind"].to_numpy(object)
    frame["major_code"] = cinfo["major_code"].to_numpy(object)
    setback_id, setback_dept = _setbacks_of(conn, frame, cinfo["in_setback"].fillna(False).to_numpy(bool))
    frame["setback_id"] = setback_id
    # A case in a setback strip goes to whoever holds its management right (三权分置), when known.
    dept = dept.where(dept.notna(), setback_dept)
    # Routing default, asked once per (kind, district[, street]) rather than once per row.
    route = pd.DataFrame({"k": cinfo["department_kind"].to_numpy(object), "d": frame["district_code"],
                          "s": frame["street_code"]})
    route.loc[route["k"] != "street", "s"] = ""
    combos = {key: reference.department_code(key[0], key[1], key[2] or None)
              for key in set(map(tuple, route[dept.isna().to_numpy()].to_numpy()))}
    routed = [combos.get(key) for key in map(tuple, route.to_numpy())]
    frame["department_code"] = dept.where(dept.notna(), pd.Series(routed, index=dept.index, dtype=object))
    known = existing_values(conn, "departments", "code", frame["department_code"])
    for d in sorted(set(frame["department_code"].dropna()) - known):
        rows = (frame["department_code"] == d).to_numpy()
        given = (dept == d).to_numpy()
        problems.add(rows & given, f"department_code {d!r} is not a department in the store")
        problems.add(rows & ~given, f"routed department {d!r} (from the class's department kind) is not in the "
                                    f"store; give department_code or reload the reference tables")
    problems.raise_if_any()

    frame["reported_at"] = reported
    for s, v in stages.items():
        frame[s] = v
    deadline = deadlines(conn, stages["registered_at"], cinfo["limit_value"].to_numpy(),
                                        cinfo["limit_unit"].to_numpy(object))
    frame["deadline_at"] = deadline
    now = now_cst()
    finished = frame["closed_at"].fillna(pd.Timestamp(now)).astype("datetime64[us]")
    frame["overdue"] = (deadline.notna() & (finished > deadline) & (status != "rejected")).to_numpy(bool)
    frame["rework_count"] = 0
    frame["return_count"] = 0
    frame["version"] = 1
    frame["updated_at"] = pd.Series(pd.Timestamp(now), index=frame.index).astype("datetime64[us]")

    if replace:
        _delete_all(conn, Case.__table__, result)
    ids = _reserve_ids(conn, n)
    frame.insert(0, "id", ids)
    events = pd.DataFrame({
        "case_id": ids, "at": frame["updated_at"], "actor": "import", "action": "import",
        "from_status": None, "to_status": frame["status"], "department_code": frame["department_code"],
        "note": [f"imported from {path.name} row {i + 1}" for i in range(n)],
    })
    result.rows = load_frame(conn, "cases", frame)
    load_frame(conn, "case_events", events)
    reset_sequences(conn, ["cases"])
