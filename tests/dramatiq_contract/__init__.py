"""Dramatiq's own test suite, run against this project's brokers.

Dramatiq's tests (from the source distribution of the installed Dramatiq, which
``scripts/fetch-dramatiq-tests.sh`` unpacks into ``upstream-tests/``, which git ignores)
run in a pytest subprocess whose fixtures (:mod:`tests.dramatiq_contract.plugin`) build
:class:`~llm_worker.broker.redis_broker.RecoveringRedisBroker` and
:class:`~llm_worker.broker.rabbitmq_broker.RecoveringRabbitmqBroker` where Dramatiq's
build its own brokers; ``stub_broker`` is the Redis broker seen through the stub broker's
test API (:mod:`tests.dramatiq_contract.stub_view`). Which tests run, and which are
expected to fail because the project's brokers mean to differ from Dramatiq's contract,
is in :mod:`tests.dramatiq_contract.differences`; :mod:`tests.dramatiq_contract.runner`
runs them and compares, and ``tests/test_dramatiq_contract.py`` is the suite's test.

No module here is a test module: the suite collects none of them, and none imports
Dramatiq's tests.
"""
