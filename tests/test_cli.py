"""The command line as documented in the README: python app.py [serve|seed|import|migrate]."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data.store.migrate import head

ROOT = Path(__file__).resolve().parents[1]


def run_app(*args, database_url=None, timeout=300):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def test_help_lists_every_command():
    r = run_app("--help")
    assert r.returncode == 0, r.stderr
    for command in ("serve", "seed", "import", "migrate"):
        assert command in r.stdout, f"{command!r} missing from --help:\n{r.stdout}"


@pytest.mark.parametrize("command, options", [
    ("serve", ("--host", "--port", "--no-seed", "--debug")),
    ("seed", ("--scale", "--replace", "test", "demo", "full")),
    ("import", ("--crs", "--replace", "grids", "berths", "setbacks", "cases")),
])
def test_command_help_shows_documented_options(command, options):
    r = run_app(command, "--help")
    assert r.returncode == 0, r.stderr
    for option in options:
        assert option in r.stdout, f"{option!r} missing from `{command} --help`:\n{r.stdout}"


def test_unknown_command_is_a_usage_error():
    r = run_app("frobnicate")
    assert r.returncode == 2
    assert "invalid choice" in r.stderr


@pytest.fixture
def empty_database_url(db_kind, request, tmp_path):
    """A database with no schema at all (not even the template's migrations)."""
    if db_kind == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh' / 'cgzt.sqlite'}"
    server = request.getfixturevalue("pg_server")
    return server.url(server.create())


def test_migrate_creates_the_schema_and_prints_the_revision(empty_database_url):
    r = run_app("migrate", database_url=empty_database_url)
    assert r.returncode == 0, r.stderr
    assert f"schema at revision {head()}" in r.stdout

    from sqlalchemy import inspect

    from data.store.engine import make_engine
    engine = make_engine(empty_database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"alembic_version", "grids", "cases"} <= tables, tables

    again = run_app("migrate", database_url=empty_database_url)
    assert again.returncode == 0, again.stderr
    assert f"schema at revision {head()}" in again.stdout


def test_seed_refuses_a_store_that_holds_data_without_replace(seeded_url):
    # The seeded store is shared read-only: a refused seed must not write anything.
    r = run_app("seed", "--scale", "test", database_url=seeded_url)
    assert r.returncode != 0, f"seed over a non-empty store succeeded:\n{r.stdout}"
    assert "--replace" in r.stderr, f"the refusal should say how to go on (--replace):\n{r.stderr}"
    assert "Traceback" not in r.stderr, f"a refusal is a message, not a traceback:\n{r.stderr}"


def test_never_seeded_store_takes_a_grid_import(tmp_path):
    """A city's own store starts with the real district outlines, so its grids import without demo data."""
    import subprocess
    import sys

    import geopandas as gpd
    import shapely
    from sqlalchemy import create_engine, text

    db = tmp_path / "city.sqlite"
    env = {**__import__("os").environ, "DATABASE_URL": f"sqlite:///{db}"}
    gpkg = tmp_path / "grids.gpkg"
    gpd.GeoDataFrame({"code": ["330203001001001"], "street_name": ["鼓楼街道"]},
                     geometry=[shapely.box(121.545, 29.870, 121.548, 29.873)], crs=4326).to_crs(4549).to_file(gpkg)
    run = subprocess.run([sys.executable, "app.py", "import", "grids", str(gpkg)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    with create_engine(f"sqlite:///{db}").connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM districts")).scalar() == 10
        assert conn.execute(text("SELECT street_code FROM grids")).scalar() == "330203001"
        assert conn.execute(text("SELECT value FROM meta WHERE key = 'demo'")).scalar() is None
