"""The labelled evaluation set: realistic inputs of every job with the expected answer.

None of these appear among the prompt profiles' few-shot examples.  Emails are
received on Monday 2026-11-02 at 09:00 UTC (``RECEIVED_AT``); relative dates
resolve against it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from actors.email_extract import (
    EVENT_THRESHOLD,
    EmailExtractPayload,
    EmailExtractResult,
)
from actors.followup import FollowupPayload, FollowupResult
from actors.intent import IntentPayload, IntentResult
from actors.task_match import TaskMatchPayload, TaskMatchResult, accepted_match
from llm_worker.core.client import CoreTask
from llm_worker.jobs.schemas import Payload, Result
from llm_worker.review.schemas import CommentAnswer, ReviewRequestPayload

RECEIVED_AT = "2026-11-02T09:00:00Z"

#: (message, expected intent): 12 of each of the five intents.
INTENT_CASES: list[tuple[str, str]] = [
    ("remind me to call mum at 6", "reminder"),
    ("remind me tomorrow at 9 to send the invoice", "reminder"),
    ("set a reminder for the dentist on thursday at 3pm", "reminder"),
    ("ping me in two hours to check the oven", "reminder"),
    ("don't let me forget the meeting at 10 tomorrow", "reminder"),
    ("remind me every monday at 8 to take out the bins", "reminder"),
    ("remind me at noon to take my medicine", "reminder"),
    ("alert me on friday at 5 to leave for the airport", "reminder"),
    ("remind me on the 14th to pay the rent", "reminder"),
    ("at 7pm remind me to water the plants", "reminder"),
    ("remind me in 30 minutes to move the car", "reminder"),
    ("tomorrow morning at 8 remind me to call the bank", "reminder"),
    ("buy milk and eggs", "task"),
    ("finish the quarterly report", "task"),
    ("call the plumber about the sink", "task"),
    ("book a table for the anniversary dinner", "task"),
    ("renew the car insurance", "task"),
    ("clean the garage", "task"),
    ("send the photos to grandma", "task"),
    ("write a thank-you card for Julia", "task"),
    ("return the library books", "task"),
    ("pick up the dry cleaning", "task"),
    ("order new printer ink", "task"),
    ("cancel the gym membership", "task"),
    ("where did I put the passport?", "search"),
    ("what was the name of that restaurant in Porto?", "search"),
    ("what did Anna say about the trip?", "search"),
    ("what is the wifi password at the office?", "search"),
    ("when is Mark's birthday?", "search"),
    ("which plumber did we use last year?", "search"),
    ("find my notes about the kitchen renovation", "search"),
    ("what size is the living room window?", "search"),
    ("show me what I saved about the car loan", "search"),
    ("what was the film Tom recommended?", "search"),
    ("how much did the new tyres cost?", "search"),
    ("what is my passport number?", "search"),
    ("the wifi password is hunter2", "general_note"),
    ("my bike is in the garage", "general_note"),
    ("Anna's flight number is TP1234", "general_note"),
    ("the spare key is under the blue flower pot", "general_note"),
    ("Mark is allergic to peanuts", "general_note"),
    ("the car was serviced at 45000 km", "general_note"),
    ("our plumber is called Luis, 555-0182", "general_note"),
    ("the living room window is 120 by 90 cm", "general_note"),
    ("I parked on level 3, spot 42", "general_note"),
    ("Tom recommended the film Arrival", "general_note"),
    ("the new tyres cost 380 euros", "general_note"),
    ("my blood type is O negative", "general_note"),
    ("hmm", "ambiguous"),
    ("that one", "ambiguous"),
    ("later", "ambiguous"),
    ("ok so", "ambiguous"),
    ("the other thing", "ambiguous"),
    ("?", "ambiguous"),
    ("yes", "ambiguous"),
    ("maybe", "ambiguous"),
    ("what about it", "ambiguous"),
    ("same as before", "ambiguous"),
    ("you know", "ambiguous"),
    ("and then", "ambiguous"),
]

#: Emails: payload, expected number of kept events, expected start date of the first.
EMAIL_CASES: list[tuple[dict[str, Any], int, str | None]] = [
    (
        {"subject": "Dentist appointment", "body": "Your appointment is on 2026-12-01 at 09:00."},
        1,
        "2026-12-01",
    ),
    (
        {
            "subject": "Team meeting",
            "body": "Hi all, the planning meeting is on 2026-11-05 at 14:00 in room 3B.",
        },
        1,
        "2026-11-05",
    ),
    (
        {
            "subject": "Your flight booking",
            "body": "Flight TP123 Lisbon to Paris departs on 2026-11-20 at 07:45.",
        },
        1,
        "2026-11-20",
    ),
    (
        {
            "subject": "Haircut confirmed",
            "body": "See you on 2026-11-10 at 17:30 at Studio Nine.",
        },
        1,
        "2026-11-10",
    ),
    (
        {
            "subject": "Parent-teacher evening",
            "body": "The parent-teacher evening takes place on 2026-11-12 from 18:00 to 20:00.",
        },
        1,
        "2026-11-12",
    ),
    (
        {
            "subject": "Dinner reservation",
            "body": "Your table for 4 at Casa Mia is reserved for 2026-11-07 at 20:00.",
        },
        1,
        "2026-11-07",
    ),
    (
        {
            "subject": "Car service",
            "body": "Your car is booked in for its service on 2026-11-16 at 08:30.",
        },
        1,
        "2026-11-16",
    ),
    (
        {
            "subject": "Interview invitation",
            "body": "We would like to invite you to an interview on 2026-11-09 at 11:00.",
        },
        1,
        "2026-11-09",
    ),
    (
        {
            "subject": "Yoga class",
            "body": "Your trial yoga class is booked for 2026-11-04 at 19:00.",
        },
        1,
        "2026-11-04",
    ),
    (
        {
            "subject": "Concert tickets",
            "body": "Thanks for your order! The concert is on 2026-12-18, doors open at 19:30.",
        },
        1,
        "2026-12-18",
    ),
    (
        {
            "subject": "Tax deadline",
            "body": "Reminder: your tax return must be filed by 2026-11-30.",
        },
        1,
        "2026-11-30",
    ),
    (
        {
            "subject": "Call tomorrow",
            "body": "Can we have our call tomorrow at 10:00? Talk then.",
        },
        1,
        "2026-11-03",
    ),
    ({"subject": "Weekly newsletter", "body": "Five recipes for autumn. Enjoy!"}, 0, None),
    (
        {
            "subject": "Your receipt",
            "body": "Thank you for shopping with us. Total paid: 23.40 EUR.",
        },
        0,
        None,
    ),
    (
        {
            "subject": "Password changed",
            "body": "The password of your account was changed. If it was not you, tell us.",
        },
        0,
        None,
    ),
    ({"subject": "Re: photos", "body": "Lovely photos, thanks for sending them!"}, 0, None),
    (
        {
            "subject": "Sale ends soon",
            "body": "Up to 50% off all shoes. Shop now while stocks last.",
        },
        0,
        None,
    ),
    (
        {
            "subject": "Your parcel has shipped",
            "body": "Your order 4471 has shipped. Track it with the link below.",
        },
        0,
        None,
    ),
    (
        {"subject": "Quick question", "body": "Do you still have the drill I lent you?"},
        0,
        None,
    ),
    (
        {
            "subject": "Welcome!",
            "body": "Thanks for signing up. Your account is ready to use.",
        },
        0,
        None,
    ),
]

#: The open tasks every ``task_match`` case is matched against.
OPEN_TASKS: list[dict[str, Any]] = [
    {"id": 1, "title": "Plan the trip to Rome", "description": "flights, hotel, museums"},
    {"id": 2, "title": "Renovate the kitchen", "description": "new cabinets and tiles"},
    {"id": 3, "title": "File the tax return", "description": None},
    {"id": 4, "title": "Organise Mia's birthday party", "description": "Saturday the 21st"},
    {"id": 5, "title": "Buy a new laptop", "description": "for work, under 1200 euros"},
]

#: (note, expected task id or None).
TASK_CASES: list[tuple[str, int | None]] = [
    ("hotels near the Colosseum", 1),
    ("found cheap flights to Rome in May", 1),
    ("the Vatican museums need tickets booked in advance", 1),
    ("tile samples from the hardware store", 2),
    ("the carpenter can fit the cabinets next week", 2),
    ("quote for the kitchen countertop: 900 euros", 2),
    ("got the payslips for the tax declaration", 3),
    ("the accountant needs the receipts by Friday", 3),
    ("ordered balloons and a cake for Mia", 4),
    ("invite list for the birthday: 12 kids", 4),
    ("the laptop with 16 GB of RAM is on sale", 5),
    ("compare the two laptop models for work", 5),
    ("the cat needs a vet appointment", None),
    ("my running shoes are worn out", None),
    ("the neighbour's dog barked all night", None),
    ("recipe for lentil soup", None),
    ("call grandma on Sunday", None),
    ("the car makes a strange noise", None),
    ("new episode of the podcast is out", None),
    ("water the tomatoes twice a week", None),
]

#: Follow-ups: payload, and phrases that would ask for a detail already given.
#: A good answer is one question (ends with "?") with none of them.
FOLLOWUP_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"text": "move it", "context": None}, []),
    (
        {"text": "remind me", "context": "Dentist on 2026-12-01 at 9:00"},
        ["what date", "which date", "which day", "what day"],
    ),
    ({"text": "book it for 3pm", "context": None}, ["what time", "which time", "when"]),
    ({"text": "cancel", "context": "Yoga class on Thursday"}, ["which day", "what day"]),
    ({"text": "the usual", "context": None}, []),
    ({"text": "tell her", "context": "Anna's flight lands at 18:40"}, ["what time", "when"]),
    ({"text": "do the thing tomorrow", "context": None}, ["when", "what day", "which day"]),
    ({"text": "same as last week", "context": "Grocery order: milk, bread"}, []),
    ({"text": "add it to the list", "context": None}, []),
    (
        {"text": "change the date", "context": "Dinner at Casa Mia on 2026-11-07"},
        ["which dinner", "what event"],
    ),
]


#: Review chunks with one known bug: (path, unified diff, new-side line of the bug), always on
#: an added line.  Seven have more than one added line, and the bug is not always on line 2
#: nor on the first added line: those two guesses score 4 and 5 of the 10.
REVIEW_CASES: list[tuple[str, str, int]] = [
    (
        "cart.py",
        "--- a/cart.py\n+++ b/cart.py\n@@ -1,4 +1,5 @@\n def total(items):\n"
        "-    return sum(item.price for item in items)\n"
        "+    result = 0\n+    for i in range(1, len(items)):\n"
        "+        result += items[i].price\n+    return result\n",
        3,
    ),
    (
        "users.py",
        "--- a/users.py\n+++ b/users.py\n@@ -1,3 +1,4 @@\n def find_user(db, name):\n"
        '-    return db.execute("SELECT * FROM users WHERE name = ?", (name,))\n'
        '+    query = "SELECT * FROM users WHERE name = \'" + name + "\'"\n'
        "+    return db.execute(query)\n",
        2,
    ),
    (
        "config.py",
        "--- a/config.py\n+++ b/config.py\n@@ -1,4 +1,4 @@\n def load(path):\n"
        "-    with open(path) as f:\n-        return f.read()\n"
        "+    f = open(path)\n+    return f.read()\n",
        2,
    ),
    (
        "average.py",
        "--- a/average.py\n+++ b/average.py\n@@ -1,2 +1,2 @@\n def mean(values):\n"
        "-    return sum(values) / len(values) if values else 0.0\n"
        "+    return sum(values) / len(values)\n",
        2,
    ),
    (
        "retry.py",
        "--- a/retry.py\n+++ b/retry.py\n@@ -1,5 +1,5 @@\n def fetch(url, attempts=3):\n"
        "-    for _ in range(attempts):\n+    while True:\n"
        "         try:\n             return get(url)\n",
        2,
    ),
    (
        "pages.py",
        "--- a/pages.py\n+++ b/pages.py\n@@ -1,3 +1,4 @@\n def page(items, number, size):\n"
        "-    start = number * size\n-    return items[start:start + size]\n"
        "+    start = number * size  # zero-based pages\n+    end = start + size - 1\n"
        "+    return items[start:end]\n",
        3,
    ),
    (
        "permissions.py",
        "--- a/permissions.py\n+++ b/permissions.py\n@@ -1,4 +1,4 @@\n"
        " def can_edit(user, doc):\n     if user.is_admin:\n         return True\n"
        "-    return doc.owner_id == user.id\n+    # owners may edit their own documents\n"
        "+    return doc.owner_id != user.id\n",
        5,
    ),
    (
        "temperature.py",
        "--- a/temperature.py\n+++ b/temperature.py\n@@ -1,3 +1,3 @@\n"
        " def to_fahrenheit(celsius):\n-    scale = 9 / 5\n-    return celsius * scale + 32\n"
        "+    scale = 9 / 5  # degrees F per degree C\n+    return celsius * scale - 32\n",
        3,
    ),
    (
        "cache.py",
        "--- a/cache.py\n+++ b/cache.py\n@@ -1,6 +1,6 @@\n def get_or_load(cache, key, load):\n"
        "     if key in cache:\n         return cache[key]\n"
        "-    value = load(key)\n-    cache[key] = value\n"
        "+    value = load(key)  # may be slow\n+    cache[key] = load\n     return value\n",
        5,
    ),
    (
        "orders.py",
        "--- a/orders.py\n+++ b/orders.py\n@@ -1,4 +1,4 @@\n def latest(orders):\n"
        "     if not orders:\n         return None\n"
        "-    return max(orders, key=lambda o: o.created_at)\n"
        "+    return min(orders, key=lambda o: o.created_at)\n",
        4,
    ),
]


# -- the cases as the eval runs them -----------------------------------------


@dataclass(frozen=True)
class Case:
    """One labelled input: the actor's data for the model and how to score the answer."""

    job_type: str
    payload: Payload
    data: dict[str, Any]
    result_model: type[Result]
    label: Any
    score: Callable[[Any], bool]
    #: Whether the answer is scored against a categorical label (a majority baseline exists).
    labelled: bool = True


