"""Invalid LLM answers: retried with doubling delays and feedback, then failed."""

from __future__ import annotations

import itertools

from actors import followup, intent_classify
from llm_worker.testing.fakes import Reply
from middleware.invalid_backoff import backoff_delay
from tests.support import dead_letters, drain, notifications, usage


def test_default_delays_double_from_one_second():
    assert [backoff_delay(n, 1.0) for n in range(5)] == [1, 2, 4, 8, 16]


def test_five_retries_with_doubling_delays_then_failure(
    env, worker, fake_llm, fake_core, redis_client
):
    env(LLM_RETRY_BACKOFF_SECONDS=0.05, LLM_MAX_RETRIES=5)
    fake_llm.fallback = lambda request: Reply(content="no idea")

    message = intent_classify.send(30, 42, {"text": "hmm"})
    drain(worker, "llm.intent")

    calls = fake_llm.chat_requests()
    assert len(calls) == 6
    gaps = [later["at"] - earlier["at"] for earlier, later in itertools.pairwise(calls)]
    for n, gap in enumerate(gaps):
        assert gap >= 0.05 * 2**n * 0.9, (n, gaps)
    [update] = fake_core.job_updates(30)
    assert update["status"] == "failed"
    assert update["error"] == (
        "invalid LLM response after 6 attempts: the answer contained no JSON object"
    )
    [note] = notifications(redis_client)
    assert note["message_type"] == "llm_failure"
    assert note["content"] == {
        "job_type": "intent_classify",
        "attempts": 6,
        "error": update["error"],
    }
    assert dead_letters(redis_client, "llm.intent") == [message.message_id]


def test_retry_tells_model_what_was_wrong_and_succeeds_on_third_answer(
    worker, fake_llm, fake_core, redis_client
):
    fake_llm.push(
        "I think it's a question.",
        {"question": ""},
        {"question": "Which day?"},
    )

    followup.send(31, 42, {"text": "move it"})
    drain(worker, "llm.followup")

    first, second, third = fake_llm.chat_requests()
    assert len(first["json"]["messages"]) == 2
    feedback = second["json"]["messages"][2:]
    assert feedback[0] == {"role": "assistant", "content": "I think it's a question."}
    assert "no JSON object" in feedback[1]["content"]
    assert (
        "question: String should have at least 1 character"
        in third["json"]["messages"][3]["content"]
    )
    assert fake_core.job_updates(31) == [
        {
            "status": "completed",
            "result": {"question": "Which day?"},
            "error": None,
            "usage": usage(3),
        }
    ]
    assert [n["message_type"] for n in notifications(redis_client)] == ["llm_followup_result"]


def test_core_failure_gets_ordinary_retries_then_fails_with_state(
    env, worker, fake_llm, fake_core, redis_client
):
    env(JOB_MAX_RETRIES=2)
    fake_llm.answers["IntentResult"] = {"intent": "task", "confidence": 0.6}
    fake_core.failures.extend([500, 500, 500])

    message = intent_classify.send(32, 42, {"text": "buy milk"})
    drain(worker, "llm.intent")

    assert len(fake_llm.chat_requests()) == 1  # retries reuse the valid result
    [update] = fake_core.job_updates(32)[3:]
    assert update["status"] == "failed"
    assert "HTTP 500" in update["error"]
    assert [n["message_type"] for n in notifications(redis_client)] == ["llm_failure"]
    assert dead_letters(redis_client, "llm.intent") == [message.message_id]
