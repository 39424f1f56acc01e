"""At most CGZT_REQUEST_SLOTS ordinary requests at once in a process; the live streams are not counted.

Why: gunicorn's threaded workers (gunicorn.conf.py) give each process 150 threads so that open map pages can
hold their live streams. Without a limit the same threads would also run 150 callbacks at once: each one
slower (they share one interpreter lock), every one holding a database connection for longer, and the
connection pool (15 per process) ran dry under bench/load.py (978 waits over 10 s, answered 503). With a few
slots a process works like the sync workers did, a few requests at a time in arrival order, while a stream
waits for news without a slot. Unset or 0 (the development server, tests): no limit.
"""
from __future__ import annotations

import os
import threading

from werkzeug.wsgi import ClosingIterator


class RequestSlots:
    """WSGI middleware: a request takes a slot until its response has been sent (its iterable closed), so
    a streamed export keeps its slot while it streams, as it kept a whole sync worker before."""

    def __init__(self, app, slots: int, exempt: tuple[str, ...]):
        self.app, self.exempt = app, exempt
        self.sem = threading.BoundedSemaphore(slots)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith(self.exempt):
            return self.app(environ, start_response)
        self.sem.acquire()
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self.sem.release()
            raise
        return ClosingIterator(body, [self.sem.release])


def install(server) -> None:
    """Wrap the Flask server's WSGI app when CGZT_REQUEST_SLOTS is set (gunicorn.conf.py sets it)."""
    from dashboard.live_stream import STREAM_PATH
    slots = int(os.environ.get("CGZT_REQUEST_SLOTS", "0") or 0)
    if slots > 0:
        server.wsgi_app = RequestSlots(server.wsgi_app, slots, (STREAM_PATH,))
