"""The Redis broker: unreadable messages moved aside, and no message acknowledged
while the write that replaces it failed (Redis stopped at the worst moment)."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import redis

import actors
from actors import intent_classify
from llm_worker.testing.fakes import FakeCore, FakeLLM, Reply
from tests.payloads import GOOD_REMINDER
from tests.support import accepted_states, run_cli, running_worker, wait_for

GARBAGE = [b"not json at all", b'{"queue_name": "llm.intent"}', b"[1, 2, 3]"]


def _push_raw(redis_client, queue: str, data: bytes) -> str:
    redis_id = str(uuid.uuid4())
    redis_client.hset(f"dramatiq:{queue}.msgs", redis_id, data)
    redis_client.rpush(f"dramatiq:{queue}", redis_id)
    return redis_id


def _push_message(client, redis_id: str, data: bytes) -> None:
    client.hset("dramatiq:llm.intent.msgs", redis_id, data)
    client.rpush("dramatiq:llm.intent", redis_id)


def test_unreadable_messages_are_moved_aside_logged_and_counted(
    env, fake_llm, fake_core, redis_client, cli_env, caplog
):
    fake_llm.answers["IntentResult"] = GOOD_REMINDER
    garbage_ids = []
    for n, data in enumerate(GARBAGE):  # garbage between good jobs, fetched together
        intent_classify.send(n, 42, {"text": "x"})
        garbage_ids.append(_push_raw(redis_client, "llm.intent", data))
    intent_classify.send(3, 42, {"text": "x"})

    with running_worker(actors.broker, threads=2):
        wait_for(lambda: len(fake_core.job_updates()) == 4, timeout=20)
        wait_for(lambda: redis_client.hlen("dramatiq:llm.intent.msgs") == 0, timeout=10)

    assert {u["status"] for u in fake_core.job_updates()} == {"completed"}
    aside = redis_client.hgetall("dramatiq:llm.intent.unreadable")
    assert {k.decode(): v for k, v in aside.items()} == dict(zip(garbage_ids, GARBAGE, strict=True))
    logged = " ".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert all(redis_id in logged for redis_id in garbage_ids)
    status = json.loads(run_cli(cli_env, "status", "--json").stdout)
    [intent] = [q for q in status["queues"] if q["name"] == "llm.intent"]
    assert intent["unreadable"] == 3
    assert "unreadable" in run_cli(cli_env, "status").stdout


def test_the_sweeper_moves_unreadable_messages_aside(env, redis_client):
    from llm_worker.jobs.sweep import sweep_redis_queues
    from llm_worker.services import services

    redis_id = _push_raw(redis_client, "llm.followup.DQ", b"\xff\xfe garbage")
    report = sweep_redis_queues(services(), actors.broker, ["llm.followup"])

    assert report.unreadable == 1
    assert redis_client.hget("dramatiq:llm.followup.unreadable", redis_id) == b"\xff\xfe garbage"
    assert redis_client.hlen("dramatiq:llm.followup.DQ.msgs") == 0


class RedisStoppingServer:
    """Stops the test's Redis while answering one request (the hostile moment), and starts
    it again a few seconds later."""

    def __init__(self, redis_server, outage_seconds: float = 3.0) -> None:
        self.redis_server = redis_server
        self.outage_seconds = outage_seconds
        self.fired = threading.Event()
        self.restarted = threading.Event()

    def fire(self) -> None:
        if self.fired.is_set():
            return
        self.fired.set()
        self.redis_server.stop()
        timer = threading.Timer(self.outage_seconds, self._restart)
        timer.daemon = True
        timer.start()

    def _restart(self) -> None:
        self.redis_server.start()
        self.restarted.set()


class CoreFailingWithRedis(FakeCore):
    """A Core whose first job update stops Redis and answers 503: the job's retry
    re-enqueue then meets a Redis that refuses connections."""

    def __init__(self, saboteur: RedisStoppingServer) -> None:
        self.saboteur = saboteur
        super().__init__()

    def respond(self, request):
        if request["method"] == "PATCH" and not self.saboteur.fired.is_set():
            self.saboteur.fire()
            return Reply(status=503, body={"detail": "down"})
        return super().respond(request)


class LLMFailingWithRedis(FakeLLM):
    """An LLM whose first chat answer stops Redis and is ``reply``: the invalid-answer
    retry or the breaker's hold then meets a Redis that refuses connections."""

    def __init__(self, saboteur: RedisStoppingServer, reply: Reply) -> None:
        self.saboteur = saboteur
        self.first_reply = reply
        super().__init__()
        self.answers["IntentResult"] = GOOD_REMINDER

    def respond(self, request):
        if request["path"].endswith("/chat/completions") and not self.saboteur.fired.is_set():
            body = request["json"] or {}
            if body.get("max_tokens") != 1:  # not a probe
                self.saboteur.fire()
                return self.first_reply
        return super().respond(request)


