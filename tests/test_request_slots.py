"""dashboard/request_slots.py: ordinary requests wait for a slot, streams do not, and a slot comes back when
the response has been sent or the app failed."""
import threading
import time

import pytest

from dashboard.request_slots import RequestSlots


def _app(gate: threading.Event, seen: list):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        seen.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body():
            gate.wait(5)
            yield b"done"
        return body()
    return app


def _call(app, path):
    out = app({"PATH_INFO": path}, lambda *a: None)
    try:
        return b"".join(out)
    finally:
        out.close()


def test_a_second_request_waits_for_the_slot_and_a_stream_does_not():
    gate, seen = threading.Event(), []
    app = RequestSlots(_app(gate, seen), 1, ("/live/stream",))
    first = threading.Thread(target=_call, args=(app, "/a"))
    second = threading.Thread(target=_call, args=(app, "/b"))
    stream = threading.Thread(target=_call, args=(app, "/live/stream"))
    first.start()
    time.sleep(0.2)
    second.start()
    stream.start()
    time.sleep(0.3)
    assert seen == ["/a", "/live/stream"]          # /b waits while /a's body is being sent
    gate.set()
    for th in (first, second, stream):
        th.join(5)
    assert seen == ["/a", "/live/stream", "/b"]


def test_the_slot_comes_back_after_an_error():
    gate, seen = threading.Event(), []
    gate.set()
    app = RequestSlots(_app(gate, seen), 1, ())
    with pytest.raises(RuntimeError):
        app({"PATH_INFO": "/boom"}, lambda *a: None)
    after = threading.Thread(target=_call, args=(app, "/after"), daemon=True)
    after.start()
    after.join(5)
    assert not after.is_alive() and seen == ["/after"]   # the failed call gave its slot back


def test_installed_from_the_setting_with_the_live_stream_exempt(monkeypatch):
    from flask import Flask

    from dashboard import request_slots
    server = Flask(__name__)
    request_slots.install(server)
    assert not isinstance(server.wsgi_app, RequestSlots)      # unset: the development server, tests
    monkeypatch.setenv("CGZT_REQUEST_SLOTS", "2")
    request_slots.install(server)
    assert isinstance(server.wsgi_app, RequestSlots) and server.wsgi_app.exempt == ("/live/stream",)
