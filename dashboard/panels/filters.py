"""The filter panel: controls whose values mirror the page state (dashboard/page_state.py).

CONTROLS lists (component id, prop, state key) once; the layout, the sync callback's outputs and
`values(state)` all follow it, so adding a filter is one line here plus its option list.
"""
from __future__ import annotations

from datetime import date, timedelta

from dash import dcc, html

from dashboard.i18n import status_name, t
from dashboard.page_state import EXTRA_KEYS, RANGES, area
from data.statuses import BERTH_STATES, BERTH_TYPES, SETBACK_MODES, SETBACK_USES, STATUSES

# (id, prop) the sync callback writes, in this order (see values()).
CONTROLS = (("f-range", "value"), ("f-dates", "start_date"), ("f-dates", "end_date"), ("f-dates-wrap", "style"),
            ("f-district", "value"), ("f-street", "value"), ("f-street", "options"), ("f-source", "value"),
            ("f-major", "value"), ("f-minor", "value"), ("f-minor", "options"), ("f-status", "value"),
            ("f-department", "value"), ("f-department", "options"), ("f-overdue", "value"),
            ("f-btype", "value"), ("f-bstate", "value"), ("f-smode", "value"), ("f-suse", "value"))
# Inputs: control id -> state key (the sync callback maps a changed control back into the state).
INPUTS = (("f-range", "value"), ("f-dates", "start_date"), ("f-dates", "end_date"), ("f-district", "value"),
          ("f-street", "value"), ("f-source", "value"), ("f-major", "value"), ("f-minor", "value"),
          ("f-status", "value"), ("f-department", "value"), ("f-overdue", "value"), ("f-btype", "value"),
          ("f-bstate", "value"), ("f-smode", "value"), ("f-suse", "value"))
KEY_OF = {"f-source": "sources", "f-major": "majors", "f-minor": "classes", "f-status": "statuses",
          "f-department": "departments", "f-btype": "btype", "f-bstate": "bstate", "f-smode": "smode",
          "f-suse": "suse"}
# Texts the language switch changes: (id, prop) -> function(ref, lang).
LABELS = ("h-filters", "l-range", "l-district", "l-street", "l-source", "l-major", "l-minor", "l-status",
          "l-department", "l-berth-type", "l-berth-state", "l-setback-mode", "l-setback-use", "f-reset")
_LABEL_KEYS = ("filters", "f_range", "f_district", "f_street", "f_source", "f_major", "f_minor", "f_status",
               "f_department", "f_berth_type", "f_berth_state", "f_setback_mode", "f_setback_use", "reset")


def _pick(row, lang, i_zh=1, i_en=2):
    return (row[i_en] or row[i_zh]) if lang == "en" else row[i_zh]


def options(ref: dict, state: dict, lang: str) -> dict:
    """Option lists for every control, in `lang`; streets and departments follow the chosen district,
    minor classes the chosen major classes (the cascade)."""
    district, _ = area(state)
    majors = set(state.get("majors") or [])
    pair = lambda table: [{"label": v[1] if lang == "en" else v[0], "value": k} for k, v in table.items()]  # noqa: E731
    return {
        "f-range": [{"label": t(f"range_{r}", lang), "value": r} for r in RANGES],
        "f-district": [{"label": _pick(r, lang), "value": r[0]} for r in ref["districts"]],
        "f-street": [{"label": _pick(r, lang), "value": r[0]} for r in ref["streets"]
                     if district and r[0].startswith(district)],
        "f-source": [{"label": _pick(r, lang), "value": r[0]} for r in ref["sources"]],
        "f-major": [{"label": _pick(r, lang), "value": r[0]} for r in ref["majors"]],
        "f-minor": [{"label": _pick(r, lang), "value": r[0]} for r in ref["classes"] if not majors or r[3] in majors],
        "f-status": [{"label": status_name(s, lang), "value": s} for s in STATUSES],
        "f-department": [{"label": _pick(r, lang), "value": r[0]} for r in ref["departments"]
                         if not district or r[3] in (None, district, "330200")],
        "f-overdue": [{"label": t("f_overdue", lang), "value": "1"}],
        "f-btype": pair(BERTH_TYPES), "f-bstate": pair(BERTH_STATES),
        "f-smode": pair(SETBACK_MODES), "f-suse": pair(SETBACK_USES),
    }


