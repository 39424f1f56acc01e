"""Every kind of write leaves an audit row in its own transaction: a reported case, a token issued or
revoked, an imported file (logins, transitions and photos are covered by their own tests)."""
from sqlalchemy import select

from data import intake, tokens
from data.importers import import_file
from data.store.schema import AuditLog
from tests import fixtures_files as ff
from tests.test_api_support import inside_grid


def rows(engine, kind):
    with engine.connect() as c:
        return c.execute(select(AuditLog.actor, AuditLog.target, AuditLog.detail).where(AuditLog.kind == kind)).all()


def test_report_token_and_import_writes_are_audited(fresh_engine, tmp_path):
    engine = fresh_engine
    ff.prepare_store(engine)
    grids = ff.lattice()
    import_file(engine, "grids", ff.write(grids, tmp_path / "grids.geojson"))
    (imp,) = rows(engine, "import")
    assert imp.actor == "cli" and imp.target == "grids" and '"rows": %d' % len(grids) in imp.detail

    with engine.begin() as conn:
        tokens.add(conn, "hotline", "report")
        tokens.revoke(conn, "hotline")
    assert [r.target for r in rows(engine, "token_add")] == ["hotline"]
    assert [r.target for r in rows(engine, "token_revoke")] == ["hotline"]

    lon, lat, grid = inside_grid(engine, 0)
    with engine.begin() as conn:
        case, created = intake.report(conn, lon=lon, lat=lat, class_code="E0101", source_code="public",
                                      reporter="api:hotline")
    assert created
    (rep,) = rows(engine, "case_report")
    assert rep.actor == "api:hotline" and rep.target == case["code"] and grid in rep.detail

    # A write that fails leaves no audit row either: both are in the same transaction.
    try:
        with engine.begin() as conn:
            intake.report(conn, lon=0.0, lat=0.0, class_code="E0101", source_code="public", reporter="api:x")
    except intake.IntakeError:
        pass
    assert len(rows(engine, "case_report")) == 1
