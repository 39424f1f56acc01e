"""Demo berths, parking sessions and setback strips along the Voronoi edges (the demo's road network).

Everything is vectorised over numpy arrays: the full scale places ~100k berths and simulates their
sessions in a couple of seconds. Times are int64 seconds of naive China Standard Time.
"""
import numpy as np
import pandas as pd
import shapely

from data.demo import names
from data.demo.frame import to_deg
from data.locate import Locator
from data.reference import department_code, street_department_code
from data.store.geometry import bbox_columns

HOUR = 3600
DAY = 86400


def road_names(rng, edges: pd.DataFrame) -> pd.DataFrame:
    """Give each edge a road name and segment code; collinear-ish edges in one band share a road."""
    dx, dy = edges["x1"] - edges["x0"], edges["y1"] - edges["y0"]
    ang = np.degrees(np.arctan2(dy, dx)) % 180
    ew = (ang < 45) | (ang >= 135)                       # roughly east-west roads
    mx, my = (edges["x0"] + edges["x1"]) / 2, (edges["y0"] + edges["y1"]) / 2
    band = np.where(ew, np.floor(my / 450), np.floor(mx / 450)).astype(int)
    key = edges["district_code"] + np.where(ew, "E", "N") + band.astype(str)
    edges = edges.assign(road_key=key.values)
    taken = {r for rs in names.ROADS.values() for r in rs}
    road_of = {}
    for dcode, part in edges.groupby("district_code", sort=True):
        keys = part.groupby("road_key")["centre_dist"].min().sort_values(kind="stable").index
        real = names.ROADS.get(dcode, [])
        made = names.made_up_roads(rng, max(0, len(keys) - len(real)), taken)
        for i, k in enumerate(keys):
            road_of[k] = real[i] if i < len(real) else made[i - len(real)]
    edges["road_name"] = edges["road_key"].map(road_of)
    edges["segment_code"] = [f"RS{d}{i:05d}" for i, d in enumerate(edges["district_code"])]
    return edges


def _weighted_order(rng, w):
    """A random order where heavier items come first more often (Efraimidis-Spirakis keys)."""
    keys = np.log(rng.random(len(w))) / np.maximum(w, 1e-9)
    return np.argsort(-keys, kind="stable")


