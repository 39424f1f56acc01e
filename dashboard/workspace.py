"""The case workspace at /cases: a liaison's department queue, or a supervisor's districts, and the actions
each may take on a case, with its history.

Why everything here is decided on the server: the browser sends only which case it looked at (code and the
version it saw), which action, and the note, department, hours and photos. Who acts is the signed-in user
read from the session (dashboard.auth.current_user), turned into a data.workflow.Actor with the user's
scope; every query ANDs that scope in (layers.filters.where), and workflow.apply checks it again, with the
version as optimistic concurrency and an audit row in the same transaction. A request crafted against
/_dash-update-component therefore gets nothing outside the user's scope and can change nothing it may not.
"""
from __future__ import annotations

import logging
from urllib.parse import parse_qs

import dash_leaflet as dl
from dash_extensions.javascript import Namespace
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from flask import Response, jsonify, request, send_file
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from dashboard.i18n import status_name, t
from data import photos, workflow
from data.refusal import Refusal
from data.statuses import OPEN
from data.store import meta
from data.store.schema import Case, CaseClass, CaseEvent, Department
from layers.filters import Filters, is_overdue, now_cst, pinned, where

log = logging.getLogger(__name__)

PATH = "/cases"
QUEUE_LIMIT = 200
PHOTO_ROUTE = "/cases/photos/"
STATUS_INDEX = "ix_cases_status_cover"
cases = Case.__table__


def is_workspace_path(path: str) -> bool:
    return path.rstrip("/") == PATH


def _lang(query: str) -> str:
    return "en" if parse_qs(query or "").get("lang", [""])[0] == "en" else "zh"


def _user():
    from dashboard.auth import current_user
    return current_user()


def _scope():
    from dashboard.auth import current_scope
    return current_scope()


def action_label(name: str, lang: str) -> str:
    act = workflow.ACTIONS.get(name)
    if act is None:
        return name
    return act.zh if lang == "zh" else name.replace("_", " ").capitalize()


# -- queries (all scoped) ----------------------------------------------------------------------------

def _scoped(scope, *extra, statuses=None):
    f = Filters(scope=scope, statuses=tuple(statuses or ()))
    return where(f, period=None) + list(extra)


def queue(conn, scope, now=None, limit: int = QUEUE_LIMIT) -> tuple[list[dict], int]:
    """The scope's open cases, overdue first, then the nearest deadline; and how many there are."""
    from sqlalchemy import case as when
    from sqlalchemy import func
    now = now or now_cst()
    c = cases.c
    clauses = _scoped(scope, statuses=OPEN)
    # Open cases are a few thousand of a million: SQLite must start from the status index, not walk every
    # case of a district through the grid index (177 ms -> see bench/workspace.py).
    total = conn.execute(pinned(select(func.count()).select_from(cases).where(*clauses), STATUS_INDEX)).scalar()
    overdue_first = when((is_overdue(cases, now, seek=False), 0), else_=1)
    rows = conn.execute(pinned(
        select(c.id, c.code, c.status, c.class_code, c.deadline_at, c.lon, c.lat, c.address, c.department_code,
               c.priority, c.major_code, c.grid_code)
        .where(*clauses).order_by(overdue_first, c.deadline_at.asc().nulls_last(), c.id.desc()).limit(limit),
        STATUS_INDEX)).mappings().all()
    out = []
    for r in rows:
        d = dict(r)
        d["overdue"] = bool(d["deadline_at"] is not None and d["deadline_at"] < now)
        out.append(d)
    return out, total


def find(conn, scope, code: str) -> dict | None:
    """One case by its code, or None when it does not exist or lies outside the scope (the same answer)."""
    if not isinstance(code, str) or not code.strip() or len(code) > 32:
        return None
    row = conn.execute(select(cases).where(*_scoped(scope, cases.c.code == code.strip()))).mappings().first()
    return None if row is None else dict(row)


