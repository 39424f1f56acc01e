"""Checks shared by the layers: CRS, the Ningbo extent, geometry types and repair, text columns.

All checks work on whole columns (numpy/shapely arrays) and report into a Problems collector, so a file
of 200k rows is validated in a few vectorised passes and every bad row is named in one message.
"""
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from data.clock import CST, now_cst  # noqa: F401 - now_cst is the importers' too
from data.crs import CRSInputError, converter, gcj02_to_wgs84, transform_geometries
from data.importers.errors import ImportRejected, Problems
from data.store.geometry import polygonal
from data.store.schema import Base

BOUNDARY = Path(__file__).resolve().parents[1] / "boundaries" / "city-330200.geojson"
EXTENT_MARGIN_DEG = 0.05   # ~5 km: outlines are generalised; anything further out is not Ningbo
REPAIR_MAX_AREA_CHANGE = 0.01




@lru_cache(maxsize=1)
def ningbo_extent() -> tuple[float, float, float, float]:
    """Ningbo's bounding box in WGS84, from the real city outline (stored in GCJ-02)."""
    with open(BOUNDARY, encoding="utf-8") as f:
        gj = json.load(f)
    feat = gj["features"][0] if gj.get("type") == "FeatureCollection" else gj
    geom = shapely.from_geojson(json.dumps(feat["geometry"]))
    geom = transform_geometries([geom], gcj02_to_wgs84)[0]
    minx, miny, maxx, maxy = shapely.bounds(geom)
    m = EXTENT_MARGIN_DEG
    return minx - m, miny - m, maxx + m, maxy + m


def resolve_crs(path, file_crs, crs_arg) -> tuple[object, str]:
    """(converter, description): --crs overrides, else the file's CRS, else WGS84 assumed."""
    if crs_arg:
        label = f"{crs_arg} (from --crs)"
        src = crs_arg
    elif file_crs is not None:
        epsg = file_crs.to_epsg()
        name = f"EPSG:{epsg}" if epsg else file_crs.to_string()
        label = f"{name} (declared by the file)"
        src = f"EPSG:{epsg}" if epsg else file_crs
    else:
        return converter(None), "EPSG:4326 (assumed: the file declares none and no --crs was given)"
    try:
        return converter(src), label
    except CRSInputError as exc:
        raise ImportRejected(f"{path}: {exc}") from None


def convert(geoms: np.ndarray, conv) -> np.ndarray:
    """Geometries to WGS84, 2D. Non-finite results (a projection outside its domain) stay non-finite."""
    out = np.full(len(geoms), None, dtype=object)
    have = ~shapely.is_missing(geoms)
    if have.any():
        g = shapely.force_2d(geoms[have])
        with np.errstate(all="ignore"):
            out[have] = transform_geometries(g, conv)
    return out


def check_extent(problems: Problems, geoms: np.ndarray, crs_label: str) -> np.ndarray:
    """Mask of rows whose converted coordinates fall outside Ningbo; reported with the CRS hint."""
    have = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    b = np.full((len(geoms), 4), np.nan)
    if have.any():
        b[have] = shapely.bounds(geoms[have])
    minx, miny, maxx, maxy = ningbo_extent()
    with np.errstate(invalid="ignore"):
        inside = (b[:, 0] >= minx) & (b[:, 2] <= maxx) & (b[:, 1] >= miny) & (b[:, 3] <= maxy)
    outside = have & ~inside
    problems.add(outside, f"coordinates land outside Ningbo after conversion from {crs_label}; "
                          f"did you give the right --crs? (projected metres read as degrees land far away)")
    return outside


def check_points(problems: Problems, geoms: np.ndarray, layer: str) -> np.ndarray:
    """Mask of usable points; a MultiPoint of one point counts as a point."""
    missing = shapely.is_missing(geoms)
    problems.add(missing, f"no location (missing geometry or non-numeric lon/lat); {layer} need a point")
    gt = np.where(missing, -1, shapely.get_type_id(np.where(missing, shapely.Point(), geoms)))
    single_multi = (gt == 4) & (shapely.get_num_geometries(np.where(gt == 4, geoms, shapely.Point())) == 1)
    ok_type = (gt == 0) | single_multi
    for tid in sorted(set(gt[~missing & ~ok_type].tolist())):
        problems.add(~missing & (gt == tid),
                     f"{shapely.GeometryType(tid).name.title().replace('_', '')} geometry where {layer} need a Point")
    empty = ~missing & ok_type & shapely.is_empty(np.where(missing, shapely.Point(), geoms))
    problems.add(empty, f"empty point; {layer} need a location")
    ok = ~missing & ok_type & ~empty
    if single_multi.any():
        geoms[single_multi] = shapely.get_geometry(geoms[single_multi], 0)
    return ok


