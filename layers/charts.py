"""Chart data and plotly figures for the side panels, built on the server from the one filter.

Why server-side figures: the browser gets a few hundred numbers per chart (no case rows), and every chart
is summed from the two breakdowns of layers.breakdown (through layers.filters.where, rates as in
layers.metrics) that the KPI tiles read too. Each figure carries `customdata` with the
filter value a click sets (cross-filtering), so the page maps a click to a filter without knowing the chart.

Charts
timeline     cases reported per hour (periods of 2 days or less) or per day, beside the previous period
             (left out when the store's cases begin after it: unrecorded, not zero, as in layers.kpis)
majors       cases by major class (click: majors=<code>)
minors       the top minor classes (click: classes=<code>)
funnel       reported -> registered -> dispatched -> handled -> closed, of the cases reported in the period,
             by the furthest stage their status shows (click: statuses of that stage)
departments  departments ranked by 按期结案率 in the metrics colour bands (click: departments=<code>)
streets      streets ranked by 按期结案率 (click: street=<code>)
"""
from __future__ import annotations

from sqlalchemy import select

from data.store.schema import CaseClass, Department, Street
from layers import breakdown
from layers.filters import Filters
from layers.kpis import cases_reach_back, rows
from layers.metrics import band_of
TOP_MINORS = 12
TOP_RANKED = 15

# Furthest stage a status shows (rejected and reported stop at the first). parked is a side state of a
# registered case; rework went through handling and back, so it counts as handled.
STAGES = ("reported", "registered", "dispatched", "handled", "closed")
_STAGE_OF = {"reported": 0, "rejected": 0, "registered": 1, "parked": 1, "dispatched": 2, "returned": 2,
             "handling": 2, "handled": 3, "verifying": 3, "rework": 3, "closed": 4}
STAGE_STATUSES = {s: tuple(k for k, v in _STAGE_OF.items() if v == i) for i, s in enumerate(STAGES)}

# Figures are plain dicts: plotly.graph_objects validated every property and expanded the plotly_dark
# template into each figure (~270 ms of CPU per filter change for six charts, and ~10 KB of template per
# figure on the wire). The dark look is these few properties.
_AXIS = dict(gridcolor="#283442", linecolor="#506784", zerolinecolor="#283442", tickcolor="#506784", automargin=True)
_LAYOUT = dict(paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", margin=dict(l=8, r=8, t=30, b=8),
               font=dict(size=12, color="#f2f5fa"), height=230, showlegend=False, xaxis=_AXIS, yaxis=_AXIS,
               hoverlabel=dict(align="left"))


def _data(conn, f, now, data):
    return data or rows(conn, f, now)


def timeline(conn, f: Filters, now=None, data=None) -> dict:
    """{hourly, x (bucket starts of the period), current [counts], previous [counts of the same offsets], or
    None when the store does not reach back to the previous period}."""
    rep, _ = _data(conn, f, now, data)
    is_hourly = breakdown.hourly(f)
    per = ({}, {})
    for p, k, _, _, n in rep:
        per[p][k] = per[p].get(k, 0) + n
    xs = breakdown.buckets(f)
    shift = f.end - f.start
    return {"hourly": is_hourly, "x": xs,
            "current": [per[0].get(breakdown.bucket_key(x, is_hourly), 0) for x in xs],
            "previous": [per[1].get(breakdown.bucket_key(x - shift, is_hourly), 0) for x in xs]
            if cases_reach_back(conn, f.start - shift) else None}


def by_class(conn, f: Filters, now=None, data=None) -> dict:
    """{'majors': [(code, name, name_en, n)], 'minors': [(code, name, name_en, major, n)]}, biggest first."""
    rep, _ = _data(conn, f, now, data)
    cc = CaseClass.__table__.c
    per: dict[str, int] = {}
    for p, _, cls, _, n in rep:
        if p == 0:
            per[cls] = per.get(cls, 0) + n
    meta = {r.code: r for r in conn.execute(select(cc.code, cc.name, cc.name_en, cc.major_code, cc.major_name,
                                                   cc.major_name_en))}
    majors: dict[str, list] = {}
    minors = []
    for code, n in per.items():
        m = meta.get(code)
        if m is None:
            continue
        acc = majors.setdefault(m.major_code, [m.major_code, m.major_name, m.major_name_en, 0])
        acc[3] += int(n)
        minors.append((code, m.name, m.name_en, m.major_code, int(n)))
    return {"majors": sorted((tuple(v) for v in majors.values()), key=lambda r: (-r[3], r[0])),
            "minors": sorted(minors, key=lambda r: (-r[4], r[0]))}


def funnel(conn, f: Filters, now=None, data=None) -> list[tuple[str, int]]:
    """[(stage, cases that reached it)] for the cases reported in the period (see STAGES)."""
    rep, _ = _data(conn, f, now, data)
    reached = [0] * len(STAGES)
    for p, _, _, status, n in rep:
        if p == 0:
            for i in range(_STAGE_OF.get(status, 0) + 1):
                reached[i] += n
    return list(zip(STAGES, reached))


def _ranked(groups: dict, names: dict) -> list:
    out = []
    for code, (num, den) in groups.items():
        if den:
            n = names.get(code)
            out.append((code, n.name if n else code, (n.name_en or n.name) if n else code, num, den,
                        100.0 * num / den))
    return sorted(out, key=lambda r: (-r[5], -r[4], r[0]))


