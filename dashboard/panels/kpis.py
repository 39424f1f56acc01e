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


def _change_parts(k, lang) -> tuple[str, str, str]:
    """(class, "vs previous" label, change text) of a tile's change line."""
    ch = k.change
    if ch is None:
        return "cgzt-kpi-ch", "", "—"
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
    return cls, t("vs_previous", lang) + " ", text


def _change(k, lang):
    cls, vs, text = _change_parts(k, lang)
    return html.Span([html.Small(vs), text] if vs else text, className=cls)


# A tile's leaves: (id suffix, prop, part). The tiles are built once; a filter change sets only the leaves
# that moved (`updates`): a new tree of ~60 components per change cost the browser ~120 ms (bench/README.md).
LEAVES = (("", "title", "label"), ("", "data-value", "value"), ("-label", "children", "label"),
          ("-num", "children", "num"), ("-sub", "children", "sub"), ("-ch", "className", "ch_class"),
          ("-vs", "children", "ch_vs"), ("-cht", "children", "ch_text"))


def parts(values: dict, lang: str) -> dict:
    """{key: {part: text}} of every tile: what `tiles` draws and `updates` compares."""
    out = {}
    for key in KPIS:
        k = values[key]
        sub = ""
        if key in ("close_rate", "ontime_rate", "occupancy") and k.den:
            sub = f" {k.num:,}/{k.den:,}"
        elif key == "avg_hours" and k.value is not None:   # the unit small, so the number fits a narrow tile
            sub = " " + t("hours", lang)
        cls, vs, text = _change_parts(k, lang)
        out[key] = {"label": t(f"kpi_{key}", lang), "value": "" if k.value is None else str(round(k.value, 4)),
                    "num": _number(key, k.value), "sub": sub, "ch_class": cls, "ch_vs": vs, "ch_text": text}
    return out


def tiles(p: dict) -> list:
    """The tiles of parts p; every leaf has an id so later changes reach it alone."""
    return [html.Div(className="cgzt-kpi", id=f"kpi-{key}", title=v["label"], **{"data-value": v["value"]}, children=[
        html.Div(v["label"], className="cgzt-kpi-label", id=f"kpi-{key}-label"),
        html.Div([html.Span(v["num"], className="cgzt-kpi-num", id=f"kpi-{key}-num"),
                  html.Small(v["sub"], id=f"kpi-{key}-sub")], className="cgzt-kpi-value"),
        html.Span([html.Small(v["ch_vs"], id=f"kpi-{key}-vs"), html.Span(v["ch_text"], id=f"kpi-{key}-cht")],
                  className=v["ch_class"], id=f"kpi-{key}-ch")]) for key, v in p.items()]


def updates(old: dict, new: dict) -> dict:
    """{component id: {prop: value}} that turn tiles drawn for parts `old` into tiles of parts `new`."""
    out: dict = {}
    for key, v in new.items():
        was = old.get(key, {})
        for suffix, prop, part in LEAVES:
            if was.get(part) != v[part]:
                out.setdefault(f"kpi-{key}{suffix}", {})[prop] = v[part]
    return out
