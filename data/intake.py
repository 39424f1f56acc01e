"""Case creation: the one function every way in uses (HTTP API, Open311, the simulator, scripts).

One transaction does it all, so a case is never half there: validate, convert the coordinates to the
stored WGS84 (data.crs), assign the four area codes (data.locate, one Locator per grids version), route it
(data.routing), write the case with its code and a 'report' event, register it at once when its source
needs no on-site verification (an inspector's report, through data.workflow like any other
transition), bump the cases data version, and remember the client's idempotency key.

What does not change between cases is read once per data version, not per case (bench/api.py): the grids'
STRtree (grids version), and the reference rows every case needs (classes, sources, departments, the working
calendar) under the boundaries version, which every path that reloads the reference tables bumps with them
(data.boundaries, data.importers, the demo seed). Everything that does not need the case's daily number
is done before the cases version is bumped: every writer waits on that row's lock until the commit, and
it doubles as the numbering lock, so the fewer statements after it the more writers get through.
"""
from __future__ import annotations

import math
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection

from data import crs as crs_mod
from data import audit, routing, workflow
from data.locate import Locator
from data.store import meta
from data.store.schema import Case, CaseClass, CaseEvent, CaseSource, Department, IdempotencyKey
from data.statuses import PRIORITIES
from data.workcalendar import WorkCalendar

CRS_NAMES = ("wgs84", "gcj02", "cgcs2000", "EPSG:4326", "EPSG:4490")
URGENT_MAJORS = ("E04",)        # 突发事件: urgent unless the reporter says otherwise
MAX_TEXT = {"description": 2000, "address": 128}

# Statements built once: building a Core statement per call (coercing every value, keying the compile cache)
# cost more CPU than running it (bench/README.md, API throughput).
_CASES = Case.__table__
_INSERT_CASE = _CASES.insert().returning(*_CASES.c)
_INSERT_EVENT = CaseEvent.__table__.insert()
_INSERT_KEY = IdempotencyKey.__table__.insert()
_TOP_CODE = select(func.max(_CASES.c.code)).where(_CASES.c.code >= bindparam("lo"), _CASES.c.code <= bindparam("hi"))
_REPLAY = select(IdempotencyKey.case_id, IdempotencyKey.request_hash).where(
    IdempotencyKey.token_id == bindparam("token_id"), IdempotencyKey.key == bindparam("key"))

_lock = threading.Lock()
_locators: dict = {}   # (store url, grids version) -> Locator
_references: dict = {}  # (store url, boundaries version) -> Reference


class IntakeError(ValueError):
    """Input that cannot become a case; the message says what to fix."""


class IdempotencyMismatch(IntakeError):
    """The idempotency key was already used for a different request."""


@dataclass(frozen=True)
class Idempotency:
    token_id: int
    key: str
    request_hash: str


@contextmanager
def write_transaction(engine):
    """A transaction that will write after reading. On SQLite it takes the write lock up front (BEGIN
    IMMEDIATE): a deferred one that read first cannot upgrade while another writer commits and fails with
    "database is locked" instead of waiting its turn. PostgreSQL needs nothing special."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with _writers_queue(engine.url.database):
        with engine.begin() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn


@contextmanager
def _writers_queue(database: str | None):
    """SQLite writers of every process queue on a lock file beside the store (<file>.writers) before BEGIN
    IMMEDIATE. SQLite's own busy handler polls with sleeps of 1 to 100 ms, so a waiting writer often slept
    past the moment the lock came free: at 200 POST/s p99 was 383 ms, with the queue 79 ms (bench/api.py).
    Where the file cannot be made (a read-only folder) writers fall back to SQLite's own waiting."""
    import fcntl
    fd = None
    if database and database != ":memory:":
        try:
            fd = os.open(database + ".writers", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            fd = None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)   # released when the descriptor closes, also if the process dies
        yield
    finally:
        if fd is not None:
            os.close(fd)


@dataclass(frozen=True)
class Reference:
    """The reference rows a new case needs, as one snapshot."""
    classes: dict        # code -> CaseClass row as a dict
    sources: dict        # code -> CaseSource row as a dict
    departments: frozenset
    calendar: WorkCalendar

    @classmethod
    def from_store(cls, conn: Connection) -> "Reference":
        return cls(classes={r["code"]: dict(r) for r in conn.execute(select(CaseClass)).mappings()},
                   sources={r["code"]: dict(r) for r in conn.execute(select(CaseSource)).mappings()},
                   departments=frozenset(conn.execute(select(Department.code)).scalars()),
                   calendar=WorkCalendar.from_store(conn))

    @cached_property
    def class_names(self) -> dict:
        """code -> (name, English name)"""
        return {code: (c["name"], c["name_en"]) for code, c in self.classes.items()}


