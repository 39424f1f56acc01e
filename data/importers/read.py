"""Read any supported file into one shape: attribute columns (lower-cased names) plus a geometry array.

Every reader failure becomes an ImportRejected that names the file and, where the format allows, the
place (line/column for JSON and CSV), because the people importing are GIS clerks, not programmers.
"""
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from data.importers.errors import ImportRejected

SPATIAL = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage", ".shp": "Shapefile"}
TABULAR = {".csv": "CSV"}
LON_NAMES = ("lon", "lng", "longitude", "x")
LAT_NAMES = ("lat", "latitude", "y")


@dataclass
class Source:
    """What a file held, before any CRS conversion or validation."""
    path: Path
    format: str
    attrs: pd.DataFrame          # lower-cased column names, default RangeIndex; row i is data row i + 1
    geoms: np.ndarray            # shapely geometries (None where the file had none), in the file's CRS
    crs: object | None           # pyproj CRS the file declares, or None


def read(path) -> Source:
    path = Path(path)
    if not path.exists():
        raise ImportRejected(f"{path}: no such file")
    if path.is_dir():
        raise ImportRejected(f"{path}: is a folder; give the file itself (.geojson, .gpkg, .shp or .csv)")
    ext = path.suffix.lower()
    if ext in TABULAR:
        return _read_csv(path)
    if ext in SPATIAL:
        return _read_spatial(path, SPATIAL[ext])
    raise ImportRejected(f"{path}: unknown format {ext or '(no extension)'!r}; "
                         f"use GeoJSON (.geojson/.json), GeoPackage (.gpkg), Shapefile (.shp) or CSV (.csv)")


def _json_problem(path: Path) -> str | None:
    """Where a JSON file breaks, as a person reads it (line and column), or None if it parses."""
    try:
        with open(path, "rb") as f:
            json.loads(f.read().decode("utf-8"))
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {exc.start})"
    except json.JSONDecodeError as exc:
        return f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    return None


def _read_spatial(path: Path, fmt: str) -> Source:
    import pyogrio
    if fmt == "Shapefile":
        missing = [e for e in (".shx", ".dbf") if not path.with_suffix(e).exists()
                   and not path.with_suffix(e.upper()).exists()]
        if missing:
            raise ImportRejected(f"{path}: broken Shapefile, the companion file(s) {', '.join(missing)} are missing")
    if fmt == "GeoJSON":
        problem = _json_problem(path)
        if problem:
            raise ImportRejected(f"{path}: broken GeoJSON, {problem}")
    try:
        with warnings.catch_warnings():
            # GDAL warns and yields NULL for geometries it cannot parse; those rows are refused later.
            warnings.simplefilter("ignore")
            gdf = pyogrio.read_dataframe(path)
    except Exception as exc:  # noqa: BLE001 - GDAL reports every kind of damage through its own errors
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImportRejected(f"{path}: broken or unreadable {fmt} file ({msg})") from None
    geoms = np.asarray(gdf.geometry.values, dtype=object) if "geometry" in gdf else np.full(len(gdf), None)
    attrs = pd.DataFrame(gdf.drop(columns="geometry", errors="ignore")).reset_index(drop=True)
    attrs.columns = _lower_unique(path, attrs.columns)
    return Source(path, fmt, attrs, geoms, gdf.crs)


def _lower_unique(path, columns) -> list[str]:
    names = [str(c).strip().lower() for c in columns]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ImportRejected(f"{path}: columns {dup} appear more than once (names are case-insensitive)")
    return names


def _read_csv(path: Path) -> Source:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=True)
    except UnicodeDecodeError as exc:
        raise ImportRejected(f"{path}: not UTF-8 text (byte {exc.start}); save the CSV as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise ImportRejected(f"{path}: the CSV file is empty") from None
    except pd.errors.ParserError as exc:
        where = re.search(r"line (\d+)", str(exc))
        at = f" at line {where.group(1)}" if where else ""
        raise ImportRejected(f"{path}: broken CSV{at} ({str(exc).strip()})") from None
    df.columns = _lower_unique(path, df.columns)
    lon = next((c for c in LON_NAMES if c in df.columns), None)
    lat = next((c for c in LAT_NAMES if c in df.columns), None)
    if lon is None or lat is None:
        raise ImportRejected(f"{path}: a CSV needs longitude and latitude columns "
                             f"(lon/lng/longitude/x and lat/latitude/y); found {list(df.columns)}")
    x = pd.to_numeric(df[lon].str.strip(), errors="coerce").to_numpy(float)
    y = pd.to_numeric(df[lat].str.strip(), errors="coerce").to_numpy(float)
    ok = np.isfinite(x) & np.isfinite(y)
    geoms = np.full(len(df), None, dtype=object)
    geoms[ok] = shapely.points(x[ok], y[ok])
    attrs = df.drop(columns=[lon, lat]).reset_index(drop=True)
    return Source(path, "CSV", attrs, geoms, None)
