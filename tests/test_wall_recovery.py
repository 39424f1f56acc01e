"""Unattended recovery: the server stops and starts again under an open wall (same port), and the
PostgreSQL database refuses connections for a while. The wall shows the banner with the time of its last
good data, then recovers by itself without a reload and shows new cases again.
"""

import pytest
from sqlalchemy import text

from data import intake
from tests.browser_fixtures import LiveServer, new_page
from tests.test_api_support import api_store, inside_grid, make_token  # noqa: F401


@pytest.fixture
def server(api_store, tmp_path):
    s = LiveServer(api_store.url.render_as_string(hide_password=False), tmp_path).wait_ready()
    yield s
    s.stop()


@pytest.fixture
def wall(browser, server, api_store):
    token = make_token(api_store, f"wall-recovery-{server.port}", "wall")
    pg = new_page(browser, {"width": 1920, "height": 1080})
    ctx = pg.context
    pg.goto(f"{server.url}/wall/?token={token}&tour=0&refresh=3")
    pg.wait_for_selector("#wall-kpi-open .wall-kpi-value")
    pg.wait_for_selector("#wall-ticker .live-row")
    pg.evaluate("() => { window.__sameDocument = 'yes'; }")   # gone if the page reloads
    yield pg
    ctx.close()


def report_case(engine, i=3) -> str:
    lon, lat, _ = inside_grid(engine, i)
    with intake.write_transaction(engine) as conn:
        case, _ = intake.report(conn, lon=lon, lat=lat, class_code="E0101", source_code="inspector",
                                reporter="wall-recovery")
    return case["code"]


def assert_banner_then_recovery(pg, engine, outage_end):
    pg.wait_for_selector("#wall-banner.wall-banner-on", timeout=20_000)
    since = pg.locator("#wall-banner-time").inner_text()
    assert since != "—" and len(since) == 19, since        # YYYY-MM-DD HH:MM:SS of the last good answer
    from tests.browser_fixtures import screenshot
    screenshot(pg, f"wall-offline-{engine.dialect.name}")
    outage_end()
    pg.wait_for_function("() => !document.getElementById('wall-banner').classList.contains('wall-banner-on')",
                         timeout=60_000)
    assert pg.evaluate("() => window.__sameDocument") == "yes", "the page reloaded"
    code = report_case(engine)
    pg.wait_for_selector(f"#wall-ticker [data-code='{code}']", timeout=20_000)


def test_server_restart_under_an_open_wall(server, wall, api_store):
    server.stop()
    assert_banner_then_recovery(wall, api_store, lambda: server.start().wait_ready())


@pytest.mark.only_db("postgresql")  # an outage is PostgreSQL refusing connections; SQLite is a local file
def test_database_outage_under_an_open_wall(server, wall, api_store, request):
    admin = request.getfixturevalue("pg_server").admin
    name = api_store.url.database

    def refuse():
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n "
                           "AND pid <> pg_backend_pid()"), {"n": name})

    def allow():
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        # The outage also ended this test process's pooled connections (the case it reports afterwards goes
        # through them); the server's own recovery is what the banner and the ticker assert.
        api_store.dispose()
    refuse()
    try:
        assert_banner_then_recovery(wall, api_store, allow)
    finally:
        allow()
