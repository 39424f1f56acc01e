"""A geometry column that is PostGIS on PostgreSQL and WKB on SQLite.

PostGIS accepts hex EWKB as the text input of a geometry and returns geometries as hex EWKB, so one bind
and one result processor per dialect is all it takes; no SQL function wrapping, and COPY can write the same
hex string. On PostgreSQL the columns are real geometry(…, 4326) columns that QGIS opens directly.
"""
import numpy as np
import shapely
from sqlalchemy.types import LargeBinary, TypeDecorator, UserDefinedType

SRID = 4326


class _PostGIS(UserDefinedType):
    cache_ok = True

    def __init__(self, geometry_type: str):
        self.geometry_type = geometry_type

    def get_col_spec(self, **kw):
        return f"geometry({self.geometry_type},{SRID})"


def to_ewkb_hex(geom) -> str:
    return shapely.to_wkb(shapely.set_srid(geom, SRID), hex=True, include_srid=True)


class Geometry(TypeDecorator):
    """Shapely geometries in, shapely geometries out, on either database."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, geometry_type: str = "GEOMETRY"):
        super().__init__()
        self.geometry_type = geometry_type

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(_PostGIS(self.geometry_type))
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "postgresql":
            return to_ewkb_hex(value)
        return shapely.to_wkb(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return shapely.from_wkb(value)


def bbox_columns(frame, geoms=None):
    """Fill minx/miny/maxx/maxy from the geometries (default: frame["geom"]) and return the frame.

    Why: every polygon table carries its bounding box so that viewport queries are index range scans on
    both databases, with or without PostGIS.
    """
    b = shapely.bounds(np.asarray(frame["geom"] if geoms is None else geoms, dtype=object))
    frame["minx"], frame["miny"], frame["maxx"], frame["maxy"] = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    return frame


def polygonal(geom) -> shapely.MultiPolygon:
    """The polygons of any geometry (nested collections included) as one MultiPolygon, empty if none.

    Why: clipping and make_valid can leave lines and points beside the polygons, and the store's polygon
    columns are MULTIPOLYGON (PostGIS enforces it).
    """
    parts, stack = [], [geom]
    while stack:
        g = stack.pop()
        if g is None or g.is_empty:
            continue
        if g.geom_type == "Polygon":
            parts.append(g)
        elif g.geom_type in ("MultiPolygon", "GeometryCollection"):
            stack.extend(reversed(shapely.get_parts(g).tolist()))
    return shapely.MultiPolygon(parts)
