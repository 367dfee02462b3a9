"""A job type declared outside the product, in one module, runs end to end.

:mod:`tests.job_types.note_title` holds all there is of it (its record, models,
prompt entry and actor); a real worker on Redis serves it with every middleware,
against the fake LLM and Core.
"""

from __future__ import annotations

import json
import re

from actors import broker
from llm_worker.jobs.registry import job_types
from tests.job_types.exploding import SECRET, exploding
from tests.job_types.note_title import NOTE_TITLE, note_title
from tests.support import drain, notifications, send_unchecked, usage


def test_the_declared_job_type_is_registered_and_its_actor_takes_its_options():
    assert job_types()["note_title"] is NOTE_TITLE
    actor = broker.get_actor("note_title")
    assert actor is note_title
    assert actor.queue_name == "llm.note_title"
    assert actor.options["job_kind"].priority == 5


def test_a_new_job_type_completes_with_its_prompt_and_notification(
    worker, fake_llm, fake_core, redis_client
):
    fake_llm.push({"title": "Boiler warranty"})

    note_title.send(7, 42, {"text": "the boiler warranty runs out in March"})
    drain(worker, "llm.note_title")

    assert fake_core.job_updates(7) == [
        {
            "status": "completed",
            "result": {"title": "Boiler warranty"},
            "error": None,
            "usage": usage(1),
        }
    ]
    assert notifications(redis_client) == [
        {
            "user_id": 42,
            "job_id": 7,
            "message_type": "llm_note_title_result",
            "content": {"title": "Boiler warranty"},
        }
    ]
    [request] = fake_llm.chat_requests()
    body = request["json"]
    system = body["messages"][0]["content"]
    assert system.startswith("Write a title of at most six words for the note.")
    assert body["max_tokens"] == 40
    assert body["response_format"]["json_schema"]["name"] == "NoteTitleResult"


def test_a_new_job_type_gets_the_same_failure_handling(worker, fake_llm, fake_core, redis_client):
    send_unchecked(note_title, 8, 42, {"text": ""})  # its payload model refuses it
    drain(worker, "llm.note_title")

    [update] = fake_core.job_updates(8)
    assert update["status"] == "failed"
    assert "text" in update["error"]
    [note] = notifications(redis_client)
    assert note["message_type"] == "llm_failure"
    assert note["content"]["job_type"] == "note_title"
    assert fake_llm.chat_requests() == []


def test_an_unexpected_error_reaches_core_and_the_user_as_its_class_and_a_log_reference(
    env, worker, fake_core, redis_client, caplog
):
    env(JOB_MAX_RETRIES=0)
    with caplog.at_level("ERROR", logger="middleware.job_retries"):
        exploding.send(9, 42, {"text": "x"})
        drain(worker, "llm.exploding")

    [update] = fake_core.job_updates(9)
    assert update["status"] == "failed"
    found = re.fullmatch(
        r"unexpected error RuntimeError \(worker log reference ([0-9a-f]{12})\)", update["error"]
    )
    assert found, update["error"]
    [note] = notifications(redis_client)
    assert note["content"]["error"] == update["error"]
    assert SECRET not in json.dumps(note) and SECRET not in json.dumps(update)
    [line] = [r.getMessage() for r in caplog.records if found.group(1) in r.getMessage()]
    assert SECRET in line  # the operator finds the text by the reference