def history(conn, case_id: int) -> list[dict]:
    """The case's events, oldest first, each with its photos."""
    by_event = photos.for_case(conn, case_id)
    rows = conn.execute(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)).mappings()
    return [dict(r, photos=by_event.get(r["id"], [])) for r in rows]


# -- layout ----------------------------------------------------------------------------------------

def layout(engine, query: str = ""):
    lang = _lang(query)
    other = "en" if lang == "zh" else "zh"
    user = _user()
    who = ""
    if user is not None:
        who = f"{user.display_name} · {t('role_' + user.role, lang)}"
        if user.department_code:
            who += f" · {user.department_code}"
        elif user.districts:
            who += " · " + ",".join(user.districts)
    hidden = {"display": "none"}
    return html.Div(className="ws-page", children=[
        dcc.Store(id="ws-lang", data=lang),
        dcc.Store(id="ws-refresh", data=0),
        dcc.Store(id="ws-selected", data=None),
        dcc.Store(id="ws-seen", data=None),
        dcc.Store(id="ws-pending", data=None),
        html.Header(className="ws-head", children=[
            html.H1(t("ws_title", lang)),
            html.Span(who, id="ws-who", className="ws-who"),
            html.A(t("ws_to_map", lang), href="/" + ("?lang=en" if lang == "en" else ""), className="ws-link"),
            html.A(t("lang_switch", lang), href=f"{PATH}?lang={other}", className="ws-link", id="ws-lang-switch"),
        ]),
        html.Main(className="ws-main", children=[
            html.Section(className="ws-left", children=[
                html.H2(t("ws_queue", lang)),
                html.Div(className="ws-open", children=[
                    dcc.Input(id="ws-open-code", placeholder=t("ws_open_ph", lang), debounce=False, type="text"),
                    html.Button(t("ws_open", lang), id="ws-open-btn", n_clicks=0),
                ]),
                html.Div(id="ws-count", className="ws-count"),
                html.Div(id="ws-queue", className="ws-queue"),
            ]),
            html.Section(className="ws-mid", children=[
                dl.Map(id="ws-map", center=[29.87, 121.55], zoom=10, minZoom=8, maxZoom=19, preferCanvas=True,
                       trackViewport=False, style={"height": "100%", "minHeight": "320px"},
                       children=[dl.Pane(name="boundaries", style={"zIndex": 350},   # under the points
                                         children=_outlines(engine, lang)),
                                 dl.GeoJSON(id="ws-points", data={"type": "FeatureCollection", "features": []},
                                            pointToLayer=_POINT, zoomToBounds=True,
                                            hideout=_hideout(engine))]),
            ]),
            html.Section(className="ws-right", children=[
                html.Div(id="ws-msg", className="ws-msg", role="status"),
                html.Div(id="ws-detail", className="ws-detail", children=html.P(t("ws_pick", lang))),
                html.Div(id="ws-actions", className="ws-actions"),
                html.Div(id="ws-confirm-box", className="ws-confirm", style=hidden, children=[
                    html.P(id="ws-confirm-text", className="ws-confirm-text"),
                    html.Div(id="ws-f-note", children=dcc.Textarea(
                        id="ws-note", placeholder=t("ws_note_ph", lang), className="ws-note", value="")),
                    html.Div(id="ws-f-dept", style=hidden, children=[
                        html.Label(t("ws_dept", lang)),
                        dcc.Dropdown(id="ws-dept", options=_departments(engine, lang), clearable=True)]),
                    html.Div(id="ws-f-hours", style=hidden, children=[
                        html.Label(t("ws_hours", lang)),
                        dcc.Input(id="ws-hours", type="number", min=1, max=2000, step=1, value=8)]),
                    html.Div(id="ws-f-photos", style=hidden, children=[
                        dcc.Upload(id="ws-upload", multiple=True, className="ws-upload",
                                   accept="image/jpeg,image/png,image/webp",
                                   children=html.Div(t("ws_upload", lang, n=photos.max_count(),
                                                       mb=f"{photos.max_bytes() / 1024 / 1024:g}"))),
                        html.Div(id="ws-upload-list", className="ws-upload-list")]),
                    html.Div(className="ws-confirm-buttons", children=[
                        html.Button(t("ws_confirm", lang), id="ws-confirm", n_clicks=0, className="ws-primary"),
                        html.Button(t("ws_cancel", lang), id="ws-cancel", n_clicks=0)]),
                ]),
            ]),
        ]),
    ])


