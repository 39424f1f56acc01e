"""Deadlines in working time follow the office hours, weekends, holidays and make-up days of the calendar."""
import numpy as np
import pytest
from sqlalchemy import select

from data.reference import load
from data.store.schema import WorkCalendarDay
from data.workcalendar import WorkCalendar, add_working_time


def _one(start, value, unit, cal=None):
    return str(add_working_time(np.array([start], dtype="datetime64[s]"), [value], [unit], cal)[0])


@pytest.mark.parametrize("start,value,unit,expected", [
    ("2026-11-23T09:00:00", 2, "work_hours", "2026-11-23T11:00:00"),   # plain morning
    ("2026-11-23T11:00:00", 2, "work_hours", "2026-11-23T14:30:00"),   # over the lunch break
    ("2026-11-23T12:30:00", 1, "work_hours", "2026-11-23T14:30:00"),   # reported during lunch
    ("2026-11-23T20:00:00", 1, "work_hours", "2026-11-24T09:30:00"),   # reported in the evening
    ("2026-11-20T16:30:00", 4, "work_hours", "2026-11-23T11:30:00"),   # Friday afternoon over the weekend
    ("2026-11-23T10:00:00", 2, "work_days", "2026-11-25T10:00:00"),
    ("2026-09-30T10:00:00", 1, "work_days", "2026-10-08T10:00:00"),    # over the National Day holiday
    ("2026-02-13T10:00:00", 1, "work_days", "2026-02-14T10:00:00"),    # Saturday 2026-02-14 is a make-up day
    ("2026-11-23T09:00:00", 3, "work_hours", "2026-11-23T12:00:00"),   # ends exactly at the end of a period
    ("2026-11-23T08:00:00", 4, "work_hours", "2026-11-23T14:00:00"),   # early report counts from 08:30
])
def test_deadlines(start, value, unit, expected):
    assert _one(start, value, unit) == expected


def test_vectorised_matches_one_by_one():
    rng = np.random.default_rng(1)
    starts = np.datetime64("2026-01-01T00:00:00") + rng.integers(0, 330 * 86400, 2000).astype("timedelta64[s]")
    values = rng.integers(1, 8, 2000)
    units = np.where(rng.random(2000) < 0.5, "work_hours", "work_days")
    together = add_working_time(starts, values, units)
    apart = [add_working_time(starts[i:i + 1], values[i:i + 1], units[i:i + 1])[0] for i in range(0, 2000, 97)]
    assert list(together[::97]) == apart
    assert (together > starts).all()


def test_unknown_unit_is_refused():
    with pytest.raises(ValueError, match="unknown time-limit units"):
        add_working_time(np.array(["2026-11-23T09:00"], dtype="datetime64[s]"), [1], ["fortnights"])


def test_calendar_from_store_uses_its_rows(fresh_engine):
    """The store's table is the calendar: a holiday added there moves deadlines."""
    with fresh_engine.begin() as conn:
        load(conn)
        conn.execute(WorkCalendarDay.__table__.insert().values(day=np.datetime64("2026-11-24").item(),
                                                                is_workday=False, note="test holiday"))
        cal = WorkCalendar.from_store(conn)
        assert conn.execute(select(WorkCalendarDay.day).where(WorkCalendarDay.note == "test holiday")).scalar()
    assert _one("2026-11-23T17:00:00", 1, "work_hours", cal) == "2026-11-25T09:00:00"
    assert _one("2026-11-23T17:00:00", 1, "work_hours") == "2026-11-24T09:00:00"