@pytest.mark.cli
@pytest.mark.parametrize(
    "where",
    ["core 503 (retry)", "invalid LLM answer (backoff)", "LLM 503 (breaker hold)"],
)
def test_a_job_survives_redis_stopping_when_its_replacement_is_written(
    where, start_worker, redis_server, fake_llm, fake_core
):
    saboteur = RedisStoppingServer(redis_server)
    core, llm = fake_core, fake_llm
    if where.startswith("core"):
        core = CoreFailingWithRedis(saboteur)
        fake_llm.answers["IntentResult"] = GOOD_REMINDER
    elif where.startswith("invalid"):
        llm = LLMFailingWithRedis(saboteur, Reply(content="no JSON here"))
    else:
        llm = LLMFailingWithRedis(
            saboteur, Reply(status=503, body={"error": {"message": "overloaded"}})
        )
    try:
        start_worker(
            "--processes",
            "1",
            "--threads",
            "2",
            REDIS_URL=redis_server.url,
            CORE_API_URL=core.url,
            LLM_BASE_URL=llm.base_url,
            LLM_PROBE_INTERVAL_SECONDS="0.5",
            JOB_MAX_RETRIES="10",
        )
        message = intent_classify.message(51, 42, {"text": "x"})
        message.options.update(redis_message_id="m-51", llm_checked=True)
        client = redis.Redis.from_url(redis_server.url)
        _push_message(client, "m-51", message.encode())
        client.close()

        assert saboteur.restarted.wait(60)
        wait_for(lambda: accepted_states(core, 51), timeout=60)
    finally:
        if core is not fake_core:
            core.down()
        if llm is not fake_llm:
            llm.down()
    assert accepted_states(core, 51) == ["completed"]


def test_a_delay_queue_consumer_survives_redis_stopping_and_puts_its_messages_back(
    redis_server,
):
    """A delay queue's consumer thread whose due message cannot be moved to its queue (Redis
    refusing connections) closes its consumer, whose requeue of the delayed messages it
    held fails too: the thread must live on, and its next consumer put them back."""
    from queue import PriorityQueue

    from dramatiq import Message
    from dramatiq.worker import ConsumerThread

    from llm_worker.broker.redis_broker import RecoveringRedisBroker

    broker = RecoveringRedisBroker(url=redis_server.url)
    queue = "delay-test"
    broker.declare_queue(queue)
    for n in range(2):  # one due at once, one later
        message = Message(queue_name=queue, actor_name="a", args=(n,), kwargs={}, options={})
        broker.enqueue(message, delay=1 if n == 0 else 60_000)
    client = redis.Redis.from_url(redis_server.url)
    time.sleep(0.05)
    thread = ConsumerThread(
        broker=broker,
        queue_name=f"{queue}.DQ",
        prefetch=2,
        work_queue=PriorityQueue(),
        worker_timeout=100,
    )
    consumer = broker.consume(f"{queue}.DQ", prefetch=2, timeout=100)
    thread.consumer = consumer
    for _ in range(2):
        thread.handle_message(wait_for(lambda: next(consumer), timeout=5))
    redis_server.stop()
    try:
        with pytest.raises(redis.ConnectionError):
            thread.handle_delayed_messages()  # the due one cannot be moved to its queue
        thread.close()  # nor can the held ones be put back: no error escapes
    finally:
        redis_server.start()
    assert thread.delay_queue.empty()
    acks = f"dramatiq:__acks__.{broker.broker_id}.{queue}.DQ"
    assert client.scard(acks) == 2  # fetched, neither acknowledged nor requeued

    again = broker.consume(f"{queue}.DQ", prefetch=2, timeout=100)  # the thread's next one
    redelivered = [wait_for(lambda: next(again), timeout=5) for _ in range(2)]
    assert sorted(m.args[0] for m in redelivered) == [0, 1]
    client.close()


def test_a_put_back_that_meets_a_lost_connection_puts_it_back_once_redis_returns(
    redis_server,
):
    """A message marked for redelivery (a hook failed) whose put-back meets Redis refusing
    connections: Dramatiq's consumer thread tries the put-back again, and once Redis answers
    the message goes back on its queue; it must not be acknowledged away unrun."""
    from dramatiq import Message
    from dramatiq.errors import ConnectionClosed

    from llm_worker.broker.redis_broker import RecoveringRedisBroker

    broker = RecoveringRedisBroker(url=redis_server.url)
    queue = "put-back-test"
    broker.declare_queue(queue)
    broker.enqueue(Message(queue_name=queue, actor_name="a", args=(7,), kwargs={}, options={}))
    consumer = broker.consume(queue, prefetch=1, timeout=100)
    message = wait_for(lambda: next(consumer), timeout=5)
    broker.redeliver(message)  # what a failed hook does

    redis_server.stop()
    try:
        with pytest.raises(ConnectionClosed):
            consumer.ack(message)  # the worker thread is done: the put-back fails
    finally:
        redis_server.start()
    consumer.ack(message)  # Dramatiq's consumer thread tries again

    again = broker.consume(queue, prefetch=1, timeout=100)
    redelivered = wait_for(lambda: next(again), timeout=5)
    assert list(redelivered.args) == [7]


