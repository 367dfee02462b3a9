"""A job's identity is its job type and job_id: one LLM call and one final state per job,
however many messages Core sends for it."""

from __future__ import annotations

from actors import followup, intent_classify
from llm_worker.testing.fakes import Reply
from tests.support import dead_letters, drain, notifications, usage

FIRST = {"intent": "reminder", "confidence": 0.9}
SECOND = {"intent": "task", "confidence": 0.6}


def test_a_job_sent_again_after_it_completed_gets_the_same_final_state(
    worker, fake_llm, fake_core, redis_client
):
    fake_llm.answers["IntentResult"] = FIRST
    intent_classify.send(71, 42, {"text": "call mum at 6"})
    drain(worker, "llm.intent")
    fake_llm.answers["IntentResult"] = SECOND  # a second call would answer differently

    intent_classify.send(71, 42, {"text": "call mum at 6"})  # Core resends: a new message
    drain(worker, "llm.intent")

    assert len(fake_llm.chat_requests()) == 1
    first, second = fake_core.job_updates(71)
    assert first == second
    assert (first["status"], first["result"], first["usage"]) == ("completed", FIRST, usage(1))
    assert [n["content"] for n in notifications(redis_client)] == [FIRST]


def test_a_job_sent_twice_at_once_calls_the_llm_once(worker, fake_llm, fake_core, redis_client):
    fake_llm.fallback = lambda request: Reply(content=FIRST, delay=0.5)  # a slow model
    intent_classify.send(72, 42, {"text": "x"})
    intent_classify.send(72, 42, {"text": "x"})
    drain(worker, "llm.intent")

    assert len(fake_llm.chat_requests()) == 1
    updates = fake_core.job_updates(72)
    assert [u["status"] for u in updates] == ["completed", "completed"]
    assert updates[0] == updates[1]
    assert updates[0]["result"] == FIRST
    assert dead_letters(redis_client, "llm.intent") == []
    assert len(notifications(redis_client)) == 1
    assert not redis_client.exists("llmw:lease:intent_classify:72")  # released


def test_different_job_types_with_the_same_id_stay_apart(worker, fake_llm, fake_core):
    fake_llm.answers["IntentResult"] = FIRST
    fake_llm.answers["FollowupResult"] = {"question": "Which mum?"}
    intent_classify.send(73, 42, {"text": "x"})
    followup.send(73, 42, {"text": "x"})
    drain(worker, "llm.intent", "llm.followup")

    assert len(fake_llm.chat_requests()) == 2
    results = [u["result"] for u in fake_core.job_updates(73)]
    assert sorted(results, key=str) == sorted([FIRST, {"question": "Which mum?"}], key=str)
