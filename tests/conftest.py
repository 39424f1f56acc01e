"""Shared fixtures: real databases (SQLite and PostgreSQL+PostGIS), fresh or seeded stores.

Every database test runs once per database named by --db (default: both). Under CI=true a database that
cannot be reached fails the run instead of skipping it.
"""
pytest_plugins = ["tests.browser_fixtures"]
import os
import uuid

import pytest
from sqlalchemy import text

from data.store.engine import make_engine
from data.store.migrate import upgrade

# Panels read the store on every request in tests (layers.cube.lag): a test that writes and then checks a
# KPI asserts exactness, not freshness; tests/test_cube.py covers the lag itself. Servers the tests start
# inherit it.
os.environ["CGZT_PANEL_LAG_S"] = "0"
PG_ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_addoption(parser):
    parser.addoption("--db", default=os.environ.get("TEST_DB", "sqlite,postgresql"),
                     help="comma-separated databases to run store tests on: sqlite, postgresql")


def pytest_configure(config):
    config.addinivalue_line("markers", "only_db(*kinds): run a store test on these databases only")


def pytest_generate_tests(metafunc):
    if "db_kind" in metafunc.fixturenames:
        kinds = [k.strip() for k in metafunc.config.getoption("--db").split(",") if k.strip()]
        only = metafunc.definition.get_closest_marker("only_db")
        if only is not None:  # a test of one database's own mechanics runs on that one alone
            kinds = [k for k in kinds if k in only.args]
        metafunc.parametrize("db_kind", kinds, scope="session")


def _unavailable(why: str):
    if IN_CI:
        pytest.fail(f"CI=true and {why}", pytrace=False)
    pytest.skip(why)


class PostgresServer:
    """Creates throw-away databases; a migrated template makes each new store cost one CREATE DATABASE."""

    def __init__(self, admin_url: str):
        self.admin = make_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=None)
        self.base = make_engine(admin_url).url
        self.template = None
        self.created = []

    def url(self, name: str) -> str:
        # Throw-away databases need no crash durability: skipping the WAL flush per commit keeps the
        # suite fast on a busy disk without changing what any query returns.
        u = self.base.set(database=name, query={"options": "-c synchronous_commit=off"})
        return u.render_as_string(hide_password=False)

    def create(self, template: str | None = None) -> str:
        name = f"cgzt_test_{uuid.uuid4().hex[:10]}"
        tmpl = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as c:
            c.execute(text(f"CREATE DATABASE {name}{tmpl}"))
        self.created.append(name)
        return name

    def migrated_template(self) -> str:
        if self.template is None:
            name = self.create()
            engine = make_engine(self.url(name))
            upgrade(engine)
            engine.dispose()
            self.template = name
        return self.template

    def drop_all(self):
        with self.admin.connect() as c:
            for name in reversed(self.created):
                c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_server():
    try:
        server = PostgresServer(PG_ADMIN_URL)
        with server.admin.connect() as c:
            c.execute(text("SELECT 1"))
            has_postgis = c.execute(text(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")).scalar()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server"
        _unavailable(f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {exc}")
    if not has_postgis:
        _unavailable("PostGIS is not installed on the PostgreSQL server (apt install postgresql-15-postgis-3)")
    yield server
    server.drop_all()


def _fresh_url(db_kind, request, tmp_path_factory) -> str:
    if db_kind == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('store') / 'cgzt.sqlite'}"
    server = request.getfixturevalue("pg_server")
    return server.url(server.create(template=server.migrated_template()))


def _fresh_engine(db_kind, request, tmp_path_factory):
    engine = make_engine(_fresh_url(db_kind, request, tmp_path_factory))
    upgrade(engine)
    return engine


@pytest.fixture
def fresh_engine(db_kind, request, tmp_path_factory):
    """An empty, migrated store of its own for one test."""
    engine = _fresh_engine(db_kind, request, tmp_path_factory)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def module_engine(db_kind, request, tmp_path_factory):
    """An empty, migrated store shared by one test module whose tests do not see each other's rows."""
    engine = _fresh_engine(db_kind, request, tmp_path_factory)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def seeded_url(db_kind, request, tmp_path_factory):
    """The URL of a store seeded once per session with the small 'test' scale. Treat it as read-only."""
    from data.demo.seed import seed
    url = _fresh_url(db_kind, request, tmp_path_factory)
    engine = make_engine(url)
    upgrade(engine)
    seed(engine, scale="test", seed=7)
    engine.dispose()
    return url


@pytest.fixture
def seeded_engine(seeded_url):
    engine = make_engine(seeded_url)
    yield engine
    engine.dispose()
