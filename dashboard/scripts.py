"""The scripts the pages load: Dash's own, without the Babel polyfill.

Command centres run a current Chromium, which needs no polyfill, and core-js 2 inside it replaces
String.prototype.trim with a slow JavaScript version (it judges the native one non-standard) that plotly
and dash-renderer call on every redraw: about 45 ms of every filter change and 180 ms of the first paint
(CPU profiles in bench/README.md). The one thing Dash's bundles took from it, the global
`regeneratorRuntime` of their lazy-chunk loader, is served from assets/vendor/regenerator-runtime.js.
"""
from __future__ import annotations


def drop_babel_polyfill() -> None:
    """Remove the polyfill from Dash's script list (process-wide: every Dash app here is one of ours)."""
    from dash import _dash_renderer
    for dep in _dash_renderer._js_dist_dependencies:
        for key in ("relative_package_path", "external_url"):
            for mode, paths in dep.get(key, {}).items():
                dep[key][mode] = [p for p in paths if "polyfill" not in p]