def check_polygons(problems: Problems, geoms: np.ndarray, layer: str) -> np.ndarray:
    missing = shapely.is_missing(geoms)
    problems.add(missing, f"no geometry; {layer} need a Polygon or MultiPolygon")
    safe = np.where(missing, shapely.Point(), geoms)
    gt = np.where(missing, -1, shapely.get_type_id(safe))
    ok_type = (gt == 3) | (gt == 6)
    for tid in sorted(set(gt[~missing & ~ok_type].tolist())):
        problems.add(~missing & (gt == tid),
                     f"{shapely.GeometryType(tid).name.title().replace('_', '')} geometry where {layer} "
                     f"need a Polygon or MultiPolygon")
    empty = ~missing & ok_type & shapely.is_empty(safe)
    problems.add(empty, f"empty polygon; {layer} need an area")
    return ~missing & ok_type & ~empty


def repair_polygons(problems: Problems, geoms: np.ndarray, ok: np.ndarray) -> int:
    """make_valid invalid polygons in place when the result is polygonal and the area moves < 1 %.

    A bowtie's signed halves cancel, so its "area" is near zero and any repair changes it wildly: such
    shapes are refused with GEOS's explanation rather than silently reshaped.
    """
    idx = np.flatnonzero(ok)
    invalid = idx[~shapely.is_valid(geoms[idx])]
    repaired = 0
    for i in invalid:
        g = geoms[i]
        why = shapely.is_valid_reason(g)
        fixed = polygonal(shapely.make_valid(g))
        before = abs(shapely.area(g))
        if fixed.is_empty:
            problems.add([i], f"invalid polygon that cannot be repaired ({why})")
            continue
        after = shapely.area(fixed)
        change = abs(after - before) / max(before, after, 1e-300)
        if change >= REPAIR_MAX_AREA_CHANGE:
            problems.add([i], f"invalid polygon ({why}); repairing it would change its area by "
                              f"{change:.0%}, so fix it at the source")
            continue
        geoms[i] = fixed
        repaired += 1
    return repaired


def to_multi(geoms: np.ndarray) -> np.ndarray:
    """The store's polygon columns are MULTIPOLYGON (PostGIS enforces it)."""
    out = geoms.copy()
    single = shapely.get_type_id(out) == 3
    out[single] = [shapely.MultiPolygon([g]) for g in out[single]]
    return out


def text(attrs: pd.DataFrame, name: str) -> pd.Series:
    """A column as stripped strings (object dtype) with None for blanks; whole floats print without '.0'."""
    if name not in attrs.columns:
        return pd.Series(np.full(len(attrs), None, dtype=object), index=attrs.index, dtype=object)
    s = attrs[name]
    if pd.api.types.is_float_dtype(s):
        vals = s.to_numpy(float)
        finite = np.isfinite(vals)
        whole = finite & (np.mod(np.where(finite, vals, 0), 1) == 0) & (np.abs(np.where(finite, vals, 0)) < 2**53)
        out = np.full(len(vals), None, dtype=object)
        out[whole] = vals[whole].astype(np.int64).astype(str)
        out[finite & ~whole] = vals[finite & ~whole].astype(str)
        return pd.Series(out, index=attrs.index, dtype=object)
    if pd.api.types.is_datetime64_any_dtype(s):
        s = s.dt.strftime("%Y-%m-%d %H:%M:%S")
    arr = s.astype("string").str.strip().to_numpy(dtype=object, na_value=None)
    arr[arr == ""] = None
    return pd.Series(arr, index=attrs.index, dtype=object)


def require_columns(path, attrs: pd.DataFrame, names, layer: str) -> None:
    missing = [n for n in names if n not in attrs.columns]
    if missing:
        raise ImportRejected(f"{path}: {layer} need the column(s) {missing}; the file has {list(attrs.columns)}")


def require_values(problems: Problems, values: pd.Series, name: str) -> np.ndarray:
    blank = values.isna().to_numpy()
    problems.add(blank, f"{name} is empty; it is required")
    return ~blank


def check_lengths(problems: Problems, frame: pd.DataFrame, table: str) -> None:
    """Values longer than their column: PostgreSQL would refuse them, SQLite would keep them silently."""
    cols = Base.metadata.tables[table].c
    for name in frame.columns:
        length = getattr(cols[name].type, "length", None) if name in cols else None
        if not length or frame[name].dtype != object:
            continue
        lens = frame[name].astype("string").str.len().fillna(0).to_numpy(dtype=np.int64)
        problems.add(lens > length, f"{name} is longer than {length} characters")


