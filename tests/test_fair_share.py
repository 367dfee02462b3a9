"""Fair share, the per-user limit and the daily token budget, on a real Redis and through a
real worker."""

from __future__ import annotations

import json
import time

import pytest

from actors import intent_classify
from llm_worker import keys
from llm_worker.broker.redis_layout import RedisLayout
from llm_worker.errors import LLMAtCapacity
from llm_worker.fleet.capacity import (
    WAITERS_PER_SHARE,
    CapacityGate,
    CapacityLimits,
    CapacityStore,
    Lease,
    job_share,
    review_share,
)
from llm_worker.jobs import retry as message_options
from llm_worker.testing.fakes import Reply
from tests.support import drain, notifications, wait_for

NOW = 1_800_000_000.0
A, B, C = "user:1", "user:2", "user:3"


def _store(redis_client, **limits) -> CapacityStore:
    return CapacityStore(redis_client, "llmw", CapacityLimits(**limits))


def _ask(store, lease, share, *, priority=0, tokens=0, now=NOW, user=""):
    return store.acquire(lease, priority=priority, tokens=tokens, share=share, user=user, now=now)


def test_within_a_priority_the_user_with_fewer_calls_in_flight_goes_first(redis_client):
    store = _store(redis_client, max_concurrent=2)
    assert _ask(store, "a1", A).granted and _ask(store, "a2", A).granted
    assert _ask(store, "a3", A).reason == "slots"  # waits on its thread, first in line
    assert _ask(store, "b1", B).reason == "slots"  # B holds none: ahead of A's waiter

    store.release(Lease("a1", 0, 0, share=A))

    assert _ask(store, "a3", A).reason == "turn"  # a slot is free, but B has fewer in flight
    assert _ask(store, "b1", B).granted
    assert (store.held_by(A), store.held_by(B)) == (1, 1)


def test_equal_shares_are_served_in_turn_and_priority_still_comes_first(redis_client):
    store = _store(redis_client, max_concurrent=1)
    assert _ask(store, "a1", A).granted
    assert _ask(store, "b1", B, priority=10).reason == "slots"
    assert _ask(store, "c1", C, priority=0).reason == "slots"
    store.release(Lease("a1", 0, 0, share=A))
    # B holds fewer than A would, but C's better priority goes first
    assert _ask(store, "b1", B, priority=10).reason == "priority"
    assert _ask(store, "c1", C).granted


def test_a_user_keeps_at_most_two_jobs_waiting_on_threads_and_sends_the_rest_back(redis_client):
    store = _store(redis_client, max_concurrent=1)
    assert _ask(store, "a1", A).granted
    waiting = [_ask(store, f"a{n}", A) for n in range(2, 2 + WAITERS_PER_SHARE)]
    assert [(g.reason, g.send_back) for g in waiting] == [("slots", False)] * WAITERS_PER_SHARE
    extra = _ask(store, "a9", A)
    assert (extra.granted, extra.reason, extra.send_back) == (False, "slots", True)
    assert not _ask(store, "b1", B).send_back  # another user still waits on a thread
    store.forget_waiter("a2")
    assert not _ask(store, "a9", A).send_back  # a waiter gave up: room for another


def test_a_user_never_holds_more_than_its_own_limit(redis_client):
    store = _store(redis_client, max_concurrent=8, per_share=2)
    assert _ask(store, "a1", A).granted and _ask(store, "a2", A).granted
    assert _ask(store, "a3", A).reason == "share_limit"
    assert _ask(store, "b1", B).granted
    store.release(Lease("a1", 0, 0, share=A))
    assert _ask(store, "a3", A).granted


def test_a_per_user_limit_without_a_fleet_cap_still_counts_calls(redis_client):
    store = _store(redis_client, per_share=1)
    assert _ask(store, "a1", A).granted
    assert _ask(store, "a2", A).reason == "share_limit"
    assert _ask(store, "b1", B).granted


