"""Static files are compressed once per process (dashboard/compressed_static.py): the second request is
served from the cache and decompresses to the file itself; dynamic responses are never stored."""
import gzip

from dashboard import compressed_static


def test_static_bodies_are_compressed_once_and_dynamic_ones_never_kept():
    from flask import Flask
    server = Flask(__name__)
    compressed_static.configure(server)
    from flask_compress import Compress
    Compress(server)
    body = ("console.log('城管');\n" * 5000).encode()
    calls = {"n": 0}

    @server.get("/assets/app.js")
    def asset():
        calls["n"] += 1
        return server.response_class(body, mimetype="application/javascript")

    @server.post("/_dash-update-component")
    def callback():
        return server.response_class(b'{"x": "%d"}' % calls["n"] + b" " * 1000, mimetype="application/json")

    cache = server.config["COMPRESS_CACHE_BACKEND"]()
    client = server.test_client()
    first = client.get("/assets/app.js?m=1", headers={"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip" and gzip.decompress(first.data) == body
    assert list(cache.data) == ["gzip;/assets/app.js?m=1"]
    second = client.get("/assets/app.js?m=1", headers={"Accept-Encoding": "gzip"})
    assert second.data == first.data
    # A callback's answer is compressed but not kept: two calls, two different bodies, nothing new stored.
    a = client.post("/_dash-update-component", headers={"Accept-Encoding": "gzip"})
    calls["n"] += 1
    b = client.post("/_dash-update-component", headers={"Accept-Encoding": "gzip"})
    assert a.headers["Content-Encoding"] == "gzip" and gzip.decompress(a.data) != gzip.decompress(b.data)
    assert list(cache.data) == ["gzip;/assets/app.js?m=1"]


def test_the_cache_keeps_to_its_size_limit():
    cache = compressed_static.Cache(limit=10)
    cache.set("gzip;/a", b"12345")
    cache.set("gzip;/b", b"12345")
    cache.get("gzip;/a")                     # /a used last: /b goes first
    cache.set("gzip;/c", b"123")
    assert set(cache.data) == {"gzip;/a", "gzip;/c"} and cache.size == 8
    cache.set("gzip;None", b"1")
    assert cache.get("gzip;None") is None and "gzip;None" not in cache.data
