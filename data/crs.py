"""Coordinate conversion at the edges: everything is stored in WGS84/CGCS2000 (EPSG:4326).

Imports arrive in any CRS pyproj knows (EPSG:4490, the CGCS2000 Gauss-Kruger zones such as EPSG:4549)
or in GCJ-02, the obfuscated system of Amap and other Chinese web maps, which pyproj does not know. GCJ-02
is handled here: forward by the published formula, backward by fixed-point iteration (exact to ~1e-9°).
"""
import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

GCJ02 = "gcj02"
_A = 6378245.0
_EE = 0.00669342162296594323


class CRSInputError(ValueError):
    """A CRS name that neither pyproj nor this module understands."""


def _out_of_china(lon, lat):
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _delta(lon, lat):
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = ~_out_of_china(lon, lat)
    return dlon * inside, dlat * inside


def wgs84_to_gcj02(lon, lat):
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon, lat):
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    wlon, wlat = lon.copy(), lat.copy()
    for _ in range(8):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        wlon, wlat = wlon - (glon - lon), wlat - (glat - lat)
    return wlon, wlat


def _pyproj_to_wgs84(crs: str):
    try:
        src = CRS.from_user_input(crs)
    except CRSError as exc:
        raise CRSInputError(f"unknown coordinate system {crs!r}: give an EPSG code such as EPSG:4549 "
                            f"or 'gcj02'") from exc
    t = Transformer.from_crs(src, CRS.from_epsg(4326), always_xy=True)
    return lambda x, y: t.transform(x, y)


def converter(crs: str | None):
    """A function (x, y arrays) -> (lon, lat) arrays in WGS84 for the named source CRS."""
    if crs is None:
        return lambda x, y: (np.asarray(x, float), np.asarray(y, float))
    name = str(crs).strip().lower()
    if name in (GCJ02, "gcj-02", "gcj_02"):
        return gcj02_to_wgs84
    if name in ("epsg:4326", "epsg:4490", "wgs84", "cgcs2000"):
        return lambda x, y: (np.asarray(x, float), np.asarray(y, float))
    return _pyproj_to_wgs84(crs)


def transform_geometries(geoms, convert):
    """Apply a (x, y) -> (lon, lat) converter to an array of shapely geometries, vertex by vertex."""
    def fn(coords):
        lon, lat = convert(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])
    return shapely.transform(np.asarray(geoms, dtype=object), fn)


def to_gcj02_geometries(geoms):
    """For an Amap basemap: shift stored WGS84 geometries to GCJ-02 at display time only."""
    return transform_geometries(geoms, wgs84_to_gcj02)


# Metres per degree near Ningbo (29.9°N), for quick planar areas and offsets of small features.
M_PER_DEG_LAT = 110_950.0
M_PER_DEG_LON = 96_490.0
_AEA = Transformer.from_crs(4326, "+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=WGS84", always_xy=True)


def area_m2(geoms):
    """Areas of WGS84 geometries in square metres (Albers equal-area for China)."""
    projected = shapely.transform(np.asarray(geoms, dtype=object),
                                  lambda c: np.column_stack(_AEA.transform(c[:, 0], c[:, 1])))
    return shapely.area(projected)