def departments(conn, f: Filters, now=None, data=None) -> list[tuple[str, str, str, int, int, float]]:
    """[(code, name, name_en, on time, due, 按期结案率 %)] best first, departments with something due."""
    _, due = _data(conn, f, now, data)
    d = Department.__table__.c
    groups: dict[str, list] = {}
    for p, _, dep, _, o, n, _ in due:
        if p == 0 and dep is not None:
            g = groups.setdefault(dep, [0, 0])
            g[0] += o
            g[1] += n
    return _ranked(groups, {r.code: r for r in conn.execute(select(d.code, d.name, d.name_en))})


def streets(conn, f: Filters, now=None, data=None) -> list[tuple[str, str, str, int, int, float]]:
    """Like departments, per street (the same counts metrics.counts('ontime_rate', 'street') gives)."""
    _, due = _data(conn, f, now, data)
    s = Street.__table__.c
    groups: dict[str, list] = {}
    for p, street, _, _, o, n, _ in due:
        if p == 0:
            g = groups.setdefault(street, [0, 0])
            g[0] += o
            g[1] += n
    return _ranked(groups, {r.code: r for r in conn.execute(select(s.code, s.name, s.name_en))})


# ------------------------------------------------------------------------------------------ figures

def _fig(title: str, traces: list, xaxis: dict | None = None, yaxis: dict | None = None, **layout) -> dict:
    return {"data": traces, "layout": {**_LAYOUT, **layout, "title": dict(text=title, x=0.01, font=dict(size=14)),
                                       "xaxis": {**_AXIS, **(xaxis or {})}, "yaxis": {**_AXIS, **(yaxis or {})}}}


def timeline_figure(data: dict, lang: str, titles: dict) -> dict:
    fmt = "%m-%d %H:00" if data["hourly"] else "%m-%d"
    xs = [x.strftime(fmt) for x in data["x"]]
    traces = [dict(type="bar", x=xs, y=data["current"], name=titles["current"], marker=dict(color="#35b6ff"),
                   customdata=[x.isoformat() for x in data["x"]])]
    if data["previous"] is not None:
        traces.append(dict(type="scatter", x=xs, y=data["previous"], name=titles["previous"], mode="lines",
                           line=dict(color="#f6c343", width=2), hoverinfo="y"))
    return _fig(titles["timeline_hour" if data["hourly"] else "timeline_day"], traces,
                xaxis=dict(type="category", nticks=8), showlegend=True,
                legend=dict(orientation="h", y=1.12, x=1, xanchor="right"))


def majors_figure(data: dict, lang: str, titles: dict) -> dict:
    en = lang == "en"
    rows = data["majors"]
    return _fig(titles["majors"], [dict(
        type="pie", labels=[r[2] if en else r[1] for r in rows], values=[r[3] for r in rows],
        customdata=[r[0] for r in rows], hole=0.45, sort=False, textinfo="percent", textposition="inside")])


def minors_figure(data: dict, lang: str, titles: dict) -> dict:
    en = lang == "en"
    rows = data["minors"][:TOP_MINORS][::-1]
    return _fig(titles["minors"], [dict(
        type="bar", y=[r[2] if en else r[1] for r in rows], x=[r[4] for r in rows], orientation="h",
        customdata=[r[0] for r in rows], marker=dict(color="#4fb3ff"))], yaxis=dict(automargin=True), height=280)


def funnel_figure(data: list, lang: str, titles: dict) -> dict:
    return _fig(titles["funnel"], [dict(
        type="funnel", y=[titles[f"stage_{s}"] for s, _ in data], x=[n for _, n in data],
        customdata=[s for s, _ in data], textinfo="value+percent initial",
        marker=dict(color=["#4fc3f7", "#29b6f6", "#ffca28", "#d4e157", "#66bb6a"]))])


def ranked_figure(rows: list, lang: str, title: str) -> dict:
    """Horizontal bars of 按期结案率, coloured by the metrics rate bands; worst at the bottom."""
    en = lang == "en"
    rows = rows[:TOP_RANKED][::-1]
    return _fig(title, [dict(
        type="bar", y=[(r[2] if en else r[1]) for r in rows], x=[round(r[5], 1) for r in rows], orientation="h",
        customdata=[r[0] for r in rows], marker=dict(color=[band_of("ontime_rate", r[5])[1] for r in rows]),
        text=[f"{r[5]:.1f}% ({r[3]}/{r[4]})" for r in rows], textposition="auto")],
        xaxis=dict(range=[0, 100]), yaxis=dict(automargin=True), height=max(180, 40 + 18 * len(rows)))


def all_data(conn, f: Filters, now=None, data=None) -> dict:
    """Every chart's data for one filter (what the page and the bench call); data as in kpis.compute."""
    data = _data(conn, f, now, data)
    return {"timeline": timeline(conn, f, now, data), "classes": by_class(conn, f, now, data),
            "funnel": funnel(conn, f, now, data), "departments": departments(conn, f, now, data),
            "streets": streets(conn, f, now, data)}


def figures(data: dict, lang: str, titles: dict) -> dict[str, dict]:
    return {"timeline": timeline_figure(data["timeline"], lang, titles),
            "majors": majors_figure(data["classes"], lang, titles),
            "minors": minors_figure(data["classes"], lang, titles),
            "funnel": funnel_figure(data["funnel"], lang, titles),
            "departments": ranked_figure(data["departments"], lang, titles["departments"]),
            "streets": ranked_figure(data["streets"], lang, titles["streets"])}


__all__ = ["timeline", "by_class", "funnel", "departments", "streets", "all_data", "figures", "STAGES",
           "STAGE_STATUSES"]