_POINT = Namespace("cgzt", "ws")("point")     # assets/workspace.js


def _outlines(engine, lang: str) -> list:
    """The district and street outlines of the command map (the same cached layer URL), so a liaison sees
    where the queue's cases lie; without them the points float on a blank canvas."""
    from dashboard import map_page
    from layers import cache
    try:
        with engine.connect() as conn:
            versions = cache.versions_all(conn)
    except SQLAlchemyError as exc:   # the store is down: the page says so elsewhere; the map stays blank
        log.warning("workspace map without outlines: %s", str(exc).splitlines()[0][:300])
        return []
    layers = map_page.boundaries_layers({"lang": lang, "base": "offline"}, versions)
    for layer in layers:
        layer.id = "ws-boundaries"
    return layers


def _hideout(engine) -> dict:
    from dashboard.colours import STATUS_COLOURS
    return {"status_colors": STATUS_COLOURS}


def _departments(engine, lang) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(Department.code, Department.name, Department.name_en)
                            .order_by(Department.code)).all()
    return [{"label": f"{r.name if lang == 'zh' else r.name_en} ({r.code})", "value": r.code} for r in rows]


def _class_names(conn) -> dict:
    return {r.code: (r.name, r.name_en) for r in conn.execute(select(CaseClass.code, CaseClass.name,
                                                                      CaseClass.name_en))}


def _fmt(d) -> str:
    return "" if d is None else d.strftime("%Y-%m-%d %H:%M")


# -- rendering -------------------------------------------------------------------------------------

def _queue_view(rows, total, names, lang):
    if not rows:
        return html.P(t("ws_queue_empty", lang), className="ws-empty")
    items = []
    for r in rows:
        cls = names.get(r["class_code"], (r["class_code"], r["class_code"]))[0 if lang == "zh" else 1]
        items.append(html.Button(
            id={"type": "ws-row", "code": r["code"]}, n_clicks=0,
            className="ws-row" + (" ws-overdue" if r["overdue"] else ""),
            children=[html.Span(r["code"], className="ws-code"),
                      html.Span(status_name(r["status"], lang), className="ws-status"),
                      html.Span(cls, className="ws-class"),
                      html.Span(_fmt(r["deadline_at"]), className="ws-deadline"),
                      html.Span(t("overdue", lang) if r["overdue"] else "", className="ws-flag")]))
    return items


def _points(rows) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
         "properties": {"code": r["code"], "status": r["status"], "major_code": r["major_code"],
                        "priority": r["priority"], "overdue": r["overdue"]}} for r in rows]}


def _detail_view(case, events, names, lang):
    now = now_cst()
    cls = names.get(case["class_code"], (case["class_code"], case["class_code"]))[0 if lang == "zh" else 1]
    overdue = case["status"] in OPEN and case["deadline_at"] is not None and case["deadline_at"] < now
    fields = [(t("code", lang), case["code"]), (t("status", lang), status_name(case["status"], lang)),
              (t("class", lang), cls), (t("department", lang), case["department_code"] or "—"),
              (t("deadline", lang), _fmt(case["deadline_at"]) + (f" ({t('overdue', lang)})" if overdue else "")),
              (t("address", lang), case["address"] or "—")]
    rows = []
    for e in events:
        pics = [html.A(p["original_name"] or f"#{p['id']}", href=f"{PHOTO_ROUTE}{p['id']}", target="_blank",
                       className="ws-photo", rel="noopener") for p in e["photos"]]
        step = action_label(e["action"], lang) if e["action"] in workflow.ACTIONS else (
            "上报" if lang == "zh" and e["action"] == "report" else e["action"])
        rows.append(html.Tr(className="ws-event", children=[
            html.Td(_fmt(e["at"])), html.Td(e["actor"], className="ws-actor"),
            html.Td(f"{step} → {status_name(e['to_status'], lang)}", className="ws-step"),
            html.Td(e["note"] or ""), html.Td(pics)]))
    return [
        html.H2(case["code"], id="ws-case-code"),
        html.Dl(className="ws-fields", children=[x for k, v in fields for x in (html.Dt(k), html.Dd(v))]),
        html.P(case["description"] or "", className="ws-desc"),
        html.H3(t("ws_history", lang)),
        html.Table(className="ws-history", id="ws-history", children=[
            html.Thead(html.Tr([html.Th(t(k, lang)) for k in ("ws_when", "ws_who", "ws_step", "ws_note",
                                                                "ws_photos")])),
            html.Tbody(rows)]),
    ]


