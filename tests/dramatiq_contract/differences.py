"""Which of Dramatiq's tests run against the project's brokers, which do not, and which
are expected to fail because the project's brokers mean to differ from Dramatiq's
contract: the one list the run checks its outcome against, and the manual shows
(``docs/guarantees.md``, through ``docs/hooks/dramatiq_contract.py``).

Test ids are those of Dramatiq's test modules (``test_actors.py::test_name``).
"""

from __future__ import annotations

from typing import NamedTuple


class Difference(NamedTuple):
    """A Dramatiq test that fails against the project's broker on purpose."""

    #: What Dramatiq's contract says, and what the project's broker does instead, and why.
    reason: str
    #: A text the test's failure report must contain: it fails for that reason.
    failure: str
    #: Seconds the stub view's ``join`` waits before it gives up (where the test waits
    #: for a message the project's broker never runs).
    join_timeout_seconds: float | None = None


#: Dramatiq's test modules of actors, workers, middleware and composition, written for
#: its in-memory stub broker: they run on the project's Redis broker seen through the
#: stub broker's test API (their ``stub_broker`` fixture), with results and rate limits
#: kept in Redis.
STUB_VIEW_FILES = (
    "test_actors.py",
    "test_worker.py",
    "test_broker.py",
    "test_callbacks.py",
    "test_composition.py",
    "test_results.py",
    "test_generic_actors.py",
    "test_messages.py",
    "test_encoders.py",
)
#: Dramatiq's Redis broker tests, on the project's Redis broker (``redis_broker``).
REDIS_FILES = ("test_redis.py",)
#: Dramatiq's RabbitMQ broker tests, on the project's RabbitMQ broker (``rabbitmq_broker``).
RABBITMQ_FILES = ("test_rabbitmq.py",)
#: Dramatiq's test modules not run: they test neither a broker nor what runs on one.
OTHER_FILES: dict[str, str] = {
    "test_stub_broker.py": "the in-memory stub broker's own tests; the project has none",
    "test_cli.py": "the dramatiq command's options, on Dramatiq's own brokers",
    "test_pidfile.py": "the dramatiq command's pid file",
    "test_watch.py": "the dramatiq command's code reloading",
    "test_barrier.py": "rate limiter backends",
    "test_bucket_rate_limiter.py": "rate limiter backends",
    "test_concurrent_rate_limiter.py": "rate limiter backends",
    "test_window_rate_limiter.py": "rate limiter backends",
    "test_canteen.py": "a shared-memory helper of the dramatiq command",
    "test_common.py": "helper functions",
    "test_types.py": "type annotations, for a type checker to read",
}

#: Tests of the selected modules that are not run, each with why.
NOT_RUN: dict[str, str] = {
    "test_worker.py::test_workers_process_messages_in_order": (
        "assumes the in-memory stub broker: it expects five messages sent a millisecond "
        "apart to sit in the worker's work queue at once, where a Redis consumer polls; it "
        "fails the same on Dramatiq's own RedisBroker"
    ),
    "test_redis.py::test_redis_dead_lettered_messages_are_cleaned_up": (
        "time: it sends 16,000 failing messages through a worker (20 to 40 s on two "
        "cores); the dead-letter clean-up it checks is Dramatiq's own dispatch.lua, "
        "which the project's broker runs unchanged"
    ),
    "test_rabbitmq.py::test_rabbitmq_workers_handle_rabbit_failures_gracefully": (
        "it stops and starts the machine's RabbitMQ application (rabbitmqctl stop_app), "
        "under every other test using it; the project's own fault tests restart a "
        "RabbitMQ node of their own under a worker instead"
    ),
}

#: Tests expected to fail against the project's brokers, each with the difference.
DIFFERENCES: dict[str, Difference] = {
    "test_actors.py::test_before_and_after_signal_failures_are_ignored": Difference(
        reason=(
            "Dramatiq logs and ignores a middleware hook that raises: the actor runs "
            "although its before_process_message hook failed, and the message is "
            "acknowledged although its after_process_message hook failed. The project's "
            "brokers skip the message instead and put it back on its queue for "
            "redelivery (after a pause of 50 ms doubling to 5 s while the same message "
            "keeps failing), so a check that could not be made never lets a job run "
            "unchecked and a write that could not be made never lets a message be "
            "acknowledged unreplaced. With a hook that always fails the message is "
            "never run, and the test's join times out."
        ),
        failure="QueueJoinTimeout",
        join_timeout_seconds=3,
    ),
}
