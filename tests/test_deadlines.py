"""LLM_TIMEOUT_SECONDS and CORE_TIMEOUT_SECONDS bound a whole call, against servers
that trickle their answer one byte at a time or never answer."""

from __future__ import annotations

import time

import pytest

from llm_worker.core_api import CoreClient
from llm_worker.errors import CoreAPIError, LLMUnavailable
from llm_worker.fakes import SlowHTTPServer
from llm_worker.settings import Settings
from tests.test_providers import KINDS, ask, make

#: The deadline under test, and what a busy machine may add to it.
DEADLINE = 1.0
SLACK = 2.0
MODES = ["trickle", "trickle_headers", "hang"]


@pytest.fixture(params=MODES)
def slow_server(request):
    server = SlowHTTPServer(request.param, interval=0.3, length=2000)
    yield server
    server.down()


class _At:
    """Stands in for the fake LLM's URLs, pointed at the slow server."""

    def __init__(self, server: SlowHTTPServer) -> None:
        self.url = server.url
        self.base_url = f"{server.url}/v1"


def elapsed(call):
    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        call()
    return time.monotonic() - started, caught.value


@pytest.mark.parametrize("kind", KINDS)
def test_llm_call_ends_by_the_deadline(slow_server, kind):
    provider = make(kind, _At(slow_server), timeout=DEADLINE)

    seconds, error = elapsed(lambda: ask(provider))

    assert isinstance(error, LLMUnavailable), error
    assert "timed out" in str(error)
    assert seconds < DEADLINE + SLACK, f"{kind} call took {seconds:.1f}s"
    assert slow_server.connections == 1


@pytest.mark.parametrize("kind", KINDS)
def test_probe_ends_by_the_deadline(slow_server, kind):
    provider = make(kind, _At(slow_server), timeout=DEADLINE)

    seconds, error = elapsed(lambda: provider.probe("m"))

    assert isinstance(error, LLMUnavailable), error
    assert seconds < DEADLINE + SLACK


def test_server_tokenizer_ends_by_the_deadline(slow_server):
    from llm_worker.providers import OpenAICompatibleProvider, Prompt, Turn

    provider = OpenAICompatibleProvider(
        base_url=f"{slow_server.url}/v1", api_key="k", timeout=DEADLINE, tokenizer="server"
    )
    started = time.monotonic()

    counted = provider.count_tokens("m", Prompt("rules", (Turn("user", "hello"),)))

    assert counted is None  # no count in time: the estimate is used
    # One deadline per tokenize style tried (three styles).
    assert time.monotonic() - started < 3 * DEADLINE + SLACK


def test_core_call_ends_by_the_deadline(slow_server):
    client = CoreClient(Settings(core_api_url=slow_server.url, core_timeout_seconds=DEADLINE))

    seconds, error = elapsed(lambda: client.update_job(7, "completed", result={}))

    assert isinstance(error, CoreAPIError) and error.status is None, error
    assert "did not answer within 1s" in str(error)
    assert seconds < DEADLINE + SLACK
    client.close()


def test_deadline_is_per_call_not_per_client(env, fake_llm, fake_core):
    """A pooled connection reused after a cut call gets a fresh deadline."""
    server = SlowHTTPServer("trickle", interval=0.3, length=2000)
    try:
        client = CoreClient(Settings(core_api_url=server.url, core_timeout_seconds=DEADLINE))
        elapsed(lambda: client.update_job(1, "completed"))
        client.close()
    finally:
        server.down()
    good = CoreClient(Settings(core_api_url=fake_core.url, core_timeout_seconds=DEADLINE))
    for job_id in range(3):
        time.sleep(0.4)
        good.update_job(job_id, "completed")
    assert len(fake_core.job_updates()) == 3
    good.close()
