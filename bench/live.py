"""Live latency: from an API write (POST /api/v1/cases) to the case drawn on the real map page "/" in headless
Chromium, on copies of the full stores, beside a naive full-reload baseline in the same run.

    python bench/live.py --db sqlite|postgresql|both [--writes 60] [--naive-every 5]

Why measured this way: the number that matters on the command floor is "reported -> visible", so the clock
starts when the client's POST returns (time.time() in this process) and stops in the page (Date.now(), the same
system clock) on the animation frame after Leaflet's 'live' pane got a marker for that case. The page is
watched with a MutationObserver on the pane plus a scan of Leaflet's own layers (not pixels): a marker only
counts when a Leaflet L.Marker with pane 'live' and the case code in its title is on the map.

The naive baseline runs on the same page afterwards: every --naive-every seconds it reloads the newest 1,000
cases of the whole viewport through GET /api/v1/cases?bbox=... and redraws them (what a dashboard with a timed
layer refresh does: ArcGIS Dashboards refreshes no faster than every 6 s, Grafana every 5 s). Its latency is
measured the same way on its own pane.

The server is `python app.py serve` (what the browser tests use) on a copy of the store: SQLite copied to /tmp,
PostgreSQL cloned with createdb -T cgzt_full and dropped afterwards. The write spacing is random (0.3-1.3 s) so
writes land at every phase of the server's hub tick (dashboard/live_stream.py TICK_S). Target: p95 <= 1 s.
"""
from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import api as api_bench  # bench/api.py: store copies, token and points, server start

from tests.browser_fixtures import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  the Debian chromium, as the tests use it

# Capture every Leaflet map, then record per case code the Date.now() of the first animation frame on which
# Leaflet holds a marker for it in the watched pane ('live', or the naive baseline's 'naive').
WATCH_JS = r"""
(() => {
  window.__maps = []; window.__drawn = {live: {}, naive: {}};
  const hook = (L) => { if (L && L.Map && !L.Map.__hooked) { L.Map.__hooked = true;
                         L.Map.addInitHook(function () { window.__maps.push(this); }); } };
  let cur = window.L;
  if (cur) hook(cur); else Object.defineProperty(window, 'L', {configurable: true, enumerable: true,
                                                get() { return cur; }, set(v) { cur = v; hook(v); }});
  let pending = false;
  window.__scan = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const now = Date.now();
      for (const map of window.__maps) {
        map.eachLayer(l => {
          if (!(l instanceof window.L.Marker || l instanceof window.L.CircleMarker)) return;
          const pane = l.options.pane, seen = window.__drawn[pane];
          if (!seen) return;
          const code = (l.options.title || '').split(' ')[0];
          if (code && !(code in seen)) seen[code] = now;
        });
      }
    });
  };
  const watch = setInterval(() => {
    const pane = document.querySelector('.leaflet-live-pane');
    if (!pane) return;
    clearInterval(watch);
    new MutationObserver(window.__scan).observe(pane, {childList: true, subtree: true});
  }, 20);
})();
"""

# The naive baseline: a timed full reload of the viewport's newest cases into a pane of its own.
NAIVE_JS = r"""
([token, everyMs]) => {
  const map = window.__maps[0], L = window.L;
  map.createPane('naive').style.zIndex = 640;
  const group = L.layerGroup().addTo(map);
  window.__naiveBytes = 0; window.__naiveLoads = 0; window.__naiveMs = 0;
  const reload = async () => {
    const t0 = performance.now();
    const b = map.getBounds();
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(v => v.toFixed(6)).join(',');
    const r = await fetch('/api/v1/cases?limit=1000&bbox=' + bbox, {headers: {Authorization: 'Bearer ' + token}});
    const text = await r.text();
    const items = JSON.parse(text).items;
    group.clearLayers();
    for (const c of items) {
      L.circleMarker([c.lat, c.lon], {pane: 'naive', radius: 4, title: c.code + ' ' + c.status}).addTo(group);
    }
    window.__scan();
    window.__naiveBytes += text.length; window.__naiveLoads += 1; window.__naiveMs += performance.now() - t0;
    setTimeout(reload, everyMs);     // the next refresh is due everyMs after this one finished
  };
  setTimeout(reload, everyMs);
}
"""


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def clock_skew_ms(page) -> float:
    """How far the page's Date.now() is from this process's time.time(), bracketed by two local readings."""
    best = None
    for _ in range(5):
        a = time.time() * 1000
        b = page.evaluate("() => Date.now()")
        c = time.time() * 1000
        if best is None or c - a < best[0]:
            best = (c - a, b - (a + c) / 2)
    return best[1]


