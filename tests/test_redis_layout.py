"""The Redis layout: Dramatiq 2.2's keys, checked against messages a real RedisBroker
enqueued, delayed, fetched and dead-lettered."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from llm_worker.broker.redis_broker import RecoveringRedisBroker
from llm_worker.broker.redis_layout import DEFAULT_NAMESPACE, RedisKeys, RedisLayout
from tests.support import TEST_REDIS_URL

QUEUE = "layout.jobs"
#: A queue whose name ends like ``QUEUE``'s: its acks sets must not count for ``SHORT``.
SHORT = "jobs"
NAMESPACE = "layout-test"


@pytest.fixture
def broker(redis_client) -> Iterator[RedisBroker]:
    broker = RedisBroker(url=TEST_REDIS_URL, namespace=NAMESPACE, middleware=[])
    broker.declare_queue(QUEUE)
    broker.declare_queue(SHORT)
    yield broker
    broker.client.close()


def _message(queue: str = QUEUE, n: int = 0) -> Message:
    return Message(queue, "job", (n,), {}, {})


def test_the_keys_are_dramatiqs_own_names():
    keys = RedisKeys("ns")
    assert keys.ids_key("q") == "ns:q"
    assert keys.messages_key("q") == "ns:q.msgs"
    assert keys.delay_queue("q") == keys.delay_queue("q.DQ") == "q.DQ"
    assert keys.dead_letter_queue("q") == keys.dead_letter_queue("q.DQ") == "q.XQ"
    assert keys.is_delay_queue("q.DQ") and not keys.is_delay_queue("q")
    assert keys.acks_key("b1", "q.DQ") == "ns:__acks__.b1.q.DQ"
    assert keys.heartbeats_key == "ns:__heartbeats__"
    assert keys.unreadable_key("q") == keys.unreadable_key("q.DQ") == "ns:q.unreadable"


def test_the_default_namespace_is_the_brokers(redis_client):
    broker = RedisBroker(url=TEST_REDIS_URL, middleware=[])
    try:
        assert broker.namespace == DEFAULT_NAMESPACE == RedisLayout(redis_client).namespace
    finally:
        broker.client.close()
    recovering = RecoveringRedisBroker(url=TEST_REDIS_URL, namespace=NAMESPACE, middleware=[])
    try:
        assert recovering.layout.namespace == NAMESPACE
        assert recovering.layout.client is recovering.client
    finally:
        recovering.client.close()


def test_an_enqueued_message_is_listed_and_stored_under_its_redis_id(broker, redis_client):
    sent = broker.enqueue(_message())
    redis_id = sent.options["redis_message_id"]
    layout = RedisLayout.of(broker)

    assert redis_client.lrange(f"{NAMESPACE}:{QUEUE}", 0, -1) == [redis_id.encode()]
    assert redis_client.hexists(f"{NAMESPACE}:{QUEUE}.msgs", redis_id)
    assert [m.message_id for m in layout.queued_messages(QUEUE)] == [sent.message_id]
    assert layout.ready_count(QUEUE) == layout.unacknowledged_count(QUEUE) == 1
    assert [key.decode() for key, _ in layout.payloads(QUEUE)] == [redis_id]
    assert list(layout.delayed_messages(QUEUE)) == list(layout.dead_letters(QUEUE)) == []


def test_a_delayed_message_is_in_the_delay_queue_with_its_eta(broker, redis_client):
    sent = broker.enqueue(_message(), delay=60_000)
    layout = RedisLayout.of(broker)

    assert redis_client.llen(f"{NAMESPACE}:{QUEUE}.DQ") == 1
    [delayed] = layout.delayed_messages(QUEUE)
    assert delayed.message_id == sent.message_id
    assert delayed.options["eta"] > time.time() * 1000
    assert layout.ready_count(QUEUE) == 0
    assert list(layout.queued_messages(QUEUE)) == []
    assert layout.unacknowledged_count(QUEUE) == 1


def test_a_fetched_message_is_in_flight_in_its_brokers_acks_set_only(broker, redis_client):
    sent = broker.enqueue(_message())
    broker.enqueue(_message(SHORT))
    consumer = broker.consume(QUEUE, prefetch=1, timeout=100)
    fetched = next(consumer)
    layout = RedisLayout.of(broker)
    redis_id = sent.options["redis_message_id"]

    assert fetched.message_id == sent.message_id
    acks = f"{NAMESPACE}:__acks__.{broker.broker_id}.{QUEUE}"
    assert list(layout.acks_keys(QUEUE)) == [acks.encode()]
    assert layout.acks_key(broker.broker_id, QUEUE) == acks
    assert layout.in_flight_count(QUEUE) == 1 and layout.is_in_flight(QUEUE, redis_id)
    assert list(layout.acks_keys(SHORT)) == [] and layout.in_flight_count(SHORT) == 0
    assert layout.ready_count(QUEUE) == 0
    assert [m.message_id for m in layout.queued_messages(QUEUE)] == [sent.message_id]

    consumer.ack(fetched)
    assert layout.in_flight_count(QUEUE) == 0
    assert layout.unacknowledged_count(QUEUE) == 0
    consumer.close()


def test_dead_letters_of_a_queue_and_of_its_delay_queue_share_one_dead_letter_queue(
    broker, redis_client
):
    sent = broker.enqueue(_message(n=1))
    delayed = broker.enqueue(_message(n=2), delay=1)
    layout = RedisLayout.of(broker)
    for queue_name in (QUEUE, layout.delay_queue(QUEUE)):
        consumer = broker.consume(queue_name, prefetch=1, timeout=100)
        consumer.nack(next(consumer))
        consumer.close()

    dead_ids = redis_client.zrange(f"{NAMESPACE}:{QUEUE}.XQ", 0, -1)  # by time of death
    assert sorted(dead_ids) == sorted(
        m.options["redis_message_id"].encode() for m in (sent, delayed)
    )
    assert not redis_client.exists(f"{NAMESPACE}:{QUEUE}.DQ.XQ")
    assert layout.dead_letter_ids(QUEUE) == dead_ids
    assert layout.dead_letter_count(QUEUE) == 2
    assert {m.message_id for m in layout.dead_letters(QUEUE)} == {
        sent.message_id,
        delayed.message_id,
    }
    assert layout.unacknowledged_count(QUEUE) == 0


def test_find_looks_up_the_latest_enqueue_then_scans_for_the_message_id(broker, redis_client):
    original = _message()
    stored = broker.enqueue(original)  # a new redis_message_id, as a retry or hold makes
    redis_client.hset(f"{NAMESPACE}:{QUEUE}.msgs", "garbage", b"not json")
    layout = RedisLayout.of(broker)

    by_redis_id = layout.find(QUEUE, stored)
    assert by_redis_id is not None and by_redis_id.options == stored.options
    by_message_id = layout.find(QUEUE, original)  # the producer's copy: no redis_message_id
    assert by_message_id is not None and by_message_id.options == stored.options
    assert layout.find(layout.delay_queue(QUEUE), original) is None
    assert [m.message_id for m in layout.messages(QUEUE)] == [original.message_id]


def test_every_dispatch_beats_the_brokers_heartbeat(broker, redis_client):
    broker.enqueue(_message())
    layout = RedisLayout.of(broker)

    assert redis_client.zscore(f"{NAMESPACE}:__heartbeats__", broker.broker_id) is not None
    assert layout.worker_count() == 1
    assert layout.live_workers(int(time.time() * 1000) - broker.heartbeat_timeout) == 1
    assert layout.live_workers(int(time.time() * 1000) + 60_000) == 0


def test_unreadable_messages_are_counted_per_queue(broker, redis_client):
    layout = RedisLayout.of(broker)
    redis_client.hset(layout.unreadable_key(layout.delay_queue(QUEUE)), "x", b"garbage")

    assert layout.unreadable_count(QUEUE) == 1
    assert redis_client.hexists(f"{NAMESPACE}:{QUEUE}.unreadable", "x")
