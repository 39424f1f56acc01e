"""The WSGI entry point for production: several worker processes over one shared store.

    python app.py migrate                                    # once, before the workers start
    gunicorn -b 127.0.0.1:8050 'dashboard.wsgi:server'       # DATABASE_URL=postgresql://...; gunicorn.conf.py

Why a separate entry from `python app.py`: that command seeds demo data into an empty store and runs Flask's
development server. A worker must never seed or migrate (several would race), so it refuses to start on a
store whose schema is not at head and says which command fixes it. Everything workers must agree on (data
versions, built layers, the session key, live cursors) lives in the store, so any worker can serve any
request (docs/deploy.md).
"""
from __future__ import annotations

from data.store import make_engine
from data.store.engine import redacted
from data.store.migrate import current, head


class StoreNotReady(RuntimeError):
    """The store cannot be served as it is; the message says what to run."""


def create():
    """The Dash app over DATABASE_URL, after checking the schema is current."""
    from dashboard.server import create_app
    engine = make_engine()
    have, want = current(engine), head()
    if have != want:
        raise StoreNotReady(f"the store {redacted(engine)} is at schema revision {have!r}, this program needs "
                            f"{want!r}: run `python app.py migrate` once, then start the workers")
    return create_app(engine)


app = create()
server = app.server
