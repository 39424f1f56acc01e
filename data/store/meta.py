"""Store-wide facts in the meta table: demo flag and provenance, and a data version per layer.

Layer caches (built once per data version) key on these versions, so every write that changes a layer
bumps its version inside the same transaction, and every worker sees the change.
"""
import json
from datetime import datetime

from sqlalchemy import bindparam, or_, select
from sqlalchemy.engine import Connection

from data.store.schema import Meta

LAYERS = ("boundaries", "grids", "berths", "setbacks", "cases")
# Built once: the API reads the versions and bumps 'cases' on every request, and building these statements
# cost more CPU than running them (bench/README.md, API throughput).
_KEYS = {f"version:{layer}": layer for layer in LAYERS}
_GET = select(Meta.value).where(Meta.key == bindparam("k"))
_UPDATE = Meta.__table__.update().where(Meta.key == bindparam("k")).values(value=bindparam("v"))
_INSERT = Meta.__table__.insert()
_VERSIONS = select(Meta.key, Meta.value).where(or_(*(Meta.key == k for k in _KEYS)))


def get(conn: Connection, key: str, default=None):
    v = conn.execute(_GET, {"k": key}).scalar()
    return default if v is None else json.loads(v)


def put(conn: Connection, key: str, value) -> None:
    """One statement when the key exists (every bump after the first): writers hold the row's lock until
    they commit, so the less work around it the better."""
    text = json.dumps(value, ensure_ascii=False)
    if conn.execute(_UPDATE, {"k": key, "v": text}).rowcount == 0:
        conn.execute(_INSERT, {"key": key, "value": text})


def bump(conn: Connection, *layers: str) -> None:
    stamp = datetime.now().strftime("%Y%m%d%H%M%S%f")
    for layer in layers:
        if layer not in LAYERS:
            raise KeyError(f"unknown layer {layer!r}")
        put(conn, f"version:{layer}", stamp)


def versions(conn: Connection) -> dict:
    """Every layer's data version in one query."""
    got = dict(conn.execute(_VERSIONS).all())
    return {layer: (json.loads(got[k]) if k in got else None) for k, layer in _KEYS.items()}
