"""People who log in: argon2id password hashes, roles with their scope, lockout after failed attempts.

Why here and not in the web layer: the CLI, the dashboard and tests share one set of rules (who may have
which scope, when an account locks, what is audited), and each check reads the shared store, so a disabled
or locked account is refused on every worker at once.

Roles: admin (everything, user management), supervisor (a set of districts, none = the whole city),
liaison (one department), viewer (read-only; districts like a supervisor). The wall is not a user: it
holds a kiosk token (data.tokens).
"""
from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from data import audit, codes
from data.store import meta
from data.store.schema import Case, Department, District, User as UserRow, UserDistrict
from layers.scope import UNRESTRICTED, Scope

ROLES = ("admin", "supervisor", "liaison", "viewer")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
_NAME = re.compile(r"^[\w.@-]{1,64}$")
_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (64 MiB, t=3, p=4)
_dummy_hash: str | None = None

users = UserRow.__table__
user_districts = UserDistrict.__table__


class UserError(ValueError):
    """Bad user input (name, role, password, district, department) or an unknown user; says which."""


class LoginFailed(Exception):
    """A refused login. `reason` is for the audit log ('unknown', 'password', 'locked', 'disabled');
    `message` is safe to show: it never tells an unknown name from a wrong password."""

    def __init__(self, reason: str, locked_until: datetime | None = None):
        self.reason = reason
        self.locked_until = locked_until
        super().__init__(reason)


@dataclass(frozen=True)
class Lockout:
    """After `after` failed attempts in a row an account refuses logins for `minutes` minutes.

    Configured by CGZT_LOCKOUT_AFTER (default 5) and CGZT_LOCKOUT_MINUTES (default 15).
    """
    after: int = 5
    minutes: float = 15

    @classmethod
    def from_env(cls) -> "Lockout":
        try:
            return cls(int(os.environ.get("CGZT_LOCKOUT_AFTER", cls.after)),
                       float(os.environ.get("CGZT_LOCKOUT_MINUTES", cls.minutes)))
        except ValueError as exc:
            raise UserError(f"CGZT_LOCKOUT_AFTER / CGZT_LOCKOUT_MINUTES must be numbers: {exc}") from None


@dataclass(frozen=True)
class User:
    id: int
    name: str
    display_name: str
    role: str
    department_code: str | None
    districts: tuple[str, ...]

    @property
    def scope(self) -> Scope:
        """The rows this user may see (layers.scope)."""
        if self.role == "admin":
            return UNRESTRICTED
        if self.role == "liaison":
            return Scope(departments=(self.department_code,)) if self.department_code else Scope()
        return Scope(districts=self.districts) if self.districts else UNRESTRICTED

    @property
    def read_only(self) -> bool:
        return self.role == "viewer"


def _now() -> datetime:
    from layers.filters import now_cst
    return now_cst()


def hash_password(password: str) -> str:
    check_password(password)
    return _hasher.hash(password)


def check_password(password) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"the password is too long: at most {MAX_PASSWORD_LENGTH} characters")


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _dummy() -> str:
    """A hash of a random password, verified for unknown names so that they take as long as known ones."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hash


VERSION_KEY = "version:users"


def version(conn: Connection):
    """The users' version in the meta table: every change here that a signed-in session must follow (a new
    user, a disabled one) moves it, in the change's transaction, so workers can cache users until it moves."""
    return meta.get(conn, VERSION_KEY)


def _changed(conn: Connection) -> None:
    meta.put(conn, VERSION_KEY, datetime.now().strftime("%Y%m%d%H%M%S%f"))


def _load(conn: Connection, row) -> User:
    districts = tuple(conn.execute(select(user_districts.c.district_code)
                                   .where(user_districts.c.user_id == row.id)
                                   .order_by(user_districts.c.district_code)).scalars())
    return User(row.id, row.name, row.display_name, row.role, row.department_code, districts)


def add(conn: Connection, name: str, password: str, role: str, districts=(), department: str | None = None,
        display_name: str | None = None, actor: str = "cli", remote: str | None = None) -> User:
    """Create a user in the caller's transaction (audited as 'user_add'); raises UserError on bad input."""
    name = (name or "").strip()
    if not _NAME.match(name):
        raise UserError(f"user name {name!r}: 1-64 letters, digits, '_', '.', '@' or '-'")
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    try:
        districts = tuple(dict.fromkeys(codes.validate(d, "district") for d in (districts or ())))
    except codes.CodeError as exc:
        raise UserError(str(exc)) from None
    if role == "liaison" and not department:
        raise UserError("a liaison needs --department CODE: the department whose cases they handle")
    if role != "liaison" and department:
        raise UserError(f"only a liaison belongs to a department; a {role} is scoped by --district")
    if role in ("admin", "liaison") and districts:
        raise UserError(f"a {role} is not limited by districts; give --district to supervisors and viewers")
    if department and conn.execute(select(Department.code).where(Department.code == department)).first() is None:
        raise UserError(f"unknown department {department!r}: it must exist in the departments table")
    known = set(conn.execute(select(District.code).where(District.code.in_(districts))).scalars())
    missing = [d for d in districts if d not in known]
    if missing:
        raise UserError(f"unknown district(s) {', '.join(missing)}: they must exist in the districts table")
    hashed = hash_password(password)
    try:
        with conn.begin_nested():
            uid = conn.execute(users.insert().values(
                name=name, display_name=(display_name or name).strip()[:64] or name, password_hash=hashed,
                role=role, department_code=department, failed_logins=0, created_at=_now())
                .returning(users.c.id)).scalar_one()
    except IntegrityError:
        raise UserError(f"a user named {name!r} already exists (disabled ones too); pick another name") from None
    if districts:
        conn.execute(user_districts.insert(), [{"user_id": uid, "district_code": d} for d in districts])
    _changed(conn)
    audit.record(conn, actor, "user_add", target=name, remote=remote,
                 detail={"role": role, "districts": list(districts), "department": department})
    return User(uid, name, (display_name or name), role, department, districts)


