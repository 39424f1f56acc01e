"""Users on both databases: argon2id hashes, login outcomes and their audit rows, lockout, the CLI."""
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from data import audit, users
from data.boundaries import ensure_districts
from data.store.schema import Department, User as UserRow
from layers.filters import now_cst
from layers.scope import UNRESTRICTED, Scope

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"


@pytest.fixture
def store(fresh_engine):
    """A fresh store with the district outlines and reference departments every store starts with."""
    with fresh_engine.begin() as conn:
        ensure_districts(conn)
    return fresh_engine


def _department(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(select(Department.code).order_by(Department.code).limit(1)).scalar_one()


def test_password_is_stored_as_argon2id_and_verifies(store):
    with store.begin() as conn:
        users.add(conn, "alice", PASSWORD, "admin")
    with store.connect() as conn:
        stored = conn.execute(select(UserRow.password_hash).where(UserRow.name == "alice")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    user = users.authenticate(store, "alice", PASSWORD, remote="10.0.0.1")
    assert (user.name, user.role, user.scope) == ("alice", "admin", UNRESTRICTED)
    with pytest.raises(users.LoginFailed) as exc:
        users.authenticate(store, "alice", PASSWORD + "x")
    assert exc.value.reason == "password"


def test_logins_and_failures_are_audited(store):
    with store.begin() as conn:
        users.add(conn, "bob", PASSWORD, "viewer")
    users.authenticate(store, "bob", PASSWORD, remote="10.1.1.1")
    for name, pw in (("bob", "wrong password!"), ("nobody", PASSWORD)):
        with pytest.raises(users.LoginFailed):
            users.authenticate(store, name, pw, remote="10.2.2.2")
    with store.connect() as conn:
        rows = audit.recent(conn)
        last_login = conn.execute(select(UserRow.last_login_at).where(UserRow.name == "bob")).scalar_one()
    got = [(r["kind"], r["actor"], r["remote"], (r["detail"] or {}).get("reason")) for r in rows]
    assert got == [("login_failed", "nobody", "10.2.2.2", "unknown"),
                   ("login_failed", "bob", "10.2.2.2", "password"),
                   ("login", "bob", "10.1.1.1", None),
                   ("user_add", "cli", None, None)]
    assert rows[-1]["detail"] == {"role": "viewer", "districts": [], "department": None}
    assert last_login is not None


def test_lockout_after_failures_and_its_expiry(store):
    with store.begin() as conn:
        users.add(conn, "carol", PASSWORD, "supervisor", districts=["330203"])
    policy = users.Lockout(after=3, minutes=10)
    t0 = now_cst()
    for i in range(3):
        with pytest.raises(users.LoginFailed) as exc:
            users.authenticate(store, "carol", "not the password", policy=policy, now=t0 + timedelta(seconds=i))
    assert exc.value.reason == "password" and exc.value.locked_until == t0 + timedelta(seconds=2, minutes=10)
    # Locked: even the right password is refused until the lock expires.
    with pytest.raises(users.LoginFailed) as exc:
        users.authenticate(store, "carol", PASSWORD, policy=policy, now=t0 + timedelta(minutes=5))
    assert exc.value.reason == "locked"
    user = users.authenticate(store, "carol", PASSWORD, policy=policy, now=t0 + timedelta(minutes=11))
    assert user.scope == Scope(districts=("330203",))
    with store.connect() as conn:
        row = conn.execute(select(UserRow.failed_logins, UserRow.locked_until).where(UserRow.name == "carol")).one()
        kinds = [r["kind"] for r in audit.recent(conn, actor="carol")]
    assert tuple(row) == (0, None)
    assert kinds == ["login", "login_failed", "login_failed", "lockout", "login_failed", "login_failed"]


def test_a_success_resets_the_failure_count(store):
    with store.begin() as conn:
        users.add(conn, "dave", PASSWORD, "viewer")
    policy = users.Lockout(after=2, minutes=10)
    with pytest.raises(users.LoginFailed):
        users.authenticate(store, "dave", "wrong password", policy=policy)
    users.authenticate(store, "dave", PASSWORD, policy=policy)
    with pytest.raises(users.LoginFailed) as exc:
        users.authenticate(store, "dave", "wrong password", policy=policy)
    assert exc.value.locked_until is None


def test_disabled_user_cannot_log_in_and_is_gone_for_sessions(store):
    with store.begin() as conn:
        u = users.add(conn, "erin", PASSWORD, "admin")
    with store.connect() as conn:
        assert users.get(conn, u.id).name == "erin"
    with store.begin() as conn:
        users.disable(conn, "erin", actor="root")
    with pytest.raises(users.LoginFailed) as exc:
        users.authenticate(store, "erin", PASSWORD)
    assert exc.value.reason == "disabled"
    with store.connect() as conn:
        assert users.get(conn, u.id) is None
        assert [r["kind"] for r in audit.recent(conn, limit=2)] == ["login_failed", "user_disable"]
    with store.begin() as conn, pytest.raises(users.UserError, match="no active user"):
        users.disable(conn, "erin")


def test_roles_map_to_scopes(store):
    dep = _department(store)
    with store.begin() as conn:
        liaison = users.add(conn, "li", PASSWORD, "liaison", department=dep)
        city = users.add(conn, "sup-city", PASSWORD, "supervisor")
        two = users.add(conn, "viewer-2", PASSWORD, "viewer", districts=["330205", "330203"])
    assert liaison.scope == Scope(departments=(dep,))
    assert city.scope == UNRESTRICTED
    with store.connect() as conn:
        assert users.get(conn, two.id).scope == Scope(districts=("330203", "330205"))
        listed = {r["name"]: r for r in users.listing(conn)}
    assert listed["viewer-2"]["districts"] == ["330203", "330205"] and "password_hash" not in listed["li"]


@pytest.mark.parametrize("kw, message", [
    ({"name": "bad name", "role": "admin"}, "user name"),
    ({"name": "x", "role": "wall"}, "unknown role"),
    ({"name": "x", "role": "admin", "password": "short"}, "too short"),
    ({"name": "x", "role": "liaison"}, "needs --department"),
    ({"name": "x", "role": "viewer", "department": "D"}, "only a liaison"),
    ({"name": "x", "role": "supervisor", "districts": ["330299"]}, "unknown district"),
    ({"name": "x", "role": "supervisor", "districts": ["1234"]}, "must be 6 digits"),
    ({"name": "x", "role": "liaison", "department": "NOPE"}, "unknown department"),
])
def test_bad_user_input_is_refused_with_a_reason(store, kw, message):
    kw = {"password": PASSWORD, **kw}
    with store.begin() as conn, pytest.raises(users.UserError, match=message):
        users.add(conn, **kw)
    with store.connect() as conn:
        assert users.listing(conn) == []


def test_duplicate_name_is_refused(store):
    with store.begin() as conn:
        users.add(conn, "frank", PASSWORD, "admin")
    with store.begin() as conn, pytest.raises(users.UserError, match="already exists"):
        users.add(conn, "frank", PASSWORD, "viewer")


def test_demo_users_get_random_passwords_once(store):
    with store.begin() as conn:
        made = users.create_demo_users(conn)
        again = users.create_demo_users(conn)
    roles = {name: role for name, role, _, _ in made}
    assert roles == {"demo-admin": "admin", "demo-supervisor": "supervisor", "demo-liaison": "liaison",
                     "demo-viewer": "viewer"}
    assert again == []
    passwords = [pw for *_, pw in made]
    assert len(set(passwords)) == 4 and all(len(pw) >= users.MIN_PASSWORD_LENGTH for pw in passwords)
    name, _, _, password = made[2]
    assert users.authenticate(store, name, password).scope.departments == (_department(store),)


def _cli(database_url, *args, stdin=""):
    env = dict(os.environ, DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "app.py", "users", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_cli_users_add_list_disable(store):
    url = store.url.render_as_string(hide_password=False)
    dep = _department(store)
    r = _cli(url, "add", "gina", "--role", "supervisor", "--district", "330203", "--district", "330212",
             stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert "330203, 330212" in r.stdout
    r = _cli(url, "add", "hank", "--role", "liaison", "--department", dep, stdin="tooshort\n")
    assert r.returncode == 2 and "too short" in r.stderr
    r = _cli(url, "add", "hank", "--role", "liaison", stdin=PASSWORD + "\n")
    assert r.returncode == 2 and "--department" in r.stderr
    r = _cli(url, "add", "hank", "--role", "liaison", "--department", dep, stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert users.authenticate(store, "gina", PASSWORD).districts == ("330203", "330212")
    r = _cli(url, "disable", "gina")
    assert r.returncode == 0, r.stderr
    r = _cli(url, "list")
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert set(lines) == {"gina", "hank"}
    assert lines["gina"].split()[1:3] == ["supervisor", "330203,330212"] and lines["gina"].endswith("disabled")
    assert lines["hank"].split()[1:3] == ["liaison", dep] and lines["hank"].endswith("active")
    assert PASSWORD not in r.stdout
    r = _cli(url, "disable", "nobody")
    assert r.returncode == 2 and "no active user" in r.stderr