@pytest.mark.parametrize("timeout_from", ["url", "setting"])
def test_an_ack_redis_does_not_answer_in_time_is_retried_until_it_does(redis_server, timeout_from):
    """The broker's Redis stops answering (``CLIENT PAUSE``, longer than the URL's
    ``socket_timeout`` or ``REDIS_SOCKET_TIMEOUT_SECONDS``) just as a worker acknowledges a
    message: the ack times out (``redis.TimeoutError``, not a ConnectionError) and must be
    retried like one after a lost connection, not dropped, which left the message fetched
    and held for good."""
    from queue import PriorityQueue

    from dramatiq import Message
    from dramatiq.worker import ConsumerThread

    from llm_worker.broker.redis_broker import RecoveringRedisBroker
    from llm_worker.settings import BrokerSettings

    if timeout_from == "url":  # the URL's own timeout wins over the setting
        config = BrokerSettings(
            redis_url=f"{redis_server.url}?socket_timeout=0.3", redis_socket_timeout_seconds=60
        )
    else:
        config = BrokerSettings(redis_url=redis_server.url, redis_socket_timeout_seconds=0.3)
    broker = RecoveringRedisBroker.from_settings(config, middleware=[])
    assert broker.client.connection_pool.connection_kwargs["socket_timeout"] == 0.3
    queue = "ack-timeout-test"
    broker.declare_queue(queue)
    broker.enqueue(Message(queue_name=queue, actor_name="a", args=(), kwargs={}, options={}))
    thread = ConsumerThread(
        broker=broker, queue_name=queue, prefetch=1, work_queue=PriorityQueue(), worker_timeout=100
    )
    thread.consumer = broker.consume(queue, prefetch=1, timeout=100)
    message = wait_for(lambda: next(thread.consumer), timeout=5)
    acks = f"dramatiq:__acks__.{broker.broker_id}.{queue}"
    client = redis.Redis.from_url(redis_server.url)
    assert client.scard(acks) == 1

    client.execute_command("CLIENT", "PAUSE", "1500", "ALL")  # Redis stops answering
    thread.post_process_message(message)  # the worker thread acknowledges it
    assert client.scard(acks) == 0
    assert client.hlen(f"dramatiq:{queue}.msgs") == 0
    assert broker.held_messages.held(queue) == []
    client.close()


def test_a_message_whose_hook_fails_for_a_while_runs_once_it_stops_failing(redis_client):
    """A before-hook failing for two seconds under many threads: each message is put back
    again and again, fetched again by another thread before the one that put it back is
    done with it.  Each must run once the hook works, none acknowledged unrun."""
    import dramatiq
    from dramatiq import Worker
    from dramatiq.middleware import Middleware

    from llm_worker.broker.redis_broker import RecoveringRedisBroker
    from tests.support import TEST_REDIS_URL

    failing_until = time.monotonic() + 2.0
    calls: list[str] = []

    class FailingHook(Middleware):
        def before_process_message(self, broker, message):
            calls.append(message.message_id)
            if time.monotonic() < failing_until:
                raise RuntimeError("the hook's store is down")

    broker = RecoveringRedisBroker(
        url=TEST_REDIS_URL, namespace=f"hooktest-{uuid.uuid4().hex[:8]}", middleware=[]
    )
    broker.add_middleware(FailingHook())
    ran: list[str] = []
    lock = threading.Lock()

    @dramatiq.actor(broker=broker, queue_name="hooked")
    def hooked(name: str) -> None:
        with lock:
            ran.append(name)

    for name in ("first", "second"):
        hooked.send(name)
    worker = Worker(broker, worker_threads=16, worker_timeout=20)
    worker.start()
    try:
        wait_for(lambda: sorted(ran) == ["first", "second"], timeout=30)
        time.sleep(0.5)  # nothing left to run twice
    finally:
        worker.stop()
        broker.close()
    assert sorted(ran) == ["first", "second"]
    assert redis_client.hlen(f"{broker.namespace}:hooked.msgs") == 0
    # Each failure pauses its thread longer (50 ms doubling): no tight redelivery loop.
    assert len(calls) < 40, len(calls)
