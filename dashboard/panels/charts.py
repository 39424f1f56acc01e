"""The chart column: one dcc.Graph per chart of layers.charts, with clicks feeding the one filter.

The graphs enter the page after the map has drawn and are rebuilt with their figures per filter; a click
goes through the `chart-click` store to the page's state (layers.charts.figures builds the figures). Plotly is served by Dash from the local bundle; MathJax stays
off (mathjax=False) and no chart type that needs topojson is used, so nothing is fetched from a CDN.
"""
from __future__ import annotations

from dash import dcc

from dashboard.i18n import t
from layers.charts import STAGES, STAGE_STATUSES

CHARTS = ("timeline", "majors", "minors", "funnel", "departments", "streets")
GRAPH_CONFIG = {"displaylogo": False, "displayModeBar": False, "responsive": False}
_TITLE_KEYS = ("timeline_hour", "timeline_day", "current", "previous", "majors", "minors", "funnel",
               "departments", "streets") + tuple(f"stage_{s}" for s in STAGES)


def titles(lang: str) -> dict:
    return {k: t("chart_" + k, lang) for k in _TITLE_KEYS}


def graphs(figs: dict) -> list:
    """The chart column's graphs with their figures (rebuilt per filter: the column mounts after the map)."""
    return [dcc.Graph(id=f"ch-{c}", figure=figs[c], config=GRAPH_CONFIG, mathjax=False, className="cgzt-chart")
            for c in CHARTS]


def click_to_filter(chart: str, click: dict | None, state: dict) -> dict | None:
    """The new state a click on `chart` asks for (a second click on the same value clears it), or None."""
    from dashboard.page_state import with_area
    if not click or not click.get("points"):
        return None
    cd = click["points"][0].get("customdata")
    if isinstance(cd, list):
        cd = cd[0] if cd else None
    if cd is None:
        return None
    toggle = lambda key: dict(state, **{key: [] if state.get(key) == [cd] else [cd]})  # noqa: E731
    if chart == "majors":
        return dict(toggle("majors"), classes=[])
    if chart == "minors":
        return toggle("classes")
    if chart == "departments":
        return toggle("departments")
    if chart == "funnel":
        statuses = list(STAGE_STATUSES.get(cd, ()))
        return dict(state, statuses=[] if state.get("statuses") == statuses else statuses)
    if chart == "streets":
        return with_area(state, "street", str(cd))
    if chart == "timeline":
        from datetime import datetime, timedelta
        start = datetime.fromisoformat(str(cd))
        hourly = start.minute == 0 and (state.get("range") == "today" or start.hour != 0)
        step = timedelta(hours=1) if hourly and state.get("range") in ("today",) else timedelta(days=1)
        if state.get("range") == "custom" and state.get("start") and state.get("end"):
            span = datetime.fromisoformat(state["end"]) - datetime.fromisoformat(state["start"])
            step = timedelta(hours=1) if span <= timedelta(days=2) else timedelta(days=1)
        fmt = (lambda d: d.strftime("%Y-%m-%d") if step.days else d.isoformat(timespec="minutes"))  # noqa: E731
        return dict(state, range="custom", start=fmt(start), end=fmt(start + step))
    return None