def vocabulary(problems: Problems, values: pd.Series, vocab: dict, name: str, default) -> pd.Series:
    """Map codes or their Chinese/English names to codes; blanks take the default."""
    lookup = {k.lower(): k for k in vocab} | {v[0]: k for k, v in vocab.items()} | \
             {v[1].lower(): k for k, v in vocab.items()}
    arr = values.to_numpy(object)
    mapped = {v: lookup.get(str(v).lower()) for v in set(arr.tolist()) if v is not None}
    out = np.array([default if v is None else mapped[v] for v in arr], dtype=object)
    bad = np.array([v is not None and mapped[v] is None for v in arr], dtype=bool)
    problems.add(bad, f"{name} is not one of {', '.join(f'{k} ({v[0]})' for k, v in vocab.items())}")
    out[bad] = default
    return pd.Series(out, index=values.index, dtype=object)


def unique_codes(problems: Problems, codes: pd.Series, ok: np.ndarray, existing: set, layer: str,
                 replace: bool) -> np.ndarray:
    """Refuse codes repeated in the file, and codes already in the store unless replacing."""
    present = codes.notna().to_numpy()
    dup = codes.duplicated(keep=False).to_numpy() & present
    for code in codes[dup].unique()[:200]:
        mask = (codes == code).to_numpy()
        problems.add(mask, f"code {code!r} appears {int(mask.sum())} times in the file")
    if dup.any() and len(codes[dup].unique()) > 200:
        problems.add(dup, "code appears more than once in the file")
    if not replace and existing:
        clash = codes.isin(existing).to_numpy() & present
        problems.add(clash, f"code already in the store's {layer} (use --replace to replace the layer)")
    return ~dup


def existing_values(conn, table: str, column: str, values) -> set:
    """Which of values already exist in table.column: one indexed query with the values as one parameter.

    An IN list of 200k bound parameters costs SQLAlchemy seconds to render; a JSON array (SQLite) or a
    text array (PostgreSQL) is a single parameter. Names come from the schema, never from the file.
    """
    Base.metadata.tables[table].c[column]  # a KeyError here means a programming error, not bad input
    vals = list(dict.fromkeys(str(v) for v in values if v is not None))
    if not vals:
        return set()
    if conn.dialect.name == "postgresql":
        sql = f'SELECT "{column}" FROM "{table}" WHERE "{column}" = ANY(%s)'
        return {r[0] for r in conn.exec_driver_sql(sql, (vals,))}
    sql = f'SELECT "{column}" FROM "{table}" WHERE "{column}" IN (SELECT value FROM json_each(?))'
    return {r[0] for r in conn.exec_driver_sql(sql, (json.dumps(vals, ensure_ascii=False),))}


def parse_datetimes(problems: Problems, attrs: pd.DataFrame, name: str) -> pd.Series:
    """ISO 8601 or 'YYYY-MM-DD HH:MM[:SS]'; zoned values become China Standard Time, stored naive."""
    n = len(attrs)
    if name not in attrs.columns:
        return pd.Series(pd.NaT, index=attrs.index, dtype="datetime64[us]")
    s = attrs[name]
    if pd.api.types.is_datetime64_any_dtype(s):
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_convert(CST).dt.tz_localize(None)
        return s.astype("datetime64[us]")
    raw = text(attrs, name)
    out = pd.Series(pd.NaT, index=attrs.index, dtype="datetime64[us]")
    has = raw.notna().to_numpy()
    if not has.any():
        return out
    vals = raw[has].str.replace("T", " ", n=1, regex=False)
    zoned = vals.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True).to_numpy()
    idx = np.flatnonzero(has)
    if (~zoned).any():
        parsed = pd.to_datetime(vals[~zoned], format="ISO8601", errors="coerce")
        out.iloc[idx[~zoned]] = parsed.to_numpy()
    if zoned.any():
        parsed = pd.to_datetime(vals[zoned], format="ISO8601", errors="coerce", utc=True)
        out.iloc[idx[zoned]] = parsed.dt.tz_convert(CST).dt.tz_localize(None).to_numpy()
    bad = has & out.isna().to_numpy()
    problems.add(bad, f"{name} is not a date-time (ISO 8601 or 'YYYY-MM-DD HH:MM[:SS]')")
    assert len(out) == n
    return out
