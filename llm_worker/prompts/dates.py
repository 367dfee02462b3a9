"""Dates spelled out for a model, so that relative days are looked up, not computed."""

from __future__ import annotations

from datetime import date, datetime, timedelta

#: Days after the reference day that are named.
DAYS_AHEAD = 7


def _later(day: date, days: int) -> str:
    return (day + timedelta(days=days)).isoformat()


def dates_from(reference: str | None, now: datetime) -> dict[str, str]:
    """The reference day (an ISO 8601 date-time, e.g. when an email was received) and the
    dates of the seven days after it, by weekday name.

    Shown to the model beside the text, so that "tomorrow" or "on Friday" is looked up
    instead of computed (small models get date arithmetic wrong).  ``now`` stands in for
    a missing ``reference``.
    """
    moment = datetime.fromisoformat(reference.replace("Z", "+00:00")) if reference else now
    day = moment.date()
    dates = {"received": f"{day:%A} {day.isoformat()}", "tomorrow": _later(day, 1)}
    for offset in range(1, DAYS_AHEAD + 1):
        dates[f"{day + timedelta(days=offset):%A}"] = _later(day, offset)
    return dates
