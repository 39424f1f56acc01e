"""A filter change at full scale: server time of the update and the time until every panel has redrawn.

    python bench/filters.py [--db sqlite|postgresql|both] [--runs 8] [--skip-browser] [--skip-naive] [--per-state]

Stores (read only): SQLite sqlite:////work/full/full.sqlite, PostgreSQL
postgresql+psycopg://postgres@127.0.0.1:5432/cgzt_full (override with BENCH_SQLITE_URL / BENCH_PG_URL).

Each run applies a filter state not seen before in the run (district x major class x time range), so no
memo helps. Printed per database:
  server   the work one filter change costs on the server, sequentially: grid choropleth values, the
           viewport's case aggregates, both breakdowns + KPI tiles + chart data, the table's count and
           first page. Target p95 <= 100 ms.
  naive    the same panels recomputed with pandas from a DataFrame of every case (loaded once, load time
           printed), in the same run.
  browser  headless Chromium on the real page (served with login off, auth=False): from setting the
           controls (dash_clientside.set_props, as a user's change does) until no callback is in flight and
           every response has been rendered (two animation frames after the last one). Target p95 <= 300 ms.
"""
from __future__ import annotations

import argparse
from contextlib import contextmanager
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

URLS = {"sqlite": os.environ.get("BENCH_SQLITE_URL", "sqlite:////work/full/full.sqlite"),
        "postgresql": os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/cgzt_full")}
CHROMIUM = "/usr/lib/chromium/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
SERVE = ("import sys; sys.path.insert(0, {root!r}); from dashboard.server import create_app;"
         " from data.store.engine import make_engine; from layers import cache; e = make_engine({url!r});"
         " cache.warm(e); from dashboard.map_page import warm_panels; warm_panels(e); create_app(e, auth=False).run(host='127.0.0.1', port={port},"
         " dev_tools_disable_version_check=True)")


@contextmanager
def served(url: str, port: int):
    """(process, base URL) of the page server (SERVE) on `port`, healthy; stopped on leaving. Shared with
    bench/export.py."""
    import requests
    srv = subprocess.Popen([sys.executable, "-c", SERVE.format(root=str(ROOT), url=url, port=port)],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if requests.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        yield srv, base
    finally:
        srv.terminate()
        try:
            srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.kill()
# Counts Dash callback requests in flight and stamps when the last one finished and was painted.
TRACK = """(() => { window.__cb = {pending: 0, done: 0, last: 0};
  const orig = window.fetch;
  window.fetch = function (url, opts) {
    const isCb = String(url).includes('_dash-update-component');
    if (isCb) window.__cb.pending++;
    return orig.apply(this, arguments).then(r => {
      if (isCb) { r.clone().text().finally(() => requestAnimationFrame(() => requestAnimationFrame(() => {
        window.__cb.pending--; window.__cb.done++; window.__cb.last = performance.now(); }))); }
      return r; }, e => { if (isCb) { window.__cb.pending--; } throw e; });
  }; })();"""


def stats(xs):
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return statistics.median(xs), p95


def states(ref, runs):
    """Distinct page states: district x major x range, cycling (never the same twice in a run)."""
    from dashboard import page_state as ps
    districts = [r[0] for r in ref["districts"]]
    majors = [r[0] for r in ref["majors"]]
    ranges = ["7d", "30d", "today"]
    out = []
    for i in range(runs):
        s = ps.default_state()
        s = ps.with_area(s, "district", districts[i % len(districts)]) if i % 4 else s
        s["range"] = ranges[i % len(ranges)]
        if i % 2:
            s["majors"] = [majors[(i // 2) % len(majors)]]
        out.append(s)
    return out


# ------------------------------------------------------------------------------------------ server

def server_update(engine, s, cpu: dict | None = None) -> dict:
    """Everything the callbacks compute for one filter change, timed per part (wall ms; CPU ms of this
    process into `cpu`, which on SQLite includes the database's own work and on PostgreSQL does not)."""
    from dashboard import page_state as ps
    from dashboard.map_page import approx_bounds, initial_extent
    from dashboard.panels import reference
    from layers import charts, kpis, table
    from layers.cases import view
    from layers.metrics import grid_metric
    f = ps.filters(s)
    out = {}
    cpu = {} if cpu is None else cpu
    ref = reference.load(engine)
    ext = initial_extent(reference.bounds(ref, f.area) or [[29.2, 120.9], [30.4, 122.2]])
    (south, west), (north, east) = approx_bounds(ext["center"], ext["zoom"])
    data = None

    def timed(name, fn):
        t, c = time.perf_counter(), time.process_time()
        r = fn()
        out[name] = 1000 * (time.perf_counter() - t)
        cpu[name] = 1000 * (time.process_time() - c)
        return r

    with engine.connect() as conn:
        timed("grids", lambda: grid_metric(conn, s["metric"], f))
        timed("cases view", lambda: view(conn, ext["zoom"], (west, south, east, north), f, cache=False))
        data = timed("breakdowns", lambda: kpis.rows(conn, f))
        timed("kpi tiles", lambda: kpis.compute(conn, f, data=data))
        timed("chart data", lambda: charts.all_data(conn, f, data=data))
        # The count is the breakdown's current period (dashboard.map_page.row_count): no query of its own.
        timed("table page", lambda: (sum(r[4] for r in data[0] if r[0] == 0), table.page(conn, f, 0, 100)))
    out["total"] = sum(out.values())
    cpu["total"] = sum(cpu.values())
    return out


def load_frame(engine):
    import pandas as pd
    t = time.perf_counter()
    df = pd.read_sql("SELECT id, code, grid_code, district_code, street_code, class_code, major_code, status,"
                     " department_code, setback_id, reported_at, registered_at, deadline_at, closed_at FROM cases",
                     engine.connect(), parse_dates=["reported_at", "registered_at", "deadline_at", "closed_at"])
    return df, time.perf_counter() - t


def naive_update(df, s) -> float:
    """The same panels from the DataFrame: masks, groupbys and a sort, no index."""
    import pandas as pd
    from dashboard import page_state as ps
    from data.statuses import OPEN, REGISTERED_STAGES
    f = ps.filters(s)
    t = time.perf_counter()
    now = pd.Timestamp.now()
    area = df["grid_code"].str.startswith(f.area) if f.area else True
    if f.majors:
        area = area & df["major_code"].isin(f.majors)
    span = f.end - f.start
    cur = area & (df["reported_at"] >= f.start) & (df["reported_at"] < f.end)
    prev = area & (df["reported_at"] >= f.start - span) & (df["reported_at"] < f.start)
    is_open = df["status"].isin(OPEN)
    _ = (area & is_open).groupby(df["grid_code"]).size()                           # grids (open)
    _ = df[cur].groupby(df["street_code"]).size()                                  # cases view
    for m in (cur, prev):
        x = df[m]
        _ = len(x), x["status"].isin(REGISTERED_STAGES).sum()
        _ = x.groupby(x["reported_at"].dt.floor("D")).size()                      # timeline
        _ = x.groupby("class_code").size(), x.groupby("status").size()            # classes, funnel
    for lo, hi in ((f.start, f.end), (f.start - span, f.start)):
        d = df[area & (df["deadline_at"] >= lo) & (df["deadline_at"] < hi) & df["registered_at"].notna()
               & df["status"].isin(REGISTERED_STAGES)]
        closed = (d["status"] == "closed") & (d["closed_at"] < hi)
        ontime = closed & (d["closed_at"] <= d["deadline_at"])
        _ = closed.sum(), ontime.sum(), len(d)
        _ = ontime.groupby(d["department_code"]).mean(), ontime.groupby(d["street_code"]).mean()
        _ = (d["closed_at"] - d["registered_at"])[closed].mean()
    _ = (area & is_open).sum(), (area & is_open & (df["deadline_at"] < now)).sum()
    was = area & (df["reported_at"] < f.start) & (df["closed_at"].isna() | (df["closed_at"] >= f.start)) \
        & (df["status"] != "rejected")
    _ = was.sum(), df.loc[was, "setback_id"].nunique()
    x = df[cur].assign(late=lambda v: v["status"].isin(OPEN) & (v["deadline_at"] < now))
    _ = x.sort_values(["late", "deadline_at"], ascending=[False, True]).head(100)   # table page
    return 1000 * (time.perf_counter() - t)


# ------------------------------------------------------------------------------------------ browser

def browser_updates(url, sts, port) -> list[float]:
    from playwright.sync_api import sync_playwright

    from dashboard import page_state as ps
    with served(url, port) as (_srv, base):
        times = []
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = b.new_page(viewport={"width": 1600, "height": 900})
            page.add_init_script(TRACK)
            page.goto(base + "/")
            page.wait_for_selector("#kpi-reported", timeout=120_000)
            # The table's bundle loads after the first paint and its first rows come after that: a change
            # made before then measured the table's start-up (the first change's 380 ms before its first
            # callback could even be sent), not the change.
            page.wait_for_selector("#table .ag-row", state="attached", timeout=120_000)
            _settle(page)
            for s in sts:
                district, _ = ps.area(s)
                props = [("f-range", {"value": s["range"]}), ("f-major", {"value": s["majors"]}),
                         ("f-district", {"value": district})]
                t0 = page.evaluate("""(props) => { window.__cb.last = 0; const t = performance.now();
                    props.forEach(([id, p]) => window.dash_clientside.set_props(id, p)); return t; }""",
                                   [list(p) for p in props])
                last = _settle(page)
                times.append(last - t0)
            b.close()
        return times


def _settle(page, quiet_ms=300, timeout_s=120) -> float:
    """Wait until no callback has been in flight for quiet_ms; return when the last one was painted."""
    deadline = time.monotonic() + timeout_s
    page.wait_for_timeout(50)
    while time.monotonic() < deadline:
        st = page.evaluate("() => [window.__cb.pending, window.__cb.last, performance.now()]")
        if st[0] == 0 and st[2] - st[1] >= quiet_ms:
            return st[1]
        page.wait_for_timeout(50)
    raise TimeoutError("callbacks did not settle")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="both", choices=("sqlite", "postgresql", "both"))
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--skip-browser", action="store_true")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--per-state", action="store_true", help="print every state's parts (wall and CPU ms)")
    ap.add_argument("--port", type=int, default=8791)
    a = ap.parse_args(argv)
    from dashboard.panels import reference
    from data.store.engine import make_engine
    dbs = ("sqlite", "postgresql") if a.db == "both" else (a.db,)
    print(f"load average at start: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}")
    for db in dbs:
        engine = make_engine(URLS[db])
        ref = reference.load(engine)
        sts = states(ref, a.runs)
        from dashboard.map_page import warm_panels
        t, c = time.perf_counter(), time.process_time()
        warm_panels(engine)  # what the server does at start (dashboard.map_page.warm_in_background)
        warm = (time.perf_counter() - t, time.process_time() - c)
        cpus = [{} for _ in sts]
        parts = [server_update(engine, s, c) for s, c in zip(sts, cpus)]
        if not a.skip_naive:
            df, load_s = load_frame(engine)
            naive = [naive_update(df, s) for s in sts]
            del df
        print(f"\n## {db}: {a.runs} filter changes (distinct states), load {os.getloadavg()[0]:.1f}")
        print(f"panels warmed at start (case columns, occupancy at the presets' starts): {warm[0]:.1f} s wall, "
              f"{warm[1]:.1f} s CPU")
        if a.per_state:
            keys = list(parts[0])
            print("| state | " + " | ".join(keys) + " |")
            for s, x, c in zip(sts, parts, cpus):
                label = f"{s['range']} {s['path']} {','.join(s['majors']) or '-'}"
                print(f"| {label} | " + " | ".join(f"{x[k]:.0f} ({c[k]:.0f})" for k in keys) + " |")
            print("(wall ms, CPU ms of the bench process in brackets)\n")
        print("| part | median ms | p95 ms | CPU median ms | CPU p95 ms |\n| --- | ---: | ---: | ---: | ---: |")
        for k in parts[0]:
            m, p = stats([x[k] for x in parts])
            cm, cp = stats([x[k] for x in cpus])
            print(f"| server: {k} | {m:.0f} | {p:.0f} | {cm:.0f} | {cp:.0f} |")
        if not a.skip_naive:
            m, p = stats(naive)
            print(f"| naive pandas, same panels (after a {load_s:.1f} s load of every case) | {m:.0f} | {p:.0f} | | |")
        if not a.skip_browser:
            # Each state again, in a fresh order, so the browser measures cold server memos too.
            b_states = states(ref, a.runs + 1)[1:]
            times = browser_updates(URLS[db], b_states, a.port)
            m, p = stats(times)
            print(f"| browser: change until every panel redrawn | {m:.0f} | {p:.0f} |")
        engine.dispose()
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
