"""Paired A/B of the command map's first paint: two checkouts served side by side on one store.

    git worktree add /tmp/before <commit>
    DATABASE_URL=sqlite:////work/full/full.sqlite python bench/paint_ab.py /tmp/before . [--pairs 12]

Why: on a shared host the same code's first paint moved by 40 % from one minute to the next
(bench/map_paint.py prints a CPU probe for that reason), so two runs of map_paint.py minutes apart cannot
tell a 50 ms change. Here the two servers run at once and fresh browser contexts alternate between them
(A B, B A, ...), so a slow minute slows both. Printed per side: the paint (as map_paint.py's READY) and the
renderer main thread's CPU time at that moment (CDP ThreadTime), each median / p95.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.map_paint import ARGS, CAPTURE, CHROMIUM, READY, cpu_probe, pct  # noqa: E402


# Only what every checkout of the last weeks has (an older commit lacks newer warm-up helpers); the
# server's own background warm-up runs as in production, and the first layout request waits for it.
SERVE = ("import sys; sys.path.insert(0, {root!r}); from dashboard.server import create_app;"
         " from data.store.engine import make_engine; from layers import cache; e = make_engine({url!r});"
         " cache.warm(e); create_app(e, auth=False).run(host='127.0.0.1', port={port},"
         " dev_tools_disable_version_check=True)")


def serve(root: Path, port: int, url: str) -> subprocess.Popen:
    srv = subprocess.Popen([sys.executable, "-c", SERVE.format(root=str(root), port=port, url=url)], cwd=root,
                           env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=60)
            urllib.request.urlopen(urllib.request.Request(base + "/_dash-layout", headers={"Referer": base + "/"}),
                                   timeout=120)
            return srv
        except Exception:  # noqa: BLE001
            if srv.poll() is not None:
                raise RuntimeError(f"the server of {root} exited") from None
            time.sleep(0.1)
    raise RuntimeError(f"the server of {root} did not start")


def paint(browser, port: int) -> tuple[float, float]:
    """(ms to the first complete paint, ms of main-thread CPU by then) of one fresh load."""
    ctx = browser.new_context(viewport={"width": 1600, "height": 900})
    ctx.add_init_script(CAPTURE)
    page = ctx.new_page()
    cdp = ctx.new_cdp_session(page)
    cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
    page.goto(f"http://127.0.0.1:{port}/", wait_until="commit")
    t = page.wait_for_function(READY, arg=["grids", "boundaries", "cases"], timeout=120_000, polling="raf").json_value()
    cpu = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}.get("ThreadTime", 0) * 1000
    ctx.close()
    return t, cpu


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("a", type=Path, help="checkout A (e.g. a git worktree of the commit before)")
    ap.add_argument("b", type=Path, help="checkout B")
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--port", type=int, default=8081, help="A serves on it, B on the next")
    a = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from data.store.engine import make_engine
    url = make_engine().url.render_as_string(hide_password=False)
    roots, ports = {"A": a.a.resolve(), "B": a.b.resolve()}, {"A": a.port, "B": a.port + 1}
    servers = [serve(roots[k], ports[k], url) for k in "AB"]
    res = {"A": [], "B": []}
    print(f"CPU probe before: {cpu_probe():.0f} ms")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for i in range(a.pairs + 1):  # the first pair warms both servers and is discarded
                for k in ("A", "B") if i % 2 else ("B", "A"):
                    got = paint(browser, ports[k])
                    if i:
                        res[k].append(got)
            browser.close()
    finally:
        for s in servers:
            s.terminate()
            s.wait(10)
    print(f"\n| side | checkout | pairs | paint median / p95 ms | main-thread CPU median / p95 ms |\n"
          f"| --- | --- | ---: | ---: | ---: |")
    for k in "AB":
        t, c = [x[0] for x in res[k]], [x[1] for x in res[k]]
        print(f"| {k} | {roots[k]} | {len(t)} | {statistics.median(t):,.0f} / {pct(t, 95):,.0f} | "
              f"{statistics.median(c):,.0f} / {pct(c, 95):,.0f} |")
    print(f"CPU probe after: {cpu_probe():.0f} ms")


if __name__ == "__main__":
    main()
