"""The capacity store and gate on a real Redis: leases, buckets, priority, cooldown."""

from __future__ import annotations

import math
import threading
import time

import pytest

from llm_worker.errors import LLMAtCapacity
from llm_worker.fleet.capacity import (
    COOLDOWN_READ_SECONDS,
    CapacityGate,
    CapacityLimits,
    CapacityStore,
    Lease,
)
from llm_worker.llm.providers.base import retry_after_seconds
from tests.support import http_date, wait_for

NOW = 1_800_000_000.0


def _store(redis_client, **limits) -> CapacityStore:
    return CapacityStore(redis_client, "llmw", CapacityLimits(**limits))


def test_slots_are_capped_and_released(redis_client):
    store = _store(redis_client, max_concurrent=2)
    assert store.acquire("a", priority=0, tokens=0, now=NOW).granted
    assert store.acquire("b", priority=0, tokens=0, now=NOW).granted
    denied = store.acquire("c", priority=0, tokens=0, now=NOW)
    assert (denied.granted, denied.reason) == (False, "slots")
    store.release(Lease("a", 0, 0))
    assert store.acquire("c", priority=0, tokens=0, now=NOW).granted
    assert store.snapshot(now=NOW).slots_in_use == 2


def test_a_lease_not_renewed_expires(redis_client):
    store = _store(redis_client, max_concurrent=1, lease_seconds=30)
    assert store.acquire("dead-holder", priority=0, tokens=0, now=NOW).granted
    assert not store.acquire("next", priority=0, tokens=0, now=NOW + 29.9).granted
    assert store.acquire("next", priority=0, tokens=0, now=NOW + 30.1).granted


def test_a_renewed_lease_outlives_its_first_expiry(redis_client):
    store = _store(redis_client, max_concurrent=1, lease_seconds=30)
    assert store.acquire("holder", priority=0, tokens=0, now=NOW).granted
    store.renew(["holder"], now=NOW + 20)
    assert not store.acquire("next", priority=0, tokens=0, now=NOW + 40).granted
    assert store.acquire("next", priority=0, tokens=0, now=NOW + 50.1).granted


def test_gate_renews_leases_during_a_long_call(redis_client):
    lease_seconds = 0.3
    gate = CapacityGate(
        _store(redis_client, max_concurrent=1, lease_seconds=lease_seconds), wait_seconds=0
    )
    other = _store(redis_client, max_concurrent=1, lease_seconds=lease_seconds)
    with gate.request(priority=0, tokens=0):
        for _ in range(4):  # several leases long: the renewals keep the slot taken
            time.sleep(lease_seconds)
            assert not other.acquire("other", priority=0, tokens=0).granted
    assert other.acquire("other", priority=0, tokens=0).granted


def test_requests_bucket_holds_one_second_and_refills_at_the_limit(redis_client):
    store = _store(redis_client, requests_per_minute=600)  # 10/s, a burst of 10
    grants = [store.acquire(f"r{n}", priority=0, tokens=0, now=NOW).granted for n in range(11)]
    assert grants == [True] * 10 + [False]
    denied = store.acquire("late", priority=0, tokens=0, now=NOW)
    assert denied.reason == "requests"
    assert denied.wait_seconds == pytest.approx(0.1, abs=0.002)
    assert store.acquire("late", priority=0, tokens=0, now=NOW + 0.1).granted
    assert not store.acquire("later", priority=0, tokens=0, now=NOW + 0.1).granted


