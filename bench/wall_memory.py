"""Wall memory: the wall in headless Chromium through >= 10,000 live updates on a copy of the full store, with
the JS heap (after a forced GC) at the start and the end, beside a naive append-only ticker in the same run.

    python bench/wall_memory.py [--db sqlite|postgresql] [--updates 10000] [--poll 50] [--rate 30]

How: the store is copied (SQLite to /tmp, PostgreSQL with createdb -T cgzt_full; removed afterwards) and served
by `python app.py serve` (bench/api.py's helpers). A writer thread in this process moves open cases through
data.workflow.apply (register, dispatch, accept, feedback, verify, close as a supervisor), --rate events a
second, each its own transaction, so the wall's live poll finds new events on almost every poll. The wall
polls every --poll ms (the `poll` query parameter: the default on a real wall is 1,000 ms; faster here so
10,000 updates take minutes, not hours); its KPI/index/choropleth refresh keeps its 30 s default.

An "update" is one re-render of the ticker (a MutationObserver on #wall-ticker counts React commits); the
live markers are re-rendered in the same response. Heap: CDP HeapProfiler.collectGarbage, then
Runtime.getHeapUsage (usedSize). The start is taken after a warm-up (first 200 updates and the first refresh
done), the end after the last update.

Naive baseline (second page, same server, same updates, for the first --naive-updates, then closed so the
wall runs alone and faster): the same wall plus a ticker that appends every update's newest row to a list
and never drops any, as an append-only ticker would. The table gives both pages' growth and growth per
1,000 updates. Target for the wall: heap growth under 10 %.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import api as api_bench  # noqa: E402  bench/api.py: store copies and server start

from tests.browser_fixtures import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  the Debian chromium, as the tests use it
NEXT = {"reported": ("register", None), "registered": ("dispatch", None), "returned": ("dispatch", None),
        "dispatched": ("accept", None), "rework": ("accept", None), "handling": ("feedback", "done (bench)"),
        "handled": ("verify", None), "verifying": ("close", None), "parked": ("unpark", None),
        # Closed cases come round again (reopen -> rework -> accept ...): the full store has ~4-5k open
        # cases, which 30 events/s closed within 15 minutes, and 10,000 updates need more events than that.
        "closed": ("reopen", "reopened (bench)")}

# Counts ticker commits; with naive=true also keeps every update's newest row, forever, in a hidden list.
COUNT_JS = r"""
(naive) => {
  window.__updates = 0; window.__kept = [];
  const attach = () => {
    const el = document.getElementById('wall-ticker');
    if (!el) { setTimeout(attach, 100); return; }
    let sink = null;
    if (naive) { sink = document.createElement('ul'); sink.style.display = 'none'; document.body.appendChild(sink); }
    new MutationObserver(() => {
      window.__updates += 1;
      if (naive) {
        const row = el.querySelector('.live-row');
        if (row) { sink.appendChild(row.cloneNode(true)); window.__kept.push({html: row.outerHTML, at: Date.now()}); }
      }
    }).observe(el, {childList: true, subtree: true});
  };
  attach();
}
"""


def writer(url: str, rate: float, stop: threading.Event, stats: dict) -> None:
    """Move open cases one step at a time through the real workflow, `rate` events a second."""
    from sqlalchemy import select

    from data import workflow
    from data.intake import write_transaction
    from data.store import make_engine
    from data.store.schema import Case, Department
    engine = make_engine(url)
    with engine.connect() as conn:   # a registered case routed to no department is dispatched to this one
        fallback_dept = conn.execute(select(Department.code).order_by(Department.code).limit(1)).scalar()
    actor = workflow.Actor("bench-wall", "supervisor")
    rng = random.Random(7)
    queue: list = []
    gap = 1.0 / rate
    nxt = time.perf_counter()
    while not stop.is_set():
        if not queue:
            with engine.connect() as conn:
                # Only statuses this writer can move on: open cases it cannot move (e.g. waiting for an
                # extension) would be fetched again and again and the writer would spin without writing.
                queue = [r for r in conn.execute(select(Case.id).where(Case.status.in_(list(NEXT)))
                                                 .limit(5000)).scalars()]
            rng.shuffle(queue)
            if not queue:
                stats["error"] = "no open case left"
                return
        case_id = queue.pop()
        try:
            with write_transaction(engine) as conn:
                status, version, dept = conn.execute(select(Case.status, Case.version, Case.department_code)
                                                     .where(Case.id == case_id)).one()
                if status not in NEXT:
                    continue
                action, note = NEXT[status]
                workflow.apply(conn, case_id, action, actor, expected_version=version, note=note,
                               department=(dept or fallback_dept) if action == "dispatch" else None)
            stats["events"] = stats.get("events", 0) + 1
            queue.insert(0, case_id)         # the same case moves on later (a closed one is reopened)
        except workflow.WorkflowError:
            stats["refused"] = stats.get("refused", 0) + 1
        nxt += gap
        time.sleep(max(0.0, nxt - time.perf_counter()))
    engine.dispose()


def copy_store(db: str):
    """(url, cleanup) of a private copy. SQLite through the backup API: a consistent snapshot even while the
    shared file has a WAL being written (a plain cp of the main file can miss committed pages)."""
    if db != "sqlite":
        return api_bench.copy_store(db)
    import sqlite3
    dst = f"/tmp/bench_wall_{uuid.uuid4().hex[:6]}.sqlite"
    src = sqlite3.connect(f"file:{api_bench.FULL_SQLITE}?mode=ro", uri=True)
    out = sqlite3.connect(dst)
    src.backup(out, pages=65536)
    out.close()
    src.close()
    return f"sqlite:///{dst}", lambda: [Path(dst + s).unlink(missing_ok=True)
                                      for s in ("", "-wal", "-shm", ".writers")]


def heap(cdp) -> float:
    cdp.send("HeapProfiler.collectGarbage")
    cdp.send("HeapProfiler.collectGarbage")
    return cdp.send("Runtime.getHeapUsage")["usedSize"] / 1e6


def dom_nodes(page) -> int:
    return page.evaluate("() => document.getElementsByTagName('*').length")


def updates(page) -> int:
    return page.evaluate("() => window.__updates || 0")


def run(db: str, n_updates: int, poll: int, rate: float, naive_updates: int) -> int:
    from playwright.sync_api import sync_playwright

    from data import tokens
    from data.store import make_engine
    from tests.browser_fixtures import free_port
    url, cleanup = copy_store(db)
    proc = None
    stop = threading.Event()
    interrupted = threading.Event()    # SIGINT: finish with the updates done so far and print the table
    import signal
    signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    stats: dict = {}
    try:
        from data.store.migrate import upgrade
        engine = make_engine(url)
        upgrade(engine)       # the shared full store may be a revision behind; the copy is brought up to date
        with engine.begin() as conn:
            token = tokens.add(conn, f"bench-wall-{uuid.uuid4().hex[:6]}", "wall")
        engine.dispose()
        port = free_port()
        t0 = time.perf_counter()
        proc = api_bench.start("serve", url, port, 1)
        print(f"server up in {time.perf_counter() - t0:.1f} s on {db} ({url.split('@')[-1]})", flush=True)
        wall_url = f"http://127.0.0.1:{port}/wall/?token={token}&tour=0&poll={poll}"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            pages = {}
            for name, naive in (("wall", False), ("naive append-only ticker", True)):
                ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN",
                                          timezone_id="Asia/Shanghai")
                pg = ctx.new_page()
                pg.set_default_timeout(120_000)
                pg.add_init_script(f"({COUNT_JS})({'true' if naive else 'false'})")
                pg.goto(wall_url)
                pg.wait_for_selector("#wall-kpi-open .wall-kpi-value")
                pg.wait_for_selector("#wall-ticker .live-row")
                pages[name] = (pg, ctx.new_cdp_session(pg))
            th = threading.Thread(target=writer, args=(url, rate, stop, stats), daemon=True)
            th.start()
            while min(updates(p) for p, _ in pages.values()) < 200:
                time.sleep(1)
            start = {name: (updates(pg), heap(cdp), dom_nodes(pg), time.perf_counter())
                     for name, (pg, cdp) in pages.items()}
            print("warm-up done; heap at start: " + ", ".join(f"{k} {v[1]:.1f} MB" for k, v in start.items()),
                  flush=True)
            end, next_mark = {}, 1000
            while True:
                done = {name: updates(pg) - start[name][0] for name, (pg, _) in pages.items() if name not in end}
                for name, n in done.items():
                    limit = n_updates if name == "wall" else naive_updates
                    if n >= limit:       # this page is through: its end state, then (naive) close it
                        pg, cdp = pages[name]
                        end[name] = (updates(pg), heap(cdp), dom_nodes(pg), time.perf_counter() - start[name][3])
                        print(f"  {name}: {n:,} updates done in {end[name][3]:.0f} s, heap {end[name][1]:.1f} MB",
                              flush=True)
                        if name != "wall":
                            pg.context.close()
                if "wall" in end or stats.get("error") or interrupted.is_set():
                    break
                n = done["wall"]
                if n >= next_mark:
                    pg, cdp = pages["wall"]
                    print(f"  wall {n:>6,} updates  {time.perf_counter() - start['wall'][3]:6.0f} s  heap "
                          f"{heap(cdp):6.1f} MB  DOM {dom_nodes(pg):,}  events written {stats.get('events', 0):,}",
                          flush=True)
                    next_mark += 1000
                time.sleep(2)
            for name, (pg, cdp) in pages.items():    # stopped early (Ctrl-C): each open page's state now is its end
                if name not in end:
                    end[name] = (updates(pg), heap(cdp), dom_nodes(pg), time.perf_counter() - start[name][3])
                    print(f"  stopped early: {name} at {end[name][0] - start[name][0]:,} updates", flush=True)
            stop.set()
            th.join(timeout=30)
            browser.close()
    finally:
        stop.set()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except Exception:  # noqa: BLE001
                proc.kill()
        cleanup()
    load = os.getloadavg()
    print()
    print(f"wall memory, {db}, poll {poll} ms, writer {rate:g} events/s "
          f"({stats.get('events', 0):,} events written, {stats.get('refused', 0)} refused), "
          f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")
    print()
    print("| page | updates | seconds | heap start MB | heap end MB | growth | per 1,000 updates | DOM nodes start | DOM nodes end |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    ok = False
    for name in start:
        if name not in end:
            print(f"| {name} | (did not finish: {stats.get('error', 'stopped')}) |")
            continue
        u0, h0, d0, _ = start[name]
        u1, h1, d1, secs = end[name]
        growth = 100.0 * (h1 - h0) / h0
        if name == "wall":
            ok = growth < 10.0
        per = (h1 - h0) / max(u1 - u0, 1) * 1000
        print(f"| {name} | {u1 - u0:,} | {secs:.0f} | {h0:.1f} | {h1:.1f} | {growth:+.1f} % | {per:+.2f} MB |"
              f" {d0:,} | {d1:,} |")
    print()
    done = end["wall"][0] - start["wall"][0] if "wall" in end else 0
    print(f"target: wall heap growth under 10 % over {n_updates:,} updates -> {'met' if ok else 'MISSED'}"
          + ("" if done >= n_updates else f" (stopped early: {done:,} of {n_updates:,} updates measured)"))
    return 0 if ok else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--updates", type=int, default=10_000)
    ap.add_argument("--poll", type=int, default=50, help="the wall's live poll in ms (query parameter poll)")
    ap.add_argument("--rate", type=float, default=30.0, help="workflow events written per second")
    ap.add_argument("--naive-updates", type=int, default=2_000,
                    help="updates the naive page runs beside the wall before it is closed")
    a = ap.parse_args(argv)
    return run(a.db, a.updates, a.poll, a.rate, min(a.naive_updates, a.updates))


if __name__ == "__main__":
    sys.exit(main())
