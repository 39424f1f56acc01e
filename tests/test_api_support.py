"""Shared fixtures for the API, Open311, live and simulator tests (imported by those modules; no tests here).

`api_store`: a store of its own per test module, seeded with the 'test' scale (writes are allowed);
`api_base`: a real `python app.py serve` on it; `report_token` / `read_token`: tokens made through
data.tokens.
"""
import pytest
import shapely
from sqlalchemy import select

from data import tokens
from data.store.schema import Grid


@pytest.fixture(scope="module")
def api_store(module_engine):
    from data.demo.seed import seed
    seed(module_engine, scale="test", seed=11)
    return module_engine


@pytest.fixture(scope="module")
def api_base(api_store, live_server):
    return live_server(api_store.url.render_as_string(hide_password=False))


def make_token(engine, name, scope):
    with engine.begin() as conn:
        return tokens.add(conn, name, scope)


@pytest.fixture(scope="module")
def report_token(api_store):
    return make_token(api_store, "reporter", "report")


@pytest.fixture(scope="module")
def operate_token(api_store):
    """A trusted integration's token: it may also move cases through the workflow."""
    return make_token(api_store, "operator", "operate")


@pytest.fixture(scope="module")
def read_token(api_store):
    return make_token(api_store, "reader", "read")


def inside_grid(engine, i: int = 0) -> tuple[float, float, str]:
    """A point well inside the i-th grid (by code) and that grid's code."""
    with engine.connect() as conn:
        code, geom = conn.execute(select(Grid.code, Grid.geom).order_by(Grid.code).offset(i).limit(1)).one()
    p = shapely.point_on_surface(geom)
    return p.x, p.y, code


def auth(token):
    return {"Authorization": f"Bearer {token}"}
