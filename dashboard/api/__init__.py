"""The machine-facing HTTP interfaces: the JSON API under /api/v1 and Open311 GeoReport v2 under /open311/v2.

Both write through data.intake and data.workflow, the same path as every other writer, and answer bad
input with a 4xx and a message, never a 500.
"""
from flask import Flask
from sqlalchemy.engine import Engine


def register(server: Flask, engine: Engine) -> None:
    from dashboard.api import open311, v1
    server.register_blueprint(v1.blueprint(engine))
    server.register_blueprint(open311.blueprint(engine))