def _dates(state):
    if state.get("range") != "custom" or not state.get("start"):
        return None, None, {"display": "none"}
    start = date.fromisoformat(state["start"][:10])
    end = date.fromisoformat(state["end"][:10])
    if state["end"][10:].strip("T0:") == "":  # an exclusive midnight end shows as the day before
        end -= timedelta(days=1)
    return start.isoformat(), max(start, end).isoformat(), {}


def values(ref: dict, state: dict, lang: str) -> list:
    """Values for CONTROLS, in order, from a state."""
    district, street = area(state)
    opts = options(ref, state, lang)
    start, end, style = _dates(state)
    return [state["range"], start, end, style, district, street, opts["f-street"], state["sources"],
            state["majors"], state["classes"], opts["f-minor"], state["statuses"], state["departments"],
            opts["f-department"], ["1"] if state["overdue_only"] else [], state["btype"], state["bstate"],
            state["smode"], state["suse"]]


def label_values(lang: str) -> list:
    return [t(k, lang) for k in _LABEL_KEYS]


def _row(label_id, text, control):
    return html.Div(className="cgzt-frow", children=[html.Label(text, id=label_id), control])


def layout(ref: dict, state: dict, lang: str) -> html.Div:
    opts = options(ref, state, lang)
    v = dict(zip(CONTROLS, values(ref, state, lang)))
    labels = dict(zip(LABELS, label_values(lang)))
    multi = lambda i: dcc.Dropdown(id=i, options=opts[i], value=v[(i, "value")], multi=True,  # noqa: E731
                                   placeholder=t("all", lang), className="cgzt-dd")
    checks = lambda i: dcc.Checklist(id=i, options=opts[i], value=v[(i, "value")], inline=True,  # noqa: E731
                                     className="cgzt-checks")
    return html.Div(id="filters", className="cgzt-filters", children=[
        html.Div(className="cgzt-fhead", children=[
            html.H3(labels["h-filters"], id="h-filters"),
            html.Button(labels["f-reset"], id="f-reset", className="cgzt-btn cgzt-btn-small", n_clicks=0)]),
        _row("l-range", labels["l-range"], dcc.RadioItems(id="f-range", options=opts["f-range"],
                                                          value=v[("f-range", "value")], inline=True,
                                                          className="cgzt-checks")),
        html.Div(id="f-dates-wrap", style=v[("f-dates-wrap", "style")], children=[
            dcc.DatePickerRange(id="f-dates", start_date=v[("f-dates", "start_date")],
                                end_date=v[("f-dates", "end_date")], display_format="YYYY-MM-DD",
                                minimum_nights=0)]),
        _row("l-district", labels["l-district"], dcc.Dropdown(
            id="f-district", options=opts["f-district"], value=v[("f-district", "value")], clearable=True,
            placeholder=t("city", lang), className="cgzt-dd")),
        _row("l-street", labels["l-street"], dcc.Dropdown(
            id="f-street", options=opts["f-street"], value=v[("f-street", "value")], clearable=True,
            placeholder=t("all", lang), className="cgzt-dd")),
        _row("l-source", labels["l-source"], multi("f-source")),
        _row("l-major", labels["l-major"], multi("f-major")),
        _row("l-minor", labels["l-minor"], multi("f-minor")),
        _row("l-status", labels["l-status"], multi("f-status")),
        _row("l-department", labels["l-department"], multi("f-department")),
        dcc.Checklist(id="f-overdue", options=opts["f-overdue"], value=v[("f-overdue", "value")],
                      className="cgzt-checks"),
        _row("l-berth-type", labels["l-berth-type"], checks("f-btype")),
        _row("l-berth-state", labels["l-berth-state"], checks("f-bstate")),
        _row("l-setback-mode", labels["l-setback-mode"], checks("f-smode")),
        _row("l-setback-use", labels["l-setback-use"], checks("f-suse")),
    ])


__all__ = ["CONTROLS", "INPUTS", "KEY_OF", "LABELS", "layout", "values", "options", "label_values",
           "EXTRA_KEYS"]