def measure(page, base: str, token: str, points: list, writes: int, pane: str, rng: random.Random,
            timeout_s: float) -> tuple[list[float], int]:
    """Latencies (ms) of `writes` POSTs until drawn in `pane`; and how many never appeared within timeout_s."""
    import requests
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    done: list[tuple[str, float]] = []
    for _ in range(writes):
        time.sleep(rng.uniform(0.3, 1.3))
        lon, lat = rng.choice(points)
        r = http.post(base + "/api/v1/cases", timeout=60,
                      json={"lon": lon, "lat": lat, "class_code": rng.choice(["E0101", "E0102", "E0201", "E0301"]),
                            "source_code": "public"})
        t_write = time.time() * 1000
        if r.status_code != 201:
            raise RuntimeError(f"POST /api/v1/cases answered {r.status_code}: {r.text[:300]}")
        done.append((r.json()["code"], t_write))
    codes = [c for c, _ in done]
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        drawn = page.evaluate("([p, codes]) => codes.filter(c => c in window.__drawn[p]).length", [pane, codes])
        if drawn == len(codes):
            break
        time.sleep(0.2)
    seen = page.evaluate("p => window.__drawn[p]", pane)
    lat_ms = [seen[c] - t for c, t in done if c in seen]
    return lat_ms, len(done) - len(lat_ms)


def run_store(db: str, browser, writes: int, naive_every: float, rng: random.Random) -> list[tuple]:
    from tests.browser_fixtures import sign_in
    url, drop = api_bench.copy_store(db)
    proc = None
    try:
        report_token, points = api_bench.prepare(url)
        from data import tokens
        from data.store import make_engine
        engine = make_engine(url)
        with engine.begin() as conn:
            read_token = tokens.add(conn, f"bench-read-{uuid.uuid4().hex[:6]}", "read")
        engine.dispose()
        port = 18000 + random.randrange(1000)
        # A key of the run's own: the server signs the bench user's session cookie with it.
        os.environ.setdefault("CGZT_SECRET_KEY", secrets.token_urlsafe(48))
        proc = api_bench.start("flask", url, port, 1)
        base = f"http://127.0.0.1:{port}"
        import requests
        requests.get(base + "/login", timeout=60)   # the first request loads the session key (dashboard/auth.py)
        context = browser.new_context(viewport={"width": 1600, "height": 900}, locale="zh-CN",
                                      timezone_id="Asia/Shanghai")
        context.add_cookies(sign_in(base, url, f"bench-{uuid.uuid4().hex[:6]}", role="admin"))
        context.add_init_script(WATCH_JS)
        page = context.new_page()
        page.set_default_timeout(180_000)
        t0 = time.perf_counter()
        page.goto(base + "/")
        page.wait_for_function("() => (window.__maps || []).length >= 1 && !!document.querySelector('.leaflet-live-pane')")
        page.wait_for_selector("#live-ticker .live-row", state="attached")   # the stream's first message
        print(f"{db}: map page with live pane ready in {time.perf_counter() - t0:.1f} s;"
              f" page clock - bench clock = {clock_skew_ms(page):+.1f} ms", flush=True)
        out = []
        lat, lost = measure(page, base, report_token, points, writes, "live", rng, timeout_s=15)
        from dashboard.live_stream import TICK_S
        out.append((db, f"live: pushed (SSE), hub tick {TICK_S * 1000:.0f} ms", lat, lost))
        report(out[-1])
        page.evaluate(NAIVE_JS, [read_token, int(naive_every * 1000)])
        lat, lost = measure(page, base, report_token, points, writes, "naive", rng, timeout_s=naive_every * 3 + 15)
        loads, nbytes, ms = page.evaluate("() => [window.__naiveLoads, window.__naiveBytes, window.__naiveMs]")
        loads = max(loads, 1)
        out.append((db, f"naive: viewport reload {naive_every:g} s after the last "
                        f"({nbytes / loads / 1024:.0f} kB, {ms / loads:.0f} ms each)", lat, lost))
        report(out[-1])
        context.close()
        return out
    finally:
        if proc is not None:
            api_bench.stop(proc)
        drop()


def report(row) -> None:
    db, label, lat, lost = row
    print(f"{db:<10} {label:<52} n={len(lat):3d} p50 {pct(lat, .5):7.0f} ms  p95 {pct(lat, .95):7.0f} ms"
          f"  max {max(lat) if lat else float('nan'):7.0f} ms  not drawn {lost}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="both", choices=["sqlite", "postgresql", "both"])
    ap.add_argument("--writes", type=int, default=60)
    ap.add_argument("--naive-every", type=float, default=5.0, help="seconds between the baseline's full reloads")
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}", flush=True)
    rng = random.Random(a.seed)
    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for db in (["sqlite", "postgresql"] if a.db == "both" else [a.db]):
                rows += run_store(db, browser, a.writes, a.naive_every, rng)
        finally:
            browser.close()
    print("\n| store | page | writes drawn | p50 ms | p95 ms | max ms | not drawn |\n"
          "| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for db, label, lat, lost in rows:
        print(f"| {db} | {label} | {len(lat)} | {pct(lat, .5):.0f} | {pct(lat, .95):.0f} | "
              f"{max(lat) if lat else float('nan'):.0f} | {lost} |")
    print(f"load average after: {os.getloadavg()}")
    ok = all(not lost for *_, lost in rows) and all(pct(lat, .95) <= 1000 for db, label, lat, _ in rows
                                                     if label.startswith("live"))
    print(f"target live p95 <= 1000 ms: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
