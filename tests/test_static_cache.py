"""Static files: versioned URLs are cached for good, Dash's lazy chunks revalidate without being re-read."""
import re

import pytest

from dashboard.server import create_app
from dashboard.static_cache import IMMUTABLE

CHUNK = "/_dash-component-suites/plotly/package_data/plotly.min.js"


@pytest.fixture
def client(seeded_engine):
    return create_app(seeded_engine, auth=False).server.test_client()


def test_assets_in_the_page_are_immutable_and_a_bare_path_is_not(client):
    page = client.get("/").get_data(as_text=True)
    urls = sorted(set(re.findall(r'(/assets/[^"?]+\?m=[0-9.]+)', page)))
    assert any(u.startswith("/assets/map.css?") for u in urls) and any(".js?" in u for u in urls), urls
    for url in urls:
        r = client.get(url)
        assert r.status_code == 200 and r.headers["Cache-Control"] == IMMUTABLE, url
    bare = client.get("/assets/map.css")
    assert bare.status_code == 200 and "immutable" not in bare.headers.get("Cache-Control", "")
    favicon = re.search(r'href="(/_favicon\.ico\?v=[^"]+)"', page).group(1)
    assert client.get(favicon).headers["Cache-Control"] == IMMUTABLE


def test_a_lazy_chunk_revalidates_without_reading_the_file(client, monkeypatch):
    import dash.backends._flask as dash_flask
    first = client.get(CHUNK, headers={"Accept-Encoding": "gzip"})
    assert first.status_code == 200 and len(first.data) > 100_000
    tag = first.headers["ETag"]
    assert tag.endswith(':gzip"'), tag          # what Flask-Compress sends, and so what the browser sends back
    assert "immutable" not in first.headers.get("Cache-Control", "")
    reads = []
    real = dash_flask.pkgutil.get_data
    monkeypatch.setattr(dash_flask.pkgutil, "get_data", lambda *a: reads.append(a) or real(*a))
    again = client.get(CHUNK, headers={"Accept-Encoding": "gzip", "If-None-Match": tag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == tag
    plain = client.get(CHUNK, headers={"If-None-Match": tag.replace(":gzip", "")})
    assert plain.status_code == 304
    assert reads == []
    stale = client.get(CHUNK, headers={"Accept-Encoding": "gzip", "If-None-Match": '"0000:gzip"'})
    assert stale.status_code == 200 and len(stale.data) > 100_000 and len(reads) == 1
