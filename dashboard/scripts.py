"""The scripts the pages load: Dash's own, less what a command centre's browser never needs at load.

- The Babel polyfill. Command centres run a current Chromium, which needs no polyfill, and core-js 2 inside
  it replaces String.prototype.trim with a slow JavaScript version (it judges the native one non-standard)
  that plotly and dash-renderer call on every redraw: about 45 ms of every filter change and 180 ms of the
  first paint (CPU profiles in bench/README.md). The one thing Dash's bundles took from it, the global
  `regeneratorRuntime` of their lazy-chunk loader, is served from assets/vendor/regenerator-runtime.js.
- dash_table's bundle: no page uses DataTable (the tables are dash-ag-grid). It stays registered, so a
  request for it is still served.
- dash_ag_grid's 1.3 MB bundle is not run at load: the map page mounts its table after the map has drawn,
  and parsing the bundle first delayed that drawing. Its script tag keeps Dash's fingerprinted URL but gets
  a type the browser neither fetches nor runs; assets/lazy_ag_grid.js loads it the first time a grid renders
  and stands in for the component until then (without holding back any callback).
"""
from __future__ import annotations

LAZY_TYPE = "text/x-cgzt-lazy"  # assets/lazy_ag_grid.js finds the tag by its id and reads its src


def trim() -> None:
    """Apply all three (process-wide: every Dash app here is one of ours)."""
    drop_babel_polyfill()
    drop_dash_table()
    lazy_ag_grid()


def drop_babel_polyfill() -> None:
    from dash import _dash_renderer
    for dep in _dash_renderer._js_dist_dependencies:
        for key in ("relative_package_path", "external_url"):
            for mode, paths in dep.get(key, {}).items():
                dep[key][mode] = [p for p in paths if "polyfill" not in p]


def drop_dash_table() -> None:
    from dash import dash_table
    for res in dash_table._js_dist:
        if res.get("relative_package_path", "").endswith("bundle.js"):
            res["dynamic"] = True  # registered and served, not in the page's scripts


def lazy_ag_grid() -> None:
    import dash_ag_grid
    for res in dash_ag_grid._js_dist:
        if res.get("relative_package_path") == "dash_ag_grid.min.js":
            res["attributes"] = {"type": LAZY_TYPE, "id": "cgzt-lazy-dash_ag_grid"}
