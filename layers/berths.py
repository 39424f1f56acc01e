"""Parking berths as a static point layer: position, id and a one-letter state, nothing else.

100k berths must stay small enough to ship: the geobuf feature id is the berth id (details are fetched
on click) and the state is one letter (f free, o occupied, x out of service). Clustering happens in the
browser (supercluster) so the layer is one download per data version.
"""
import numpy as np
import shapely
from sqlalchemy import select

from data.store.schema import Berth
from layers.cache import Layer

STATE_CODE = {"free": "f", "occupied": "o", "out_of_service": "x"}
CODE_STATE = {v: k for k, v in STATE_CODE.items()}


def build(conn) -> Layer:
    rows = conn.execute(select(Berth.id, Berth.lon, Berth.lat, Berth.state).order_by(Berth.id)).all()
    lon = np.fromiter((r.lon for r in rows), float, len(rows))
    lat = np.fromiter((r.lat for r in rows), float, len(rows))
    geoms = shapely.points(lon, lat) if rows else np.asarray([], dtype=object)
    props = [{"s": STATE_CODE.get(r.state, "x")} for r in rows]
    return Layer(np.asarray(geoms, dtype=object), props, ids=[r.id for r in rows], precision=6)