def test_a_dead_holders_slot_returns_to_its_user_when_the_lease_expires(redis_client):
    store = _store(redis_client, max_concurrent=4, per_share=1, lease_seconds=30)
    assert _ask(store, "a1", A).granted
    assert _ask(store, "a2", A, now=NOW + 29).reason == "share_limit"
    assert _ask(store, "a2", A, now=NOW + 31).granted
    assert store.held_by(A) == 1


def test_the_daily_budget_is_charged_before_and_corrected_after_each_call(redis_client):
    store = _store(redis_client, daily_tokens=100)
    assert _ask(store, "a1", A, tokens=80, user="1").granted
    assert store.quota_used("1", now=NOW) == 80
    store.release(Lease("a1", 80, 0, used=130, share=A, user="1", day=int(NOW // 86_400)))
    assert store.quota_used("1", now=NOW) == 130

    over = _ask(store, "a2", A, tokens=5, user="1")
    midnight = (int(NOW // 86_400) + 1) * 86_400
    assert (over.granted, over.reason, over.send_back) == (False, "quota", True)
    assert over.wait_seconds == pytest.approx(midnight - NOW, abs=0.01)
    assert _ask(store, "b1", B, tokens=5, user="2").granted  # another user's own budget
    assert _ask(store, "a3", A, tokens=5, user="1", now=midnight + 1).granted  # a new day
    ttl = redis_client.pttl(keys.capacity_quota("llmw", int(NOW // 86_400), "1"))
    assert 0 < ttl <= 2 * 86_400_000


def test_the_gate_sends_a_job_back_at_once_instead_of_waiting_on_its_thread(redis_client):
    store = _store(redis_client, max_concurrent=1)
    gate = CapacityGate(store, wait_seconds=30)
    assert _ask(store, "a1", A).granted
    for n in range(WAITERS_PER_SHARE):
        _ask(store, f"a-waiting-{n}", A)
    with pytest.raises(LLMAtCapacity) as caught, gate.request(priority=0, tokens=0, share=A):
        pass
    assert caught.value.sent_back and caught.value.reason == "slots"


def test_share_keys_name_the_user_or_the_review_request_and_none_turns_them_off():
    assert job_share("user_id", 42) == "user:42"
    assert job_share("user_id", None) == ""
    assert job_share("none", 42) == ""
    assert review_share("user_id", "rr-7") == "review:rr-7"
    assert review_share("none", "rr-7") == ""


def test_a_job_over_its_users_budget_waits_for_the_day_and_the_user_is_told_once(
    env, worker, fake_llm, fake_core, redis_client
):
    env(LLM_USER_DAILY_TOKENS="10")  # the fake LLM reports 11 + 7 tokens per call
    fake_llm.fallback = lambda request: Reply(content={"intent": "task", "confidence": 0.9})
    intent_classify.send(1, 7, {"text": "buy milk"})
    drain(worker, intent_classify.queue_name)
    [done] = fake_core.job_updates(1)
    assert done["status"] == "completed"

    for job_id in (2, 3):
        intent_classify.send(job_id, 7, {"text": "buy bread"})
    layout = RedisLayout(redis_client)
    held_key = layout.messages_key(layout.delay_queue(intent_classify.queue_name))

    def held():
        found = [json.loads(raw) for raw in redis_client.hvals(held_key)]
        return found if len(found) == 2 else None

    messages = wait_for(held, timeout=20)
    assert len(fake_llm.chat_requests()) == 1  # 18 tokens spent: no more calls today
    assert not fake_core.job_updates(2) and not fake_core.job_updates(3)  # held, not failed
    midnight_ms = (int(time.time() // 86_400) + 1) * 86_400_000
    for message in messages:
        assert message["options"][message_options.CAPACITY_WAITS] == 1
        assert midnight_ms <= message["options"]["eta"] <= midnight_ms + 61_000
    told = [n for n in notifications(redis_client) if n["message_type"] == "llm_quota"]
    assert len(told) == 1
    assert told[0]["user_id"] == 7
    assert told[0]["content"]["daily_tokens"] == 10
    assert told[0]["content"]["job_type"] == "intent_classify"
