"""Every user-visible string of the dashboard, Chinese first, English as the switch.

One table so translators (and tests) see all strings in one place; `t(key, lang)` falls back to Chinese.
"""
from data.statuses import BERTH_STATES, SETBACK_MODES, SETBACK_USES, STATUSES

LANGS = ("zh", "en")

STRINGS = {
    "title": ("城管一张图", "City Management Map"),
    "live_title": ("实时案件", "Live cases"),
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
    # filters, drill-down, KPIs, charts, case table, export (issue 4)
    "filters": ("筛选", "Filters"),
    "f_range": ("时间范围", "Time range"),
    "range_today": ("今日", "Today"),
    "range_7d": ("近7天", "7 days"),
    "range_30d": ("近30天", "30 days"),
    "range_custom": ("自定义", "Custom"),
    "f_district": ("区县", "District"),
    "f_street": ("街道", "Street"),
    "f_source": ("来源", "Source"),
    "f_major": ("大类", "Major class"),
    "f_minor": ("小类", "Minor class"),
    "f_status": ("状态", "Status"),
    "f_department": ("处置部门", "Department"),
    "f_overdue": ("仅超期", "Overdue only"),
    "f_berth_type": ("泊位类型", "Berth type"),
    "f_berth_state": ("泊位状态", "Berth state"),
    "f_setback_mode": ("管理模式", "Management mode"),
    "f_setback_use": ("用途", "Use"),
    "all": ("全部", "All"),
    "reset": ("重置", "Reset"),
    "bad_query": ("链接参数有误，已恢复默认：{why}", "Bad link parameter, defaults restored: {why}"),
    "unknown_area": ("未知区域编码 {code}，显示全市", "Unknown area code {code}; showing the city"),
    "city": ("宁波市", "Ningbo"),
    "kpi_reported": ("上报数", "Reported"),
    "kpi_registered": ("立案数", "Registered"),
    "kpi_open": ("在办", "Open"),
    "kpi_overdue": ("超期", "Overdue"),
    "kpi_close_rate": ("结案率", "Closure rate"),
    "kpi_ontime_rate": ("按期结案率", "On-time closure rate"),
    "kpi_avg_hours": ("平均处置时长", "Avg. handling time"),
    "kpi_occupancy": ("泊位占用率", "Berth occupancy"),
    "kpi_setbacks": ("有在办案件的退红空间", "Setbacks with open cases"),
    "vs_previous": ("较上期", "vs previous"),
    "hours": ("小时", "h"),
    "chart_timeline_hour": ("每小时案件数", "Cases per hour"),
    "chart_timeline_day": ("每日案件数", "Cases per day"),
    "chart_current": ("本期", "This period"),
    "chart_previous": ("上期", "Previous period"),
    "chart_majors": ("案件大类", "By major class"),
    "chart_minors": ("案件小类", "By minor class"),
    "chart_funnel": ("办理环节", "Workflow stages"),
    "chart_departments": ("部门按期结案率", "Departments by on-time rate"),
    "chart_streets": ("街道按期结案率", "Streets by on-time rate"),
    "chart_stage_reported": ("上报", "Reported"),
    "chart_stage_registered": ("立案", "Registered"),
    "chart_stage_dispatched": ("派遣", "Dispatched"),
    "chart_stage_handled": ("处置", "Handled"),
    "chart_stage_closed": ("结案", "Closed"),
    "table": ("案件列表", "Cases"),
    "export": ("导出", "Export"),
    "rows_total": ("共 {n} 件", "{n} cases"),
    # wall screen (issue 7)
    "wall_title": ("城管一张图 · 指挥大屏", "City Management · Wall"),
    "wall_updated": ("数据更新", "Updated"),
    "wall_reported_today": ("今日上报", "Reported today"),
    "wall_window": ("近{days}天", "last {days} days"),
    "wall_offline": ("连接中断，正在自动恢复 · 显示的是以下时间的数据：", "Connection lost, recovering by itself · data as of "),
    "wall_offline_since": ("自", "since"),
    "wall_denied_title": ("大屏未授权，不显示数据", "This wall is not authorised: no data shown"),
    "wall_unknown_area": ("未知区县编码 {code}", "Unknown district code {code}"),
    "wall_tour": ("巡览", "Tour"),
    "wall_urgent": ("紧急案件", "Urgent case"),
    # login and session (issue 6)
    "login_title": ("登录", "Sign in"),
    "login_name": ("用户名", "User name"),
    "login_password": ("密码", "Password"),
    "login_submit": ("登录", "Sign in"),
    "login_failed": ("用户名或密码错误", "Wrong user name or password"),
    "login_locked": ("登录失败次数过多，账户已锁定，请于 {until} 后再试",
                     "Too many failed attempts: the account is locked until {until}"),
    "login_required": ("请先登录", "Please sign in first"),
    "login_demo": ("演示模式：演示账户的密码在服务器启动时打印在控制台上。",
                   "Demo mode: the demo accounts' passwords were printed on the server console at start."),
    "logout": ("退出登录", "Sign out"),
    "role_admin": ("管理员", "Administrator"),
    "role_supervisor": ("督办人员", "Supervisor"),
    "role_liaison": ("部门联络员", "Department liaison"),
    "role_viewer": ("只读用户", "Viewer"),
    "csrf_failed": ("页面已过期或请求来源不可信，请刷新页面后重试",
                    "The page expired or the request did not come from it: reload the page and try again"),
    "too_large": ("请求过大（上限 {limit}）", "Request too large (limit {limit})"),
    # the case workspace /cases (issue 6)
    "ws_title": ("案件工作台", "Case workspace"),
    "ws_queue": ("待办案件", "Queue"),
    "ws_queue_count": ("共 {n} 件在办案件（超期优先，时限最近优先）", "{n} open cases (overdue and nearest deadline first)"),
    "ws_queue_more": ("仅显示前 {n} 件", "Showing the first {n}"),
    "ws_queue_empty": ("没有在办案件", "No open cases"),
    "ws_to_map": ("返回地图", "Back to the map"),
    "ws_open_ph": ("案件编号", "Case code"),
    "ws_open": ("打开", "Open"),
    "ws_pick": ("从左侧列表或地图中选择一个案件。", "Pick a case from the list or the map."),
    "ws_not_found": ("未找到案件 {code}，或无权查看", "Case {code} not found, or not yours to see"),
    "ws_history": ("办理经过", "History"),
    "ws_when": ("时间", "When"),
    "ws_who": ("操作人", "Who"),
    "ws_step": ("环节", "Step"),
    "ws_note": ("说明", "Note"),
    "ws_photos": ("照片", "Photos"),
    "ws_actions": ("可执行操作", "Actions"),
    "ws_no_actions": ("当前状态下您没有可执行的操作", "Nothing you may do at this stage"),
    "ws_read_only": ("只读账户：不能办理案件", "Read-only account: cases cannot be changed"),
    "ws_confirm_q": ("确认对案件 {code} 执行「{action}」？", "{action} case {code}?"),
    "ws_confirm": ("确认", "Confirm"),
    "ws_cancel": ("取消", "Cancel"),
    "ws_note_ph": ("说明（退回原因、处置情况、延期理由等）", "Note (reason for a return, what was done, why more time)"),
    "ws_upload": ("拖放或点击选择照片（JPEG/PNG/WebP，最多 {n} 张，每张不超过 {mb} MB）",
                  "Drop or pick photos (JPEG/PNG/WebP, up to {n}, {mb} MB each)"),
    "ws_upload_n": ("已选 {n} 张照片：{names}", "{n} photo(s) chosen: {names}"),
    "ws_dept": ("派遣至部门", "Dispatch to department"),
    "ws_hours": ("延期工作小时数", "Extension in working hours"),
    "ws_done": ("已{action}：案件 {code} 现为「{status}」", "{action} done: case {code} is now {status}"),
    "ws_conflict": ("案件 {code} 已被他人更新（现为「{status}」），已重新载入，请确认后再操作",
                    "Case {code} was changed by someone else (now {status}); it has been reloaded, check it and try again"),
    "ws_refused": ("操作未执行：{why}", "Not done: {why}"),
    "ws_photo_only_feedback": ("照片只能随处置反馈上传", "Photos can only be sent with feedback"),
    "ws_need_login": ("请先登录", "Please sign in first"),
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
