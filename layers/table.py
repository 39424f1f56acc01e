"""The case table: one page of the filtered cases, sorted on the server, and the rows an export streams.

Why two steps per page: the sort runs over (id, sort keys) that the covering indexes hold (SQLite keeps the
rowid in every index), and only the page's ids are then looked up for their display columns, so a page of
100 out of 85k matching cases never reads 85k table rows.

Default order: overdue now first, then the nearest deadline (cases without one last), then the newest.
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import case, select

from data.store.schema import CaseClass, CaseSource, Department
from layers.filters import Filters, cases, is_overdue, now_cst, period_index, pinned, where

# Columns the table and the exports show: key -> (Chinese header, English header).
COLUMNS = {
    "code": ("案件编号", "Case code"), "status": ("状态", "Status"), "overdue": ("超期", "Overdue"),
    "major": ("大类", "Major class"), "class": ("小类", "Minor class"), "source": ("来源", "Source"),
    "department": ("处置部门", "Department"), "district_code": ("区县编码", "District code"),
    "street_code": ("街道编码", "Street code"), "grid_code": ("网格编码", "Grid code"),
    "address": ("地址", "Address"), "reported_at": ("上报时间", "Reported at"),
    "registered_at": ("立案时间", "Registered at"), "deadline_at": ("处置时限", "Deadline"),
    "closed_at": ("结案时间", "Closed at"), "lon": ("经度", "Longitude"), "lat": ("纬度", "Latitude"),
}
# Sortable columns of the table (ag-grid colId -> column); anything else is refused.
SORTABLE = {"code": "code", "status": "status", "reported_at": "reported_at", "deadline_at": "deadline_at",
            "grid_code": "grid_code", "class": "class_code", "department": "department_code",
            "source": "source_code", "overdue": None}
MAX_PAGE = 1000


def _order(sort_model, now):
    c = cases.c
    overdue_first = case((is_overdue(cases, now, seek=False), 0), else_=1)
    out = []
    for s in sort_model or []:
        col = s.get("colId")
        if col not in SORTABLE:
            raise ValueError(f"cannot sort by {col!r}; sortable: {', '.join(SORTABLE)}")
        desc = s.get("sort") == "desc"
        expr = overdue_first if col == "overdue" else c[SORTABLE[col]]
        if col == "overdue":
            desc = not desc  # 'desc' on overdue means overdue first, i.e. 0 first
        out.append(expr.desc().nulls_last() if desc else expr.asc().nulls_last())
    if not out:
        out = [overdue_first, c.deadline_at.asc().nulls_last()]
    return out + [c.reported_at.desc(), c.id.desc()]


def total(conn, f: Filters, now=None) -> int:
    from sqlalchemy import func
    q = pinned(select(func.count()).select_from(cases).where(*where(f, period="reported", now=now)),
               period_index(f))
    return int(conn.execute(q).scalar() or 0)


def labels(conn) -> dict:
    """{'class': {code: row}, 'source': {...}, 'department': {...}}: the small reference tables."""
    cc, src, dep = CaseClass.__table__.c, CaseSource.__table__.c, Department.__table__.c
    return {"class": {r.code: r for r in conn.execute(select(cc.code, cc.name, cc.name_en, cc.major_name,
                                                              cc.major_name_en))},
            "source": {r.code: r for r in conn.execute(select(src.code, src.name, src.name_en))},
            "department": {r.code: r for r in conn.execute(select(dep.code, dep.name, dep.name_en))}}


def row_dict(r, names: dict, lang: str, now: datetime) -> dict:
    """One case as the table / export shows it (names in `lang`, times as 'YYYY-MM-DD HH:MM:SS')."""
    from dashboard.i18n import status_name
    en = lang == "en"
    cl = names["class"].get(r.class_code)
    so = names["source"].get(r.source_code)
    de = names["department"].get(r.department_code)
    iso = (lambda d: d.isoformat(sep=" ", timespec="seconds") if d is not None else None)
    overdue = r.status not in ("closed", "rejected") and r.deadline_at is not None and r.deadline_at < now
    return {"id": r.id, "code": r.code, "status": status_name(r.status, lang), "status_code": r.status,
            "overdue": overdue,
            "major": (cl.major_name_en if en else cl.major_name) if cl else None,
            "class": (cl.name_en if en else cl.name) if cl else r.class_code,
            "source": (so.name_en if en else so.name) if so else r.source_code,
            "department": (de.name_en if en else de.name) if de else r.department_code,
            "district_code": r.district_code, "street_code": r.street_code, "grid_code": r.grid_code,
            "address": r.address, "reported_at": iso(r.reported_at), "registered_at": iso(r.registered_at),
            "deadline_at": iso(r.deadline_at), "closed_at": iso(r.closed_at), "lon": r.lon, "lat": r.lat}


DISPLAY = ("id", "code", "status", "class_code", "source_code", "department_code", "district_code",
           "street_code", "grid_code", "address", "reported_at", "registered_at", "deadline_at", "closed_at",
           "lon", "lat")


def _default_ids(conn, f: Filters, start: int, end: int, now) -> list[int]:
    """Ids of rows [start, end) in the default order (_order without a sort model: overdue now first, the
    nearest deadline, deadline-less last, then the newest, then the highest id), from the in-process case
    columns: the order is a lexsort of the period's rows (~85k city-wide, a few ms) where SQLite sorted
    them in SQL (50-90 ms of CPU). A column the user sorts by goes through SQL."""
    from layers import cube
    from data.statuses import OPEN
    snap = cube.snapshot(conn)
    t = snap.t
    sel = np.flatnonzero(cube.mask(conn, snap, f, now, "reported"))
    dl = t["deadline_at"][sel]
    late = cube.rows_in(snap, OPEN)[sel] & (dl != cube.NA) & (dl < cube.us(now))
    order = np.lexsort((-snap.ids[sel], -t["reported_at"][sel], np.where(dl == cube.NA, np.iinfo(np.int64).max, dl),
                        ~late))
    return snap.ids[sel[order[start:end]]].tolist()


def page(conn, f: Filters, start: int, end: int, sort_model=None, lang: str = "zh", now=None) -> list[dict]:
    """Rows [start, end) of the filtered cases in the requested order (ag-grid's startRow/endRow/sortModel)."""
    now = now or now_cst()
    start, end = int(start), int(end)
    if start < 0 or end <= start or end - start > MAX_PAGE:
        raise ValueError(f"rows [{start}, {end}) out of range; ask for 1 to {MAX_PAGE} rows from row 0 on")
    c = cases.c
    if sort_model:
        ids_q = pinned(select(c.id).where(*where(f, period="reported", now=now)).order_by(*_order(sort_model, now))
                       .limit(end - start).offset(start), period_index(f))
        ids = [r[0] for r in conn.execute(ids_q)]
    else:
        ids = _default_ids(conn, f, start, end, now)
    if not ids:
        return []
    rows = {r.id: r for r in conn.execute(select(*[c[k] for k in DISPLAY]).where(c.id.in_(ids)))}
    names = labels(conn)
    return [row_dict(rows[i], names, lang, now) for i in ids if i in rows]


def one(conn, case_id: int, lang: str = "zh", now=None) -> dict | None:
    c = cases.c
    r = conn.execute(select(*[c[k] for k in DISPLAY]).where(c.id == int(case_id))).first()
    return None if r is None else row_dict(r, labels(conn), lang, now or now_cst())


__all__ = ["COLUMNS", "SORTABLE", "page", "total", "one", "labels", "row_dict", "DISPLAY"]
