"""gunicorn's settings for `gunicorn dashboard.wsgi:server` (read from the working directory; flags override).

Why threaded workers: each open map page holds one Server-Sent Events stream (dashboard/live_stream.py), and
a stream holds a thread for as long as the page is open. A sync worker would be taken by its first page.
Threads block on the stream's queue or the store, so 150 of them cost little CPU; the CPU-bound share of the
work is spread over the processes (cores + 1).
"""
import multiprocessing
import os

workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
worker_class = "gthread"
threads = int(os.environ.get("CGZT_THREADS", "150"))
# A worker's first request runs Dash's layout validation: tens of seconds at full scale on a busy machine.
timeout = 120
# Idle keep-alive connections are kept longer than clients keep theirs (nginx's default 75 s), so a client
# reusing a connection never meets one the server has just closed (bench/load.py saw a few such resets at
# gunicorn's default of 2 s).
keepalive = 75


def on_starting(server):
    """A process holds at most CGZT_MAX_STREAMS streams: its threads less a reserve for the pages' other
    requests (beyond it the stream is refused with 503 and Retry-After, and the page retries, landing on
    whichever process accepts). Set here, from the thread count in effect, flags included. The other
    requests run at most CGZT_REQUEST_SLOTS at a time per process (dashboard/request_slots.py)."""
    n = server.cfg.threads if server.cfg.worker_class_str == "gthread" else 0
    os.environ.setdefault("CGZT_MAX_STREAMS", str(max(0, n - max(4, n // 5))))
    os.environ.setdefault("CGZT_REQUEST_SLOTS", "2")