def listing(conn: Connection) -> list[dict]:
    """Every user with role, scope and state; never the hash."""
    rows = conn.execute(select(users.c.id, users.c.name, users.c.display_name, users.c.role,
                               users.c.department_code, users.c.disabled_at, users.c.locked_until,
                               users.c.failed_logins, users.c.created_at, users.c.last_login_at)
                        .order_by(users.c.name)).mappings().all()
    by_user: dict[int, list[str]] = {}
    for uid, d in conn.execute(select(user_districts.c.user_id, user_districts.c.district_code)
                               .order_by(user_districts.c.district_code)):
        by_user.setdefault(uid, []).append(d)
    return [dict(r, districts=by_user.get(r["id"], [])) for r in rows]


def disable(conn: Connection, name: str, actor: str = "cli", remote: str | None = None) -> None:
    """Refuse this user's logins and sessions from now on (every worker reads the flag per request)."""
    done = conn.execute(update(UserRow).where(UserRow.name == name, UserRow.disabled_at.is_(None))
                        .values(disabled_at=_now()))
    if done.rowcount != 1:
        raise UserError(f"no active user named {name!r}")
    _changed(conn)
    audit.record(conn, actor, "user_disable", target=name, remote=remote)


def get(conn: Connection, user_id) -> User | None:
    """The active (not disabled) user with this id, or None."""
    try:
        uid = int(user_id)
    except (TypeError, ValueError):
        return None
    row = conn.execute(select(users.c.id, users.c.name, users.c.display_name, users.c.role,
                              users.c.department_code)
                       .where(users.c.id == uid, users.c.disabled_at.is_(None))).first()
    return None if row is None else _load(conn, row)


def authenticate(engine: Engine, name: str, password: str, remote: str | None = None,
                 policy: Lockout | None = None, now: datetime | None = None) -> User:
    """The user if the name and password match an active, unlocked account; raises LoginFailed otherwise.

    Every attempt verifies one argon2 hash (a dummy one for unknown names) so timing does not reveal
    which names exist; the outcome (and a lockout) is audited and committed before the exception leaves.
    """
    policy = policy or Lockout.from_env()
    now = now or _now()
    name = (name or "").strip()
    password = password if isinstance(password, str) else ""
    failure: LoginFailed | None = None
    with engine.begin() as conn:
        row = None
        if _NAME.match(name):
            row = conn.execute(select(users).where(users.c.name == name)).first()
        ok = _verify(row.password_hash if row is not None else _dummy(), password[:MAX_PASSWORD_LENGTH])
        actor = name[:64] or "-"
        if row is None:
            failure = LoginFailed("unknown")
        elif row.disabled_at is not None:
            failure = LoginFailed("disabled")
        elif row.locked_until is not None and row.locked_until > now:
            failure = LoginFailed("locked", row.locked_until)
        elif not ok:
            conn.execute(update(UserRow).where(UserRow.id == row.id)
                         .values(failed_logins=UserRow.failed_logins + 1))
            failed = conn.execute(select(users.c.failed_logins).where(users.c.id == row.id)).scalar_one()
            until = None
            if failed >= policy.after:
                until = now + timedelta(minutes=policy.minutes)
                conn.execute(update(UserRow).where(UserRow.id == row.id).values(locked_until=until, failed_logins=0))
                audit.record(conn, actor, "lockout", target=name, remote=remote,
                             detail={"failed": failed, "until": until.isoformat(timespec="seconds")})
            failure = LoginFailed("password", until)
        if failure is not None:
            audit.record(conn, actor, "login_failed", target=name, remote=remote, detail={"reason": failure.reason})
        else:
            values = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
            if _hasher.check_needs_rehash(row.password_hash):
                values["password_hash"] = _hasher.hash(password)
            conn.execute(update(UserRow).where(UserRow.id == row.id).values(**values))
            audit.record(conn, actor, "login", target=name, remote=remote)
            user = _load(conn, row)
    if failure is not None:
        raise failure
    return user


DEMO_USERS = (("demo-admin", "admin"), ("demo-supervisor", "supervisor"), ("demo-liaison", "liaison"),
              ("demo-viewer", "viewer"))


def create_demo_users(conn: Connection) -> list[tuple[str, str, str, str]]:
    """Demo mode only: an admin, a supervisor of one district, a liaison of the busiest department and a
    viewer, each with a fresh random password returned once as (name, role, scope text, password).
    Does nothing when the store already has users."""
    if conn.execute(select(func.count()).select_from(users)).scalar():
        return []
    district = (conn.execute(select(func.min(Case.district_code))).scalar()
                or conn.execute(select(func.min(District.code))).scalar())
    department = (conn.execute(select(Case.department_code).where(Case.department_code.is_not(None))
                               .group_by(Case.department_code).order_by(func.count().desc(), Case.department_code)
                               .limit(1)).scalar()
                  or conn.execute(select(func.min(Department.code))).scalar())
    out = []
    for name, role in DEMO_USERS:
        kw = {}
        if role == "supervisor" and district:
            kw["districts"] = (district,)
        if role == "liaison":
            if not department:
                continue
            kw["department"] = department
        password = secrets.token_urlsafe(12)
        add(conn, name, password, role, actor="demo", **kw)
        where = (", ".join(kw.get("districts", ())) or kw.get("department") or "city-wide")
        out.append((name, role, where, password))
    return out