def _cached(cache: dict, key: tuple, build):
    """One entry per store: a newer version replaces the store's older one."""
    with _lock:
        hit = cache.get(key)
    if hit is None:
        hit = build()
        with _lock:
            for k in [k for k in cache if k[0] == key[0]]:
                cache.pop(k)
            cache[key] = hit
    return hit


def locator(conn: Connection, versions: dict | None = None) -> Locator:
    """The grids' STRtree, built once per grids data version and store."""
    return _located(conn, versions)[0]


def _located(conn: Connection, versions: dict | None = None) -> tuple[Locator, list]:
    """The Locator and, per grid, its (grid, community, street, district) codes as plain tuples: reading
    them back through the DataFrame (.iloc) cost more than the point look-up itself."""
    versions = versions or meta.versions(conn)

    def build():
        try:
            loc = Locator.from_store(conn)
        except LookupError as exc:
            raise IntakeError(str(exc)) from None
        g = loc.grids
        return loc, list(zip(g["code"], g["community_code"], g["street_code"], g["district_code"]))
    return _cached(_locators, (str(conn.engine.url), versions["grids"]), build)


def reference(conn: Connection, versions: dict | None = None) -> Reference:
    """Classes, sources, departments and the working calendar, read once per boundaries version and store."""
    versions = versions or meta.versions(conn)
    return _cached(_references, (str(conn.engine.url), versions["boundaries"]), lambda: Reference.from_store(conn))


