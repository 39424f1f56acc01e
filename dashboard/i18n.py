"""Every user-visible string of the dashboard, Chinese first, English as the switch.

One table so translators (and tests) see all strings in one place; `t(key, lang)` falls back to Chinese.
"""
from data.statuses import BERTH_STATES, SETBACK_MODES, SETBACK_USES, STATUSES

LANGS = ("zh", "en")

STRINGS = {
    "title": ("城管一张图", "City Management Map"),
    "subtitle": ("宁波市城市管理指挥中心", "Ningbo City Management Command Centre"),
    "search_ph": ("网格编码 / 案件编号 / 街道名称", "Grid code / case code / street name"),
    "search_btn": ("定位", "Go"),
    "not_found": ("未找到：{q}", "Not found: {q}"),
    "layers": ("图层", "Layers"),
    "layer_boundaries": ("行政边界", "Boundaries"),
    "layer_grids": ("单元网格", "Unit grids"),
    "layer_cases": ("案件", "Cases"),
    "layer_berths": ("停车泊位", "Parking berths"),
    "layer_setbacks": ("退红空间", "Setback spaces"),
    "basemap": ("底图", "Basemap"),
    "base_offline": ("离线（无瓦片）", "Offline (no tiles)"),
    "base_osm": ("OpenStreetMap", "OpenStreetMap"),
    "base_tianditu": ("天地图", "Tianditu"),
    "base_amap": ("高德地图", "Amap"),
    "metric": ("网格指标", "Grid metric"),
    "metric_open": ("在办案件", "Open cases"),
    "metric_overdue": ("超期案件", "Overdue cases"),
    "metric_period": ("期间案件", "Cases in period"),
    "metric_close_rate": ("结案率", "Closure rate"),
    "metric_ontime_rate": ("按期结案率", "On-time closure rate"),
    "legend": ("图例", "Legend"),
    "no_value": ("无数据", "No data"),
    "details": ("详情", "Details"),
    "details_hint": ("点击地图上的网格、案件、泊位或退红空间查看详情。",
                     "Click a grid, case, berth or setback space on the map for details."),
    "grid": ("单元网格", "Unit grid"),
    "code": ("编码", "Code"),
    "community": ("社区", "Community"),
    "street": ("街道", "Street"),
    "district": ("区县", "District"),
    "inspector": ("监督员", "Inspector"),
    "area": ("面积", "Area"),
    "case": ("案件", "Case"),
    "class": ("类别", "Class"),
    "status": ("状态", "Status"),
    "department": ("处置部门", "Department"),
    "deadline": ("处置时限", "Deadline"),
    "address": ("地址", "Address"),
    "timeline": ("状态流转", "Status timeline"),
    "overdue": ("超期", "Overdue"),
    "berth": ("停车泊位", "Parking berth"),
    "state": ("状态", "State"),
    "occupancy": ("占用率", "Occupancy"),
    "occupancy_of": ("{name}：{occ}/{total} 占用（{rate}）", "{name}: {occ}/{total} occupied ({rate})"),
    "setback": ("退红空间", "Setback space"),
    "owner": ("所有权人", "Owner"),
    "user": ("使用权人", "User"),
    "manager": ("管理权人", "Manager"),
    "mode": ("管理模式", "Mode"),
    "uses": ("许可用途", "Permitted uses"),
    "road": ("道路", "Road"),
    "linked_cases": ("关联案件", "Linked cases"),
    "none": ("无", "None"),
    "truncated": ("仅显示前 {n} 件，请放大查看", "Showing the first {n}; zoom in for more"),
    "demo_badge": ("演示数据", "Demo data"),
    "lang_switch": ("English", "中文"),
    "cases_in_view": ("视图内案件 {n} 件", "{n} cases in view"),
    "period": ("统计期间", "Period"),
}


def t(key: str, lang: str = "zh", **fmt) -> str:
    zh, en = STRINGS[key]
    s = en if lang == "en" else zh
    return s.format(**fmt) if fmt else s


def status_name(code: str, lang: str = "zh") -> str:
    zh, en, _ = STATUSES.get(code, (code, code, False))
    return en if lang == "en" else zh


def _pair(table, code, lang):
    zh, en = table.get(code, (code, code))
    return en if lang == "en" else zh


def berth_state(code, lang="zh"):
    return _pair(BERTH_STATES, code, lang)


def setback_mode(code, lang="zh"):
    return _pair(SETBACK_MODES, code, lang)


def setback_uses(codes: str, lang="zh") -> str:
    sep = ", " if lang == "en" else "、"
    return sep.join(_pair(SETBACK_USES, c.strip(), lang) for c in (codes or "").replace(";", ",").split(",")
                    if c.strip())
