"""Helpers that build import files at test time from known shapes (no binary fixtures in the repo).

Grids are a lattice of ~200 m squares laid inside the real 海曙区 outline, so every point and polygon is
in Ningbo and its true WGS84 position is known exactly; files are then written in whatever CRS a test
needs with pyogrio, the same library users' files are read with.
"""
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data import reference
from data.crs import M_PER_DEG_LAT, M_PER_DEG_LON, area_m2, gcj02_to_wgs84, transform_geometries, wgs84_to_gcj02
from data.store.bulk import load_frame

BOUNDARIES = Path(__file__).resolve().parents[1] / "data" / "boundaries"
STREET = "330203001"
CELL_M = 200.0


def district_outlines() -> gpd.GeoDataFrame:
    gdf = gpd.read_file(BOUNDARIES / "districts-330200.geojson")
    geoms = transform_geometries(np.asarray(gdf.geometry.values, dtype=object), gcj02_to_wgs84)
    return gpd.GeoDataFrame({"code": gdf["adcode"].astype(str), "name": gdf["name"]}, geometry=list(geoms),
                            crs="EPSG:4326")


def prepare_store(engine) -> None:
    """Districts (real outlines, converted to WGS84) and the reference tables: what a grid import needs."""
    d = district_outlines()
    geoms = np.array([g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]) for g in d.geometry],
                     dtype=object)
    b = shapely.bounds(geoms)
    frame = pd.DataFrame({"code": d["code"], "name": d["name"], "name_en": "District " + d["code"],
                          "area_m2": area_m2(geoms), "minx": b[:, 0], "miny": b[:, 1], "maxx": b[:, 2],
                          "maxy": b[:, 3], "geom": geoms})
    with engine.begin() as conn:
        load_frame(conn, "districts", frame)
        reference.load(conn)


def lattice(rows: int = 3, cols: int = 4, origin=None) -> gpd.GeoDataFrame:
    """rows x cols square grids inside 海曙区; two communities (left and right halves) of one street."""
    if origin is None:
        haishu = district_outlines().set_index("code").geometry["330203"]
        p = haishu.representative_point()
        origin = (p.x, p.y)
    dx, dy = CELL_M / M_PER_DEG_LON, CELL_M / M_PER_DEG_LAT
    codes, polys, comm_names = [], [], []
    for r in range(rows):
        for c in range(cols):
            community = 1 if c < cols / 2 else 2
            seq = r * cols + c + 1
            codes.append(f"{STREET}{community:03d}{seq:03d}")
            comm_names.append(f"测试社区{community}")
            x0, y0 = origin[0] + c * dx, origin[1] + r * dy
            polys.append(shapely.box(x0, y0, x0 + dx, y0 + dy))
    return gpd.GeoDataFrame({"code": codes, "community_name": comm_names, "street_name": "测试街道",
                             "inspector": "张三"}, geometry=polys, crs="EPSG:4326")


def points_in(grids: gpd.GeoDataFrame, n: int, seed: int = 1) -> np.ndarray:
    """n points strictly inside the grids (away from shared edges), WGS84."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(grids), n)
    b = shapely.bounds(np.asarray(grids.geometry.values, dtype=object))[idx]
    fx, fy = rng.uniform(0.1, 0.9, n), rng.uniform(0.1, 0.9, n)
    return shapely.points(b[:, 0] + fx * (b[:, 2] - b[:, 0]), b[:, 1] + fy * (b[:, 3] - b[:, 1]))


def write(gdf: gpd.GeoDataFrame, path: Path, crs=None) -> Path:
    """Write gdf (WGS84) as the file type its suffix names, reprojected to crs if given."""
    path = Path(path)
    if crs is not None:
        gdf = gdf.to_crs(crs)
    driver = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".shp": "ESRI Shapefile"}[path.suffix]
    gdf.to_file(path, driver=driver)
    return path


def write_csv(gdf: gpd.GeoDataFrame, path: Path, gcj02: bool = False, lon: str = "lon", lat: str = "lat") -> Path:
    """Points as a CSV with lon/lat columns, optionally shifted to GCJ-02 as Amap exports them."""
    x, y = shapely.get_x(gdf.geometry.values), shapely.get_y(gdf.geometry.values)
    if gcj02:
        x, y = wgs84_to_gcj02(x, y)
    df = pd.DataFrame(gdf.drop(columns="geometry"))
    df[lon], df[lat] = [f"{v:.10f}" for v in x], [f"{v:.10f}" for v in y]
    df.to_csv(path, index=False)
    return Path(path)


def feature_collection(gdf: gpd.GeoDataFrame) -> dict:
    return json.loads(gdf.to_json())


def berths_frame(grids: gpd.GeoDataFrame, n: int, seed: int = 1, prefix: str = "B") -> gpd.GeoDataFrame:
    pts = points_in(grids, n, seed)
    return gpd.GeoDataFrame({"code": [f"{prefix}{i:07d}" for i in range(n)], "road_name": "中山西路",
                             "berth_type": "路内", "vehicle": "motor", "state": "free"},
                            geometry=list(pts), crs="EPSG:4326")


def cases_frame(grids: gpd.GeoDataFrame, n: int, seed: int = 1, prefix: str = "C") -> gpd.GeoDataFrame:
    pts = points_in(grids, n, seed)
    classes = reference.case_classes()["code"].tolist()
    sources = reference.case_sources()["code"].tolist()
    rng = np.random.default_rng(seed)
    reported = pd.Timestamp("2026-03-02 09:00") + pd.to_timedelta(rng.integers(0, 30 * 24 * 60, n), unit="min")
    return gpd.GeoDataFrame({
        "code": [f"{prefix}{i:08d}" for i in range(n)],
        "class_code": [classes[i % len(classes)] for i in range(n)],
        "source_code": [sources[i % len(sources)] for i in range(n)],
        "reported_at": reported.strftime("%Y-%m-%d %H:%M:%S"),
        "registered_at": (reported + pd.Timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%S"),
        "status": "registered", "description": "测试案件"},
        geometry=list(pts), crs="EPSG:4326")
