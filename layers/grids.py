"""Unit grids (万米单元网格) as one static polygon layer; the choropleth values travel separately.

Geometry and identity only: metric values change with every filter and case write, so they are sent as
`{grid_code: value}` through the layer's hideout and the 6,535 polygons are downloaded once per version.
Simplified by about 2 m and quantised to 1e-5° (about 1 m) to keep the layer near 0.3 MB gzipped.
"""
import numpy as np
import shapely
from sqlalchemy import select

from data.store.schema import Community, Grid
from layers.cache import Layer

TOLERANCE = 0.00002


def build(conn) -> Layer:
    names = dict(conn.execute(select(Community.code, Community.name)).all())
    rows = conn.execute(select(Grid.code, Grid.community_code, Grid.street_code, Grid.district_code, Grid.geom)
                        .order_by(Grid.code)).all()
    geoms = shapely.simplify(np.asarray([r.geom for r in rows], dtype=object), TOLERANCE,
                             preserve_topology=True) if rows else np.asarray([], dtype=object)
    props = [{"code": r.code, "community": r.community_code, "street": r.street_code,
              "district": r.district_code, "cname": names.get(r.community_code, "")} for r in rows]
    return Layer(geoms, props, precision=5)
