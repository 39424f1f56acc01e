"""Demo cases and their event history, with the rhythms a command centre actually sees.

Each case gets a planned timeline (report, register or reject, dispatch, maybe a return and re-dispatch,
accept, feedback, verify, maybe rework, close, or parking), built vectorised over all cases at once;
the events that lie after `now` are cut off, and the case row (status, stage timestamps, counters,
overdue) is derived from the events that remain, so rows and history always agree, the same way the
live workflow (data.workflow) would have left them. Deadlines come from data.workcalendar.
"""
import numpy as np
import pandas as pd
import shapely

from data import reference
from data.demo import names
from data.workcalendar import add_working_time, default_calendar

MIN, HOUR, DAY = 60, 3600, 86400
JD = reference.street_department_code("")  # street office codes are the street code plus this suffix

SOURCES = {  # share, hour-of-day profile, factor on non-working days, rejection rate
    "inspector": (0.52, [0, 0, 0, 0, 0, 0, .1, .6, 1, 1, 1, .8, .4, .8, 1, 1, .9, .6, .3, .15, .1, .05, 0, 0], .45, .005),
    "hotline": (0.18, [.1, .05, .03, .03, .03, .05, .2, .5, .9, 1, 1, .9, .8, .8, .9, .9, .85, .8, .75, .8, .85, .7,
                       .4, .2], 1.2, .04),
    "public": (0.09, [.08, .04, .02, .02, .02, .05, .2, .5, .8, .9, 1, 1, .9, .9, .9, .9, .9, .9, .9, 1, 1, .8, .5,
                      .2], 1.25, .06),
    "video_ai": (0.17, [.3, .2, .15, .15, .2, .3, .5, .8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, .9, .8, .6, .4], 1.0, .05),
    "leader": (0.02, [0, 0, 0, 0, 0, 0, 0, .2, 1, 1, 1, .6, .3, .8, 1, 1, .8, .3, 0, 0, 0, 0, 0, 0], .15, 0),
    "media": (0.02, [0, 0, 0, 0, 0, 0, .1, .4, .8, 1, 1, .8, .6, .8, 1, 1, .8, .5, .3, .2, .2, .1, 0, 0], .4, .03),
}

# Class mix per source (class name -> weight); every other class gets a small base weight.
MIX = {
    "inspector": {"暴露垃圾": 8, "道路保洁": 5, "乱堆物堆料": 6, "小广告": 7, "占道经营": 6, "机动车乱停放": 5,
                  "非机动车乱停放": 6, "店外经营": 5, "沿街晾挂": 3, "施工占道": 3, "建筑垃圾渣土": 2, "污水井盖": 2,
                  "雨水井盖": 2, "路灯": 3, "护栏": 2, "道路破损": 3, "垃圾箱": 3, "行道树": 2, "绿地保洁": 3},
    "hotline": {"噪声扰民": 25, "油烟污染": 18, "夜间施工扰民": 18, "占道经营": 6, "路灯": 4, "道路破损": 4,
                "私搭乱建": 5, "机动车乱停放": 5, "暴露垃圾": 4, "路面积水": 2},
    "public": {"机动车乱停放": 10, "暴露垃圾": 8, "噪声扰民": 7, "道路破损": 6, "路灯": 6, "占道经营": 6,
               "非机动车乱停放": 6, "油烟污染": 4, "井盖": 0, "污水井盖": 3, "雨水井盖": 3, "私搭乱建": 3},
    "video_ai": {"机动车乱停放": 35, "占道经营": 25, "暴露垃圾": 20, "非机动车乱停放": 10, "店外经营": 6,
                 "乱堆物堆料": 4},
    "leader": {"私搭乱建": 6, "违规户外广告": 4, "建筑垃圾渣土": 3, "道路塌陷": 2, "施工占道": 3, "占道经营": 3},
    "media": {"私搭乱建": 5, "道路破损": 4, "噪声扰民": 4, "暴露垃圾": 4, "违规户外广告": 3, "路面积水": 2},
}
BASE_WEIGHT = 0.3

NOTES = {
    "reject": ["经核实不属于城管受理范围", "重复上报，已合并", "现场核实无此问题", "信息不全，无法定位"],
    "return": ["非本单位职责范围，请改派", "权属不清，请重新派遣"],
    "rework": ["核查未整改到位", "现场仍有残留，请返工"],
    "park": ["涉及历史遗留问题，挂账督办", "需多部门协调，挂账处理"],
    "feedback": ["已处置完毕", "已清理完毕", "已责令当事人整改", "已修复", "已劝离并登记"],
}
# Event kinds in the order they happen (the rank breaks ties within a second).
KINDS = ["report", "register", "reject", "dispatch", "return", "dispatch2", "accept", "park", "feedback",
         "verify", "rework", "accept2", "feedback2", "verify2", "close"]
