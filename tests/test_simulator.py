"""The simulator reports and moves cases through the real HTTP API, and leaves rows and events consistent."""
from sqlalchemy import func, select

from data.store.schema import Case, CaseEvent
from tests.test_api_support import api_base, api_store, operate_token  # noqa: F401
from tests.test_cli import run_app


def test_simulate_through_the_api(api_base, api_store, operate_token):
    url = api_store.url.render_as_string(hide_password=False)
    with api_store.connect() as conn:
        before = conn.execute(select(func.max(Case.id))).scalar()
    p = run_app("simulate", "--rate", "8", "--url", api_base, "--token", operate_token, "--duration", "4",
                "--seed", "3", database_url=url, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "0 errors" in p.stdout
    with api_store.connect() as conn:
        new = conn.execute(select(Case.id, Case.status, Case.source_code, Case.version)
                           .where(Case.id > before)).all()
        assert len(new) >= 10 and len({c.source_code for c in new}) >= 2
        moved = [c for c in new if c.version > 1]
        assert moved, "no simulated case was moved along the workflow"
        # Every case's status is the last event's to_status, and its version counts its transitions.
        for c in new:
            ev = conn.execute(select(CaseEvent.actor, CaseEvent.to_status).where(CaseEvent.case_id == c.id)
                              .order_by(CaseEvent.id)).all()
            assert ev[-1].to_status == c.status and len(ev) == c.version
            assert ev[0].actor == "api:operator"
    bad = run_app("simulate", "--rate", "1", "--url", api_base, "--token", "cgzt_wrong", "--duration", "1",
                  database_url=url, timeout=60)
    assert bad.returncode == 2 and "refused" in bad.stderr
