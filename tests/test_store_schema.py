"""The migrations build exactly the schema the code declares, on both databases."""
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from data.store.migrate import head, is_current
from data.store.schema import Base


def test_migrations_match_models(fresh_engine):
    assert is_current(fresh_engine)
    with fresh_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    # PostGIS adds its own tables and our generated point columns/GiST indexes, which the models omit
    # on purpose; anything else is drift between models and migrations.
    ignorable = {"spatial_ref_sys"}
    real = []
    for d in diff:
        flat = d if isinstance(d, tuple) else d[0]
        if flat[0] == "remove_table" and flat[1].name in ignorable:
            continue
        if flat[0] == "remove_index" and flat[1].name.endswith("_geom"):
            continue
        if flat[0] == "remove_column" and flat[3].name == "geom" and flat[2] in ("berths", "cases"):
            continue
        real.append(d)
    assert real == [], f"models and migrations differ: {real}"
    assert head()


def test_postgis_geometry_columns(fresh_engine, db_kind):
    if db_kind != "postgresql":
        cols = {c["name"] for c in inspect(fresh_engine).get_columns("grids")}
        assert {"geom", "minx", "miny", "maxx", "maxy"} <= cols
        return
    with fresh_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT f_table_name, type, srid FROM geometry_columns ORDER BY f_table_name")).all()
    found = {r[0]: (r[1], r[2]) for r in rows}
    for t in ("districts", "streets", "communities", "grids", "setbacks"):
        assert found[t] == ("MULTIPOLYGON", 4326)
    for t in ("berths", "cases"):
        assert found[t] == ("POINT", 4326)