def _actions_view(case, user, lang):
    if user is None:
        return html.P(t("ws_need_login", lang))
    if user.read_only:
        return html.P(t("ws_read_only", lang), className="ws-readonly")
    actor = workflow.Actor.of_user(user)
    names = [a for a in workflow.allowed(case["status"], actor)
             if not (workflow.ACTIONS[a].own_department and actor.role == "liaison"
                     and case["department_code"] != actor.department)]
    if not names:
        return html.P(t("ws_no_actions", lang))
    return [html.H3(t("ws_actions", lang)),
            html.Div(className="ws-action-buttons", children=[
                html.Button(action_label(a, lang), id={"type": "ws-act", "action": a}, n_clicks=0,
                            className="ws-act", **{"data-action": a}) for a in names])]


# -- the write -------------------------------------------------------------------------------------

class _Refused(Refusal):
    pass


def perform(engine, user, code: str, version, action: str, note=None, department=None, hours=None,
            uploads=None, remote=None) -> dict:
    """Take `action` on case `code` as `user`, having seen `version`; photos (name, data URL) go with
    feedback. Returns the case after the step. Raises workflow.WorkflowError (Conflict, OutOfScope),
    photos.PhotoError or _Refused with a message for people."""
    if user is None:
        raise _Refused("not signed in", "未登录")
    if user.read_only:
        raise _Refused("a read-only account cannot change cases", "只读账号不能办理案件")
    if action not in workflow.ACTIONS:
        raise _Refused(f"unknown action {action!r}", f"未知操作 {action!r}")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _Refused("the version of the case you saw is missing; reload it", "缺少案件版本，请重新载入")
    uploads = list(uploads or [])
    if uploads and action != "feedback":
        raise photos.PhotoError("photos can only be sent with feedback", "只有处置反馈可以附照片")
    checked = photos.check_all([(name, photos.decode_data_url(content, name)) for name, content in uploads])
    hours_int = None
    if action == "extend":
        try:
            hours_int = int(hours)
        except (TypeError, ValueError):
            raise _Refused("an extension needs a whole number of working hours", "延期需要填写整数工作小时") from None
    actor = workflow.Actor.of_user(user)
    from data.intake import write_transaction
    with photos.written(checked) as names, write_transaction(engine) as conn:
        case = find(conn, user.scope, code)
        if case is None:
            raise workflow.OutOfScope(f"case {code} does not exist or is not yours to act on",
                                     f"案件 {code} 不存在或不在您的权限范围内")
        out = workflow.apply(conn, case["id"], action, actor, expected_version=version,
                             note=(note or "").strip() or None, department=department or None,
                             extend_hours=hours_int, remote=remote)
        if checked:
            ids = photos.link(conn, case["id"], out["event_id"], checked, names, user.name)
            from data import audit
            audit.record(conn, user.name, "photo_upload", target=case["code"], remote=remote,
                         detail={"photos": ids, "bytes": sum(len(c.data) for c in checked)})
        meta.bump(conn, "cases")
    return out


# -- callbacks -------------------------------------------------------------------------------------

FIELDS = {"dispatch": ("dept",), "extend": ("hours",), "feedback": ("photos",)}


