"""The dashboard server: one Dash app on Flask, the health probe and the versioned static-layer URLs.

Layers are served as immutable, gzipped geobuf under `/layers/<name>.pbf?v=<version>`: the version comes
from the store's data versions, so a write changes the URL and browsers never need to revalidate.
"""
from __future__ import annotations

import gzip
import time
from pathlib import Path

import dash
from flask import Flask, Response, jsonify, redirect, request
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from dashboard.static_cache import IMMUTABLE
from data.store import meta as store_meta
from data.store.engine import kind
from data.store.schema import Base
from layers import cache

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"


def layer_url(name: str, version: str, variant: str = "wgs84") -> str:
    """The URL a page uses for a layer: versioned, so it can be cached forever."""
    suffix = "&crs=gcj02" if variant == "gcj02" else ""
    return f"/layers/{name}.pbf?v={version}{suffix}"


def health(engine: Engine) -> tuple[dict, int]:
    """Database kind, schema revision, demo flag and row counts; 503 when the store cannot be read."""
    from data.store.migrate import current, head
    body = {"status": "ok", "database": kind(engine)}
    try:
        with engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            tables = [t for t in list(Base.metadata.tables) + ["layer_cache"] if t in names]
            body["rows"] = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in sorted(tables)}
            body["demo"] = bool(store_meta.get(conn, "demo", False))
            body["data_notice"] = store_meta.get(conn, "data_notice")
            body["versions"] = store_meta.versions(conn)
        body["schema_revision"] = current(engine)
        body["schema_head"] = head()
        if body["schema_revision"] != body["schema_head"]:
            body["status"] = "schema_outdated"
            return body, 503
        return body, 200
    except Exception as exc:  # noqa: BLE001 - any failure to read the store is "unavailable"
        return {"status": "unavailable", "database": kind(engine),
                "error": f"database unreachable: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}, 503


def _register_routes(server: Flask, engine: Engine) -> None:
    from dashboard import api
    api.register(server, engine)  # /api/v1 and /open311/v2

    @server.get("/healthz")
    def healthz():
        body, code = health(engine)
        resp = jsonify(body)
        resp.status_code = code
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @server.get("/layers/<name>.pbf")
    def layer(name):
        variant = request.args.get("crs", "wgs84")
        if name not in cache.NAMES or variant not in cache.VARIANTS:
            return jsonify({"error": f"unknown layer {name!r} or crs {variant!r}",
                            "layers": list(cache.NAMES), "crs": list(cache.VARIANTS)}), 404
        try:
            blob = cache.get(engine, name, variant)
        except Exception as exc:  # noqa: BLE001
            return jsonify({"error": f"layer {name} unavailable: {type(exc).__name__}: {exc}"[:500]}), 503
        asked = request.args.get("v")
        if asked and asked != blob.version:
            # An old version is gone: send the browser to the current one (not cached, it moves again).
            resp = redirect(layer_url(name, blob.version, variant), code=302)
            resp.headers["Cache-Control"] = "no-store"
            return resp
        etag = f'"{blob.etag}"'
        headers = {"ETag": etag, "Vary": "Accept-Encoding",
                   "Cache-Control": IMMUTABLE if asked else "no-cache",
                   "X-Layer-Features": str(blob.features), "X-Layer-Version": blob.version}
        if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
            return Response(status=304, headers=headers)
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            body = blob.body_gz
        else:
            body = gzip.decompress(blob.body_gz)
        return Response(body, status=200, headers=headers, mimetype="application/x-protobuf")


class _Dash(dash.Dash):
    """Dash whose index page preloads what the first render will fetch.

    The layout and the callback graph: dash-renderer asks for them only once every bundle has been parsed
    (about 600 ms into a cold load), and the server then built the layout while the browser sat idle.
    Preloaded, the server builds it while the browser parses, and the renderer's fetch takes the preloaded
    response (same URL, mode and credentials; the Referer, which says which page and view, is the page's).
    On the map page, also what its first render fetches (map_page.preloads)."""

    def interpolate_index(self, **kwargs):
        from html import escape

        from dashboard import map_page, router
        prefix = self.config.requests_pathname_prefix
        wanted = [(f"{prefix}_dash-layout", "fetch"), (f"{prefix}_dash-dependencies", "fetch")]
        if router.is_map_page():
            wanted += map_page.preloads(self.engine, prefix)
        links = "".join(
            f'<link rel="preload" href="{escape(href)}" as="{kind}"'
            f'{" crossorigin" if kind == "fetch" else ""}>'
            for href, kind in wanted)
        kwargs["metas"] = kwargs.get("metas", "") + links
        from flask import has_request_context, request

        from dashboard import auth
        if has_request_context():
            lang = "en" if request.args.get("lang") == "en" else "zh"
            kwargs["app_entry"] = auth.user_badge_html(lang) + kwargs.get("app_entry", "")
        return super().interpolate_index(**kwargs)


def create_app(engine: Engine, auth: bool = True) -> dash.Dash:
    """The Dash app over one store; everything it serves (JS, CSS, icons) is local.

    auth=False (tests and tools only) serves without login and CSRF checks; headers and limits stay.
    """
    from dashboard import auth as access
    from dashboard import (compressed_static, export, faults, live, map_page, request_slots, router, scripts,
                           static_cache, workspace)
    scripts.trim()
    server = Flask(__name__)
    compressed_static.configure(server)
    app = _Dash(
        __name__, server=server, assets_folder=str(ASSETS), update_title=None, serve_locally=True,
        compress=True, suppress_callback_exceptions=True, title="城管一张图", **access.dash_options(),
    )
    app.engine = engine
    access.install(server, engine, enabled=auth)
    faults.install(server)
    static_cache.install(server)
    _register_routes(server, engine)
    export.register(server, engine)
    app.layout = router.layout(engine)   # the map page, the case workspace (/cases) or the wall (/wall)
    map_page.register(app, engine)
    workspace.register(app, engine)      # /cases and its photo route
    live.register(app, engine)
    router.mount_wall(app, engine)       # /wall: its own Dash app (dashboard/wall.py)
    # After every callback is registered: the CSP admits exactly Dash's inline scripts by their hashes.
    server.extensions["cgzt_auth"].script_hashes = app.csp_hashes()
    request_slots.install(server)        # last: around everything the server answers
    return app


def serve(engine: Engine, host: str = "127.0.0.1", port: int = 8050, seed_if_empty: bool = True,
          debug: bool = False) -> int:
    """Seed demo data into an empty store (saying so), build the layers, then serve."""
    with engine.connect() as conn:
        grids = conn.execute(text("SELECT count(*) FROM grids")).scalar()
    if grids == 0 and seed_if_empty:
        from data.demo.seed import seed
        print("store is empty: seeding DEMO data (scale 'demo'); the UI will say it is demo data", flush=True)
        t0 = time.perf_counter()
        report = seed(engine, scale="demo", progress=print)
        print(report.table(), flush=True)
        print(f"seeded in {time.perf_counter() - t0:.1f} s", flush=True)
        from data.users import create_demo_users
        with engine.begin() as conn:
            made = create_demo_users(conn)
        if made:
            print("DEMO users (passwords are shown this once; outside demo mode no built-in login exists):",
                  flush=True)
            for name, role, where, password in made:
                print(f"  {name:<16} {role:<10} {where:<12} {password}", flush=True)
    elif grids == 0:
        print("store is empty and --no-seed was given: the map will be blank", flush=True)
    with engine.connect() as conn:
        if not conn.execute(text("SELECT count(*) FROM users WHERE disabled_at IS NULL")).scalar():
            print("no users yet: add one with `python app.py users add NAME --role admin` (password on stdin)",
                  flush=True)
    cache.warm(engine, progress=lambda s: print(s, flush=True))
    app = create_app(engine)
    print(f"serving 城管一张图 on http://{host}:{port}/ ({kind(engine)})", flush=True)
    app.run(host=host, port=port, debug=debug, dev_tools_disable_version_check=True)
    return 0
