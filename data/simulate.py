"""A simulator that behaves like a city's reporters and departments, through the real HTTP API only.

Cases are reported at a Poisson rate with the demo's source and class mix (data/demo/cases.py SOURCES,
MIX) at points inside the store's unit grids, and open ones are moved along the workflow (register or
reject, dispatch, sometimes return, accept, feedback, verify, close or rework) with the version each
answer returned. The store is only read, for the grids; every write goes through POST /api/v1, so demos,
tests and load runs exercise exactly what a real client does.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np
import requests
import shapely

# What happens next to a case in each status: (action, weight, needs a note).
NEXT = {
    "reported": [("register", 0.95, False), ("reject", 0.05, True)],
    "registered": [("dispatch", 1.0, False)],
    "returned": [("dispatch", 1.0, False)],
    "dispatched": [("accept", 0.96, False), ("return", 0.04, True)],
    "handling": [("feedback", 1.0, True)],
    "rework": [("accept", 1.0, False)],
    "handled": [("verify", 1.0, False)],
    "verifying": [("close", 0.97, False), ("rework", 0.03, True)],
}
NOTES = {"reject": "现场核实无此问题", "return": "非本单位职责范围，请改派", "feedback": "已处置完毕",
         "rework": "核查未整改到位"}


class SimulationError(RuntimeError):
    pass


@dataclass
class Stats:
    reported: int = 0
    transitions: int = 0
    conflicts: int = 0
    errors: int = 0
    latencies: list = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    last_error: str | None = None

    def summary(self) -> str:
        secs = time.perf_counter() - self.started
        lat = np.array(self.latencies or [0.0]) * 1000
        return (f"{secs:.1f} s: {self.reported} cases reported, {self.transitions} transitions, "
                f"{self.conflicts} conflicts, {self.errors} errors; request p50 {np.median(lat):.1f} ms, "
                f"p95 {np.percentile(lat, 95):.1f} ms" + (f"; last error: {self.last_error}" if self.last_error else ""))


def _mix():
    """(sources, source weights, class codes, per-source class weights) from the demo's profiles."""
    from data import reference
    from data.demo.cases import BASE_WEIGHT, MIX, SOURCES
    classes = reference.case_classes()
    srcs = list(SOURCES)
    share = np.array([SOURCES[s][0] for s in srcs])
    per = {s: np.array([MIX[s].get(n, BASE_WEIGHT) for n in classes["name"]], float) for s in srcs}
    return srcs, share / share.sum(), classes["code"].tolist(), {s: w / w.sum() for s, w in per.items()}


class Places:
    """Random points inside the store's grids (read once)."""

    def __init__(self, database_url: str | None):
        from sqlalchemy import select

        from data.store import make_engine
        from data.store.schema import Grid
        engine = make_engine(database_url) if database_url else make_engine()
        with engine.connect() as conn:
            rows = conn.execute(select(Grid.code, Grid.geom)).all()
        engine.dispose()
        if not rows:
            raise SimulationError("the store has no grids: seed or import grids first")
        self.geoms = [r[1] for r in rows]

    def point(self, rng: random.Random) -> tuple[float, float]:
        g = self.geoms[rng.randrange(len(self.geoms))]
        minx, miny, maxx, maxy = g.bounds
        for _ in range(100):
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if g.contains(shapely.Point(x, y)):
                return x, y
        p = g.representative_point()
        return p.x, p.y


def run(url: str, token: str, rate: float, duration: float | None = None, seed: int | None = None,
        database_url: str | None = None, progress=None, places: Places | None = None,
        max_open: int = 500) -> Stats:
    if rate <= 0:
        raise SimulationError("--rate must be positive")
    rng = random.Random(seed)
    places = places or Places(database_url)
    srcs, share, class_codes, weights = _mix()
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    base = url.rstrip("/") + "/api/v1"
    stats = Stats()
    open_cases: dict[str, tuple[str, int]] = {}   # code -> (status, version)
    try:
        r = s.get(base + "/cases", params={"limit": 1}, timeout=10)
    except requests.RequestException as exc:
        raise SimulationError(f"cannot reach {url}: {exc}") from None
    if r.status_code in (401, 403):
        raise SimulationError(f"the token was refused: {r.json().get('detail')}")
    next_report = time.perf_counter()
    end = None if duration is None else time.perf_counter() + duration
    last_print = time.perf_counter()

    def call(method, path, **kw):
        t0 = time.perf_counter()
        resp = s.request(method, base + path, timeout=30, **kw)
        stats.latencies.append(time.perf_counter() - t0)
        return resp

    while end is None or time.perf_counter() < end:
        now = time.perf_counter()
        if now >= next_report:
            src = srcs[int(np.searchsorted(np.cumsum(share), rng.random()))]
            cls = class_codes[int(np.searchsorted(np.cumsum(weights[src]), rng.random()))]
            lon, lat = places.point(rng)
            key = f"sim-{rng.getrandbits(64):016x}"
            resp = call("POST", "/cases", json={"lon": lon, "lat": lat, "class_code": cls, "source_code": src,
                                                "description": "模拟上报 (simulator)"},
                        headers={"Idempotency-Key": key})
            if resp.status_code in (200, 201):
                c = resp.json()
                stats.reported += 1
                if len(open_cases) < max_open:
                    open_cases[c["code"]] = (c["status"], c["version"])
            else:
                stats.errors += 1
                stats.last_error = f"POST /cases {resp.status_code}: {resp.text[:200]}"
            next_report += rng.expovariate(rate)
            continue
        # Between reports, move one open case one step (about two moves per report on average).
        if open_cases and rng.random() < 0.9:
            code = rng.choice(list(open_cases))
            status, version = open_cases[code]
            options = NEXT.get(status)
            if not options:
                open_cases.pop(code)
                continue
            action = rng.choices([o[0] for o in options], [o[1] for o in options])[0]
            body = {"action": action, "expected_version": version}
            if action in NOTES:
                body["note"] = NOTES[action]
            resp = call("POST", f"/cases/{code}/transitions", json=body)
            if resp.status_code == 200:
                c = resp.json()
                stats.transitions += 1
                if c["open"]:
                    open_cases[code] = (c["status"], c["version"])
                else:
                    open_cases.pop(code)
            elif resp.status_code == 409:
                stats.conflicts += 1
                cur = resp.json()
                open_cases[code] = (cur.get("current_status", status), cur.get("current_version", version))
            else:
                stats.errors += 1
                stats.last_error = f"POST transitions {resp.status_code}: {resp.text[:200]}"
                open_cases.pop(code)
        time.sleep(max(0.0, min(next_report - time.perf_counter(), 0.5 / rate, 0.05)))
        if progress and time.perf_counter() - last_print > 10:
            progress(stats.summary())
            last_print = time.perf_counter()
    return stats
