"""City, district and street outlines in one layer, simplified for the zooms they are seen at.

One layer instead of three keeps the page at one request; `level` tells the style and the zoom-dependent
labels apart. Districts are seen zoomed out (about 50 m tolerance is invisible there); streets are seen
closer (about 20 m).
"""
import numpy as np
import shapely
from sqlalchemy import select

from data.store.schema import District, Street
from layers.cache import Layer

TOLERANCE = {"city": 0.0008, "district": 0.0005, "street": 0.0002}


def build(conn) -> Layer:
    geoms, props = [], []
    districts = conn.execute(select(District.code, District.name, District.name_en, District.geom)
                             .order_by(District.code)).all()
    streets = conn.execute(select(Street.code, Street.district_code, Street.name, Street.name_en, Street.geom)
                           .order_by(Street.code)).all()
    if districts:
        city = shapely.union_all([d.geom for d in districts])
        geoms.append(shapely.simplify(city, TOLERANCE["city"], preserve_topology=True))
        props.append({"level": "city", "code": districts[0].code[:4] + "00", "name": "宁波市", "name_en": "Ningbo"})
    for d in districts:
        geoms.append(shapely.simplify(d.geom, TOLERANCE["district"], preserve_topology=True))
        props.append({"level": "district", "code": d.code, "name": d.name, "name_en": d.name_en})
    for s in streets:
        geoms.append(shapely.simplify(s.geom, TOLERANCE["street"], preserve_topology=True))
        props.append({"level": "street", "code": s.code, "district": s.district_code, "name": s.name,
                      "name_en": s.name_en})
    return Layer(np.asarray(geoms, dtype=object), props, precision=5)
