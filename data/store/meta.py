"""Store-wide facts in the meta table: demo flag and provenance, and a data version per layer.

Layer caches (built once per data version) key on these versions, so every write that changes a layer
bumps its version inside the same transaction, and every worker sees the change.
"""
import json
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data.store.schema import Meta

LAYERS = ("boundaries", "grids", "berths", "setbacks", "cases")


def get(conn: Connection, key: str, default=None):
    v = conn.execute(select(Meta.value).where(Meta.key == key)).scalar()
    return default if v is None else json.loads(v)


def put(conn: Connection, key: str, value) -> None:
    """One statement when the key exists (every bump after the first): writers hold the row's lock until
    they commit, so the less work around it the better."""
    text = json.dumps(value, ensure_ascii=False)
    if conn.execute(Meta.__table__.update().where(Meta.key == key).values(value=text)).rowcount == 0:
        conn.execute(Meta.__table__.insert().values(key=key, value=text))


def bump(conn: Connection, *layers: str) -> None:
    stamp = datetime.now().strftime("%Y%m%d%H%M%S%f")
    for layer in layers:
        if layer not in LAYERS:
            raise KeyError(f"unknown layer {layer!r}")
        put(conn, f"version:{layer}", stamp)


def versions(conn: Connection) -> dict:
    """Every layer's data version in one query."""
    keys = {f"version:{layer}": layer for layer in LAYERS}
    got = dict(conn.execute(select(Meta.key, Meta.value).where(Meta.key.in_(keys))).all())
    return {layer: (json.loads(got[k]) if k in got else None) for k, layer in keys.items()}