STATUS = {  # kind -> (action, from, to)
    "report": ("report", None, "reported"), "register": ("register", "reported", "registered"),
    "reject": ("reject", "reported", "rejected"), "dispatch": ("dispatch", "registered", "dispatched"),
    "return": ("return", "dispatched", "returned"), "dispatch2": ("dispatch", "returned", "dispatched"),
    "accept": ("accept", "dispatched", "handling"), "park": ("park", "handling", "parked"),
    "feedback": ("feedback", "handling", "handled"), "verify": ("verify", "handled", "verifying"),
    "rework": ("rework", "verifying", "rework"), "accept2": ("accept", "rework", "handling"),
    "feedback2": ("feedback", "handling", "handled"), "verify2": ("verify", "handled", "verifying"),
    "close": ("close", "verifying", "closed"),
}


def ts(seconds: np.ndarray) -> np.ndarray:
    """int64 seconds (-1 = none) to the text SQLAlchemy stores for DateTime; None where absent.

    The digits are written straight into a UCS-4 buffer: ~20x faster than pandas strftime at a million
    rows, and the same text is valid PostgreSQL timestamp input for COPY.
    """
    s = np.asarray(seconds, dtype=np.int64)
    d = np.maximum(s, 0).astype("datetime64[s]")
    month = d.astype("datetime64[M]")
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    mon = month.astype(np.int64) % 12 + 1
    day = (d.astype("datetime64[D]") - month.astype("datetime64[D]")).astype(np.int64) + 1
    sod = np.maximum(s, 0) % 86400
    buf = np.zeros((len(s), 26), dtype=np.uint32)
    buf[:] = np.frombuffer("0000-00-00 00:00:00.000000".encode("utf-32-le"), dtype=np.uint32)
    for col, val, width in ((0, year, 4), (5, mon, 2), (8, day, 2), (11, sod // 3600, 2), (14, sod // 60 % 60, 2),
                            (17, sod % 60, 2)):
        for k in range(width):
            buf[:, col + width - 1 - k] = 48 + (val // 10 ** k) % 10
    text = buf.view("<U26").ravel().astype(object)
    text[s < 0] = None
    return text


def _lognormal(rng, median, sigma, n):
    return (median * rng.lognormal(0, sigma, n)).astype(np.int64)


def _report_times(rng, n, start, now, calendar):
    """Report times and sources: per-source hour profile, fewer inspectors and more public on days off."""
    hours = np.arange(start, now, HOUR, dtype=np.int64)
    days = hours.astype("datetime64[s]").astype("datetime64[D]")
    work = calendar.is_workday(days)
    hod = (hours // HOUR) % 24
    srcs = list(SOURCES)
    share = np.array([SOURCES[s][0] for s in srcs])
    counts = rng.multinomial(n, share / share.sum())
    out_t, out_s = [], []
    for s, k in zip(srcs, counts):
        _, prof, off, _ = SOURCES[s]
        w = np.asarray(prof)[hod] * np.where(work, 1.0, off) + 1e-6
        # A gentle seasonal swing (more complaints in summer).
        w = w * (1 + 0.12 * np.sin(2 * np.pi * (days.astype(np.int64) - 100) / 365.25))
        h = rng.choice(len(hours), k, p=w / w.sum())
        out_t.append(hours[h] + rng.integers(0, HOUR, k))
        out_s.append(np.full(k, s, dtype=object))
    t = np.concatenate(out_t)
    src = np.concatenate(out_s)
    order = np.argsort(t, kind="stable")
    return t[order], src[order]


def _triangles(grid_geoms_m):
    """Triangulate every grid once so points can be drawn uniformly inside any grid."""
    tri = shapely.constrained_delaunay_triangles(np.asarray(grid_geoms_m, dtype=object))
    parts, gi = shapely.get_parts(tri, return_index=True)
    c = shapely.get_coordinates(parts).reshape(len(parts), 4, 2)[:, :3]
    area = 0.5 * np.abs((c[:, 1, 0] - c[:, 0, 0]) * (c[:, 2, 1] - c[:, 0, 1])
                        - (c[:, 2, 0] - c[:, 0, 0]) * (c[:, 1, 1] - c[:, 0, 1]))
    order = np.lexsort((np.arange(len(gi)), gi))
    return gi[order], c[order], area[order]


def _points_in_grids(rng, g, tri):
    gi, corners, area = tri
    cum = np.cumsum(area)
    first = np.searchsorted(gi, np.arange(gi.max() + 1), side="left")
    last = np.searchsorted(gi, np.arange(gi.max() + 1), side="right")
    lo = np.where(first > 0, cum[first - 1], 0.0)
    hi = cum[last - 1]
    u = lo[g] + rng.random(len(g)) * (hi[g] - lo[g])
    t = np.minimum(np.searchsorted(cum, u, side="right"), last[g] - 1)
    a, b = rng.random(len(g)), rng.random(len(g))
    flip = a + b > 1
    a, b = np.where(flip, 1 - a, a), np.where(flip, 1 - b, b)
    p = corners[t]
    x = p[:, 0, 0] + a * (p[:, 1, 0] - p[:, 0, 0]) + b * (p[:, 2, 0] - p[:, 0, 0])
    y = p[:, 0, 1] + a * (p[:, 1, 1] - p[:, 0, 1]) + b * (p[:, 2, 1] - p[:, 0, 1])
    return x, y


def generate(rng, n: int, start: int, now: int, grids: pd.DataFrame, grid_roads: np.ndarray,
             setbacks: pd.DataFrame, streets: pd.DataFrame, districts: pd.DataFrame):
    """Returns (cases frame, events frame) with ids, ready for load_frame."""
    from data.demo.frame import to_deg
    calendar = default_calendar()
    classes = reference.case_classes().reset_index(drop=True)
    t_rep, src = _report_times(rng, n, start, now, calendar)

    # What: class per case from its source's mix.
    cls = np.empty(n, dtype=np.int64)
    for s in SOURCES:
        m = src == s
        w = np.array([MIX[s].get(nm, BASE_WEIGHT) for nm in classes["name"]], float)
        cls[m] = rng.choice(len(classes), m.sum(), p=w / w.sum())
    c_major = classes["major_code"].to_numpy()[cls]
    urgent = rng.random(n) < np.where(c_major == "E04", 0.7, 0.012)

    # Where: heavy-tailed hotspots, more near the seats; a share of setback-class cases inside setbacks.
    cd = grids["centre_dist"].to_numpy()
    gw = rng.lognormal(0, 1.1, len(grids)) * (np.exp(-cd / 4000.0) + 0.08)
    gsel = rng.choice(len(grids), n, p=gw / gw.sum())
    x, y = _points_in_grids(rng, gsel, _triangles(grids["geom_m"]))
    in_sb_class = classes["in_setback"].to_numpy()[cls]
    setback_id = np.full(n, -1, dtype=np.int64)
    if len(setbacks):
        sb_geom_m = np.asarray(setbacks["geom_m"], dtype=object)
        gidx = pd.Series(np.arange(len(grids)), index=grids["code"].to_numpy())
        sb_grid = gidx.reindex(setbacks["grid_code"].to_numpy()).to_numpy()
        has = np.zeros(len(grids), bool)
        has[sb_grid] = True
        move = in_sb_class & has[gsel] & (rng.random(n) < 0.3)
        if move.any():
            # pick a setback of the case's grid: sort setbacks by grid, choose uniformly within its block
            so = np.argsort(sb_grid, kind="stable")
            sg = sb_grid[so]
            f = np.searchsorted(sg, gsel[move], side="left")
            l_ = np.searchsorted(sg, gsel[move], side="right")
            pick = so[f + (rng.random(move.sum()) * (l_ - f)).astype(np.int64)]
            c = shapely.get_coordinates(sb_geom_m[pick]).reshape(len(pick), 5, 2)
            a, b = rng.uniform(0.05, 0.95, len(pick)), rng.uniform(0.05, 0.95, len(pick))
            x[move] = c[:, 0, 0] + a * (c[:, 1, 0] - c[:, 0, 0]) + b * (c[:, 3, 0] - c[:, 0, 0])
            y[move] = c[:, 0, 1] + a * (c[:, 1, 1] - c[:, 0, 1]) + b * (c[:, 3, 1] - c[:, 0, 1])
        # Any setback-class case that lies in a strip is that strip's case, whether placed there or not.
        tree = shapely.STRtree(sb_geom_m)
        cand = np.flatnonzero(in_sb_class)
        pi, si = tree.query(shapely.points(x[cand], y[cand]), predicate="within")
        setback_id[cand[pi]] = setbacks["id"].to_numpy()[si]
    lon, lat = to_deg(x, y)

    # Who handles it: the class's department kind in that place, or the setback's manager.
    g_codes = {c: grids[c].to_numpy()[gsel] for c in ("code", "community_code", "street_code", "district_code")}
    kind_arr = classes["department_kind"].to_numpy()[cls].astype(str)
    dist_arr = np.asarray(g_codes["district_code"]).astype(str)
    street_arr = np.asarray(g_codes["street_code"]).astype(str)
    # Route once per (kind, district) and per street, not per case: department_code reads its table.
    dept = np.empty(n, dtype=object)
    for k in np.unique(kind_arr):
        mk = kind_arr == k
        if k == "street":
            dept[mk] = np.strings.add(street_arr[mk], JD).astype(object)
            continue
        for d in np.unique(dist_arr[mk]):
            dept[mk & (dist_arr == d)] = reference.department_code(k, d)
    if len(setbacks):
        mgr = pd.Series(setbacks["manager_department_code"].to_numpy(), index=setbacks["id"].to_numpy())
        hit = setback_id >= 0
        dept[hit] = mgr.reindex(setback_id[hit]).to_numpy()
        g_fix = setbacks.set_index("id").reindex(setback_id[hit])
        for col, key in (("grid_code", "code"), ("community_code", "community_code"),
                         ("street_code", "street_code"), ("district_code", "district_code")):
            g_codes[key][hit] = g_fix[col].to_numpy()
    # A returned case was first sent to the wrong place: the street office, or (for street cases) enforcement.
    dist_arr = np.asarray(g_codes["district_code"]).astype(str)
    street_arr = np.asarray(g_codes["street_code"]).astype(str)
    enf = np.empty(n, dtype=object)
    for d in np.unique(dist_arr):
        enf[dist_arr == d] = reference.department_code("enforcement", d)
    wrong = np.where(np.strings.endswith(dept.astype(str), JD), enf, np.strings.add(street_arr, JD).astype(object))

    # When: the planned timeline of every case.
    verify_first = reference.case_sources().set_index("code")["verify_first"].reindex(src).to_numpy()
    rej_rate = np.array([SOURCES[s][3] for s in src])
    rejected = rng.random(n) < rej_rate
    reg = t_rep + np.where(verify_first, _lognormal(rng, 1.5 * HOUR, 0.8, n), _lognormal(rng, 4 * MIN, 0.7, n) + 30)
    # Verification on site waits for the day shift.
    rh = (reg // HOUR) % 24
    night = verify_first & ((rh >= 21) | (rh < 7))
    next_morning = (reg // DAY) * DAY + np.where(rh >= 21, DAY, 0) + 8 * HOUR
    reg = np.where(night, next_morning + rng.integers(0, 2 * HOUR, n), reg)
    disp = reg + np.where(urgent, _lognormal(rng, 3 * MIN, 0.5, n), _lognormal(rng, 10 * MIN, 0.8, n)) + 30
    returned = ~rejected & (rng.random(n) < 0.04)
    ret = disp + _lognormal(rng, 1 * HOUR, 0.8, n) + 60
    disp2 = ret + _lognormal(rng, 20 * MIN, 0.6, n) + 30
    final_disp = np.where(returned, disp2, disp)
    acc = final_disp + np.where(urgent, _lognormal(rng, 5 * MIN, 0.5, n), _lognormal(rng, 25 * MIN, 0.8, n)) + 30
    limit_v = classes["limit_value"].to_numpy()[cls]
    limit_u = classes["limit_unit"].to_numpy()[cls].astype(object)
    deadline = add_working_time(reg.astype("datetime64[s]"), limit_v, limit_u).astype(np.int64)
    span = np.maximum(deadline - reg, 30 * MIN)
    on_time = rng.random(n) < 0.905
    f = np.where(on_time, rng.uniform(0.15, 0.97, n), 1.02 + rng.exponential(0.6, n))
    closed = np.maximum(reg + (f * span).astype(np.int64), acc + 20 * MIN + rng.integers(0, 20 * MIN, n))
    closed = np.where(on_time, np.minimum(closed, np.maximum(deadline, acc + 20 * MIN)), closed)
    vd = np.minimum(_lognormal(rng, 40 * MIN, 0.6, n), (0.3 * (closed - acc)).astype(np.int64)) + 60
    handled = closed - vd
    verify = handled + (0.4 * vd).astype(np.int64) + 1
    rework = ~rejected & (rng.random(n) < 0.025)
    parked = ~rejected & ~rework & (rng.random(n) < 0.004)
    D = handled - acc
    fb1 = acc + (0.35 * D).astype(np.int64)
    ver1 = acc + (0.42 * D).astype(np.int64)
    rwk = acc + (0.5 * D).astype(np.int64)
    acc2 = acc + (0.55 * D).astype(np.int64)
    park_t = acc + _lognormal(rng, 1 * DAY, 0.8, n)

    NONE = np.int64(-1)
    live = ~rejected
    plan = {
        "report": t_rep,
        "register": np.where(live, reg, NONE),
        "reject": np.where(rejected, reg, NONE),
        "dispatch": np.where(live, disp, NONE),
        "return": np.where(returned, ret, NONE),
        "dispatch2": np.where(returned, disp2, NONE),
        "accept": np.where(live, acc, NONE),
        "park": np.where(parked, park_t, NONE),
        "feedback": np.where(live & ~parked, np.where(rework, fb1, handled), NONE),
        "verify": np.where(live & ~parked, np.where(rework, ver1, verify), NONE),
        "rework": np.where(rework, rwk, NONE),
        "accept2": np.where(rework, acc2, NONE),
        "feedback2": np.where(rework, handled, NONE),
        "verify2": np.where(rework, verify, NONE),
        "close": np.where(live & ~parked, closed, NONE),
    }
    # Cases are numbered in report order.
    ids = np.arange(1, n + 1)

    # Events: one row per planned transition that has happened by now.
    ev_case, ev_at, ev_rank = [], [], []
    for r, k in enumerate(KINDS):
        t = plan[k]
        m = (t >= 0) & (t <= now)
        ev_case.append(ids[m])
        ev_at.append(t[m])
        ev_rank.append(np.full(m.sum(), r, dtype=np.int8))
    ev_case, ev_at, ev_rank = np.concatenate(ev_case), np.concatenate(ev_at), np.concatenate(ev_rank)
    o = np.lexsort((ev_rank, ev_at, ev_case))
    ev_case, ev_at, ev_rank = ev_case[o], ev_at[o], ev_rank[o]
    ci = ev_case - 1
    R = {k: i for i, k in enumerate(KINDS)}

    def of(*ks):
        """Events of these kinds (integer compare: object-string compares cost seconds at 7M rows)."""
        return np.isin(ev_rank, [R[k] for k in ks])
    action = np.array([STATUS[k][0] for k in KINDS], dtype=object)[ev_rank]
    from_s = np.array([STATUS[k][1] for k in KINDS], dtype=object)[ev_rank]
    to_s = np.array([STATUS[k][2] for k in KINDS], dtype=object)[ev_rank]

    # Actors and departments per event.
    deps = reference.departments(list(zip(districts["code"], districts["name"])),
                                 list(zip(streets["code"], streets["name"], streets["district_code"])))
    dep_name = dict(zip(deps["code"], deps["name"]))
    inspectors = grids["inspector"].to_numpy()[gsel]
    operators = names.person_names(rng, 60)
    op_of_case = operators[rng.integers(0, len(operators), n)]
    ne = len(ev_case)
    actor = np.empty(ne, dtype=object)
    ev_dept = np.full(ne, None, dtype=object)
    after_dispatch = ev_rank >= R["dispatch"]
    first_dep = np.where(returned, wrong, dept)
    ev_dept[after_dispatch] = dept[ci[after_dispatch]]
    early = of("dispatch", "return")
    ev_dept[early] = first_dep[ci[early]]
    rep = ev_rank == R["report"]
    rsrc = src[ci[rep]]
    callers = np.array([f"市民({p}****{q:04d})" for p, q in zip(
        names.pick(rng, ["138", "139", "135", "137", "150", "158", "186", "189"], rep.sum()),
        rng.integers(0, 10000, rep.sum()))], dtype=object)
    cams = np.array([f"视频智能识别(摄像头{i:05d})" for i in rng.integers(1, 8000, rep.sum())], dtype=object)
    actor[rep] = np.select([rsrc == "inspector", rsrc == "hotline", rsrc == "video_ai", rsrc == "leader",
                            rsrc == "media"],
                           [inspectors[ci[rep]], np.char.add("12345话务员", op_of_case[ci[rep]].astype(str)),
                            cams, "市领导交办", "媒体曝光(宁波日报)"], callers)
    center = of("register", "reject", "dispatch", "dispatch2", "close", "park", "rework")
    actor[center] = np.char.add(op_of_case[ci[center]].astype(str), "(指挥中心)")
    by_dept = of("return", "accept", "accept2", "feedback", "feedback2")
    actor[by_dept] = [dep_name.get(d, d) for d in ev_dept[by_dept]]
    ver = of("verify", "verify2")
    actor[ver] = inspectors[ci[ver]]
    note = np.full(ne, None, dtype=object)
    for k, key in (("reject", "reject"), ("return", "return"), ("rework", "rework"), ("park", "park"),
                   ("feedback", "feedback"), ("feedback2", "feedback")):
        m = ev_rank == R[k]
        note[m] = names.pick(rng, NOTES[key], m.sum())
    events = pd.DataFrame({"id": np.arange(1, ne + 1), "case_id": ev_case, "at": ts(ev_at), "actor": actor,
                           "action": action, "from_status": from_s, "to_status": to_s,
                           "department_code": ev_dept, "note": note})

    # Case rows derived from their events.
    def last(kset):
        out = np.full(n, -1, dtype=np.int64)
        m = of(*kset)
        np.maximum.at(out, ci[m], ev_at[m])
        return out
    registered_at = last(["register"])
    closed_at = last(["close", "reject"])
    last_idx = np.r_[np.flatnonzero(np.diff(ev_case)), ne - 1]
    status = to_s[last_idx]
    updated = ev_at[last_idx]
    version = np.bincount(ci, minlength=n)
    dl = np.where(registered_at >= 0, deadline, -1)
    last_rank = ev_rank[last_idx]
    is_open = ~np.isin(last_rank, [R["close"], R["reject"]])
    overdue = np.where(last_rank == R["close"], closed_at > dl, is_open & (dl >= 0) & (now > dl))
    # The department holding the case: the last dispatch's; before dispatch, the routing default.
    d1, d2 = last(["dispatch"]) >= 0, last(["dispatch2"]) >= 0
    cur_dept = np.where(d2, dept, np.where(d1, first_dep, np.where(registered_at >= 0, dept, None)))
    dname = dict(zip(districts["code"], districts["name"]))
    sname = dict(zip(streets["code"], streets["name"]))
    road = grid_roads[gsel]
    num = rng.integers(1, 400, n)
    cname = classes["name"].to_numpy()[cls]
    address = [f"{dname[d]}{sname[s]}{r}{k}号" for d, s, r, k in
               zip(g_codes["district_code"], g_codes["street_code"], road, num)]
    tails = names.pick(rng, ["请尽快处置", "影响市容", "群众反映强烈", "存在安全隐患", "请核实处理"], n)
    desc = [f"{r}{k}号附近发现{c}，{t}" for r, k, c, t in zip(road, num, cname, tails)]
    day = t_rep.astype("datetime64[s]").astype("datetime64[D]")
    dstr = np.strings.replace(np.datetime_as_string(day), "-", "")
    seq = np.arange(n) - np.searchsorted(day, day, side="left") + 1
    code = np.strings.add(np.strings.add("NB", dstr), np.strings.zfill(seq.astype(str), 6)).astype(object)
    cases = pd.DataFrame({
        "id": ids, "code": code, "source_code": src, "kind": classes["kind"].to_numpy()[cls],
        "major_code": c_major, "class_code": classes["code"].to_numpy()[cls],
        "description": desc, "address": address, "lon": lon, "lat": lat,
        "grid_code": g_codes["code"], "community_code": g_codes["community_code"],
        "street_code": g_codes["street_code"], "district_code": g_codes["district_code"],
        "setback_id": pd.array(np.where(setback_id >= 0, setback_id, 0), dtype="Int64"),
        "status": status, "department_code": cur_dept,
        "priority": np.where(urgent, "urgent", "normal"),
        "reported_at": ts(t_rep), "registered_at": ts(registered_at),
        "dispatched_at": ts(last(["dispatch", "dispatch2"])), "accepted_at": ts(last(["accept", "accept2"])),
        "handled_at": ts(last(["feedback", "feedback2"])), "closed_at": ts(closed_at),
        "deadline_at": ts(dl), "overdue": overdue.astype(bool),
        "rework_count": np.bincount(ci[ev_rank == R["rework"]], minlength=n),
        "return_count": np.bincount(ci[ev_rank == R["return"]], minlength=n),
        "version": version, "updated_at": ts(updated),
    })
    cases.loc[setback_id < 0, "setback_id"] = pd.NA
    return cases, events
