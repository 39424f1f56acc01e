"""The one shared SQL store: SQLite by default, PostgreSQL + PostGIS via DATABASE_URL."""
from data.store.engine import database_url, make_engine  # noqa: F401
