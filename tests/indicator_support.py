"""The fixture the indicator tests share (KPI tiles, operation index): the seeded store, a 'now' just after
its newest case (so the fixture's periods are full), and its busiest district. No tests here."""
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from data.statuses import OPEN

OPEN_SQL = "('" + "', '".join(OPEN) + "')"


@pytest.fixture(scope="module")
def store(seeded_url):
    from data.store.engine import make_engine
    engine = make_engine(seeded_url)
    with engine.connect() as conn:
        now = conn.execute(text("SELECT max(reported_at) FROM cases")).scalar()
        district = conn.execute(text("SELECT district_code FROM cases GROUP BY district_code "
                                     "ORDER BY count(*) DESC LIMIT 1")).scalar()
    if isinstance(now, str):
        now = datetime.fromisoformat(now)
    yield engine, now.replace(microsecond=0) + timedelta(seconds=1), district
    engine.dispose()
