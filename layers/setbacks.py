"""Building setback spaces (退红空间) with the three rights holders, mode and permitted uses.

The three holders travel in the layer because the click panel is their whole point and 5k short strings
compress well; linked cases are looked up on click (they change far more often than the strips).
"""
import numpy as np
import shapely
from sqlalchemy import select

from data.store.schema import Setback
from layers.cache import Layer

TOLERANCE = 0.000005


def build(conn) -> Layer:
    rows = conn.execute(select(Setback.id, Setback.code, Setback.road_name, Setback.owner, Setback.user,
                               Setback.manager, Setback.mode, Setback.permitted_uses, Setback.area_m2,
                               Setback.grid_code, Setback.geom).order_by(Setback.id)).all()
    geoms = shapely.simplify(np.asarray([r.geom for r in rows], dtype=object), TOLERANCE,
                             preserve_topology=True) if rows else np.asarray([], dtype=object)
    props = [{"code": r.code, "road": r.road_name or "", "owner": r.owner, "user": r.user or "",
              "manager": r.manager, "mode": r.mode, "uses": r.permitted_uses, "area": round(r.area_m2 or 0),
              "grid": r.grid_code} for r in rows]
    return Layer(geoms, props, ids=[r.id for r in rows], precision=6)
