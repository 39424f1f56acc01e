"""城市运行指数: the city operation index in five dimensions (安全, 干净, 有序, 便捷, 满意), each 0-100.

Why here and in this shape: the wall shows it next to the KPI tiles, so it must be computed from the same
definitions (layers.filters.where for the scope, layers.metrics for 按期结案率 and berth occupancy,
layers.kpis for the handling time) and be checkable against raw SQL. Every score is a documented formula
over counts from the store; the constants below are this city's configuration, not national numbers.

Inputs, for Filters f (area and access scope; the period [start, end) is the window for flows):
    km2          managed grid area in f's area (sum of grids.area_m2) in km²
    open_X       cases of class group X open now; overdue_X: of those, past their deadline now
    occupancy    berth occupancy now in percent (layers.metrics.berth_occupancy via layers.kpis)
    ontime_rate  按期结案率 over the window (layers.metrics.counts 'ontime_rate': due in the window)
    avg_hours    mean handling hours, registered -> closed, of the closed cases due in the window
    returned     registered cases reported in the window that were sent back (退回) or reworked (返工) at
                 least once; registered: all registered cases reported in the window
    complaints   cases reported in the window by the public, the 12345 hotline or the media

A burden x scores soft(x, ref) = 100 / (1 + x / ref): 100 with no burden, 50 at the reference burden,
falling slowly after it, never below 0. Overdue cases count twice (they are open and also late).

    安全 safe       soft((open_S + overdue_S) / km2, SAFE_REF)                    S = SAFETY classes
    干净 clean      soft((open_C + overdue_C) / km2, CLEAN_REF)                   C = CLEAN classes
    有序 orderly    0.7 * soft((open_O + overdue_O) / km2, ORDER_REF) + 0.3 * parking(occupancy)
                    parking(p) = 100 up to PARKING_FULL %, then linearly to 0 at 100 % (no berths: the
                    case part alone)
    便捷 convenient 0.7 * ontime_rate + 0.3 * soft(avg_hours, HOURS_REF)         (either alone if the
                    other has no data)
    满意 satisfied  0.5 * 100 * (1 - returned / registered) + 0.5 * soft(complaints / km2 / days,
                    COMPLAINT_REF)                                              (either alone likewise)
    overall         the mean of the dimensions that have a value

A dimension without data (no grid area, nothing due, nothing registered) is None, shown as "—".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select

from data.statuses import REGISTERED_STAGES
from data.store.schema import Grid
from layers.filters import Filters, cases, code_range, is_open, is_overdue, now_cst, where
from layers.kpis import avg_hours, occupancy
from layers.metrics import counts

DIMENSIONS = ("safe", "clean", "orderly", "convenient", "satisfied")
NAMES = {"safe": ("安全", "Safe"), "clean": ("干净", "Clean"), "orderly": ("有序", "Orderly"),
         "convenient": ("便捷", "Convenient"), "satisfied": ("满意", "Satisfied"),
         "overall": ("城市运行指数", "City operation index")}

# Class groups by class-code prefix (data/reference/case_classes.csv); a class is in at most one group.
SAFETY = ("E04",                                              # 突发事件: 路面积水, 道路塌陷, 火灾隐患
          "C0101", "C0102", "C0103", "C0104", "C0105", "C0106", "C0107",  # 井盖, 消火栓
          "C0201", "C0203", "C0204")                          # 护栏, 交通信号灯, 道路破损
CLEAN = ("E01", "E0201", "E0302", "C0109", "C0110")          # 市容环境, 小广告, 渣土, 公厕, 垃圾箱
ORDER = ("E05", "E0301", "E0303", "E0202", "E0601")          # 街面秩序, 施工占道/扰民, 户外广告, 私搭乱建
GROUPS = {"safe": SAFETY, "clean": CLEAN, "orderly": ORDER}
COMPLAINT_SOURCES = ("public", "hotline", "media")

# References (the burden that scores 50): about three times the city-wide level of the generated full-scale
# year (2.0 safety, 4.5 sanitation, 6.3 order burden per km²; 0.93 complaints per km² a day; 26 h), so a
# usual day reads about 75 and a doubling of the burden shows clearly. Recalibrate on real data.
SAFE_REF = 6.0       # open + overdue safety cases per km² that score 50
CLEAN_REF = 12.0     # ... sanitation cases per km²
ORDER_REF = 18.0     # ... street-order cases per km²
PARKING_FULL = 85.0  # berth occupancy (%) above which parking counts as disorder
HOURS_REF = 72.0     # mean handling hours that score 50
COMPLAINT_REF = 3.0  # public/hotline/media reports per km² per day that score 50


@dataclass(frozen=True)
class OperationIndex:
    scores: dict[str, float | None]               # DIMENSIONS + "overall"
    inputs: dict[str, float | int | None] = field(default_factory=dict)


def soft(x: float, ref: float) -> float:
    """100 / (1 + x / ref): 100 without burden, 50 at the reference."""
    return 100.0 / (1.0 + max(x, 0.0) / ref)


def parking(occ: float) -> float:
    if occ <= PARKING_FULL:
        return 100.0
    return max(0.0, 100.0 * (100.0 - occ) / (100.0 - PARKING_FULL))


def group_of(class_code: str) -> str | None:
    for name, prefixes in GROUPS.items():
        if class_code.startswith(prefixes):
            return name
    return None


def _weighted(parts: list[tuple[float, float | None]]) -> float | None:
    """Weighted mean of the parts that have a value (weights renormalised); None if none has."""
    have = [(w, v) for w, v in parts if v is not None]
    if not have:
        return None
    return sum(w * v for w, v in have) / sum(w for w, _ in have)


def area_km2(conn, f: Filters) -> float:
    q = select(func.sum(Grid.area_m2))
    if f.area:
        q = q.where(code_range(Grid.code, f.area))
    return float(conn.execute(q).scalar() or 0.0) / 1e6


def open_by_group(conn, f: Filters, now: datetime) -> dict[str, tuple[int, int]]:
    """{group: (open now, overdue now)} for the three class groups, one GROUP BY over open cases."""
    c = cases.c
    q = (select(c.class_code, func.count(), func.count().filter(is_overdue(cases, now)))
         .where(*where(f, period=None, now=now), is_open(cases)).group_by(c.class_code))
    out = {g: [0, 0] for g in GROUPS}
    for code, n, late in conn.execute(q):
        g = group_of(code)
        if g:
            out[g][0] += int(n)
            out[g][1] += int(late or 0)
    return {g: (v[0], v[1]) for g, v in out.items()}


def compute(conn, f: Filters, now: datetime | None = None) -> OperationIndex:
    """The five dimensions and the overall index for f (area, scope, window) at `now` (tests pass it)."""
    now = now or now_cst()
    c = cases.c
    km2 = area_km2(conn, f)
    days = max((f.end - f.start).total_seconds() / 86400.0, 1.0 / 24)
    groups = open_by_group(conn, f, now)
    inputs: dict = {"km2": round(km2, 3), "days": round(days, 3)}
    for g, (n, late) in groups.items():
        inputs[f"open_{g}"], inputs[f"overdue_{g}"] = n, late
    occ, _, total = occupancy(conn, f)
    inputs["occupancy"] = occ
    due_num, due_den = 0, 0
    for num, den in counts(conn, "ontime_rate", "district", f, now).values():
        due_num, due_den = due_num + num, due_den + den
    ontime = 100.0 * due_num / due_den if due_den else None
    inputs["ontime_closed"], inputs["due"], inputs["ontime_rate"] = due_num, due_den, ontime
    hours, _ = avg_hours(conn, f, now)
    inputs["avg_hours"] = hours
    reg = where(f, period="reported", now=now) + [c.status.in_(REGISTERED_STAGES)]
    registered, returned = conn.execute(select(
        func.count(), func.count().filter(or_(c.rework_count > 0, c.return_count > 0))).where(*reg)).first()
    complaints = conn.execute(select(func.count()).where(
        *where(f, period="reported", now=now), c.source_code.in_(COMPLAINT_SOURCES))).scalar()
    inputs.update(registered=int(registered or 0), returned=int(returned or 0), complaints=int(complaints or 0))

    scores: dict[str, float | None] = {}
    refs = {"safe": SAFE_REF, "clean": CLEAN_REF, "orderly": ORDER_REF}
    burden = {g: ((n + late) / km2 if km2 else None) for g, (n, late) in groups.items()}
    scores["safe"] = soft(burden["safe"], refs["safe"]) if km2 else None
    scores["clean"] = soft(burden["clean"], refs["clean"]) if km2 else None
    scores["orderly"] = _weighted([(0.7, soft(burden["orderly"], refs["orderly"]) if km2 else None),
                                   (0.3, parking(occ) if total else None)])
    scores["convenient"] = _weighted([(0.7, ontime), (0.3, soft(hours, HOURS_REF) if hours is not None else None)])
    share = (1.0 - returned / registered) * 100.0 if registered else None
    scores["satisfied"] = _weighted([(0.5, share),
                                     (0.5, soft(complaints / km2 / days, COMPLAINT_REF) if km2 else None)])
    have = [v for v in scores.values() if v is not None]
    scores["overall"] = sum(have) / len(have) if have else None
    return OperationIndex(scores=scores, inputs=inputs)


__all__ = ["DIMENSIONS", "NAMES", "OperationIndex", "compute", "soft", "parking", "group_of", "area_km2",
           "open_by_group", "GROUPS", "COMPLAINT_SOURCES"]
