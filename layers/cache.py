"""Static map layers as gzipped geobuf blobs, built once per data version and kept in the store.

Why the store: every worker process (and every host behind a balancer) must serve identical bytes under
identical URLs, and a 100k-point layer takes seconds to encode, so it is built once per data version by
whichever worker asks first and read by all the others. Versioned URLs (`?v=<version>`) are immutable, so
browsers cache them for a year; a write that bumps `meta` version changes the URL.
"""
from __future__ import annotations

import gzip
import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import geobuf
import numpy as np
import shapely
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from data import crs
from data.store import meta
from data.store.schema import LayerCache

# Bump when a builder's output changes for the same data (new properties, other simplification).
BUILD_REVISION = "3"
VARIANTS = ("wgs84", "gcj02")

layer_cache = LayerCache.__table__


@dataclass(frozen=True)
class Layer:
    """What a layer builder returns: geometries (WGS84 shapely array), per-feature properties, ids."""
    geoms: np.ndarray
    props: list[dict]
    ids: list[int] | None = None
    precision: int = 6


@dataclass(frozen=True)
class Blob:
    name: str
    variant: str
    version: str
    etag: str
    features: int
    raw_bytes: int
    body_gz: bytes


def _builders():
    from layers import berths, boundaries, grids, setbacks
    # name -> (data layers whose version it depends on, builder(conn) -> Layer)
    return {
        "boundaries": (("boundaries",), boundaries.build),
        "grids": (("grids", "boundaries"), grids.build),
        "setbacks": (("setbacks",), setbacks.build),
        "berths": (("berths",), berths.build),
    }


NAMES = ("boundaries", "grids", "setbacks", "berths")


def version(conn, name: str, versions: dict | None = None) -> str:
    """A short token naming the data a layer is built from: changes whenever any input layer is written."""
    deps, _ = _builders()[name]
    versions = versions if versions is not None else meta.versions(conn)
    key = "|".join([BUILD_REVISION, name] + [f"{d}={versions.get(d)}" for d in deps])
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def versions_all(conn) -> dict[str, str]:
    v = meta.versions(conn)
    return {name: version(conn, name, v) for name in NAMES}


def encode(layer: Layer, variant: str = "wgs84") -> tuple[bytes, int]:
    """Geobuf bytes of a layer; the GCJ-02 variant shifts coordinates for the Amap basemap only here."""
    geoms = layer.geoms
    if variant == "gcj02" and len(geoms):
        geoms = crs.to_gcj02_geometries(geoms)
    features = []
    if len(geoms) and all(shapely.get_type_id(geoms) == 0):
        xy = shapely.get_coordinates(geoms)
        for i, (x, y) in enumerate(xy.tolist()):
            f = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                 "properties": layer.props[i]}
            if layer.ids is not None:
                f["id"] = layer.ids[i]
            features.append(f)
    else:
        for i, g in enumerate(geoms):
            f = {"type": "Feature", "geometry": shapely.geometry.mapping(g), "properties": layer.props[i]}
            if layer.ids is not None:
                f["id"] = layer.ids[i]
            features.append(f)
    fc = {"type": "FeatureCollection", "features": features}
    return geobuf.encode(fc, layer.precision, 2), len(features)


_memo: dict[tuple[str, str], Blob] = {}
_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(key):
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def get(engine: Engine, name: str, variant: str = "wgs84") -> Blob:
    """The current blob of a layer: from this process's memo, else the store, else built and stored."""
    if name not in NAMES or variant not in VARIANTS:
        raise KeyError(f"unknown layer {name!r}/{variant!r}")
    with engine.connect() as conn:
        v = version(conn, name)
    key = (name, variant)
    hit = _memo.get(key)
    if hit is not None and hit.version == v:
        return hit
    with _lock(key):
        hit = _memo.get(key)
        if hit is not None and hit.version == v:
            return hit
        blob = _load(engine, name, variant, v) or _build(engine, name, variant, v)
        _memo[key] = blob
        return blob


def _load(engine, name, variant, v) -> Blob | None:
    t = layer_cache.c
    with engine.connect() as conn:
        row = conn.execute(select(t.etag, t.features, t.raw_bytes, t.body_gz).where(
            t.name == name, t.variant == variant, t.version == v)).first()
    if row is None:
        return None
    return Blob(name, variant, v, row.etag, row.features, row.raw_bytes, bytes(row.body_gz))


def _build(engine, name, variant, v) -> Blob:
    started = time.perf_counter()
    _, builder = _builders()[name]
    with engine.connect() as conn:
        layer = builder(conn)
    raw, n = encode(layer, variant)
    body = gzip.compress(raw, compresslevel=6, mtime=0)
    etag = hashlib.sha1(raw).hexdigest()[:20]
    blob = Blob(name, variant, v, etag, n, len(raw), body)
    ms = int((time.perf_counter() - started) * 1000)
    try:
        with engine.begin() as conn:
            conn.execute(delete(layer_cache).where(layer_cache.c.name == name, layer_cache.c.variant == variant,
                                                   layer_cache.c.version != v))
            conn.execute(layer_cache.insert().values(
                name=name, variant=variant, version=v, etag=etag, features=n, raw_bytes=len(raw),
                body_gz=body, built_at=datetime.now(), build_ms=ms))
    except IntegrityError:
        # Another worker stored the same version first: serve its bytes so every worker agrees.
        return _load(engine, name, variant, v) or blob
    return blob


def warm(engine: Engine, variants=("wgs84",), progress=None) -> None:
    """Build every layer now (at server start) so the first visitor does not wait for the encoders."""
    for name in NAMES:
        for variant in variants:
            t0 = time.perf_counter()
            b = get(engine, name, variant)
            if progress:
                progress(f"layer {name}/{variant}: {b.features} features, {len(b.body_gz)/1024:.0f} kB gz "
                         f"({time.perf_counter()-t0:.1f} s)")
