"""Which page a request gets: the wall for /wall and /wall/<adcode>, the case workspace for /cases (same
app, same login), the command map otherwise.

Why the wall is a second Dash app on the same Flask server, mounted at /wall/: the login hook
(dashboard/auth.py) exempts the token-authenticated path /wall, and a Dash app's own requests
(/_dash-layout, /_dash-update-component, its bundles and assets) live under its base path. Mounted at
/wall/, every request of the wall is under /wall, so it needs no login cookie and no CSRF header, and its
callback endpoint can run only wall callbacks (each checks the kiosk token): a wall token can never reach
the map page's callbacks, and a crafted request to /_dash-update-component still needs a login.

`layout(engine)` is the one layout function of both apps: it picks by the page's path (the Referer of
/_dash-layout, same origin), so a wall URL opened on either app shows the wall.
"""
from __future__ import annotations

from urllib.parse import quote, urlsplit

WALL_BASE = "/wall/"


def page_url() -> tuple[str, str]:
    """(path, query) of the page being rendered: the Referer for /_dash-layout, else the request itself."""
    from flask import has_request_context, request
    if not has_request_context():
        return "/", ""
    if request.path.rstrip("/").endswith("_dash-layout"):
        ref = urlsplit(request.referrer or "")
        return ref.path or "/", ref.query
    return request.path, request.query_string.decode("latin-1")


def is_map_page() -> bool:
    """Whether the page being rendered is the command map (not the wall, not the case workspace)."""
    from dashboard import wall, workspace
    path, _ = page_url()
    return not (wall.is_wall_path(path) or workspace.is_workspace_path(path))


def layout(engine):
    """The layout function: the wall for /wall paths, the case workspace for /cases, the map page otherwise."""
    from dash import html

    from dashboard import map_page, wall, workspace
    map_layout = map_page.make_layout(engine)

    def pick():
        from flask import has_request_context, request
        if has_request_context() and not request.path.rstrip("/").endswith("_dash-layout"):
            # Dash validates the layout on each worker's first request, whatever it is (/healthz, an API
            # call): rendering the map page there cost a whole page of queries, over 30 s at full scale on a
            # busy machine (gunicorn killed the workers). Pages are only ever rendered for /_dash-layout.
            return html.Div(id="layout-check")
        path, query = page_url()
        if wall.is_wall_path(path):
            return wall.layout(engine, path, query)
        if workspace.is_workspace_path(path):
            return workspace.layout(engine, query)
        return map_layout()
    return pick


def mount_wall(app, engine):
    """The wall app at /wall/ on app's server (same assets, same store), and /wall -> /wall/."""
    import dash
    from flask import redirect, request

    from dashboard import wall
    server = app.server
    wall_app = dash.Dash(
        "cgzt_wall", server=server, url_base_pathname=WALL_BASE, assets_folder=app.config.assets_folder,
        update_title=None, serve_locally=True, compress=True, suppress_callback_exceptions=True,
        title="城管一张图 · 大屏")
    wall_app.layout = layout(engine)
    wall.register(wall_app, engine)

    @server.get("/wall")
    def wall_no_slash():
        q = request.query_string.decode("latin-1")
        return redirect(WALL_BASE + ("?" + q if q else ""), code=302)

    @server.get("/wall/layers/<name>.pbf")
    def wall_layer(name):
        """The map's static layers for a wall: the same handler as /layers, behind the kiosk token."""
        from flask import jsonify
        why = wall.check(engine, request.args.get("token", ""))
        if why:
            return jsonify({"error": why}), 401
        return server.view_functions["layer"](name)
    return wall_app


def wall_layer_url(url: str, token: str) -> str:
    """A /layers URL rewritten for the wall: under /wall (token path) with the token."""
    return "/wall" + url + ("&" if "?" in url else "?") + "token=" + quote(token or "", safe="")
