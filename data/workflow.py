"""The case workflow: which action moves a case from which status to which, and who may take it.

Every write to a case goes through `apply()`: it checks the action against the case's current status and
the actor's role and department, applies it with optimistic concurrency (the caller says which version
it saw; a stale version is refused, so of two people acting at once one wins and the other is told), and
records a case_events row and an audit_log row (data.audit) in the same transaction. Nothing else updates
cases.status.

Who acts is an Actor built on the server (from the signed-in user, the API token, or 'system'), never from
what a browser sends; its scope (layers.scope) is checked against the case here, so a supervisor of one
district cannot act on another district's case whatever path the request took.
"""
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from data import audit
from data.clock import now_cst
from data.refusal import Refusal
from data.statuses import OPEN, STATUSES
from data.store.schema import Case, CaseClass, CaseEvent, Department
from data.workcalendar import WorkCalendar
from layers.scope import UNRESTRICTED, Scope

ROLES = ("admin", "supervisor", "liaison", "system")
# Built once: every transition runs them, and building a statement cost more CPU than running it.
CASE_BY_ID = select(Case.__table__).where(Case.__table__.c.id == bindparam("id"))   # data.intake reads by it too
_DEPARTMENT = select(Department.code).where(Department.code == bindparam("code"))
_LIMIT = select(CaseClass.limit_value, CaseClass.limit_unit).where(CaseClass.code == bindparam("code"))
_INSERT_EVENT = CaseEvent.__table__.insert()
COMMAND = ("admin", "supervisor")


@dataclass(frozen=True)
class Action:
    name: str
    zh: str
    sources: tuple
    target: str | None          # None: the status stays (e.g. an extension)
    roles: tuple
    needs_note: bool = False
    own_department: bool = False  # a liaison may act only on cases dispatched to their department


ACTIONS = {a.name: a for a in (
    Action("register", "立案", ("reported",), "registered", COMMAND + ("system",)),
    Action("reject", "不予立案", ("reported",), "rejected", COMMAND, needs_note=True),
    Action("dispatch", "派遣", ("registered", "returned"), "dispatched", COMMAND + ("system",)),
    Action("return", "退回", ("dispatched",), "returned", ("liaison",) + COMMAND, needs_note=True,
           own_department=True),
    Action("accept", "接收", ("dispatched", "rework"), "handling", ("liaison",) + COMMAND, own_department=True),
    Action("feedback", "处置反馈", ("handling",), "handled", ("liaison",) + COMMAND, needs_note=True,
           own_department=True),
    Action("verify", "核查", ("handled",), "verifying", COMMAND),
    Action("close", "结案", ("verifying",), "closed", COMMAND),
    Action("rework", "返工", ("verifying",), "rework", COMMAND, needs_note=True),
    Action("ask_extension", "申请延期", ("handling",), None, ("liaison",), needs_note=True,
           own_department=True),
    Action("extend", "延期", ("handling",), None, COMMAND, needs_note=True),
    Action("park", "挂账", ("dispatched", "handling"), "parked", COMMAND, needs_note=True),
    Action("unpark", "取消挂账", ("parked",), "handling", COMMAND),
    Action("reopen", "重新打开", ("closed",), "rework", COMMAND, needs_note=True),
)}


class WorkflowError(Refusal):
    """An action that may not be taken: wrong status, wrong role, missing input. Message is for people."""


class Conflict(WorkflowError):
    """The case changed since the caller read it: reload and decide again."""


class OutOfScope(WorkflowError):
    """The case lies outside what the actor may see: told apart from 'does not exist' only in the type,
    the message says neither (a caller must not learn that a case exists outside its scope)."""


@dataclass(frozen=True)
class Actor:
    name: str
    role: str
    department: str | None = None
    scope: Scope = UNRESTRICTED

    @classmethod
    def of_user(cls, user) -> "Actor":
        """The actor for a signed-in data.users.User: name, role, department and scope from the store."""
        return cls(user.name, user.role, user.department_code, user.scope)


def allowed(status: str, actor: Actor) -> list[str]:
    """Actions this actor may offer on a case in this status (for the UI; apply() checks again)."""
    return [a.name for a in ACTIONS.values() if status in a.sources and actor.role in a.roles]


def _not_yours(kind: type, case_id) -> WorkflowError:
    """The same words for a case that does not exist and one outside the actor's scope (OutOfScope)."""
    return kind(f"case {case_id} does not exist or is not yours to act on", f"案件 {case_id} 不存在或不在您的权限范围内")


def _now() -> datetime:
    return now_cst()


@dataclass(frozen=True)
class Step:
    """One action planned against a case as read: what the action changes, and the case_events row and
    audit_log row (data.audit.row) that record it. Planning writes nothing, so a new case can be born
    registered in one INSERT (data.intake) by the same rules a later registration follows."""
    values: dict
    event: dict
    audit: dict


