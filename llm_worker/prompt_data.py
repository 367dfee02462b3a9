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

from typing import Any

from . import prompts

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
                "Classify the user's message to a personal organiser. intent is one of: "
                "reminder = the user wants to be reminded at a time or date; "
                "task = something the user has to do, with no time given; "
                "search = a question about information the user stored earlier; "
                "general_note = a fact to keep, not a question and not a to-do; "
                "ambiguous = too short or unclear to tell. "
                "confidence is a number from 0 to 1."
            ),
            "schema_in_prompt": False,
            "max_tokens": 32,
            "examples": [
                {
                    "data": {"text": "remind me to take the pills at 8pm"},
                    "answer": {"intent": "reminder", "confidence": 0.9},
                },
                {
                    "data": {"text": "buy a birthday present for Tom"},
                    "answer": {"intent": "task", "confidence": 0.9},
                },
                {
                    "data": {"text": "what is the code of the garage door?"},
                    "answer": {"intent": "search", "confidence": 0.9},
                },
                {
                    "data": {"text": "my locker number at the gym is 214"},
                    "answer": {"intent": "general_note", "confidence": 0.9},
                },
                {
                    "data": {"text": "tomorrow"},
                    "answer": {"intent": "ambiguous", "confidence": 0.6},
                },
                {
                    "data": {"text": "wake me up at 6:30 on monday for the flight"},
                    "answer": {"intent": "reminder", "confidence": 0.9},
                },
                {
                    "data": {"text": "fix the leaking tap in the bathroom"},
                    "answer": {"intent": "task", "confidence": 0.8},
                },
                {
                    "data": {"text": "when did I last pay the electricity bill?"},
                    "answer": {"intent": "search", "confidence": 0.8},
                },
                {
                    "data": {"text": "Sara's shoe size is 38"},
                    "answer": {"intent": "general_note", "confidence": 0.8},
                },
                {
                    "data": {"text": "the thing with the blue one"},
                    "answer": {"intent": "ambiguous", "confidence": 0.7},
                },
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
                    "data": {"text": "move it", "context": None},
                    "answer": {"question": "What would you like me to move, and to when?"},
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
                "List the calendar events (appointments, meetings, reservations, deadlines) "
                "the email announces. Each event: title (a few words), start and end as "
                "ISO 8601 date-times like 2026-05-04T14:00:00Z (end null if not given), "
                "location or null, confidence from 0 to 1. Resolve relative dates against "
                "received_at. events is an empty list when the email announces no event."
            ),
            "schema_in_prompt": False,
            "max_tokens": 400,
            "examples": [
                {
                    "data": {
                        "subject": "Your table is booked",
                        "body": "See you on 2026-03-14 at 19:30 at Trattoria Roma.",
                        "received_at": "2026-03-01T08:00:00Z",
                    },
                    "answer": {
                        "events": [
                            {
                                "title": "Dinner at Trattoria Roma",
                                "start": "2026-03-14T19:30:00Z",
                                "end": None,
                                "location": "Trattoria Roma",
                                "confidence": 0.9,
                            }
                        ]
                    },
                },
                {
                    "data": {
                        "subject": "Newsletter",
                        "body": "Ten tips for a tidy kitchen. Unsubscribe at any time.",
                        "received_at": "2026-03-01T08:00:00Z",
                    },
                    "answer": {"events": []},
                },
            ],
        },
        "review": {
            "task": (
                "You review one chunk of a code diff. Answer with one JSON object: "
                '{"action": "comment", "comments": [...]} where each comment has "path", '
                '"line" (a line number of the new side of the diff), "severity" (info, '
                'warning or error) and "body"; or {"action": "no_issues", "summary": ...} '
                'when the change is fine; or {"action": "tool_call", ...} to read code, at '
                "most {max_tool_calls} times. Comment only on real bugs."
            ),
            "max_tool_calls": 1,
            "max_tokens": 1000,
        },
    },
}
