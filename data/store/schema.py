"""The store's tables.

Every located row carries its grid, community, street and district codes, assigned at ingest, so that
every dashboard query is a GROUP BY or a prefix match on an indexed code column. Polygons carry their
bounding box (SQLite has no spatial index; PostGIS additionally gets GiST indexes). Points are lon/lat
columns; on PostgreSQL a generated PostGIS point column (added by the migration) mirrors them for GIS
clients. Timestamps are China Standard Time (UTC+08:00, no DST) stored without zone.
"""
from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from data.store.geometry import Geometry

DISTRICT, STREET, COMMUNITY, GRID = 6, 9, 12, 15


class Base(DeclarativeBase):
    pass


class _BBox:
    minx: Mapped[float] = mapped_column(Float)
    miny: Mapped[float] = mapped_column(Float)
    maxx: Mapped[float] = mapped_column(Float)
    maxy: Mapped[float] = mapped_column(Float)


class Meta(Base):
    """Store-wide facts: schema purpose, whether the data is demo data, data versions per layer."""
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class District(_BBox, Base):
    __tablename__ = "districts"
    code: Mapped[str] = mapped_column(String(DISTRICT), primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    name_en: Mapped[str] = mapped_column(String(64))
    area_m2: Mapped[float] = mapped_column(Float)
    geom = mapped_column(Geometry("MULTIPOLYGON"), nullable=False)


class Street(_BBox, Base):
    """街道/乡镇. Kind follows the township code: 001-099 街道, 100-199 镇, 200-399 乡."""
    __tablename__ = "streets"
    code: Mapped[str] = mapped_column(String(STREET), primary_key=True)
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    name_en: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    area_m2: Mapped[float] = mapped_column(Float)
    geom = mapped_column(Geometry("MULTIPOLYGON"), nullable=False)


class Community(_BBox, Base):
    __tablename__ = "communities"
    code: Mapped[str] = mapped_column(String(COMMUNITY), primary_key=True)
    street_code: Mapped[str] = mapped_column(ForeignKey("streets.code"), index=True)
    district_code: Mapped[str] = mapped_column(String(DISTRICT), index=True)
    name: Mapped[str] = mapped_column(String(32))
    area_m2: Mapped[float] = mapped_column(Float)
    geom = mapped_column(Geometry("MULTIPOLYGON"), nullable=False)


class Grid(_BBox, Base):
    """万米单元网格: the smallest unit of responsibility, with one patrol inspector."""
    __tablename__ = "grids"
    code: Mapped[str] = mapped_column(String(GRID), primary_key=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("communities.code"), index=True)
    street_code: Mapped[str] = mapped_column(String(STREET), index=True)
    district_code: Mapped[str] = mapped_column(String(DISTRICT), index=True)
    area_m2: Mapped[float] = mapped_column(Float)
    inspector: Mapped[str | None] = mapped_column(String(32))
    geom = mapped_column(Geometry("MULTIPOLYGON"), nullable=False)


class Department(Base):
    """协同单位: city-level (district_code NULL) or district-level departments, and streets (属地)."""
    __tablename__ = "departments"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(96))
    kind: Mapped[str] = mapped_column(String(16))
    district_code: Mapped[str | None] = mapped_column(String(DISTRICT), index=True)


class CaseClass(Base):
    """Minor classes of events (E..) and components (C..) with their time limit and default department."""
    __tablename__ = "case_classes"
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    major_code: Mapped[str] = mapped_column(String(4), index=True)
    major_name: Mapped[str] = mapped_column(String(32))
    major_name_en: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(32))
    name_en: Mapped[str] = mapped_column(String(64))
    limit_value: Mapped[int] = mapped_column(Integer)
    limit_unit: Mapped[str] = mapped_column(String(12))
    department_kind: Mapped[str] = mapped_column(String(16))
    in_setback: Mapped[bool] = mapped_column(Boolean, default=False)


class CaseSource(Base):
    __tablename__ = "case_sources"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    name_en: Mapped[str] = mapped_column(String(64))
    verify_first: Mapped[bool] = mapped_column(Boolean)


class Berth(Base):
    """停车泊位 with its current state; the history is in berth_sessions."""
    __tablename__ = "berths"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    road_name: Mapped[str | None] = mapped_column(String(64))
    segment_code: Mapped[str | None] = mapped_column(String(32), index=True)
    berth_type: Mapped[str] = mapped_column(String(12))
    vehicle: Mapped[str] = mapped_column(String(12))
    charge_zone: Mapped[str | None] = mapped_column(String(8))
    sensor: Mapped[str | None] = mapped_column(String(12))
    state: Mapped[str] = mapped_column(String(16))
    state_since: Mapped[datetime | None] = mapped_column(DateTime)
    grid_code: Mapped[str] = mapped_column(String(GRID), index=True)
    community_code: Mapped[str] = mapped_column(String(COMMUNITY))
    street_code: Mapped[str] = mapped_column(String(STREET), index=True)
    district_code: Mapped[str] = mapped_column(String(DISTRICT), index=True)
    __table_args__ = (Index("ix_berths_lon_lat", "lon", "lat"),
                      Index("ix_berths_grid_state", "grid_code", "state"))


class BerthSession(Base):
    """One parking event from a camera or ground sensor: entry and (once left) exit."""
    __tablename__ = "berth_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    berth_id: Mapped[int] = mapped_column(ForeignKey("berths.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index("ix_berth_sessions_berth_start", "berth_id", "started_at"),
                      # ended_at and berth_id too: occupancy at a moment reads the index only (migration 0009)
                      Index("ix_berth_sessions_start_cover", "started_at", "ended_at", "berth_id"))