def _intent_right(result: IntentResult, label: str) -> bool:
    return result.intent == label


def _intent_cases() -> list[Case]:
    return [
        Case(
            "intent_classify",
            IntentPayload(text=text),
            {"text": text},
            IntentResult,
            label,
            partial(_intent_right, label=label),
        )
        for text, label in INTENT_CASES
    ]


def _kept_events(result: EmailExtractResult) -> list[Any]:
    return [event for event in result.events if event.confidence > EVENT_THRESHOLD]


def _email_right(result: EmailExtractResult, count: int, date: str | None) -> bool:
    kept = _kept_events(result)
    return len(kept) == count and (date is None or kept[0].start.startswith(date))


def _email_cases() -> list[Case]:
    found = []
    for payload, count, date in EMAIL_CASES:
        full = {**payload, "received_at": RECEIVED_AT}
        found.append(
            Case(
                "email_extract",
                EmailExtractPayload(**full),
                full,
                EmailExtractResult,
                (count, date),
                partial(_email_right, count=count, date=date),
            )
        )
    return found


def _task_right(result: TaskMatchResult, expected: int | None) -> bool:
    tasks = [CoreTask.model_validate(task) for task in OPEN_TASKS]
    return accepted_match(result, tasks).task_id == expected


def _task_cases() -> list[Case]:
    return [
        Case(
            "task_match",
            TaskMatchPayload(content=note),
            {"note": note, "open_tasks": OPEN_TASKS},
            TaskMatchResult,
            expected,
            partial(_task_right, expected=expected),
        )
        for note, expected in TASK_CASES
    ]


