"""Working time: deadlines in working hours or working days, on a calendar kept as data.

A time limit counts only working time: Monday-Friday within the office periods below, minus public
holidays, plus make-up working days (调休), both from the work_calendar table (or its reference CSV).
Everything is vectorised over numpy datetime64[s] arrays, so the demo generator and importers compute a
million deadlines at once. A timestamp maps to an ordinal of working seconds; adding a limit is adding to
the ordinal; the inverse maps back to the earliest wall-clock time with that ordinal (a deadline that falls
exactly at the end of a period is that period's end, not the next period's start).
"""
from functools import lru_cache

import numpy as np

PERIODS = ((8 * 3600 + 1800, 12 * 3600), (13 * 3600 + 1800, 17 * 3600 + 1800))  # 08:30-12:00, 13:30-17:30
DAY_SECONDS = sum(e - s for s, e in PERIODS)  # one working day = 7.5 working hours
UNIT_SECONDS = {"work_hours": 3600, "work_days": DAY_SECONDS}
_DAY = np.timedelta64(1, "D")


class WorkCalendar:
    def __init__(self, exceptions: dict):
        """exceptions: {date: is_workday} overriding the Monday-Friday rule."""
        self.exceptions = {np.datetime64(d, "D"): bool(v) for d, v in exceptions.items()}
        self._first = self._last = None

    @classmethod
    def from_rows(cls, rows) -> "WorkCalendar":
        return cls({d: w for d, w in rows})

    @classmethod
    def from_store(cls, conn) -> "WorkCalendar":
        from sqlalchemy import select

        from data.store.schema import WorkCalendarDay
        return cls.from_rows(conn.execute(select(WorkCalendarDay.day, WorkCalendarDay.is_workday)).all())

    # -- the day table, grown on demand to cover every timestamp asked about
    def _ensure(self, first: np.datetime64, last: np.datetime64) -> None:
        if self._first is not None and first >= self._first and last <= self._last:
            return
        if self._first is not None:
            first, last = min(first, self._first), max(last, self._last)
        days = np.arange(first, last + _DAY, _DAY)
        work = np.is_busday(days, weekmask="1111100")
        for d, w in self.exceptions.items():
            if first <= d <= last:
                work[(d - first).astype(int)] = w
        self._first, self._last, self._days, self._work = first, last, days, work
        per_day = np.where(work, DAY_SECONDS, 0).astype(np.int64)
        self._before = np.concatenate([[0], np.cumsum(per_day)[:-1]])  # working seconds before each day

    def _cover(self, ts: np.ndarray, extra_days: int = 0) -> None:
        lo = ts.min().astype("datetime64[D]") - 7 * _DAY
        hi = ts.max().astype("datetime64[D]") + (extra_days + 14) * _DAY
        self._ensure(lo, hi)

    def is_workday(self, days) -> np.ndarray:
        days = np.asarray(days, dtype="datetime64[D]")
        self._cover(days)
        return self._work[(days - self._first).astype(int)]

    def ordinal(self, ts) -> np.ndarray:
        """Working seconds from the start of the day table up to each timestamp."""
        ts = np.asarray(ts, dtype="datetime64[s]")
        self._cover(ts)
        day = ts.astype("datetime64[D]")
        i = (day - self._first).astype(int)
        sec = (ts - day.astype("datetime64[s]")).astype(np.int64)
        inside = np.zeros(len(ts), dtype=np.int64)
        for s, e in PERIODS:
            inside += np.clip(sec - s, 0, e - s)
        return self._before[i] + np.where(self._work[i], inside, 0)

    def from_ordinal(self, ordinal) -> np.ndarray:
        """The earliest timestamp whose ordinal is each value (vectorised inverse of ordinal)."""
        ordinal = np.asarray(ordinal, dtype=np.int64)
        end = self._before + np.where(self._work, DAY_SECONDS, 0)
        # first working day whose end reaches the ordinal
        i = np.searchsorted(end, ordinal, side="left")
        while i.size and i.max() >= len(self._days):
            self._ensure(self._first, self._last + 60 * _DAY)
            end = self._before + np.where(self._work, DAY_SECONDS, 0)
            i = np.searchsorted(end, ordinal, side="left")
        rest = ordinal - self._before[i]
        sec = np.zeros(len(ordinal), dtype=np.int64)
        done = np.zeros(len(ordinal), dtype=bool)
        for s, e in PERIODS:
            here = ~done & (rest <= e - s)
            sec[here] = s + rest[here]
            rest = np.where(done | here, rest, rest - (e - s))
            done |= here
        return self._days[i].astype("datetime64[s]") + sec.astype("timedelta64[s]")

    def add(self, starts, values, units) -> np.ndarray:
        starts = np.asarray(starts, dtype="datetime64[s]")
        values = np.asarray(values, dtype=np.int64)
        units = np.asarray(units, dtype=object)
        bad = set(np.unique(units)) - set(UNIT_SECONDS)
        if bad:
            raise ValueError(f"unknown time-limit units {sorted(bad)}; expected {sorted(UNIT_SECONDS)}")
        seconds = values * np.where(units == "work_hours", UNIT_SECONDS["work_hours"], DAY_SECONDS)
        if len(starts) == 0:
            return starts
        self._cover(starts, extra_days=int(seconds.max() // DAY_SECONDS * 2 + 10))
        return self.from_ordinal(self.ordinal(starts) + seconds)

    def working_seconds_between(self, a, b) -> np.ndarray:
        """Working seconds from a to b (negative when b is earlier): for 'due within the hour' and lateness."""
        return self.ordinal(b) - self.ordinal(a)


@lru_cache(maxsize=1)
def default_calendar() -> WorkCalendar:
    """The calendar of the shipped reference CSV (the store's work_calendar table starts from it)."""
    from data.reference import work_calendar
    df = work_calendar()
    return WorkCalendar.from_rows(zip(df["day"], df["is_workday"]))


def add_working_time(starts, values, units, calendar: WorkCalendar | None = None) -> np.ndarray:
    """Deadlines: each start plus its limit (value in 'work_hours' or 'work_days') of working time."""
    return (calendar or default_calendar()).add(starts, values, units)

