"""The Anthropic provider against a real server of the Messages API: llama.cpp's own
``POST /v1/messages`` (the bundled xllamacpp) serving the bundled Qwen2.5-Coder-0.5B, behind
a recording HTTP proxy that shows what the provider sent and what the server answered.

llama.cpp's Messages endpoint enforces no schema: it drops ``output_config`` and refuses
``tools`` unless it renders Jinja templates (see the providers page). The answers here are
schema-valid because the ``small`` profile's examples lead the model (decoded greedily);
the proxy shows that the schema itself travelled natively.

Slow: the first intent prompt (about 2,200 tokens) takes 20 to 30 s on one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from actors import intent_classify
from actors.intent import IntentResult
from console.local_llm import local_llm_env, start_local_llm, stop_local_llm
from llm_worker.errors import LLMUnavailable
from llm_worker.jobs.schemas import response_schema
from llm_worker.llm.json_extract import extract_json_object
from llm_worker.llm.providers import Prompt, Turn
from llm_worker.llm.providers.anthropic_messages import strict_schema
from llm_worker.review.loop import ReviewTurn
from llm_worker.review.schemas import (
    CommentAnswer,
    NoIssuesAnswer,
    ReviewArguments,
    ReviewRequestPayload,
    parse_review_answer,
)
from llm_worker.services import Services
from llm_worker.testing.fakes import FakeHTTPServer, Reply
from tests.support import drain

# A busy machine's first prompt may take minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

#: The smallest bundled model that answers in the schemas without an enforcing engine
#: (SmolLM2-135M answers in prose).
MODEL = "qwen2.5-coder-0.5b"
CART_DIFF = (
    "--- a/cart.py\n+++ b/cart.py\n@@ -1,4 +1,5 @@\n def total(items):\n"
    "-    return sum(item.price for item in items)\n+    result = 0\n+    for item in items:\n"
    "+        result = item.price\n+    return result\n"
)


class RecordingProxy(FakeHTTPServer):
    """A real HTTP proxy in front of ``upstream``: each request is recorded, forwarded as
    it came, and answered with the upstream's answer (kept as ``request["answer"]``)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        super().__init__()

    def respond(self, request: dict[str, Any]) -> Reply:
        answer = httpx.request(
            request["method"], self.upstream + request["path"], json=request["json"], timeout=300
        )
        request["answer"] = answer.json()
        return Reply(status=answer.status_code, body=request["answer"])

    def messages(self) -> list[dict[str, Any]]:
        """The ``/v1/messages`` requests (not the token counts)."""
        with self.lock:
            return [r for r in self.requests if r["path"] == "/v1/messages"]


@pytest.fixture(scope="module")
def messages_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bundled model's server; its root URL, where the Messages API lives."""
    log = tmp_path_factory.mktemp("anthropic-real") / "server.log"
    process, base_url = start_local_llm(log, alias=MODEL)
    yield base_url.removesuffix("/v1")
    stop_local_llm(process)


@pytest.fixture
def proxy(messages_server: str) -> Iterator[RecordingProxy]:
    server = RecordingProxy(messages_server)
    yield server
    server.down()


@pytest.fixture
def anthropic_env(env: Callable[..., Services], proxy: RecordingProxy) -> Callable[..., Services]:
    """The bundled model's settings, spoken to as Anthropic through the proxy; one invalid
    answer fails the job (no retry hides it)."""
    settings = {
        **local_llm_env(f"{proxy.url}/v1", MODEL),
        "LLM_PROVIDER": "anthropic",
        "ANTHROPIC_BASE_URL": proxy.url,
        "ANTHROPIC_API_KEY": "not-needed",
        "LLM_RESPONSE_FORMAT": "json_schema",
        "LLM_MAX_RETRIES": "0",
    }
    return lambda **overrides: env(**{**settings, **overrides})


def test_an_intent_job_completes_with_structured_output(anthropic_env, worker, fake_core, proxy):
    anthropic_env()

    intent_classify.send(1, 42, {"text": "remind me to call mum at 6"})
    drain(worker, "llm.intent", timeout=180)

    [update] = fake_core.job_updates(1)
    assert update["status"] == "completed", update
    IntentResult.model_validate(update["result"])
    assert update["usage"]["attempts"] == 1
    [call] = proxy.messages()
    schema = strict_schema(response_schema(IntentResult))
    assert call["json"]["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "tools" not in call["json"]
    assert schema["additionalProperties"] is False
    assert "maximum" not in schema["properties"]["confidence"]  # Anthropic refuses it
    assert [block["type"] for block in call["answer"]["content"]] == ["text"]


def test_the_review_first_turn_answers_in_its_schema(anthropic_env, proxy):
    svc = anthropic_env()
    payload = ReviewRequestPayload.model_validate(
        {"repo": "demo", "chunk": {"path": "cart.py", "diff": CART_DIFF}}
    )
    args = ReviewArguments(
        review_request_id="r-1", chunk_id="1", event="REVIEW_REQUEST", payload=payload
    )
    turn = ReviewTurn(svc, args, send_git=lambda *a: None, send_review=lambda *a: None)
    request = turn.first_request(payload, tools_allowed=False)

    answer = request.call(svc)

    parsed = parse_review_answer(extract_json_object(answer.text), tools_allowed=False)
    assert isinstance(parsed, CommentAnswer | NoIssuesAnswer)
    [call] = proxy.messages()
    assert call["json"]["output_config"]["format"]["schema"] == strict_schema(request.schema)
    assert call["json"]["system"] == request.prompt.system


def test_tool_mode_sends_a_forced_strict_tool(anthropic_env, proxy):
    svc = anthropic_env(LLM_RESPONSE_FORMAT="tool")
    schema = response_schema(IntentResult)
    prompt = Prompt("Classify the message.", (Turn("user", "buy milk"),))

    # The bundled server renders its built-in chat template, not Jinja: it refuses tools.
    with pytest.raises(LLMUnavailable, match="--jinja"):
        svc.llm.complete(
            model=MODEL, prompt=prompt, schema_name="IntentResult", schema=schema, max_tokens=16
        )

    [call] = proxy.messages()
    assert call["json"]["tools"] == [
        {
            "name": "IntentResult",
            "description": "Give the answer.",
            "input_schema": strict_schema(schema),
            "strict": True,
        }
    ]
    assert call["json"]["tool_choice"] == {"type": "tool", "name": "IntentResult"}
    assert "output_config" not in call["json"]
