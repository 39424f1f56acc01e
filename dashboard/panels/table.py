"""The case table: dash-ag-grid with the infinite row model, paged and sorted on the server (layers.table).

A filter change purges the grid's cache from a clientside callback (the grid asks again, with the new
state read on the server); a click on a row flies the map to the case; a case clicked on the map is pinned
at the top of the table, selected.
"""
from __future__ import annotations

import dash_ag_grid as dag
from dash import html

from dashboard.i18n import t

BLOCK = 100


def column_defs(lang: str) -> list:
    i = 1 if lang == "en" else 0
    from layers.table import COLUMNS, SORTABLE
    cols = ("code", "status", "overdue", "class", "department", "source", "reported_at", "deadline_at",
            "grid_code", "address")
    widths = {"code": 170, "status": 90, "overdue": 80, "reported_at": 165, "deadline_at": 165, "grid_code": 160}
    out = []
    for c in cols:
        d = {"field": c, "colId": c, "headerName": COLUMNS[c][i], "sortable": c in SORTABLE}
        if c in widths:
            d["width"] = widths[c]
        if c == "overdue":
            mark = "Overdue" if lang == "en" else "超期"
            d["valueFormatter"] = {"function": f"params.value ? '{mark}' : ''"}
        out.append(d)
    return out


# assets/map.css :root colours (--panel, --text, --bg, --line, --accent) on ag-grid's Quartz theme.
DARK = ("themeQuartz.withParams({backgroundColor: '#111a2b', foregroundColor: '#e6eef8', "
        "headerBackgroundColor: '#0b1220', oddRowBackgroundColor: '#0f1726', borderColor: '#24324a', "
        "accentColor: '#35b6ff', fontSize: 14})")


def layout(lang: str) -> html.Div:
    return html.Div(className="cgzt-table", children=[
        html.Div(className="cgzt-table-head", children=[
            html.Span(t("table", lang), id="t-table", className="cgzt-table-title"),
            html.Span("", id="table-total", className="cgzt-hint")]),
        dag.AgGrid(
            id="table", rowModelType="infinite", columnDefs=column_defs(lang),
            defaultColDef={"resizable": True, "sortable": False},
            getRowId="params.data.id + ''",  # ag-grid wants a string (it warns and casts a number)
            dashGridOptions={"cacheBlockSize": BLOCK, "maxBlocksInCache": 20, "rowSelection": {"mode": "singleRow",
                             "checkboxes": False, "enableClickSelection": True},
                             "rowHeight": 30, "headerHeight": 32, "infiniteInitialRowCount": 1,
                             # Only themeQuartz/Alpine/Balham/Material are in dash-ag-grid's function scope
                             # (a colour-scheme part there fails and leaves the grid white): the page's colours.
                             "theme": {"function": DARK}},
            getRowStyle={"styleConditions": [{"condition": "params.node.rowPinned",
                                              "style": {"backgroundColor": "#5a4a00", "fontWeight": "bold"}},
                                             {"condition": "params.data && params.data.overdue",
                                              "style": {"color": "#ff8080"}}]},
            style={"height": "100%", "width": "100%"}, className="cgzt-grid"),
    ])
