"""Assign grid, community, street and district codes to points and shapes at ingest.

One STRtree over the grids answers ~100k point look-ups per second; codes are then stored on the row, so
no dashboard query ever does point-in-polygon work.
"""
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import select
from sqlalchemy.engine import Connection

from data.store.schema import Grid

CODE_COLUMNS = ["grid_code", "community_code", "street_code", "district_code"]


class Locator:
    def __init__(self, grids: pd.DataFrame):
        """grids: columns code, community_code, street_code, district_code, geom (shapely)."""
        self.grids = grids.reset_index(drop=True)
        self.tree = shapely.STRtree(np.asarray(self.grids["geom"], dtype=object))

    @classmethod
    def from_store(cls, conn: Connection) -> "Locator":
        rows = conn.execute(select(Grid.code, Grid.community_code, Grid.street_code, Grid.district_code,
                                   Grid.geom)).all()
        if not rows:
            raise LookupError("the store has no unit grids yet: import or seed grids first")
        return cls(pd.DataFrame(rows, columns=["code", "community_code", "street_code", "district_code",
                                               "geom"]))

    def grid_index(self, lon, lat) -> np.ndarray:
        """Index into self.grids of the grid holding each point, -1 where none does."""
        pts = shapely.points(np.asarray(lon, float), np.asarray(lat, float))
        out = np.full(len(pts), -1, dtype=np.int64)
        if len(pts) == 0:
            return out
        pi, gi = self.tree.query(pts, predicate="intersects")
        # A point on a shared edge matches two grids; keep the first match per point.
        first = np.unique(pi, return_index=True)[1]
        out[pi[first]] = gi[first]
        return out

    def codes(self, lon, lat) -> pd.DataFrame:
        """The four codes per point; rows outside every grid get None."""
        idx = self.grid_index(lon, lat)
        g = self.grids
        src = {"grid_code": "code", "community_code": "community_code", "street_code": "street_code",
               "district_code": "district_code"}
        out = {}
        for col, gcol in src.items():
            vals = np.asarray(g[gcol], dtype=object)[np.clip(idx, 0, None)] if len(g) else np.array([], object)
            out[col] = np.where(idx >= 0, vals, None)
        return pd.DataFrame(out)

    def codes_for_shapes(self, geoms) -> pd.DataFrame:
        """Codes of the grid holding each shape's representative point."""
        pts = shapely.point_on_surface(np.asarray(geoms, dtype=object))
        return self.codes(shapely.get_x(pts), shapely.get_y(pts))