def test_tokens_are_charged_by_estimate_and_corrected_by_usage(redis_client):
    store = _store(redis_client, tokens_per_minute=600)  # 10 tokens/s, a bucket of 10
    assert store.acquire("a", priority=0, tokens=4, now=NOW).granted  # level 6
    store.release(Lease("a", estimate=4, window=int(NOW // 10), used=14))  # level -4
    denied = store.acquire("b", priority=0, tokens=1, now=NOW)
    assert denied.reason == "tokens"
    assert denied.wait_seconds == pytest.approx(0.5, abs=0.002)  # back above 0 after 0.5 s
    assert store.acquire("b", priority=0, tokens=1, now=NOW + 0.5).granted


def test_a_better_priority_waiting_goes_first(redis_client):
    store = _store(redis_client, max_concurrent=1)
    assert store.acquire("holder", priority=10, tokens=0, now=NOW).granted
    assert store.acquire("batch", priority=10, tokens=0, now=NOW).reason == "slots"
    assert store.acquire("intent", priority=0, tokens=0, now=NOW).reason == "slots"
    store.release(Lease("holder", 0, 0))
    assert store.acquire("batch", priority=10, tokens=0, now=NOW + 0.1).reason == "priority"
    assert store.acquire("intent", priority=0, tokens=0, now=NOW + 0.1).granted
    assert store.snapshot(now=NOW + 0.1).waiting_on_threads == 1


def test_a_silent_waiter_no_longer_blocks_lower_priorities(redis_client):
    store = _store(redis_client, max_concurrent=1)
    assert store.acquire("holder", priority=0, tokens=0, now=NOW).granted
    assert store.acquire("intent", priority=0, tokens=0, now=NOW).reason == "slots"
    store.release(Lease("holder", 0, 0))
    assert store.acquire("batch", priority=10, tokens=0, now=NOW + 0.5).reason == "priority"
    assert store.acquire("batch", priority=10, tokens=0, now=NOW + 1.1).granted


def test_cooldown_stops_every_limit_and_only_lengthens(redis_client):
    store = _store(redis_client, max_concurrent=5)
    assert store.cool_down(1.0, "429")
    assert not store.cool_down(0.2, "shorter 429")  # a shorter one never cuts it
    denied = store.acquire("a", priority=0, tokens=0)
    assert denied.reason == "cooldown"
    assert 0.5 < denied.wait_seconds <= 1.0
    assert store.cooldown() is not None and store.cooldown().reason == "429"
    wait_for(lambda: store.acquire("a", priority=0, tokens=0).granted, timeout=5)


def test_gate_waits_on_its_thread_then_gives_up_with_the_wait(redis_client):
    store = _store(redis_client, max_concurrent=1)
    gate = CapacityGate(store, wait_seconds=0.2)
    assert store.acquire("holder", priority=0, tokens=0).granted
    with pytest.raises(LLMAtCapacity) as caught, gate.request(priority=0, tokens=0):
        pass
    assert caught.value.reason == "slots"
    assert store.snapshot().waiting_on_threads == 0  # it left the waiters when it gave up

    released = threading.Timer(0.1, lambda: store.release(Lease("holder", 0, 0)))
    released.start()
    with gate.request(priority=0, tokens=0):  # the slot frees within the wait: it runs
        assert store.snapshot().slots_in_use == 1
    released.join()


def test_gate_without_limits_checks_only_the_cooldown(redis_client):
    store = _store(redis_client)
    gate = CapacityGate(store, wait_seconds=0.5)
    with gate.request(priority=0, tokens=100):
        pass
    gate.cool_down(5.0, "429 seen by this process")  # known at once
    with pytest.raises(LLMAtCapacity) as caught, gate.request(priority=0, tokens=100):
        pass
    assert caught.value.reason == "cooldown"
    assert 4 < caught.value.wait_seconds <= 5

    elsewhere = CapacityGate(_store(redis_client), wait_seconds=0.5)
    redis_client.delete("llmw:capacity:cooldown")
    with elsewhere.request(priority=0, tokens=100):
        pass
    store.cool_down(5.0, "429 seen by another process")
    time.sleep(COOLDOWN_READ_SECONDS)  # another process's cooldown: seen after one read interval
    with pytest.raises(LLMAtCapacity), elsewhere.request(priority=0, tokens=100):
        pass


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("0", 0.0),
        ("86400", 86400.0),
        ("1e400", math.inf),
        ("-5", None),
        ("nan", None),
        ("soon", None),
        ("Wed, 99 Foo 2026 25:61:00 GMT", None),
        ("", None),
    ],
)
def test_retry_after_values(value, expected):
    assert retry_after_seconds({"retry-after": value}) == expected


def test_retry_after_http_dates():
    assert retry_after_seconds({"retry-after": http_date(-3600)}) == 0.0
    assert 55 <= (retry_after_seconds({"retry-after": http_date(60)}) or 0) <= 60
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after-ms": "junk", "retry-after": "9"}) == 9.0
