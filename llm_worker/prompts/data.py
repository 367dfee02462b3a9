"""The prompts of every job, as data: one profile per kind of model.

A profile maps each job type (and ``review``) to its task text, labelled
examples shown to the model before the real data (few-shot), and a
``max_tokens`` for the answer.  ``default`` suits large instruction-tuned
models; ``small`` suits the bundled local model (short instructions, the
schema's meaning in words, examples).  ``LLM_PROMPT_PROFILE`` chooses the
profile, and ``LLM_PROMPTS_FILE`` names a JSON file of the same shape
(``{"intent_classify": {"task": ..., "examples": [...], "max_tokens": 64}}``)
whose entries replace the profile's, key by key, for users' own models.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from llm_worker.prompts import render as prompts
from llm_worker.prompts.dates import calendar_from


def _email(subject: str, body: str, received_at: str) -> dict[str, Any]:
    """An example email as the model is shown one: with the calendar from its receipt."""
    return {
        "subject": subject,
        "body": body,
        "received_at": received_at,
        "calendar": calendar_from(received_at, datetime.now(UTC)),
    }


#: Labelled intents for the ``small`` profile's few-shot examples, interleaved by label.
#: Written for the prompt, disjoint from the evaluation set (``console/evaluation/cases.py``;
#: ``tests/test_prompt_profiles.py`` checks that no text is in both).
SMALL_INTENT_EXAMPLES: list[tuple[str, str]] = [
    ("remind me to take the pills at 8pm", "reminder"),
    ("buy a birthday present for Tom", "task"),
    ("what is the code of the garage door?", "search"),
    ("my locker number at the gym is 214", "general_note"),
    ("tomorrow", "ambiguous"),
    ("wake me up at 6:30 on monday for the flight", "reminder"),
    ("fix the leaking tap in the bathroom", "task"),
    ("when did I last pay the electricity bill?", "search"),
    ("Sara's shoe size is 38", "general_note"),
    ("the thing with the blue one", "ambiguous"),
    ("remind me on sunday evening to iron a shirt", "reminder"),
    ("email the landlord about the broken heater", "task"),
    ("where did I leave the car keys?", "search"),
    ("the garage door code is 4512", "general_note"),
    ("uh huh", "ambiguous"),
    ("ping me at 4 to join the call", "reminder"),
    ("pay the electricity bill", "task"),
    ("what's the name of Sara's dentist?", "search"),
    ("the boiler was repaired on 3 March", "general_note"),
    ("not sure", "ambiguous"),
    ("remind me in an hour to take the laundry out", "reminder"),
    ("mow the lawn", "task"),
    ("which hotel did we stay at in Madrid?", "search"),
    ("Julia's phone number is 555-0147", "general_note"),
    ("whatever", "ambiguous"),
    ("don't let me forget the parcel pickup on wednesday", "reminder"),
    ("book a haircut", "task"),
    ("how much was the plumber's invoice?", "search"),
    ("I left the car keys in the kitchen drawer", "general_note"),
    ("this", "ambiguous"),
    ("set an alarm for 7 tomorrow to go running", "reminder"),
    ("take the car to the car wash", "task"),
    ("what did the doctor say about my knee?", "search"),
    ("the dentist is Dr. Silva on Main Street", "general_note"),
    ("it again", "ambiguous"),
    ("remind me next tuesday at 11 about the vet", "reminder"),
    ("sort out the old clothes for charity", "task"),
    ("find the recipe I saved for banana bread", "search"),
    ("the hotel in Madrid was called Hotel Sol", "general_note"),
    ("well", "ambiguous"),
    ("alert me at 9pm to lock the back door", "reminder"),
    ("replace the batteries in the smoke alarm", "task"),
    ("show me my notes from the team meeting", "search"),
    ("Pedro prefers tea over coffee", "general_note"),
    ("like last time", "ambiguous"),
    ("remind me every friday to back up the laptop", "reminder"),
    ("print the boarding passes", "task"),
    ("what is Julia's phone number?", "search"),
    ("the electricity meter reading is 10432", "general_note"),
    ("um", "ambiguous"),
    ("in 15 minutes remind me to turn off the heater", "reminder"),
    ("phone the school about the trip", "task"),
    ("when does the car insurance expire?", "search"),
    ("our wedding anniversary is on 12 June", "general_note"),
    ("this one?", "ambiguous"),
    ("remind me on the 3rd to renew the parking permit", "reminder"),
    ("get a new phone charger", "task"),
    ("what did I write about the pharmacy opening hours?", "search"),
    ("the banana bread recipe needs 3 bananas", "general_note"),
    ("so yeah", "ambiguous"),
]

#: The ``small`` profile's one-shot review example (the chunk's data, its diff as the worker
#: receives it, and the answer): a bug on neither the first nor the second line, disjoint from
#: the evaluation set (``tests/test_prompt_profiles.py`` checks it).
SMALL_REVIEW_EXAMPLE: tuple[dict[str, Any], dict[str, Any]] = (
    {
        "repo": "shop",
        "path": "stock.py",
        "language": "python",
        "diff": (
            "--- a/stock.py\n+++ b/stock.py\n@@ -1,5 +1,5 @@\n"
            " def restock(shelf, boxes):\n"
            "     added = 0\n"
            "     for box in boxes:\n"
            "-        added += box.count\n"
            "+        added = box.count\n"
            "     shelf.count += added\n"
        ),
    },
    {
        "action": "comment",
        "comments": [
            {
                "path": "stock.py",
                "code": "added = box.count",
                "line": 4,
                "severity": "error",
                "body": "Each box replaces the total instead of adding to it: use +=.",
            }
        ],
    },
)

#: Every profile: job type -> {"task", "examples", "max_tokens", ...}.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "default": {
        "image_tag": {"task": prompts.IMAGE_TAG},
        "intent_classify": {"task": prompts.INTENT},
        "followup": {"task": prompts.FOLLOWUP},
        "task_match": {"task": prompts.TASK_MATCH},
        "email_extract": {"task": prompts.EMAIL_EXTRACT},
        "review": {},
    },
    "small": {
        "image_tag": {"task": prompts.IMAGE_TAG, "max_tokens": 400},
        "intent_classify": {
            "task": (
                "Classify the user's message to a personal organiser into one intent:\n"
                "reminder: asks to be reminded or alerted at a time or date (remind me, "
                "ping me, alert me, wake me, don't let me forget).\n"
                "task: an action the user has to do, no time given, usually starting with "
                "a verb (buy, call, fix, book, send).\n"
                "search: a question about something the user stored earlier (what, where, "
                "when, which, how much, find, show me).\n"
                "general_note: a statement of a fact to keep, not a question and not an "
                "action.\n"
                "ambiguous: too short or vague to tell (one or two words, a fragment).\n"
                "confidence is a number from 0 to 1."
            ),
            "schema_in_prompt": False,
            "max_tokens": 32,
            # Fixed examples: the server's prompt cache keeps this prefix, so after a
            # slot's first job they cost no prompt processing.
            "examples": [
                {"data": {"text": text}, "answer": {"intent": intent, "confidence": 0.9}}
                for text, intent in SMALL_INTENT_EXAMPLES
            ],
        },
        "followup": {
            "task": (
                "The user's message to a personal organiser is unclear. Write one short, "
                "friendly question (under 20 words) asking for the detail that is missing, "
                "e.g. what, when or which one. Do not ask for something the message or its "
                "context already says."
            ),
            "schema_in_prompt": False,
            "max_tokens": 128,
            "examples": [
                {
                    "data": {"text": "push it back", "context": None},
                    "answer": {"question": "What would you like me to push back, and to when?"},
                },
                {
                    "data": {"text": "remind me", "context": "Dentist on Friday at 9"},
                    "answer": {"question": "When should I remind you about the dentist?"},
                },
                {
                    "data": {"text": "call him tomorrow", "context": None},
                    "answer": {"question": "Who should I remind you to call tomorrow?"},
                },
            ],
        },
        "task_match": {
            "task": (
                "Decide whether the note is about one of the user's open tasks. task_id is "
                "the id of the task the note is about, copied from open_tasks, or null when "
                "the note is about none of them. confidence is from 0 to 1: high only when "
                "the note clearly concerns that task. reason is a few words."
            ),
            "schema_in_prompt": False,
            "max_tokens": 128,
            "examples": [
                {
                    "data": {
                        "note": "booked the flights for the Lisbon trip",
                        "open_tasks": [
                            {"id": 11, "title": "Renew passport", "description": None},
                            {"id": 12, "title": "Plan Lisbon holiday", "description": None},
                        ],
                    },
                    "answer": {"task_id": 12, "confidence": 0.9, "reason": "Lisbon trip"},
                },
                {
                    "data": {
                        "note": "the cat needs a vet check-up",
                        "open_tasks": [
                            {"id": 3, "title": "Paint the fence", "description": None},
                            {"id": 4, "title": "Tax return", "description": "due in May"},
                        ],
                    },
                    "answer": {"task_id": None, "confidence": 0.2, "reason": "no related task"},
                },
                {
                    "data": {
                        "note": "got the receipts from the accountant",
                        "open_tasks": [
                            {"id": 3, "title": "Paint the fence", "description": None},
                            {"id": 4, "title": "Tax return", "description": "due in May"},
                        ],
                    },
                    "answer": {"task_id": 4, "confidence": 0.8, "reason": "tax paperwork"},
                },
            ],
        },
        "email_extract": {
            "task": (
                "List the calendar events the email announces: appointments, meetings, "
                "bookings, flights, classes, deadlines, each on a coming day. Each event: "
                "title (a few words); start, and end or null, as ISO 8601 date-times with "
                "the date and time written in the email, like 2026-05-04T14:00:00, plus the "
                "offset when the email names a time zone (15:00 CET is "
                "2026-05-04T15:00:00+01:00, 9am EST is 2026-05-04T09:00:00-05:00); a day "
                "without a time starts at T00:00:00. Take every date from calendar, which "
                "lists the day the email was received and the two weeks after it: find the "
                "day the email names (tomorrow, Friday, next Thursday, Tue 8 Dec, the 6th) "
                "and copy its ISO date. location or null; confidence 0.9 when the email "
                "states the event, lower when it is only suggested. The time the email was "
                "received is never an event. events is [] when the email announces no event "
                "(a newsletter, a sale, a receipt, an account notice, an event already past, "
                "a vague 'some time')."
            ),
            "schema_in_prompt": False,
            "max_tokens": 400,
            "examples": [
                {
                    "data": _email(
                        "Physio appointment",
                        "Hi Sam, confirming your physiotherapy session this Thursday at "
                        "16:15 at the Riverside clinic. Please arrive ten minutes early.",
                        "2026-03-02T08:00:00Z",
                    ),
                    "answer": {
                        "events": [
                            {
                                "title": "Physiotherapy session",
                                "start": "2026-03-05T16:15:00",
                                "end": None,
                                "location": "Riverside clinic",
                                "confidence": 0.9,
                            }
                        ]
                    },
                },
                {
                    "data": _email(
                        "Newsletter",
                        "Ten tips for a tidy kitchen. Unsubscribe at any time.",
                        "2026-03-01T08:00:00Z",
                    ),
                    "answer": {"events": []},
                },
                {
                    "data": _email(
                        "Kick-off and workshop",
                        "The kick-off call is on 13 January at 15:00 CET. The workshop "
                        "follows the next day from 09:30 to 12:00 CET in room 4.",
                        "2026-01-08T17:20:00Z",
                    ),
                    "answer": {
                        "events": [
                            {
                                "title": "Kick-off call",
                                "start": "2026-01-13T15:00:00+01:00",
                                "end": None,
                                "location": None,
                                "confidence": 0.9,
                            },
                            {
                                "title": "Workshop",
                                "start": "2026-01-14T09:30:00+01:00",
                                "end": "2026-01-14T12:00:00+01:00",
                                "location": "room 4",
                                "confidence": 0.9,
                            },
                        ]
                    },
                },
                {
                    "data": _email(
                        "Thanks for coming",
                        "It was lovely to see you at the wine tasting yesterday. Your "
                        "receipt of 42.00 EUR is attached.",
                        "2026-02-16T10:05:00Z",
                    ),
                    "answer": {"events": []},
                },
            ],
        },
        "review": {
            "task": (
                "You review one chunk of a code diff and point at its bug. In the diff each "
                "line of the new side starts with its line number, then + (added) or a space "
                "(unchanged); removed lines (-) have no number. Bugs are on added (+) lines: "
                "compare each added line with the removed line it replaces. Answer "
                '{"action": "comment", "comments": [{"path": the path, "code": the buggy '
                'line\'s code copied from the diff, "line": that line\'s number, "severity": '
                '"error", "body": what is wrong}]}, or {"action": "no_issues", "summary": ...} '
                "when the change has no bug."
            ),
            "schema_in_prompt": False,
            "examples_as": "turns",
            "examples": [{"data": SMALL_REVIEW_EXAMPLE[0], "answer": SMALL_REVIEW_EXAMPLE[1]}],
            "max_tool_calls": 0,
            "max_tokens": 1000,
            "quote_lines": "added",
        },
    },
}