def _number(name: str, v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise IntakeError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(f):
        raise IntakeError(f"{name} must be a finite number, got {v!r}")
    return f


def to_wgs84(lon, lat, crs: str = "wgs84") -> tuple[float, float]:
    lon, lat = _number("lon", lon), _number("lat", lat)
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise IntakeError(f"({lon}, {lat}) is not a longitude/latitude pair")
    if crs is not None and not isinstance(crs, str):
        raise IntakeError(f"crs must be a string such as 'wgs84' or 'gcj02', got {crs!r}")
    name = (crs or "wgs84").strip()
    if name.lower() not in {c.lower() for c in CRS_NAMES}:
        raise IntakeError(f"unknown crs {crs!r}; expected one of {', '.join(CRS_NAMES)}")
    x, y = crs_mod.converter(None if name.lower() == "wgs84" else name)([lon], [lat])
    return float(x[0]), float(y[0])


def _text(name: str, v) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise IntakeError(f"{name} must be text")
    v = v.strip()
    if len(v) > MAX_TEXT[name]:
        raise IntakeError(f"{name} is longer than {MAX_TEXT[name]} characters")
    return v or None


def _next_code(conn: Connection, day: datetime) -> str:
    """NB + date + a 6-digit daily sequence, like the demo and the city's own case numbers."""
    prefix = f"NB{day:%Y%m%d}"
    top = conn.execute(_TOP_CODE, {"lo": prefix + "000000", "hi": prefix + "999999"}).scalar()
    seq = int(top[len(prefix):]) + 1 if top and top[len(prefix):].isdigit() else 1
    return f"{prefix}{seq:06d}"


def case_row(conn: Connection, case_id: int) -> dict:
    return dict(conn.execute(workflow.CASE_BY_ID, {"id": case_id}).mappings().one())


def replay(conn: Connection, idem: Idempotency) -> dict | None:
    """The case an earlier request with this key made, or None; a different request with it is refused."""
    hit = conn.execute(_REPLAY, {"token_id": idem.token_id, "key": idem.key}).first()
    if hit is None:
        return None
    if hit.request_hash != idem.request_hash:
        raise IdempotencyMismatch(f"Idempotency-Key {idem.key!r} was already used for a different request")
    return case_row(conn, hit.case_id)


def report(conn: Connection, *, lon, lat, class_code: str, source_code: str, description: str | None = None,
           address: str | None = None, priority: str | None = None, crs: str = "wgs84",
           reporter: str = "api", idempotency: Idempotency | None = None, now: datetime | None = None,
           auto_register: bool | None = None, versions: dict | None = None) -> tuple[dict, bool]:
    """Create one case inside the caller's transaction; returns (case row, created).

    created is False when `idempotency` names a key already used for the same request: the first case
    comes back and nothing is written. versions: meta.versions() when the caller has already read them in
    this transaction (the API reads them once for the case and its answer).
    """
    from data.clock import now_cst
    if idempotency is not None:
        if not idempotency.key or len(idempotency.key) > 128:
            raise IntakeError("Idempotency-Key must be 1-128 characters")
        first = replay(conn, idempotency)
        if first is not None:
            return first, False
    now = now or now_cst()
    lon, lat = to_wgs84(lon, lat, crs)
    versions = versions or meta.versions(conn)
    ref = reference(conn, versions)
    cls = ref.classes.get(str(class_code or ""))
    if cls is None:
        raise IntakeError(f"unknown class_code {class_code!r}; GET /api/v1/classes or Open311 services list them")
    src = ref.sources.get(str(source_code or ""))
    if src is None:
        raise IntakeError(f"unknown source_code {source_code!r}")
    priority = priority or ("urgent" if cls["major_code"] in URGENT_MAJORS else "normal")
    if priority not in PRIORITIES:
        raise IntakeError(f"priority must be one of {', '.join(PRIORITIES)}")
    description, address = _text("description", description), _text("address", address)

    loc, grid_codes = _located(conn, versions)
    i = int(loc.grid_index([lon], [lat])[0])
    if i < 0:
        raise IntakeError(f"the point ({lon:.6f}, {lat:.6f}) lies outside every unit grid of the city")
    codes = dict(zip(("grid_code", "community_code", "street_code", "district_code"), grid_codes[i]))
    try:
        dept, setback_id = routing.route(conn, department_kind=cls["department_kind"],
                                         in_setback_class=bool(cls["in_setback"]), lon=lon, lat=lat,
                                         district_code=codes["district_code"], street_code=codes["street_code"],
                                         departments=ref.departments, setbacks_version=versions["setbacks"])
    except routing.RoutingError as exc:
        raise IntakeError(str(exc)) from None

    values = dict(source_code=src["code"], kind=cls["kind"], major_code=cls["major_code"], class_code=cls["code"],
                  description=description, address=address, lon=lon, lat=lat, setback_id=setback_id,
                  status="reported", department_code=dept, priority=priority, reported_at=now, overdue=False,
                  rework_count=0, return_count=0, version=1, updated_at=now, **codes)
    events = [{"at": now, "actor": reporter[:64], "action": "report", "from_status": None,
               "to_status": "reported", "department_code": dept, "note": description}]
    audits = [audit.row(reporter, "case_report", detail={"source": source_code, "class": class_code,
                                                          "grid": codes["grid_code"]})]
    if auto_register if auto_register is not None else not src["verify_first"]:
        # Born registered: one INSERT of the case as the registration leaves it, by the workflow's own rules,
        # instead of an INSERT and then an UPDATE that rewrites the row and all eleven of its index entries.
        step = workflow.plan(conn, {**values, "id": None, "code": None}, "register",
                             workflow.Actor("system", "system"), expected_version=1, calendar=ref.calendar, now=now)
        values.update(step.values)
        events.append(step.event)
        audits.append(step.audit)

    # From here to the commit writers take turns, so only the writes that need the case's number come after
    # this line. Bumping the cases version first makes its row lock the numbering lock on PostgreSQL too
    # (SQLite's BEGIN IMMEDIATE serialises the whole transaction): without a lock, concurrent writers drew
    # the same daily number and retried until they gave up, 152 of 335 POSTs failed with 16 clients.
    meta.bump(conn, "cases")
    values["code"] = _next_code(conn, now)
    case = dict(conn.execute(_INSERT_CASE, values).mappings().one())
    for e in events:
        e["case_id"] = case["id"]
    conn.execute(_INSERT_EVENT, events)
    for a in audits:
        a["target"] = case["code"]
    audit.insert(conn, audits)
    if idempotency is not None:
        conn.execute(_INSERT_KEY, {"token_id": idempotency.token_id, "key": idempotency.key,
                                   "request_hash": idempotency.request_hash, "case_id": case["id"],
                                   "created_at": now})
    return case, True
