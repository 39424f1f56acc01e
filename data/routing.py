"""Which department a new case goes to: the class's department kind in the case's place, or, for a case of a
setback class inside a setback space (退红空间), whoever holds that space's management right (三权分置).

The same rule the demo generator and the case importer apply in bulk (data/demo/cases.py,
data/importers/layers.py), for one case at a time. A supervisor can still override on dispatch
(data.workflow.apply(..., department=...)).
"""
from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np
import shapely
from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import reference
from data.store import meta
from data.store.schema import Department, Setback

_lock = threading.Lock()
_trees: dict = {}   # (store url, setbacks version) -> (STRtree, ids, manager department codes)


class RoutingError(ValueError):
    """No department can take the case (reference tables missing for its place or kind)."""


def _setback_index(conn: Connection, version=None):
    key = (str(conn.engine.url), version if version is not None else meta.get(conn, "version:setbacks"))
    with _lock:
        hit = _trees.get(key)
    if hit is None:
        rows = conn.execute(select(Setback.id, Setback.manager_department_code, Setback.geom)).all()
        geoms = np.array([r[2] for r in rows], dtype=object)
        hit = (shapely.STRtree(geoms) if len(rows) else None, [r[0] for r in rows], [r[1] for r in rows])
        with _lock:
            for k in [k for k in _trees if k[0] == key[0]]:
                _trees.pop(k)
            _trees[key] = hit
    return hit


def setback_at(conn: Connection, lon: float, lat: float, version=None) -> tuple[int, str | None] | None:
    """(setback id, manager's department code) of the setback space holding the point, or None.
    `version`: the setbacks data version when the caller has already read it."""
    tree, ids, depts = _setback_index(conn, version)
    if tree is None:
        return None
    found = tree.query(shapely.Point(lon, lat), predicate="within")
    if len(found) == 0:
        return None
    i = int(np.min(found))
    return ids[i], depts[i]


@lru_cache(maxsize=4096)   # the department kinds are a CSV shipped with the code: read it once per place
def default_department(kind: str, district_code: str, street_code: str) -> str:
    return reference.department_code(kind, district_code, street_code if kind == "street" else None)


def route(conn: Connection, *, department_kind: str, in_setback_class: bool, lon: float, lat: float,
          district_code: str, street_code: str, departments: frozenset | None = None,
          setbacks_version=None) -> tuple[str, int | None]:
    """(department code, setback id or None) for a new case. `departments`: the store's department codes
    when the caller holds them (data.intake's reference snapshot), else the store is asked."""
    setback_id, dept = None, None
    if in_setback_class:
        hit = setback_at(conn, lon, lat, setbacks_version)
        if hit is not None:
            setback_id, dept = hit
    if dept is None:
        try:
            dept = default_department(department_kind, district_code, street_code)
        except (KeyError, ValueError) as exc:
            raise RoutingError(f"no department kind {department_kind!r} in the reference tables") from exc
    known = (dept in departments if departments is not None
             else conn.execute(select(Department.code).where(Department.code == dept)).first() is not None)
    if not known:
        raise RoutingError(f"routed department {dept!r} is not in the store; reload the reference tables")
    return dept, setback_id