class Setback(_BBox, Base):
    """退红空间 under the three-rights split: ownership, use, management."""
    __tablename__ = "setbacks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    road_name: Mapped[str | None] = mapped_column(String(64))
    segment_code: Mapped[str | None] = mapped_column(String(32))
    area_m2: Mapped[float] = mapped_column(Float)
    owner: Mapped[str] = mapped_column(String(64))
    user: Mapped[str | None] = mapped_column(String(64))
    manager: Mapped[str] = mapped_column(String(64))
    manager_department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    mode: Mapped[str] = mapped_column(String(16))
    permitted_uses: Mapped[str] = mapped_column(String(128))
    grid_code: Mapped[str] = mapped_column(String(GRID), index=True)
    community_code: Mapped[str] = mapped_column(String(COMMUNITY))
    street_code: Mapped[str] = mapped_column(String(STREET), index=True)
    district_code: Mapped[str] = mapped_column(String(DISTRICT), index=True)
    geom = mapped_column(Geometry("MULTIPOLYGON"), nullable=False)


class Case(Base):
    """城管案件, one row per case with a timestamp for every stage it has reached."""
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    source_code: Mapped[str] = mapped_column(ForeignKey("case_sources.code"))
    kind: Mapped[str] = mapped_column(String(12))
    major_code: Mapped[str] = mapped_column(String(4))
    class_code: Mapped[str] = mapped_column(ForeignKey("case_classes.code"))
    description: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(128))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    grid_code: Mapped[str] = mapped_column(String(GRID))
    community_code: Mapped[str] = mapped_column(String(COMMUNITY))
    street_code: Mapped[str] = mapped_column(String(STREET))
    district_code: Mapped[str] = mapped_column(String(DISTRICT))
    setback_id: Mapped[int | None] = mapped_column(ForeignKey("setbacks.id"))
    status: Mapped[str] = mapped_column(String(16))
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    reported_at: Mapped[datetime] = mapped_column(DateTime)
    registered_at: Mapped[datetime | None] = mapped_column(DateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime)
    handled_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (
        # Covering indexes for the dashboard's GROUP BYs (migration 0003, docs/query-plans.md).
        Index("ix_cases_reported_cover", "reported_at", "grid_code", "status", "deadline_at",
              "class_code", "source_code", "department_code"),
        Index("ix_cases_deadline_cover", "deadline_at", "grid_code", "status", "registered_at", "closed_at",
              "class_code", "source_code", "department_code"),
        Index("ix_cases_status_cover", "status", "deadline_at", "grid_code",
              "class_code", "source_code", "department_code"),
        Index("ix_cases_district_reported", "district_code", "reported_at"),
        Index("ix_cases_street_reported", "street_code", "reported_at"),
        Index("ix_cases_grid_cover", "grid_code", "reported_at", "status", "deadline_at",
              "class_code", "source_code", "department_code"),
        Index("ix_cases_department_status", "department_code", "status"),
        Index("ix_cases_lon_lat", "lon", "lat"),
        Index("ix_cases_updated", "updated_at"),
        # "Open at a past moment" as two short ranges (migration 0008, layers/breakdown.state_at).
        Index("ix_cases_closed_cover", "closed_at", "reported_at", "status", "deadline_at", "grid_code",
              "setback_id", "class_code", "source_code", "department_code"),
    )


class CaseEvent(Base):
    """Every transition of a case: who, when, from which status to which, and why."""
    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    department_code: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)


class LayerCache(Base):
    """Built map layers (gzipped geobuf) per layer, variant and data version, shared by every worker."""
    __tablename__ = "layer_cache"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    variant: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    etag: Mapped[str] = mapped_column(String(64))
    features: Mapped[int] = mapped_column(Integer)
    raw_bytes: Mapped[int] = mapped_column(Integer)
    body_gz: Mapped[bytes] = mapped_column(LargeBinary)
    built_at: Mapped[datetime] = mapped_column(DateTime)
    build_ms: Mapped[int] = mapped_column(Integer)


class WorkCalendarDay(Base):
    """Exceptions to the Monday-Friday working week: public holidays and make-up working days (调休)."""
    __tablename__ = "work_calendar"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(String(32))


POLYGON_TABLES = ("districts", "streets", "communities", "grids", "setbacks")
POINT_TABLES = ("berths", "cases")


class ApiToken(Base):
    """A bearer token for the HTTP API and Open311 (api_key): only its SHA-256 is kept, never the token."""
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)


class IdempotencyKey(Base):
    """A client's Idempotency-Key per token and the case its first request made: a retry returns that case."""
    __tablename__ = "idempotency_keys"
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class User(Base):
    """A person who logs in: a role, and for scoped roles the districts or the department they may see."""
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)


class UserDistrict(Base):
    """The districts a supervisor or viewer is limited to (none: the whole city)."""
    __tablename__ = "user_districts"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"), primary_key=True)


class AuditLog(Base):
    """Who did what, when, from where: every login, failed login, logout and write."""
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[str | None] = mapped_column(Text)
    remote: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (Index("ix_audit_log_actor_at", "actor", "at"),)


class CasePhoto(Base):
    """A photo uploaded with a case event (a liaison's feedback): the file lives outside the web root
    (data.photos), the row says which case and step it belongs to, what it is and who sent it."""
    __tablename__ = "case_photos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("case_events.id", ondelete="CASCADE"), index=True)
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
    original_name: Mapped[str | None] = mapped_column(String(128))
    mime: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime)