def _followup_right(result: FollowupResult, forbidden: list[str]) -> bool:
    question = result.question.strip().lower()
    return question.endswith("?") and not any(phrase in question for phrase in forbidden)


def _followup_cases() -> list[Case]:
    return [
        Case(
            "followup",
            FollowupPayload(**payload),
            payload,
            FollowupResult,
            "a question",
            partial(_followup_right, forbidden=forbidden),
            labelled=False,
        )
        for payload, forbidden in FOLLOWUP_CASES
    ]


def _review_right(result: Any, line: int) -> bool:
    comments = getattr(result, "comments", None) or []
    return any(c.line <= line <= (c.end_line or c.line) for c in comments)


def _review_cases() -> list[Case]:
    return [
        Case(
            "review",
            ReviewRequestPayload.model_validate(
                {"repo": "eval", "chunk": {"path": path, "diff": diff, "language": "python"}}
            ),
            {},
            CommentAnswer,
            line,
            partial(_review_right, line=line),
            labelled=False,
        )
        for path, diff, line in REVIEW_CASES
    ]


def all_cases() -> dict[str, list[Case]]:
    """Every case, by job type."""
    return {
        "intent_classify": _intent_cases(),
        "email_extract": _email_cases(),
        "task_match": _task_cases(),
        "followup": _followup_cases(),
        "review": _review_cases(),
    }
