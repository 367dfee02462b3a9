"""The Core client against a recording Core: identifiers reach Core as exactly one
path segment, whatever characters they hold, and bad ids never leave the worker."""

from __future__ import annotations

import pytest

from actors import image_tag, intent_classify
from llm_worker.core.client import CoreClient
from llm_worker.identifiers import ID_MAX_CHARS
from middleware.job_arguments import InvalidJob
from tests.support import dead_letters, drain, send_unchecked

#: An identifier and the exact path segment Core must receive for it.
SEGMENTS = [
    ("plain-id_1.2~x", "plain-id_1.2~x"),
    (12345, "12345"),
    ("a/b", "a%2Fb"),
    ("../users/42/tasks", "..%2Fusers%2F42%2Ftasks"),
    ("..", "%2E%2E"),
    (".", "%2E"),
    ("a?status=open", "a%3Fstatus%3Dopen"),
    ("a#frag", "a%23frag"),
    ("100%", "100%25"),
    ("%2e%2e", "%252e%252e"),
    ("a b", "a%20b"),
    ("a+b;c,d&e=f", "a%2Bb%3Bc%2Cd%26e%3Df"),
    ("back\\slash", "back%5Cslash"),
    ("é✓日本", "%C3%A9%E2%9C%93%E6%97%A5%E6%9C%AC"),
    ("\u202eevil", "%E2%80%AEevil"),
]


@pytest.mark.parametrize(("identifier", "segment"), SEGMENTS)
def test_identifiers_are_one_encoded_path_segment(env, fake_core, identifier, segment):
    client = CoreClient(env().settings)

    client.update_job(identifier, "completed", result={"ok": True})
    client.put_image_tags(identifier, {"tags": []})

    assert [(r["method"], r["path"]) for r in fake_core.requests] == [
        ("PATCH", f"/jobs/{segment}"),
        ("PUT", f"/images/{segment}/tags"),
    ]
    client.close()


def test_a_job_id_that_looks_like_a_path_stays_in_jobs(worker, fake_llm, fake_core):
    fake_llm.push({"intent": "reminder", "confidence": 0.9})

    intent_classify.send("../users/42/tasks", 42, {"text": "remind me"})
    drain(worker, "llm.intent")

    assert [(r["method"], r["path"]) for r in fake_core.requests] == [
        ("PATCH", "/jobs/..%2Fusers%2F42%2Ftasks")
    ]
    assert fake_core.requests[0]["json"]["status"] == "completed"


def test_an_image_id_cannot_reach_another_job(worker, fake_llm, fake_core):
    fake_llm.push({"description": "A cat.", "tags": ["cat"]})

    image_tag.send(10, 42, {"image_id": "../../jobs/11", "path": "cat.png"})
    drain(worker, "llm.image_tag")

    paths = [r["path"] for r in fake_core.requests]
    assert paths == ["/images/..%2F..%2Fjobs%2F11/tags", "/jobs/10"]


def test_user_id_must_be_an_integer(env, fake_core):
    client = CoreClient(env().settings)

    with pytest.raises(TypeError, match="user_id must be an integer"):
        client.open_tasks("42/../../jobs/1")  # type: ignore[arg-type]
    assert fake_core.requests == []
    client.close()


BAD_IDS = [
    ("nul\x00byte", "control characters"),
    ("line\nbreak", "control characters"),
    ("tab\there", "control characters"),
    ("del\x7f", "control characters"),
    ("x" * (ID_MAX_CHARS + 1), f"at most {ID_MAX_CHARS} characters"),
    (2**63, "64 bits"),
    ("", "non-empty"),
]


@pytest.mark.parametrize(("job_id", "problem"), BAD_IDS)
def test_bad_job_ids_are_refused_at_send(env, fake_core, job_id, problem):
    with pytest.raises(InvalidJob, match=f"job_id: .*{problem}"):
        intent_classify.send(job_id, 42, {"text": "hi"})


def test_a_job_id_at_the_limit_is_accepted(worker, fake_llm, fake_core):
    fake_llm.push({"intent": "reminder", "confidence": 0.9})
    job_id = "é" * ID_MAX_CHARS

    intent_classify.send(job_id, 42, {"text": "remind me"})
    drain(worker, "llm.intent")

    [request] = fake_core.requests
    assert request["path"] == "/jobs/" + "%C3%A9" * ID_MAX_CHARS


@pytest.mark.parametrize(("job_id", "problem"), BAD_IDS[:5])
def test_bad_job_ids_fail_at_pick_up_without_a_call(
    worker, fake_llm, fake_core, redis_client, job_id, problem
):
    message = send_unchecked(intent_classify, job_id, 42, {"text": "hi"})
    drain(worker, "llm.intent")

    assert fake_core.requests == []  # no usable id: nothing is sent to Core
    assert fake_llm.chat_requests() == []
    assert dead_letters(redis_client, "llm.intent") == [message.message_id]


def test_bad_image_id_fails_the_job_in_core(worker, fake_llm, fake_core):
    send_unchecked(image_tag, 13, 42, {"image_id": "img\r\nX-Evil: 1", "path": "cat.png"})
    drain(worker, "llm.image_tag")

    [request] = fake_core.requests
    assert request["path"] == "/jobs/13"
    assert request["json"]["status"] == "failed"
    assert "payload.image_id" in request["json"]["error"]
    assert "control characters" in request["json"]["error"]
    assert fake_llm.chat_requests() == []