def berths(rng, edges: pd.DataFrame, locator: Locator, target: int) -> pd.DataFrame:
    """Runs of berths ~6 m apart along chosen road sides, more near each district's seat."""
    busy = np.exp(-edges["centre_dist"].to_numpy() / 3500.0)
    order = _weighted_order(rng, busy ** 1.5)
    n = len(order)
    kind = rng.choice(3, n, p=[0.86, 0.07, 0.07])       # 0 on-street motor, 1 off-street motor, 2 non-motor
    spacing = np.array([6.0, 2.6, 1.2])[kind]
    frac = rng.uniform(0.35, 0.85, n)
    length = edges["length"].to_numpy()[order]
    run = np.where(kind == 2, np.minimum(rng.uniform(8, 30, n), length * 0.5), frac * length)
    count = np.floor(run / spacing).astype(int)
    take = np.searchsorted(np.cumsum(count), target * 1.02) + 1
    sel, kind, spacing, run, count = order[:take], kind[:take], spacing[:take], run[:take], count[:take]
    e = edges.iloc[sel]
    x0, y0, x1, y1 = (e[c].to_numpy() for c in ("x0", "y0", "x1", "y1"))
    L = e["length"].to_numpy()
    ux, uy = (x1 - x0) / L, (y1 - y0) / L
    side = rng.choice([-1.0, 1.0], take)
    offset = np.array([3.5, 14.0, 3.0])[kind] * side
    start = rng.uniform(0, 1, take) * (L - run)
    rep = np.repeat(np.arange(take), count)
    k = np.arange(len(rep)) - np.repeat(np.cumsum(count) - count, count)
    # Off-street lots are two rows deep.
    row2 = (kind[rep] == 1) & (k % 2 == 1)
    along = start[rep] + (k // np.where(kind[rep] == 1, 2, 1)) * spacing[rep] * np.where(kind[rep] == 1, 2, 1)
    off = offset[rep] + row2 * 5.5 * side[rep]
    bx = x0[rep] + ux[rep] * along - uy[rep] * off
    by = y0[rep] + uy[rep] * along + ux[rep] * off
    lon, lat = to_deg(bx, by)
    codes = locator.codes(lon, lat)
    ok = codes["grid_code"].notna().to_numpy()
    df = pd.DataFrame({"lon": lon, "lat": lat, "road_name": e["road_name"].to_numpy()[rep],
                       "segment_code": e["segment_code"].to_numpy()[rep],
                       "berth_type": np.where(kind[rep] == 1, "off_street", "on_street"),
                       "vehicle": np.where(kind[rep] == 2, "non_motor", "motor"),
                       "centre_dist": e["centre_dist"].to_numpy()[rep]})
    df = pd.concat([df, codes], axis=1)[ok].head(target).reset_index(drop=True)
    cd = df["centre_dist"].to_numpy()
    df["charge_zone"] = np.where(cd < 2500, "一类区", np.where(cd < 6000, "二类区", "三类区"))
    df.loc[df["vehicle"] == "non_motor", "charge_zone"] = None
    camera = rng.random(len(df)) < np.where(cd < 4000, 0.75, 0.4)
    df["sensor"] = np.where(camera, "camera", "ground")
    df["id"] = np.arange(1, len(df) + 1)
    df["code"] = [f"P{d}{i:07d}" for d, i in zip(df["district_code"], df["id"])]
    df["busy"] = np.clip(np.exp(-cd / 5000.0) * rng.lognormal(0, 0.35, len(df)), 0.08, 1.0)
    df["out_of_service"] = rng.random(len(df)) < 0.02
    return df


# Relative arrival rate by hour: peaks late morning and in the evening.
ARRIVALS = np.array([0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.45, 0.8, 1.0, 1.2, 1.3, 1.2, 0.9, 0.85, 0.9, 0.95,
                     1.0, 1.15, 1.3, 1.35, 1.1, 0.8, 0.45, 0.25])


def sessions(rng, berth_df: pd.DataFrame, start: int, now: int, tz_offset: int = 0):
    """Simulate entry/exit per berth from start to now; returns (sessions frame, state, state_since).

    Each berth alternates free gaps (shorter when arrivals peak and in busy areas) and stays (short by day,
    long overnight), so occupancy rises late morning and in the evening and stays low at night.
    """
    n = len(berth_df)
    busy = berth_df["busy"].to_numpy()
    active = ~berth_df["out_of_service"].to_numpy()
    t = start - rng.integers(0, 12 * HOUR, n)
    ids = berth_df["id"].to_numpy()
    out_b, out_s, out_e = [], [], []
    last_end = np.full(n, -1, dtype=np.int64)
    open_start = np.full(n, -1, dtype=np.int64)
    alive = np.flatnonzero(active)
    while len(alive):
        tt = t[alive]
        hour = ((tt + tz_offset) // HOUR) % 24
        gap = rng.exponential(1.0, len(alive)) * 1.6 * HOUR / (busy[alive] * ARRIVALS[hour] + 0.05)
        s = tt + np.maximum(gap, 60).astype(np.int64)
        sh = ((s + tz_offset) // HOUR) % 24
        night = (sh >= 19) | (sh < 6)
        long_stay = night & (rng.random(len(alive)) < 0.35)
        med = np.where(long_stay, 9 * HOUR, np.where(berth_df["vehicle"].to_numpy()[alive] == "non_motor",
                                                        2.5 * HOUR, 1.1 * HOUR))
        dur = np.maximum(med * rng.lognormal(0, 0.7, len(alive)), 300).astype(np.int64)
        e = s + dur
        started = s < now
        b = alive[started]
        keep = e[started] > start
        out_b.append(ids[b][keep])
        out_s.append(s[started][keep])
        out_e.append(e[started][keep])
        done = e[started] <= now
        last_end[b[done]] = e[started][done]
        open_start[b[~done]] = s[started][~done]
        t[alive] = e
        alive = b[done]
    sb, ss, se = (np.concatenate(a) if a else np.array([], np.int64) for a in (out_b, out_s, out_e))
    o = np.lexsort((ss, sb))
    sb, ss, se = sb[o], ss[o], se[o]
    ended = np.where(se <= now, se, -1)
    df = pd.DataFrame({"berth_id": sb, "started_at": ss, "ended_at": ended})
    df.insert(0, "id", np.arange(1, len(df) + 1))
    occupied = open_start >= 0
    state = np.where(~active, "out_of_service", np.where(occupied, "occupied", "free"))
    oos_since = start - rng.integers(1, 40, n) * DAY
    since = np.where(~active, oos_since, np.where(occupied, open_start, np.where(last_end >= 0, last_end, start)))
    return df, state, since


def setbacks(rng, edges: pd.DataFrame, grids: pd.DataFrame, locator: Locator, streets: pd.DataFrame,
             districts: pd.DataFrame, target: int) -> pd.DataFrame:
    """Thin strips (5-15 m deep, 20-80 m long) between building line and road, never overlapping."""
    from data.statuses import SETBACK_MODES, SETBACK_USES
    from data.demo.frame import geoms_to_deg
    busy = np.exp(-edges["centre_dist"].to_numpy() / 3000.0)
    ok_len = edges["length"].to_numpy() >= 70
    order = _weighted_order(rng, busy * ok_len)[: int(target * 1.6) + 20]
    order = order[ok_len[order]]
    n = len(order)
    e = edges.iloc[order]
    x0, y0, x1, y1 = (e[c].to_numpy() for c in ("x0", "y0", "x1", "y1"))
    L = e["length"].to_numpy()
    ux, uy = (x1 - x0) / L, (y1 - y0) / L
    slen = np.minimum(rng.uniform(20, 80, n), L - 40)
    a0 = 20 + rng.random(n) * (L - 40 - slen)
    a1 = a0 + slen
    side = rng.choice([-1.0, 1.0], n)
    o0 = 8.0 * side
    depth = rng.uniform(5, 15, n)
    o1 = (8.0 + depth) * side

    def pt(a, o):
        return x0 + ux * a - uy * o, y0 + uy * a + ux * o
    corners = [pt(a0, o0), pt(a1, o0), pt(a1, o1), pt(a0, o1), pt(a0, o0)]
    xs = np.stack([c[0] for c in corners], 1)
    ys = np.stack([c[1] for c in corners], 1)
    polys_m = shapely.polygons(np.stack([xs, ys], -1))
    polys = geoms_to_deg(polys_m)
    codes = locator.codes_for_shapes(polys)
    gi = locator.grid_index(*[shapely.get_x(shapely.point_on_surface(polys)),
                              shapely.get_y(shapely.point_on_surface(polys))])
    gg = np.asarray(locator.grids["geom"], dtype=object)
    inside = gi >= 0
    inside[inside] = shapely.within(polys[inside], gg[gi[inside]])
    # Drop any strip that touches an earlier kept one.
    tree = shapely.STRtree(polys)
    a, b = tree.query(polys, predicate="intersects")
    pairs = (a < b)
    keep = inside.copy()
    for i, j in sorted(zip(a[pairs], b[pairs])):
        if keep[i] and keep[j]:
            keep[j] = False
    idx = np.flatnonzero(keep)[:target]
    m = len(idx)
    df = pd.concat([codes.iloc[idx].reset_index(drop=True)], axis=1)
    df["geom"] = [shapely.MultiPolygon([p]) for p in polys[idx]]
    df["geom_m"] = polys_m[idx]
    df["area_m2"] = slen[idx] * depth[idx]
    df["road_name"] = e["road_name"].to_numpy()[idx]
    df["segment_code"] = e["segment_code"].to_numpy()[idx]
    df["owner"] = names.owner_companies(rng, m)
    tenant = names.shop_tenants(rng, m)
    df["user"] = np.where(rng.random(m) < 0.7, tenant, None)
    sname = dict(zip(streets["code"], streets["name"]))
    dname = dict(zip(districts["code"], districts["name"]))
    by_street = rng.random(m) < 0.6
    df["manager"] = [f"{sname[s]}办事处" if st else f"{dname[d]}综合行政执法局"
                     for s, d, st in zip(df["street_code"], df["district_code"], by_street)]
    enf = {d: department_code("enforcement", d) for d in df["district_code"].unique()}
    df["manager_department_code"] = [street_department_code(s) if st else enf[d]
                                     for s, d, st in zip(df["street_code"], df["district_code"], by_street)]
    modes = list(SETBACK_MODES)
    df["mode"] = np.asarray(modes, object)[rng.choice(len(modes), m, p=[0.45, 0.35, 0.2])]
    uses = list(SETBACK_USES)
    picks = rng.random((m, len(uses))) < np.array([0.55, 0.4, 0.3, 0.6, 0.15])
    picks[~picks.any(1), 3] = True
    df["permitted_uses"] = [",".join(u for u, p in zip(uses, row) if p) for row in picks]
    df["id"] = np.arange(1, m + 1)
    df["code"] = [f"TH{d}{i:05d}" for d, i in zip(df["district_code"], df["id"])]
    return bbox_columns(df)
