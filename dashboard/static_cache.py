"""Cache headers for the static files Dash serves without them, so a returning browser asks for nothing.

Why: under bench/load.py 28 of a map page load's ~39 requests were revalidations of static files: every
one a round trip through a request slot, and some costly. Dash leaves three kinds uncached:
- `/assets/<file>?m=<mtime>` (the wall's too): Flask answers `no-cache`. The URL carries the file's mtime,
  so a changed file is a new URL: these are immutable for a year.
- `/_favicon.ico?v=<dash version>`: the same, with Dash's version in the URL.
- Dash's lazy chunks (`async-*.js`, `plotly.min.js`), requested without a fingerprint: Dash reads and
  hashes the whole file to answer even a 304 (plotly.min.js is 4.6 MB). Their ETag is kept per process, so
  a matching If-None-Match is answered 304 before Dash reads anything. They keep revalidating, because
  their URL does not change when the package does. (Dash's own check never matches a compressed answer's
  tag, `"<tag>:gzip"` as Flask-Compress sends it: the 304 came from Flask-Compress, after the read, the
  hash and a cache lookup of the compressed body.)
"""
from __future__ import annotations

import threading

from flask import Response, request

IMMUTABLE = "public, max-age=31536000, immutable"
ASSETS = ("/assets/", "/wall/assets/")
SUITES = ("/_dash-component-suites/", "/wall/_dash-component-suites/")
FAVICONS = ("/_favicon.ico", "/wall/_favicon.ico")


def _versioned(path: str, args) -> bool:
    return (path.startswith(ASSETS) and "m" in args) or (path in FAVICONS and "v" in args)


def _bare(tag: str | None) -> str | None:
    """An ETag without Flask-Compress's `:<algorithm>` suffix."""
    if not tag:
        return None
    tag = tag.strip()
    if tag.endswith('"') and ":" in tag:
        head, _, alg = tag[:-1].rpartition(":")
        if alg in ("gzip", "br", "deflate", "zstd"):
            return head + '"'
    return tag


def install(server) -> None:
    etags: dict[str, str] = {}
    lock = threading.Lock()

    @server.before_request
    def _known_chunk():
        if request.method != "GET" or not request.path.startswith(SUITES):
            return None
        sent = request.headers.get("If-None-Match")
        with lock:
            tag = etags.get(request.path)
        if sent and tag and _bare(sent) == tag:
            return Response(status=304, headers={"ETag": sent.strip()})
        return None

    @server.after_request
    def _headers(resp):
        if request.method != "GET":
            return resp
        if _versioned(request.path, request.args) and resp.status_code in (200, 304):
            resp.headers["Cache-Control"] = IMMUTABLE
        elif request.path.startswith(SUITES) and resp.status_code == 200 and resp.headers.get("ETag"):
            with lock:
                etags[request.path] = _bare(resp.headers["ETag"])
        return resp


__all__ = ["install", "IMMUTABLE"]
