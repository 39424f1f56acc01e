"""The scripts the pages load: Dash's own, less what a command centre's browser never needs at load.

- The Babel polyfill. Command centres run a current Chromium, which needs no polyfill, and core-js 2 inside
  it replaces String.prototype.trim with a slow JavaScript version (it judges the native one non-standard)
  that plotly and dash-renderer call on every redraw: about 45 ms of every filter change and 180 ms of the
  first paint (CPU profiles in bench/README.md). The one thing Dash's bundles took from it, the global
  `regeneratorRuntime` of their lazy-chunk loader, is served from assets/vendor/regenerator-runtime.js.
- dash_table's bundle: no page uses DataTable (the tables are dash-ag-grid). It stays registered, so a
  request for it is still served.
"""
from __future__ import annotations


def trim() -> None:
    """Apply both (process-wide: every Dash app here is one of ours)."""
    drop_babel_polyfill()
    drop_dash_table()


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

