"""KPI tiles: the value, the previous period's and the change, coloured by whether the change is good.

The numbers come from layers.kpis (one definition each); this module only formats them.
"""
from __future__ import annotations

from dash import html

from dashboard.i18n import t
from layers.kpis import HIGHER_IS_BETTER, KPIS

RATES = ("close_rate", "ontime_rate", "occupancy")


def _number(key, v):
    """The figure without its unit (a tile shows the hours unit small beside it)."""
    if v is None:
        return "—"
    if key in RATES:
        return f"{v:.1f}%"
    if key == "avg_hours":
        return f"{v:.1f}"
    return f"{int(v):,}"


def _fmt(key, v, lang):
    return f"{_number(key, v)} {t('hours', lang)}" if key == "avg_hours" and v is not None else _number(key, v)


def _change(k, lang):
    ch = k.change
    if ch is None:
        return html.Span("—", className="cgzt-kpi-ch")
    good = HIGHER_IS_BETTER.get(k.key)
    cls = "cgzt-kpi-ch" + ("" if good is None or ch == 0 else (" up-good" if (ch > 0) == good else " up-bad"))
    arrow = "▲" if ch > 0 else ("▼" if ch < 0 else "＝")
    if k.key in RATES:
        text = f"{arrow} {abs(ch):.1f} pp"
    elif k.key == "avg_hours":
        text = f"{arrow} {abs(ch):.1f} {t('hours', lang)}"
    else:
        pct = f" ({ch / k.previous * 100:+.0f}%)" if k.previous else ""
        text = f"{arrow} {abs(int(ch)):,}{pct}"
    return html.Span([html.Small(t("vs_previous", lang) + " "), text], className=cls)


def tiles(values: dict, lang: str) -> list:
    out = []
    for key in KPIS:
        k = values[key]
        sub = None
        if key in ("close_rate", "ontime_rate") and k.den:
            sub = f"{k.num:,}/{k.den:,}"
        elif key == "occupancy" and k.den:
            sub = f"{k.num:,}/{k.den:,}"
        elif key == "avg_hours" and k.value is not None:   # the unit small, so the number fits a narrow tile
            sub = t("hours", lang)
        out.append(html.Div(className="cgzt-kpi", id=f"kpi-{key}", title=t(f"kpi_{key}", lang),
                            **{"data-value": "" if k.value is None else str(round(k.value, 4))}, children=[
            html.Div(t(f"kpi_{key}", lang), className="cgzt-kpi-label"),
            html.Div([html.Span(_number(key, k.value), className="cgzt-kpi-num"),
                      html.Small(" " + sub) if sub else None], className="cgzt-kpi-value"),
            _change(k, lang)]))
    return out
