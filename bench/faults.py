"""Fault runs under load: PostgreSQL restarted, then a gunicorn worker killed, each in the middle of a load.

    python bench/faults.py [--minutes 2] [--viewers 200] [--liaisons 20] [--workers 3] [--only pg-restart|kill-worker]

Each run is bench/load.py with --fault (see its docstring for what is measured and checked) and no naive
baseline: a fresh clone of the full PostgreSQL store, gunicorn, the recorded browser requests replayed by
the simulated users, and a writer whose 201s are checked against the store afterwards (pg-restart). Other
arguments go to bench/load.py unchanged. The PostgreSQL restart hits every database of the local cluster:
run it when nobody else's tests use it. Exit status 1 when a case was lost or doubled.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=2)
    ap.add_argument("--only", choices=["pg-restart", "kill-worker"])
    a, rest = ap.parse_known_args(argv)
    bad = 0
    for fault in ([a.only] if a.only else ["pg-restart", "kill-worker"]):
        print(f"\n## fault {fault}\n", flush=True)
        out = subprocess.run([sys.executable, str(HERE / "load.py"), "--fault", fault, "--minutes", str(a.minutes),
                              "--naive-minutes", "0", *rest], capture_output=True, text=True)
        sys.stdout.write(out.stdout)
        sys.stderr.write(out.stderr[-4000:])
        if out.returncode != 0 or "lost 0, doubled 0" not in out.stdout and fault == "pg-restart":
            bad = 1
    return bad


if __name__ == "__main__":
    sys.exit(main())
