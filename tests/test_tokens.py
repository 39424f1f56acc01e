"""`python app.py tokens add|list|revoke`: the token is printed once on the last line, only its hash stored."""
import hashlib

import requests
from sqlalchemy import select

from data.store.schema import ApiToken
from tests.test_api_support import api_base, api_store, auth  # noqa: F401
from tests.test_cli import run_app


def test_add_list_revoke(api_store, api_base):
    url = api_store.url.render_as_string(hide_password=False)
    p = run_app("tokens", "add", "wall-hall", "--scope", "wall", database_url=url)
    assert p.returncode == 0, p.stderr
    token = p.stdout.strip().splitlines()[-1]
    assert token.startswith("cgzt_") and len(token) > 40
    with api_store.connect() as conn:
        row = conn.execute(select(ApiToken).where(ApiToken.name == "wall-hall")).mappings().one()
    assert row["scope"] == "wall" and row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(dict(row))
    # A wall token is known (403: wrong scope, not 401) but reads through the wall pages only, never the API.
    assert requests.get(f"{api_base}/api/v1/cases?limit=1", headers=auth(token), timeout=30).status_code == 403
    p = run_app("tokens", "list", database_url=url)
    assert "wall-hall" in p.stdout and token not in p.stdout
    again = run_app("tokens", "add", "wall-hall", "--scope", "read", database_url=url)
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = run_app("tokens", "add", "x", "--scope", "admin", database_url=url)
    assert bad.returncode != 0 and "invalid choice" in bad.stderr
    assert run_app("tokens", "revoke", "wall-hall", database_url=url).returncode == 0
    assert requests.get(f"{api_base}/api/v1/cases?limit=1", headers=auth(token), timeout=30).status_code == 401
    p = run_app("tokens", "revoke", "wall-hall", database_url=url)
    assert p.returncode == 2 and "no active token" in p.stderr
