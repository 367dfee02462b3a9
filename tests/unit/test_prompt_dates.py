"""The calendar an email is shown with: its day, then the days after it, looked up by name."""

from __future__ import annotations

from datetime import UTC, datetime

from llm_worker.prompts.dates import CALENDAR_DAYS, calendar_from

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_the_calendar_starts_on_the_day_received_and_names_each_day_as_mail_does():
    days = calendar_from("2026-12-03T23:30:00Z", NOW)
    assert len(days) == CALENDAR_DAYS
    assert days[:3] == [
        "Thu 3 Dec 2026 = 2026-12-03 (received)",
        "Fri 4 Dec 2026 = 2026-12-04 (tomorrow)",
        "Sat 5 Dec 2026 = 2026-12-05",
    ]
    assert "Thu 10 Dec 2026 = 2026-12-10" in days  # "next Thursday"


def test_the_calendar_crosses_a_year_and_uses_the_day_of_the_received_time_as_written():
    days = calendar_from("2026-12-30T10:00:00+05:00", NOW)
    assert days[0] == "Wed 30 Dec 2026 = 2026-12-30 (received)"
    assert "Mon 4 Jan 2027 = 2027-01-04" in days


def test_without_a_received_time_the_calendar_starts_now():
    assert calendar_from(None, NOW)[0] == "Tue 1 Jan 2030 = 2030-01-01 (received)"
