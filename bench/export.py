"""Exporting every case (~1.02M at full scale) in bounded memory, beside a naive in-memory export.

    python bench/export.py [--db sqlite|postgresql|both] [--formats csv[,geojson,xlsx]] [--http]

Stores (read only) as in bench/filters.py. Each measurement runs in a fresh Python process so its peak
RSS (VmHWM) is its own:
  ours    dashboard.export's generator (server-side cursor, CHUNK rows at a time) written to /dev/null:
          rows, seconds, rows/s and peak RSS of the process (--tracemalloc: also the Python allocation peak)
  naive   pandas.read_sql of the same rows + DataFrame.to_csv into memory (what a quick export does)
  --http  also GET /export/cases.csv from the real server (login off) with a streaming client: bytes,
          seconds and the server process's peak RSS before and after
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.filters import URLS, served  # noqa: E402

QUERY = {"start": "2000-01-01", "end": "2100-01-01"}   # every case

OURS = r"""
import json, os, sys, time, tracemalloc
sys.path.insert(0, {root!r})
from data.store.engine import make_engine
from dashboard import export
from layers.filters import Filters
engine = make_engine({url!r})
f = Filters.from_query({query!r})
gen = {{"csv": lambda: export.csv_stream(engine, f, "zh"), "geojson": lambda: export.geojson_stream(engine, f, "zh")}}
if {trace!r}:
    tracemalloc.start()
t = time.perf_counter()
n = 0
if {fmt!r} == "xlsx":
    path = export.xlsx_file(engine, f, "zh"); size = os.path.getsize(path); os.unlink(path)
    n = -1  # rows are not counted for the workbook
else:
    size = 0
    with open(os.devnull, "w", encoding="utf-8") as out:
        for part in gen[{fmt!r}]():
            out.write(part); size += len(part.encode("utf-8")); n += part.count("\n") if {fmt!r} == "csv" else part.count('"Feature"')
secs = time.perf_counter() - t
peak = tracemalloc.get_traced_memory()[1]
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({{"rows": n - (1 if {fmt!r} == "csv" else 0), "secs": secs, "bytes": size, "tracemalloc_mb": peak / 2**20,
                  "rss_mb": int(hwm) / 1024}}))
"""

NAIVE = r"""
import io, json, sys, time, tracemalloc
sys.path.insert(0, {root!r})
import pandas as pd
from data.store.engine import make_engine
engine = make_engine({url!r})
tracemalloc.start()
t = time.perf_counter()
df = pd.read_sql("SELECT c.code, c.status, c.class_code, c.source_code, c.department_code, c.district_code,"
                 " c.street_code, c.grid_code, c.address, c.reported_at, c.registered_at, c.deadline_at,"
                 " c.closed_at, c.lon, c.lat FROM cases c", engine.connect())
buf = io.StringIO()
df.to_csv(buf, index=False)
secs = time.perf_counter() - t
peak = tracemalloc.get_traced_memory()[1]
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({{"rows": len(df), "secs": secs, "bytes": len(buf.getvalue().encode()), "tracemalloc_mb": peak / 2**20,
                  "rss_mb": int(hwm) / 1024}}))
"""


def run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def hwm(pid) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def http(url: str, port: int) -> dict:
    import requests
    with served(url, port) as (srv, base):
        before = hwm(srv.pid)
        t = time.perf_counter()
        size = lines = 0
        with requests.get(base + "/export/cases.csv", params=QUERY, stream=True, timeout=3600,
                          headers={"Accept-Encoding": "identity"}) as r:
            r.raise_for_status()
            for chunk in r.iter_content(1 << 16):
                size += len(chunk)
                lines += chunk.count(b"\n")
        return {"rows": lines - 1, "secs": time.perf_counter() - t, "bytes": size, "rss_before_mb": before,
                "rss_after_mb": hwm(srv.pid)}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="both", choices=("sqlite", "postgresql", "both"))
    ap.add_argument("--formats", default="csv")
    ap.add_argument("--http", action="store_true")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="also trace Python allocations in our export (2-3x slower; peak RSS is always printed)")
    ap.add_argument("--port", type=int, default=8792)
    a = ap.parse_args(argv)
    dbs = ("sqlite", "postgresql") if a.db == "both" else (a.db,)
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    print("| db | export | rows | s | rows/s | MB written | tracemalloc peak MB | peak RSS MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for db in dbs:
        url = URLS[db]
        for fmt in a.formats.split(","):
            r = run(OURS.format(root=str(ROOT), url=url, query=QUERY, fmt=fmt, trace=a.tracemalloc))
            rate = f"{r['rows'] / r['secs']:,.0f}" if r["rows"] > 0 else "—"
            print(f"| {db} | ours, streamed {fmt} | {r['rows']:,} | {r['secs']:.1f} | {rate} | {r['bytes'] / 2**20:.0f}"
                  f" | {r['tracemalloc_mb'] if a.tracemalloc else float('nan'):.1f} | {r['rss_mb']:.0f} |", flush=True)
        r = run(NAIVE.format(root=str(ROOT), url=url))
        print(f"| {db} | naive pandas to_csv in memory | {r['rows']:,} | {r['secs']:.1f} | {r['rows'] / r['secs']:,.0f}"
              f" | {r['bytes'] / 2**20:.0f} | {r['tracemalloc_mb']:.1f} | {r['rss_mb']:.0f} |", flush=True)
        if a.http:
            r = http(url, a.port)
            print(f"| {db} | HTTP GET /export/cases.csv (server RSS {r['rss_before_mb']:.0f} -> {r['rss_after_mb']:.0f} MB)"
                  f" | {r['rows']:,} | {r['secs']:.1f} | {r['rows'] / r['secs']:,.0f} | {r['bytes'] / 2**20:.0f} | — | — |",
                  flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
