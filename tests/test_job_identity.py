"""A job's identity is its job type and job_id: one LLM call and one final state per job,
however many messages Core sends for it."""

from __future__ import annotations

import itertools

import pytest
import redis

from actors import broker, followup, intent_classify
from llm_worker.errors import JobInProgress
from llm_worker.jobs.lease import JobLeases
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


def test_two_copies_of_one_message_at_once_call_the_llm_once(
    worker, fake_llm, fake_core, redis_client
):
    """A host back from a partition runs its copy while another host runs the redelivered
    one: both copies share a message id, but each delivery is its own lease holder."""
    answers = itertools.cycle([FIRST, SECOND])
    fake_llm.fallback = lambda request: Reply(content=next(answers), delay=0.5)
    message = intent_classify.message(74, 42, {"text": "x"})
    broker.enqueue(message)
    broker.enqueue(message)  # a second copy under the same message id
    drain(worker, "llm.intent")

    assert len(fake_llm.chat_requests()) == 1
    results = {str(u["result"]) for u in fake_core.job_updates(74)}
    assert results == {str(FIRST)}
    assert [n["content"] for n in notifications(redis_client)] == [FIRST]


def test_a_delivery_that_lost_its_lease_drops_its_answer(redis_client: redis.Redis):
    lease, result = "llmw:lease:t:1", "llmw:result:t:R:1"
    with JobLeases(redis_client, ttl_seconds=60).hold(lease, result, "m/a") as first:
        redis_client.delete(lease)  # its holder froze past the lease's expiry
        with JobLeases(redis_client, ttl_seconds=60).hold(lease, result, "m/b") as second:
            with pytest.raises(JobInProgress, match="m/b"):
                first.store('"late"', 60)  # another delivery holds the lease now
            assert second.store('"second"', 60) is None
    assert redis_client.get(result) == b'"second"'
    assert not redis_client.exists(lease)
    with JobLeases(redis_client, ttl_seconds=60).hold(lease, result, "m/c") as third:
        assert third.stored == b'"second"'  # read before the call: no call is made


def test_a_late_answer_gets_the_result_stored_first(redis_client: redis.Redis):
    lease, result = "llmw:lease:t:2", "llmw:result:t:R:2"
    with JobLeases(redis_client, ttl_seconds=60).hold(lease, result, "m/a") as first:
        redis_client.delete(lease)
        with JobLeases(redis_client, ttl_seconds=60).hold(lease, result, "m/b") as second:
            assert second.store('"second"', 60) is None
        assert first.store('"late"', 60) == b'"second"'  # never replaced
    assert redis_client.get(result) == b'"second"'


def test_different_job_types_with_the_same_id_stay_apart(worker, fake_llm, fake_core):
    fake_llm.answers["IntentResult"] = FIRST
    fake_llm.answers["FollowupResult"] = {"question": "Which mum?"}
    intent_classify.send(73, 42, {"text": "x"})
    followup.send(73, 42, {"text": "x"})
    drain(worker, "llm.intent", "llm.followup")

    assert len(fake_llm.chat_requests()) == 2
    results = [u["result"] for u in fake_core.job_updates(73)]
    assert sorted(results, key=str) == sorted([FIRST, {"question": "Which mum?"}], key=str)


def test_held_leases_are_renewed_together_and_only_while_still_held(redis_client: redis.Redis):
    leases = JobLeases(redis_client, ttl_seconds=60)
    with (
        leases.hold("llmw:lease:t:3", "llmw:result:t:R:3", "m/a"),
        leases.hold("llmw:lease:t:4", "llmw:result:t:R:4", "m/b"),
    ):
        redis_client.pexpire("llmw:lease:t:3", 100)  # about to run out
        redis_client.set("llmw:lease:t:4", "m/c", px=100)  # lost to another delivery
        assert leases.renew() == 1
        assert redis_client.pttl("llmw:lease:t:3") > 50_000
        assert redis_client.get("llmw:lease:t:4") == b"m/c"
        assert redis_client.pttl("llmw:lease:t:4") <= 100
    assert leases.renew() == 0
    assert not redis_client.exists("llmw:lease:t:3")


def test_a_delivery_confirms_its_lease_before_a_late_call(redis_client: redis.Redis):
    """A process frozen past its lease while it waited for capacity finds, before it asks
    the LLM, that another delivery holds the job now, and does not ask."""
    leases = JobLeases(redis_client, ttl_seconds=60)
    with leases.hold("llmw:lease:t:5", "llmw:result:t:R:5", "m/a") as lease:
        lease.confirm()  # just taken: still its own, Redis not asked
        redis_client.set("llmw:lease:t:5", "m/b")  # expired during the freeze, taken again
        lease.confirm()  # within a third of the lease: not asked again
        lease.confirmed_at -= 30  # the freeze: a third of the lease and more went by
        with pytest.raises(JobInProgress, match="m/b"):
            lease.confirm()
    assert redis_client.get("llmw:lease:t:5") == b"m/b"  # the other delivery's, untouched