def _first_click(prop_ids: dict, triggered: list):
    """The trigger `act` answers. Dash merges inputs changed in the same round into one request, and
    `ctx.triggered_id` is only the first of them: a click that arrives with a new `ws-seen` must not be
    read as the case reload (the confirmation would never open). A click wins; a button re-rendered
    with n_clicks 0 is no click."""
    values = {t.get("prop_id"): t.get("value") for t in triggered or ()}
    ids = prop_ids or {}
    for pid, cid in ids.items():
        if isinstance(cid, dict) and cid.get("type") == "ws-act" and values.get(pid):
            return cid
    for name in ("ws-confirm", "ws-cancel", "ws-seen"):
        if name in ids.values():
            return name
    return None


def register(app, engine) -> None:
    server = app.server

    @server.get(PHOTO_ROUTE + "<photo_id>")
    def case_photo(photo_id):
        """A photo, only for users whose scope permits its case; 404 otherwise (existence not revealed)."""
        with engine.connect() as conn:
            found = photos.readable(conn, photo_id, _scope())
        if found is None:
            return jsonify({"error": "not_found", "message": "no such photo"}), 404
        path, mime = found
        resp: Response = send_file(path, mimetype=mime, conditional=True, max_age=0)
        resp.headers["Cache-Control"] = "private, no-cache"
        resp.headers["Content-Disposition"] = "inline"
        return resp

    @app.callback(Output("ws-queue", "children"), Output("ws-points", "data"), Output("ws-count", "children"),
                  Input("ws-refresh", "data"), State("ws-lang", "data"))
    def render_queue(_refresh, lang):
        lang = lang if lang in ("zh", "en") else "zh"
        with engine.connect() as conn:
            rows, total = queue(conn, _scope())
            names = _class_names(conn)
        count = t("ws_queue_count", lang, n=total)
        if total > len(rows):
            count += " · " + t("ws_queue_more", lang, n=len(rows))
        return _queue_view(rows, total, names, lang), _points(rows), count

    @app.callback(Output("ws-selected", "data"),
                  Input({"type": "ws-row", "code": ALL}, "n_clicks"), Input("ws-points", "clickData"),
                  Input("ws-open-btn", "n_clicks"), Input("ws-open-code", "n_submit"),
                  State("ws-open-code", "value"), prevent_initial_call=True)
    def select_case(_rows, click, _open, _submit, typed):
        trig = ctx.triggered_id
        if isinstance(trig, dict) and trig.get("type") == "ws-row":
            if not ctx.triggered or not ctx.triggered[0].get("value"):
                return no_update   # a row re-rendered, not clicked
            return {"code": trig["code"]}
        if trig == "ws-points":
            code = ((click or {}).get("properties") or {}).get("code")
            return {"code": code} if code else no_update
        if trig in ("ws-open-btn", "ws-open-code") and typed:
            return {"code": str(typed).strip()}
        return no_update

    @app.callback(Output("ws-detail", "children"), Output("ws-actions", "children"), Output("ws-seen", "data"),
                  Input("ws-selected", "data"), Input("ws-refresh", "data"), State("ws-lang", "data"),
                  prevent_initial_call=True)
    def render_detail(selected, _refresh, lang):
        lang = lang if lang in ("zh", "en") else "zh"
        code = (selected or {}).get("code") if isinstance(selected, dict) else None
        if not code:
            return html.P(t("ws_pick", lang)), [], None
        with engine.connect() as conn:
            case = find(conn, _scope(), str(code))
            if case is None:
                return html.P(t("ws_not_found", lang, code=str(code)[:32]), className="ws-error"), [], None
            events = history(conn, case["id"])
            names = _class_names(conn)
        return (_detail_view(case, events, names, lang), _actions_view(case, _user(), lang),
                {"code": case["code"], "version": case["version"]})

    @app.callback(Output("ws-upload-list", "children"), Input("ws-upload", "filename"), State("ws-lang", "data"))
    def list_uploads(names, lang):
        names = [n for n in (names or []) if n]
        return t("ws_upload_n", lang or "zh", n=len(names), names=", ".join(names)) if names else ""

    hidden, shown = {"display": "none"}, {}

    @app.callback(Output("ws-pending", "data"), Output("ws-confirm-box", "style"),
                  Output("ws-confirm-text", "children"), Output("ws-f-dept", "style"),
                  Output("ws-f-hours", "style"), Output("ws-f-photos", "style"),
                  Output("ws-msg", "children"), Output("ws-msg", "className"), Output("ws-refresh", "data"),
                  Output("ws-upload", "contents"), Output("ws-upload", "filename"), Output("ws-note", "value"),
                  Input({"type": "ws-act", "action": ALL}, "n_clicks"), Input("ws-cancel", "n_clicks"),
                  Input("ws-confirm", "n_clicks"), Input("ws-seen", "data"),
                  State("ws-pending", "data"), State("ws-note", "value"), State("ws-dept", "value"),
                  State("ws-hours", "value"), State("ws-upload", "contents"), State("ws-upload", "filename"),
                  State("ws-refresh", "data"), State("ws-lang", "data"), prevent_initial_call=True)
    def act(_acts, _cancel, _confirm, seen, pending, note, dept, hours, contents, filenames, refresh, lang):
        lang = lang if lang in ("zh", "en") else "zh"
        trig = _first_click(ctx.triggered_prop_ids, ctx.triggered)
        keep = [no_update] * 6
        closed = [None, hidden, "", hidden, hidden, hidden]
        if isinstance(trig, dict) and trig.get("type") == "ws-act":
            if not isinstance(seen, dict):
                return [no_update] * 12
            action = trig.get("action")
            if action not in workflow.ACTIONS:
                return [no_update] * 12
            f = FIELDS.get(action, ())
            text = t("ws_confirm_q", lang, code=seen.get("code"), action=action_label(action, lang))
            return [{"action": action, "code": seen.get("code")}, shown, text,
                    shown if "dept" in f else hidden, shown if "hours" in f else hidden,
                    shown if "photos" in f else hidden, "", "ws-msg", no_update, None, None, no_update]
        if trig == "ws-cancel":
            return closed + ["", "ws-msg", no_update, None, None, no_update]
        if trig == "ws-seen":
            # Another case (or a reload of this one): an open confirmation for a different case is dropped.
            if not isinstance(pending, dict) or (isinstance(seen, dict) and pending.get("code") == seen.get("code")):
                return [no_update] * 12
            return closed + [no_update, no_update, no_update, None, None, no_update]
        if trig != "ws-confirm" or not isinstance(pending, dict) or not isinstance(seen, dict):
            return [no_update] * 12
        action, code = pending.get("action"), seen.get("code")
        if pending.get("code") != code:
            return closed + [no_update, no_update, no_update, None, None, no_update]
        uploads = list(zip(filenames or [], contents or []))
        user = _user()
        bump = (refresh or 0) + 1
        try:
            out = perform(engine, user, code, seen.get("version"), action, note=note, department=dept,
                          hours=hours, uploads=uploads, remote=request.remote_addr)
        except workflow.Conflict:
            with engine.connect() as conn:
                now = find(conn, _scope(), code)
            status = status_name(now["status"], lang) if now else "—"
            return closed + [t("ws_conflict", lang, code=code, status=status), "ws-msg ws-msg-warn", bump,
                             None, None, no_update]
        except (workflow.WorkflowError, photos.PhotoError, _Refused) as exc:
            return keep + [t("ws_refused", lang, why=exc.text(lang)), "ws-msg ws-msg-error", no_update,
                           no_update, no_update, no_update]
        msg = t("ws_done", lang, action=action_label(action, lang), code=code,
                status=status_name(out["status"], lang))
        return closed + [msg, "ws-msg ws-msg-ok", bump, None, None, ""]


__all__ = ["PATH", "is_workspace_path", "layout", "register", "queue", "find", "history", "perform"]
