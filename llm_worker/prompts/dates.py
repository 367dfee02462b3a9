"""Dates spelled out for a model, so that relative days are looked up, not computed."""

from __future__ import annotations

from datetime import date, datetime, timedelta

#: Days from the reference day on that the calendar lists.
CALENDAR_DAYS = 14


def _entry(day: date, note: str = "") -> str:
    return f"{day:%a} {day.day} {day:%b} {day.year} = {day.isoformat()}{note}"


def calendar_from(reference: str | None, now: datetime) -> list[str]:
    """The reference day (an ISO 8601 date-time, e.g. when an email was received) and the
    days after it, two weeks, each as it is written in mail and as an ISO date:
    ``"Thu 3 Dec 2026 = 2026-12-03 (received)"``.

    Shown to the model beside the text, so that "tomorrow", "on Friday", "next Thursday"
    or "Tue 8 Dec" is looked up instead of computed (small models get date arithmetic
    wrong).  ``now`` stands in for a missing ``reference``.
    """
    moment = datetime.fromisoformat(reference.replace("Z", "+00:00")) if reference else now
    day = moment.date()
    entries = [_entry(day, " (received)"), _entry(day + timedelta(days=1), " (tomorrow)")]
    entries += [_entry(day + timedelta(days=n)) for n in range(2, CALENDAR_DAYS)]
    return entries