def plan(conn: Connection, case: dict, action: str, actor: Actor, *, expected_version: int,
         note: str | None = None, department: str | None = None, extend_hours: int | None = None,
         calendar: WorkCalendar | None = None, now: datetime | None = None, remote: str | None = None) -> Step:
    """Check one action against `case` (its fields as read) and this actor; raises WorkflowError (or
    Conflict, OutOfScope) when it may not be taken."""
    act = ACTIONS.get(action)
    if act is None:
        raise WorkflowError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}", f"未知操作 {action!r}")
    if actor.role not in ROLES:
        raise WorkflowError(f"unknown role {actor.role!r}", f"未知角色 {actor.role!r}")
    if not actor.scope.permits(case["grid_code"], case["department_code"]):
        raise _not_yours(OutOfScope, case["id"])
    if case["version"] != expected_version:
        raise Conflict(f"case {case['code']} changed since you opened it (now {STATUSES[case['status']][0]}, "
                       f"version {case['version']}); reload it and try again",
                       f"案件 {case['code']} 已被他人更新（现为「{STATUSES[case['status']][0]}」），请重新载入后再操作")
    if case["status"] not in act.sources:
        raise WorkflowError(f"cannot {act.zh} ({act.name}) a case that is {STATUSES[case['status']][0]} "
                            f"({case['status']}); allowed from: {', '.join(act.sources)}",
                            f"「{STATUSES[case['status']][0]}」的案件不能{act.zh}")
    if actor.role not in act.roles:
        raise WorkflowError(f"role {actor.role!r} may not {act.name} cases", f"您的角色无权{act.zh}")
    if act.own_department and actor.role == "liaison" and actor.department != case["department_code"]:
        raise WorkflowError(f"case {case['code']} is not assigned to department {actor.department}",
                            f"案件 {case['code']} 未派遣给本部门")
    if act.needs_note and not (note and note.strip()):
        raise WorkflowError(f"{act.zh} ({act.name}) needs a note saying why", f"{act.zh}需要填写说明")

    now = now or _now()
    values = {"version": case["version"] + 1, "updated_at": now}
    to_status = act.target or case["status"]
    values["status"] = to_status
    dept = case["department_code"]
    if action == "register":
        values["registered_at"] = now
        values["deadline_at"] = _deadline(conn, case["class_code"], now, calendar)
    elif action == "dispatch":
        dept = department or case["department_code"]
        if not dept or not conn.execute(_DEPARTMENT, {"code": dept}).first():
            raise WorkflowError(f"dispatch needs an existing department (got {dept!r})", "派遣需要选择一个已有部门")
        values.update(department_code=dept, dispatched_at=now)
    elif action == "return":
        values["return_count"] = case["return_count"] + 1
    elif action == "accept":
        values["accepted_at"] = now
    elif action == "feedback":
        values["handled_at"] = now
    elif action == "close":
        values["closed_at"] = now
        values["overdue"] = bool(case["deadline_at"] and now > case["deadline_at"])
    elif action in ("rework", "reopen"):
        values["rework_count"] = case["rework_count"] + 1
        values["closed_at"] = None
    elif action == "extend":
        if not extend_hours or extend_hours <= 0:
            raise WorkflowError("an extension needs a positive number of working hours", "延期需要填写正的工作小时数")
        base = case["deadline_at"] or now
        values["deadline_at"] = _add(base, extend_hours, "work_hours", calendar, conn)
    if action == "reject":
        values["closed_at"] = now

    event = dict(case_id=case["id"], at=now, actor=actor.name, action=action, from_status=case["status"],
                 to_status=to_status, department_code=dept, note=note)
    row = audit.row(actor.name, "case_transition", target=case["code"], remote=remote,
                    detail={"action": action, "from": case["status"], "to": to_status, "version": values["version"],
                            "role": actor.role, **({"department": dept} if dept != case["department_code"] else {})})
    return Step(values, event, row)


def apply(conn: Connection, case_id: int, action: str, actor: Actor, *, expected_version: int,
          note: str | None = None, department: str | None = None, extend_hours: int | None = None,
          calendar: WorkCalendar | None = None, now: datetime | None = None, remote: str | None = None) -> dict:
    """Take one action on one case inside the caller's transaction; returns the updated case fields and
    `event_id`, the case_events row of this step (photos and other attachments link to it).

    remote: the client's address for the audit row."""
    case = conn.execute(CASE_BY_ID, {"id": case_id}).mappings().first()
    if case is None:
        raise _not_yours(WorkflowError, case_id)
    step = plan(conn, dict(case), action, actor, expected_version=expected_version, note=note,
                department=department, extend_hours=extend_hours, calendar=calendar, now=now, remote=remote)
    done = conn.execute(update(Case).where(Case.id == case_id, Case.version == expected_version)
                        .values(**step.values))
    if done.rowcount != 1:
        raise Conflict(f"case {case['code']} changed while you acted; reload it and try again",
                       f"案件 {case['code']} 在操作期间已被他人更新，请重新载入后再试")
    event = conn.execute(_INSERT_EVENT, step.event)
    audit.insert(conn, [step.audit])
    return {**dict(case), **step.values, "event_id": event.inserted_primary_key[0]}


def _add(start: datetime, value: int, unit: str, calendar, conn) -> datetime:
    cal = calendar or WorkCalendar.from_store(conn)
    out = cal.add(np.array([start], dtype="datetime64[s]"), [value], [unit])[0]
    return out.astype(datetime)


def _deadline(conn, class_code: str, start: datetime, calendar) -> datetime:
    cls = conn.execute(_LIMIT, {"code": class_code}).first()
    return _add(start, cls.limit_value, cls.limit_unit, calendar, conn)


def is_open(status: str) -> bool:
    return status in OPEN
