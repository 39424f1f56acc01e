"""Choices the filter panel offers, read from the store's reference tables once per data version.

Why memoised: districts, streets, classes, sources and departments change with imports, not with clicks;
every page load and every cascade would otherwise re-read them.
"""
from __future__ import annotations

import threading
import time

from sqlalchemy import select

from data.store import meta as store_meta
from data.store.schema import CaseClass, CaseSource, Department, District, Street

_memo: dict = {}
_lock = threading.Lock()
TTL_S = 300.0


def load(engine) -> dict:
    """{'districts': [(code, name, name_en, bbox)], 'streets': [...], 'sources', 'majors', 'classes',
    'departments'}: bbox = (minx, miny, maxx, maxy)."""
    with engine.connect() as conn:
        v = store_meta.versions(conn)
        key = (str(engine.url), v.get("boundaries"), v.get("grids"), v.get("reference"))
        hit = _memo.get(key)
        if hit and time.monotonic() - hit[0] < TTL_S:
            return hit[1]
        d, s = District.__table__.c, Street.__table__.c
        cc, src, dep = CaseClass.__table__.c, CaseSource.__table__.c, Department.__table__.c
        out = {
            "districts": [tuple(r) for r in conn.execute(select(d.code, d.name, d.name_en, d.minx, d.miny, d.maxx,
                                                                 d.maxy).order_by(d.code))],
            "streets": [tuple(r) for r in conn.execute(select(s.code, s.name, s.name_en, s.minx, s.miny, s.maxx,
                                                               s.maxy).order_by(s.code))],
            "sources": [tuple(r) for r in conn.execute(select(src.code, src.name, src.name_en).order_by(src.code))],
            "classes": [tuple(r) for r in conn.execute(select(cc.code, cc.name, cc.name_en, cc.major_code)
                                                       .order_by(cc.code))],
            "majors": [tuple(r) for r in conn.execute(select(cc.major_code, cc.major_name, cc.major_name_en)
                                                      .distinct().order_by(cc.major_code))],
            "departments": [tuple(r) for r in conn.execute(select(dep.code, dep.name, dep.name_en, dep.district_code)
                                                           .order_by(dep.code))],
        }
    out["area"] = {r[0]: r for r in out["districts"] + out["streets"]}
    with _lock:
        if len(_memo) > 16:
            _memo.clear()
        _memo[key] = (time.monotonic(), out)
    return out


def name(ref: dict, code: str, lang: str) -> str:
    r = ref["area"].get(code)
    if r is None:
        return code
    return (r[2] or r[1]) if lang == "en" else r[1]


def bounds(ref: dict, code: str | None):
    """[[s, w], [n, e]] of a district or street, or None."""
    r = ref["area"].get(code) if code else None
    if r is None or r[3] is None:
        return None
    return [[r[4], r[3]], [r[6], r[5]]]
