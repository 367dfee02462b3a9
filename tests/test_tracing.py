"""Traces from the producer to Core, exported over OTLP/HTTP to a receiver of the test's
own (:class:`~llm_worker.testing.otlp.OTLPReceiver`)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from llm_worker.jobs import retry as message_options
from llm_worker.observability import tracing
from llm_worker.testing.fakes import Reply
from llm_worker.testing.otlp import OTLPReceiver, ReceivedSpan
from tests.payloads import COMMENTS, GOOD_TASK
from tests.support import ROOT, app_diff, drain, produce, running_worker, wait_for

#: Spans leave a worker in batches this often, in milliseconds.
EXPORT_DELAY_MS = "50"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OTLPReceiver]:
    server = OTLPReceiver()
    yield server
    server.close()


@pytest.fixture
def otel_env(receiver: OTLPReceiver) -> dict[str, str]:
    """The standard variables that make a worker export to :func:`receiver`."""
    receiver.clear()
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": EXPORT_DELAY_MS,
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
    }


@pytest.fixture
def traced(
    monkeypatch: pytest.MonkeyPatch, otel_env: dict[str, str], receiver: OTLPReceiver
) -> Iterator[OTLPReceiver]:
    """Tracing on in this process (the in-process worker's), exporting to the receiver."""
    for name, value in otel_env.items():
        monkeypatch.setenv(name, value)
    assert tracing.configure()
    yield receiver
    tracing.shutdown()


@pytest.fixture
def producer(receiver: OTLPReceiver) -> Iterator[Any]:
    """A producer's own tracer (its own SDK), exporting each span at once to the receiver."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "producer"}))
    exporter = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("producer")
    provider.shutdown()


def named(spans: list[ReceivedSpan], prefix: str) -> list[ReceivedSpan]:
    """The spans whose name starts with ``prefix``, by start time."""
    return sorted((s for s in spans if s.name.startswith(prefix)), key=lambda s: s.start)


def one_trace(spans: list[ReceivedSpan]) -> str:
    """The one trace id of ``spans``."""
    (trace_id,) = {span.trace_id for span in spans}
    return trace_id


def children(spans: list[ReceivedSpan], parent: ReceivedSpan, prefix: str) -> list[ReceivedSpan]:
    """The spans named ``prefix...`` whose parent is ``parent``."""
    return [s for s in named(spans, prefix) if s.parent_span_id == parent.span_id]


# -- without OpenTelemetry, or without an endpoint ---------------------------------------


BLOCK_OPENTELEMETRY = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
"""


def test_a_producer_without_opentelemetry_sends_jobs_and_imports_none_of_it(cli_env, redis_client):
    code = BLOCK_OPENTELEMETRY + (
        "import json, actors; actors.followup.send(80, 42, {'text': 'x'}); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('opentelemetry'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=cli_env, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    [raw] = redis_client.hvals("dramatiq:llm.followup.msgs")
    assert tracing.TRACEPARENT not in raw.decode()


def test_a_worker_without_the_packages_logs_that_it_cannot_export(tmp_path, receiver):
    code = BLOCK_OPENTELEMETRY + (
        "import logging; logging.basicConfig()\n"
        "from llm_worker.observability import tracing\n"
        "print(tracing.configure(), tracing.enabled())\n"
        "with tracing.span('x') as span: span.set_attribute('a', 1)\n"
        "options = {}; tracing.inject(options); print(options)"
    )
    env = {"PYTHONPATH": str(ROOT), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["False False", "{}"]
    assert "the otel extra is not installed" in done.stderr


def test_without_an_endpoint_tracing_stays_off(monkeypatch):
    for name in (*tracing.TRACES_ENDPOINT_VARIABLES, *tracing.METRICS_ENDPOINT_VARIABLES):
        monkeypatch.delenv(name, raising=False)

    assert tracing.configure() is False
    assert tracing.span("x") is tracing.NO_SPAN
    assert tracing.extract({tracing.TRACEPARENT: "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}) is None


def test_inject_writes_the_active_span_and_keeps_a_context_already_carried(producer):
    options: dict[str, Any] = {}
    tracing.inject(options)
    assert options == {}  # no active span

    with producer.start_as_current_span("send") as span:
        tracing.inject(options)
        kept = {tracing.TRACEPARENT: "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}
        tracing.inject(kept)

    context = span.get_span_context()
    ids = f"{context.trace_id:032x}-{context.span_id:016x}"
    assert options == {tracing.TRACEPARENT: f"00-{ids}-{context.trace_flags:02x}"}
    assert kept == {tracing.TRACEPARENT: "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}


def test_a_requeue_from_the_dead_letters_keeps_the_trace_context():
    options = {
        tracing.TRACEPARENT: "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        tracing.TRACESTATE: "vendor=1",
        message_options.INVALID_RETRIES: 3,
    }

    fresh = message_options.requeued_options(options, now=5.0)

    assert fresh[tracing.TRACEPARENT] == options[tracing.TRACEPARENT]
    assert fresh[tracing.TRACESTATE] == "vendor=1"
    assert message_options.INVALID_RETRIES not in fresh


# -- a worker of its own: the dramatiq CLI ------------------------------------------------


PRODUCER = """
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import actors

provider = TracerProvider(resource=Resource.create({{"service.name": "producer"}}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint="{endpoint}/v1/traces")))
with provider.get_tracer("producer").start_as_current_span("send the job"):
    actors.followup.send(71, 42, {{"text": "move it"}})
provider.shutdown()
"""


def test_one_jobs_trace_from_the_producer_to_core_and_the_notification(
    start_worker, cli_env, otel_env, receiver, fake_llm, fake_core
):
    fake_llm.push({"question": "Which day?"})
    start_worker("--processes", "1", "--threads", "1", **otel_env)

    produce(cli_env, PRODUCER.format(endpoint=receiver.endpoint))
    # The producer's span, and the job's, which ends after its notification's.
    spans = receiver.wait_for(
        lambda spans: bool(named(spans, "send the job")) and bool(named(spans, "process followup"))
    )

    [sent] = named(spans, "send the job")
    [job] = children(spans, sent, "process followup")
    [chat] = children(spans, job, "chat ")
    [core] = children(spans, job, "PATCH /jobs/{job_id}")
    [notify] = children(spans, job, "send notify:telegram")
    assert one_trace([sent, job, chat, core, notify]) == sent.trace_id
    assert (sent.service, job.service) == ("producer", "llm-worker")
    assert job.kind == "consumer"
    assert job.attributes["llm_worker.job.type"] == "followup"
    assert job.attributes["llm_worker.job.id"] == "71"
    assert job.attributes["llm_worker.job.attempt"] == 1
    assert job.attributes["llm_worker.job.outcome"] == "completed"
    assert job.attributes["messaging.destination.name"] == "llm.followup"
    assert job.attributes["llm_worker.queue_wait_ms"] >= 0
    assert chat.kind == "client"
    assert chat.name == "chat mistral"
    assert {
        key: chat.attributes[key]
        for key in (
            "gen_ai.operation.name",
            "gen_ai.provider.name",
            "gen_ai.system",
            "gen_ai.request.model",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "gen_ai.response.finish_reasons",
        )
    } == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "mistral",
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.response.finish_reasons": ["stop"],
    }
    assert chat.attributes["gen_ai.response.model"]
    assert not any("messages" in key or "instructions" in key for key in chat.attributes)
    assert core.kind == "client"
    assert core.attributes["http.request.method"] == "PATCH"
    assert core.attributes["url.template"] == "/jobs/{job_id}"
    assert core.attributes["server.address"] == "127.0.0.1"
    assert core.attributes["http.response.status_code"] == 200
    assert "71" not in core.name
    assert notify.kind == "producer"
    assert notify.attributes["llm_worker.notifications.published"] == 1
    [update] = [r for r in fake_core.requests if r["method"] == "PATCH"]
    traceparent = update["headers"].get("traceparent") or update["headers"].get("Traceparent")
    assert traceparent.split("-")[1:3] == [sent.trace_id, core.span_id]
    wait_for(
        lambda: (
            {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"}
            <= set(receiver.metrics)
        )
    )
    token_types = {
        p.get("gen_ai.token.type") for p in receiver.metrics["gen_ai.client.token.usage"]
    }
    assert token_types == {"input", "output"}


# -- the in-process worker ----------------------------------------------------------------


def test_a_job_asked_again_after_an_invalid_answer_keeps_both_attempts_in_one_trace(
    env, traced, producer, worker, fake_llm, fake_core
):
    from actors import followup

    env(LLM_RETRY_BACKOFF_SECONDS=0.05)
    fake_llm.push("I think it's a question.", {"question": "Which day?"})

    with producer.start_as_current_span("send the job"):
        followup.send(72, 42, {"text": "move it"})
    drain(worker, "llm.followup")
    spans = traced.wait_for(lambda spans: len(named(spans, "process followup")) == 2)

    [sent] = named(spans, "send the job")
    first, second = named(spans, "process followup")
    assert one_trace([sent, first, second]) == sent.trace_id
    assert first.parent_span_id == second.parent_span_id == sent.span_id
    assert first.attributes["llm_worker.job.attempt"] == 1
    assert first.attributes["llm_worker.job.outcome"] == "retrying"
    assert first.attributes["error.type"] == "llm_worker.errors.InvalidLLMResponse"
    assert first.status == "error"
    [(_, again)] = [e for e in first.events if e[0] == "job sent again"]
    assert again == {"llm_worker.reason": "invalid_answer", "llm_worker.delay_ms": 50}
    assert second.attributes["llm_worker.job.attempt"] == 2
    assert second.attributes["llm_worker.job.outcome"] == "completed"
    assert len(children(spans, first, "chat ")) == len(children(spans, second, "chat ")) == 1
    assert len(children(spans, second, "PATCH /jobs/{job_id}")) == 1
    assert fake_core.job_updates(72)[0]["status"] == "completed"


def test_a_job_sent_outside_a_span_starts_its_trace_at_its_first_attempt(
    env, traced, worker, fake_llm
):
    from actors import followup

    env(LLM_RETRY_BACKOFF_SECONDS=0.05)
    fake_llm.push("not JSON", {"question": "Which day?"})

    followup.send(75, 42, {"text": "move it"})
    drain(worker, "llm.followup")
    spans = traced.wait_for(lambda spans: len(named(spans, "process followup")) == 2)

    first, second = named(spans, "process followup")
    assert first.parent_span_id == ""
    assert (second.trace_id, second.parent_span_id) == (first.trace_id, first.span_id)


def test_a_job_held_by_the_breaker_keeps_both_attempts_in_one_trace(
    env, traced, producer, worker, fake_llm, fake_core
):
    from actors import intent_classify

    env(LLM_PROBE_INTERVAL_SECONDS=0.2)
    fake_llm.fallback = lambda request: Reply(status=503, body={"error": {"message": "loading"}})

    with producer.start_as_current_span("send the job"):
        intent_classify.send(73, 42, {"text": "x"})
    traced.wait_for(lambda spans: bool(named(spans, "process intent_classify")))
    fake_llm.fallback = None
    fake_llm.answers["IntentResult"] = GOOD_TASK
    wait_for(lambda: fake_core.job_updates(73))
    spans = traced.wait_for(
        lambda spans: any(
            s.attributes.get("llm_worker.job.outcome") == "completed"
            for s in named(spans, "process intent_classify")
        )
    )

    [sent] = named(spans, "send the job")
    attempts = named(spans, "process intent_classify")
    assert one_trace([sent, *attempts]) == sent.trace_id
    assert {s.parent_span_id for s in attempts} == {sent.span_id}
    held, *_, done = attempts
    assert held.attributes["llm_worker.job.outcome"] == "held"
    [chat] = children(spans, held, "chat ")
    assert chat.status == "error" and chat.attributes["error.type"] == (
        "llm_worker.errors.LLMUnavailable"
    )
    assert "job sent again" in held.event_names()
    assert dict(held.events)["job sent again"]["llm_worker.reason"] == "held"
    assert done.attributes["llm_worker.job.outcome"] == "completed"
    assert done.attributes["llm_worker.breaker_held_ms"] > 0
    assert done.attributes["llm_worker.job.attempt"] == 1  # a hold spends no attempt


def test_prompts_and_answers_go_on_the_llm_span_only_when_asked(
    monkeypatch, env, otel_env, receiver, worker, fake_llm
):
    from actors import followup

    for name, value in otel_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(tracing.CAPTURE_CONTENT_VARIABLE, "true")
    assert tracing.configure()
    fake_llm.push({"question": "Which day?"})

    try:
        followup.send(74, 42, {"text": "move the dentist"})
        drain(worker, "llm.followup")
        spans = receiver.wait_for(lambda spans: bool(named(spans, "chat ")))
    finally:
        tracing.shutdown()

    [chat] = named(spans, "chat ")
    assert "move the dentist" in chat.attributes["gen_ai.input.messages"]
    assert "Which day?" in chat.attributes["gen_ai.output.messages"]
    assert chat.attributes["gen_ai.system_instructions"]


def test_a_reviews_trace_crosses_the_git_worker_and_back(
    start_worker, env, traced, producer, git_repo, otel_env, fake_llm
):
    import actors
    from actors import review_chunk

    fake_llm.push(
        {
            "action": "tool_call",
            "tool": "read_file",
            "arguments": {"path": "app.py"},
            "reason": "see the whole file",
        },
        {"action": "comment", "comments": COMMENTS},
    )
    start_worker(
        "--processes",
        "1",
        "--threads",
        "1",
        module="gitworker.worker",
        GIT_REPO_PATH=str(git_repo),
        **otel_env,
    )
    payload = {
        "repo": "demo",
        "title": "Price with quantity",
        "chunk": {"path": "app.py", "diff": app_diff(git_repo), "language": "python"},
    }

    # The LLM worker's side only: the git worker's queue is the other process's, even where
    # an earlier test declared the git worker's actors on this broker.
    with running_worker(actors.broker, threads=2, timeout_ms=20, queues={"llm.review"}):
        with producer.start_as_current_span("send the review"):
            review_chunk.send("rr-9", "1", "REVIEW_REQUEST", payload)
        # Every span of the conversation: each process exports its own as it ends, so the
        # git worker's last can arrive before this process's answer turn.
        spans = traced.wait_for(
            lambda spans: (
                bool(named(spans, "process post_comment"))
                and len(named(spans, "process review_chunk")) >= 2
                and bool(named(spans, "process fetch_context"))
            ),
            60,
        )

    [sent] = named(spans, "send the review")
    [start] = children(spans, sent, "process review_chunk")
    [fetch] = children(spans, start, "process fetch_context")
    [answer] = children(spans, fetch, "process review_chunk")
    [post] = children(spans, answer, "process post_comment")
    assert one_trace([sent, start, fetch, answer, post]) == sent.trace_id
    assert (fetch.service, post.service) == ("llm-git-worker", "llm-git-worker")
    assert answer.service == "llm-worker"
    assert len(children(spans, start, "chat ")) == len(children(spans, answer, "chat ")) == 1
