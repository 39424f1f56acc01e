"""Demo geography: real district outlines, made-up streets, communities and unit grids inside them.

Grids are Voronoi cells of a jittered hexagonal lattice, clipped to an irregular urban core around each
district's real seat and to the district's outline, so they look like city blocks and number exactly
what the scale asks. Streets and communities are k-means groups of neighbouring grids and their geometry
is the union of their grids, so the code hierarchy and the geometry nest exactly. The Voronoi edges are
kept: they serve as the street network for berths and setbacks.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from data.boundaries import load_districts
from data.crs import area_m2
from data.demo import names
from data.demo.frame import geoms_to_deg, geoms_to_m, multipolygons, to_m
from data.store.geometry import bbox_columns

GRID_AREA_M2 = 766e6 / 6535


@dataclass
class Geography:
    districts: pd.DataFrame      # code, name, name_en, area_m2, geom (+ bbox)
    streets: pd.DataFrame
    communities: pd.DataFrame
    grids: pd.DataFrame          # + x, y (seed, metres), centre_dist (m to the district seat), geom_m
    edges: pd.DataFrame          # road segments in metres: district_code, x0, y0, x1, y1, length, centre_dist


def _core(outline_m, cx, cy, target_m2, rng):
    """An irregular blob around the seat whose part inside the outline has the target area."""
    theta = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    a = rng.uniform(0.08, 0.18, 3)
    ph = rng.uniform(0, 2 * np.pi, 3)
    shape = 1 + a[0] * np.sin(2 * theta + ph[0]) + a[1] * np.sin(3 * theta + ph[1]) + a[2] * np.sin(5 * theta + ph[2])
    shapely.prepare(outline_m)

    def blob(r):
        return shapely.intersection(shapely.Polygon(np.column_stack([cx + r * shape * np.cos(theta),
                                                                       cy + r * shape * np.sin(theta)])), outline_m)
    lo, hi = 100.0, 60_000.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if blob(mid).area < target_m2:
            lo = mid
        else:
            hi = mid
    core = blob(hi)
    # Keep the piece around the seat (and any other big pieces); drop crumbs across rivers and bays.
    parts = [p for p in shapely.get_parts(core) if p.area > 20 * GRID_AREA_M2 or p.contains(shapely.Point(cx, cy))]
    return shapely.MultiPolygon(parts) if len(parts) > 1 else parts[0]


def _seeds(core, n, rng):
    """Exactly n points inside the core from a jittered hexagonal lattice."""
    area = core.area
    s = np.sqrt(2 * (area / n) / np.sqrt(3)) * 0.97
    minx, miny, maxx, maxy = core.bounds
    shapely.prepare(core)
    for _ in range(20):
        xs = np.arange(minx - s, maxx + s, s)
        ys = np.arange(miny - s, maxy + s, s * np.sqrt(3) / 2)
        gx, gy = np.meshgrid(xs, ys)
        gx = gx + (np.arange(len(ys))[:, None] % 2) * s / 2
        px = gx.ravel() + rng.uniform(-0.3, 0.3, gx.size) * s
        py = gy.ravel() + rng.uniform(-0.3, 0.3, gy.size) * s
        inside = shapely.contains_xy(core, px, py)
        px, py = px[inside], py[inside]
        if len(px) >= n:
            keep = np.sort(rng.choice(len(px), n, replace=False))
            return px[keep], py[keep]
        s *= 0.97
    raise RuntimeError("could not place grid seeds")


def _kmeans(x, y, k, rng, iters=25):
    """Plain Lloyd's k-means (deterministic given rng): groups of neighbouring grids."""
    pts = np.column_stack([x, y])
    k = max(1, min(k, len(pts)))
    centres = pts[rng.choice(len(pts), k, replace=False)]
    for _ in range(iters):
        d = ((pts[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
        lab = d.argmin(1)
        new = np.array([pts[lab == j].mean(0) if (lab == j).any() else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    d = ((pts[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    lab = d.argmin(1)
    used = np.unique(lab)
    remap = -np.ones(k, dtype=int)
    remap[used] = np.arange(len(used))
    return remap[lab], centres[used]


def _union(geoms):
    try:
        u = shapely.coverage_union_all(geoms)
        if not u.is_valid:
            raise ValueError
    except Exception:  # noqa: BLE001 - fall back to the robust (slower) union
        u = shapely.union_all(geoms)
    return multipolygons([u])[0]


def build(rng: np.random.Generator, district_grids: dict[str, int], grids_per_street: float,
          grids_per_community: float = 6.0) -> Geography:
    districts = load_districts()
    outlines_m = dict(zip(districts["code"], geoms_to_m(np.asarray(districts["geom"], dtype=object))))
    dnames = dict(zip(districts["code"], districts["name"]))
    street_rows, comm_rows, grid_rows, edge_rows = [], [], [], []
    for dcode, n in district_grids.items():
        _, _, (clon, clat) = names.DISTRICTS[dcode]
        cx, cy = (float(v) for v in to_m(clon, clat))
        core = _core(outlines_m[dcode], cx, cy, n * GRID_AREA_M2, rng)
        px, py = _seeds(core, n, rng)
        mp = shapely.MultiPoint(np.column_stack([px, py]))
        env = shapely.buffer(shapely.envelope(core), 2000)
        cells = shapely.get_parts(shapely.voronoi_polygons(mp, extend_to=env, ordered=True))
        cells = multipolygons(shapely.intersection(cells, core))
        edges = shapely.get_parts(shapely.intersection(
            shapely.voronoi_polygons(mp, extend_to=env, only_edges=True), core))
        edges = [e for e in edges if e.geom_type == "LineString"]
        for e in edges:
            c = shapely.get_coordinates(e)
            for (x0, y0), (x1, y1) in zip(c[:-1], c[1:]):
                length = np.hypot(x1 - x0, y1 - y0)
                if length >= 30:
                    edge_rows.append((dcode, x0, y0, x1, y1, length))

        # Streets: groups of ~grids_per_street neighbouring grids, numbered from the seat outwards.
        slab, scent = _kmeans(px, py, round(n / grids_per_street), rng)
        order = np.argsort(np.hypot(scent[:, 0] - cx, scent[:, 1] - cy), kind="stable")
        real = list(names.STREETS.get(dcode, []))
        taken = set(real)
        made = names.made_up_places(rng, max(0, len(order) - len(real)), taken)
        town_no = 100
        for rank, j in enumerate(order):
            if rank < len(real):
                sname, kind, scode = f"{real[rank]}街道", "街道", f"{dcode}{rank + 1:03d}"
            elif dcode in names.TOWN_DISTRICTS:
                town_no += 1
                sname, kind, scode = f"{made[rank - len(real)]}镇", "镇", f"{dcode}{town_no:03d}"
            else:
                sname, kind, scode = f"{made[rank - len(real)]}街道", "街道", f"{dcode}{rank + 1:03d}"
            idx = np.flatnonzero(slab == j)
            street_rows.append((scode, dcode, sname, kind))
            clab, ccent = _kmeans(px[idx], py[idx], round(len(idx) / grids_per_community), rng)
            corder = np.lexsort((ccent[:, 0], -ccent[:, 1]))
            cnames = names.made_up_places(rng, len(corder), taken)
            for cr, cj in enumerate(corder):
                ccode = f"{scode}{cr + 1:03d}"
                gidx = idx[clab == cj]
                gidx = gidx[np.lexsort((px[gidx], -py[gidx]))]
                comm_rows.append((ccode, scode, dcode, f"{cnames[cr]}社区"))
                for gr, gi in enumerate(gidx):
                    grid_rows.append((f"{ccode}{gr + 1:03d}", ccode, scode, dcode, cells[gi], px[gi], py[gi],
                                      float(np.hypot(px[gi] - cx, py[gi] - cy))))

    grids = pd.DataFrame(grid_rows, columns=["code", "community_code", "street_code", "district_code", "geom_m",
                                             "x", "y", "centre_dist"])
    grids["geom"] = geoms_to_deg(np.asarray(grids["geom_m"], dtype=object))
    grids["area_m2"] = area_m2(np.asarray(grids["geom"], dtype=object))
    grids["inspector"] = names.person_names(rng, len(grids))
    bbox_columns(grids)

    comms = pd.DataFrame(comm_rows, columns=["code", "street_code", "district_code", "name"])
    by_comm = grids.groupby("community_code", sort=False)["geom_m"].apply(lambda s: _union(np.asarray(s, object)))
    comms["geom"] = geoms_to_deg(np.asarray(by_comm.reindex(comms["code"]).values, dtype=object))
    comms["area_m2"] = area_m2(np.asarray(comms["geom"], dtype=object))
    bbox_columns(comms)

    streets = pd.DataFrame(street_rows, columns=["code", "district_code", "name", "kind"])
    cm = pd.Series(geoms_to_m(np.asarray(comms["geom"], dtype=object)), index=comms.index)
    by_street = cm.groupby(comms["street_code"].values, sort=False).apply(lambda s: _union(np.asarray(s, object)))
    streets["geom"] = geoms_to_deg(np.asarray(by_street.reindex(streets["code"]).values, dtype=object))
    streets["area_m2"] = area_m2(np.asarray(streets["geom"], dtype=object))
    streets["name_en"] = [f"{'Town' if k == '镇' else 'Subdistrict'} {c[-3:]}, {names.DISTRICTS[d][0]}"
                          for c, k, d in zip(streets["code"], streets["kind"], streets["district_code"])]
    bbox_columns(streets)

    edges = pd.DataFrame(edge_rows, columns=["district_code", "x0", "y0", "x1", "y1", "length"])
    seats = {d: to_m(*names.DISTRICTS[d][2]) for d in district_grids}
    sx = edges["district_code"].map(lambda d: float(seats[d][0]))
    sy = edges["district_code"].map(lambda d: float(seats[d][1]))
    edges["centre_dist"] = np.hypot((edges["x0"] + edges["x1"]) / 2 - sx, (edges["y0"] + edges["y1"]) / 2 - sy)
    del dnames
    return Geography(districts, streets, comms, grids, edges)
