"""One local metric frame for the whole city, so Voronoi cells, offsets and strip depths are in metres.

Ningbo spans ~1° of latitude; a single equirectangular frame at 29.9°N distorts lengths by <0.3 % at
the edges, far below what a demo needs. Stored areas still come from data.crs.area_m2.
"""
import numpy as np
import shapely

from data.crs import M_PER_DEG_LAT, M_PER_DEG_LON
from data.store.geometry import polygonal

LON0, LAT0 = 121.55, 29.87


def to_m(lon, lat):
    return (np.asarray(lon) - LON0) * M_PER_DEG_LON, (np.asarray(lat) - LAT0) * M_PER_DEG_LAT


def to_deg(x, y):
    return LON0 + np.asarray(x) / M_PER_DEG_LON, LAT0 + np.asarray(y) / M_PER_DEG_LAT


def geoms_to_m(geoms):
    return shapely.transform(geoms, lambda c: np.column_stack(to_m(c[:, 0], c[:, 1])))


def geoms_to_deg(geoms):
    return shapely.transform(geoms, lambda c: np.column_stack(to_deg(c[:, 0], c[:, 1])))


def multipolygons(geoms) -> np.ndarray:
    """Polygonal parts of each geometry as a MultiPolygon (clipping can leave slivers of lines/points)."""
    out = np.empty(len(geoms), dtype=object)
    out[:] = [polygonal(g) for g in geoms]
    return out
