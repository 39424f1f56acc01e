"""Compressed copies of the static files, made once per process instead of on every request.

Why: Flask-Compress (Dash's compress=True) compresses each response as it is sent. For Dash's bundles (about
4 MB of JavaScript on a first page load, dash_ag_grid alone 1.3 MB) that cost ~160 ms of CPU per cold page
load, in the request path of the first paint (bench/map_paint.py). Static files do not change while a
process runs (a deploy restarts it), so their compressed bodies are kept, keyed by algorithm and full path
(Dash's bundle names carry a version and mtime, /assets/ URLs an ?m=mtime). Every other response (callbacks,
layers, pages, exports) gets key None, which this cache never stores: it is compressed as before.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from flask import Request

from dashboard.static_cache import ASSETS, SUITES

PREFIXES = SUITES + ASSETS
LIMIT_BYTES = 64 * 1024 * 1024


def key(request: Request) -> str | None:
    if request.method == "GET" and request.path.startswith(PREFIXES):
        return request.full_path
    return None


class Cache:
    """The backend Flask-Compress asks with get/set("<algorithm>;<key>"); least recently used out first."""

    def __init__(self, limit: int = LIMIT_BYTES):
        self.limit, self.size, self.data, self.lock = limit, 0, OrderedDict(), threading.Lock()

    def get(self, k: str):
        if k.endswith(";None"):
            return None
        with self.lock:
            v = self.data.get(k)
            if v is not None:
                self.data.move_to_end(k)
            return v

    def set(self, k: str, v: bytes) -> None:
        if k.endswith(";None") or len(v) > self.limit:
            return
        with self.lock:
            old = self.data.pop(k, None)
            self.size -= len(old) if old is not None else 0
            self.data[k] = v
            self.size += len(v)
            while self.size > self.limit:
                _, dropped = self.data.popitem(last=False)
                self.size -= len(dropped)


def configure(server) -> None:
    """Before Dash(server=..., compress=True) builds Flask-Compress, which reads these settings once."""
    cache = Cache()
    server.config["COMPRESS_CACHE_KEY"] = key
    server.config["COMPRESS_CACHE_BACKEND"] = lambda: cache
