"""The three providers against protocol servers: answers, usage, vision, errors, choice."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from llm_worker.errors import (
    InvalidLLMResponse,
    LLMRateLimited,
    LLMRequestRejected,
    LLMUnavailable,
)
from llm_worker.llm.images import StoredImage
from llm_worker.llm.providers import (
    AnthropicProvider,
    OllamaProvider,
    OpenAICompatibleProvider,
    Prompt,
    Turn,
    choose_provider,
)
from llm_worker.settings import Settings
from llm_worker.testing.fakes import Reply
from tests.support import PNG_BYTES

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
IMAGE = StoredImage("image/png", PNG_BYTES)


def make(kind, fake_llm, timeout=2.0):
    if kind == "openai":
        return OpenAICompatibleProvider(base_url=fake_llm.base_url, api_key="k", timeout=timeout)
    if kind == "anthropic":
        return AnthropicProvider(api_key="k", base_url=fake_llm.url, timeout=timeout)
    return OllamaProvider(host=fake_llm.url, timeout=timeout)


def ask(provider, image=None):
    prompt = Prompt("system rules", (Turn("user", "describe", image=image),))
    return provider.complete(
        model="m", prompt=prompt, schema_name="Answer", schema=SCHEMA, max_tokens=64
    )


KINDS = ["openai", "anthropic", "ollama"]


@pytest.mark.parametrize(("kind", "cached"), [("openai", 800), ("anthropic", 800), ("ollama", 0)])
def test_cached_prompt_tokens_are_read_where_the_protocol_reports_them(env, fake_llm, kind, cached):
    usage = {"prompt_tokens": 1000, "completion_tokens": 5, "cached_tokens": 800}
    fake_llm.push(Reply(content={"ok": True}, usage=usage))

    answer = ask(make(kind, fake_llm))

    assert (answer.prompt_tokens, answer.completion_tokens) == (1000, 5)
    assert answer.cached_tokens == cached


@pytest.mark.parametrize("kind", KINDS)
def test_answer_usage_and_vision(env, fake_llm, kind):
    fake_llm.push({"ok": True})

    answer = ask(make(kind, fake_llm), image=IMAGE)

    assert answer.text == '{"ok": true}'
    assert (answer.prompt_tokens, answer.completion_tokens) == (11, 7)
    [request] = fake_llm.chat_requests()
    body = request["json"]
    encoded = IMAGE.data_url().split(",", 1)[1]
    if kind == "openai":
        assert body["messages"][0] == {"role": "system", "content": "system rules"}
        assert body["messages"][1]["content"][1]["image_url"]["url"] == IMAGE.data_url()
        assert body["response_format"]["json_schema"]["schema"] == SCHEMA
        assert body["max_tokens"] == 64
    elif kind == "anthropic":
        assert body["system"] == "system rules"
        image_block = body["messages"][0]["content"][0]
        assert image_block["source"] == {
            "type": "base64",
            "media_type": "image/png",
            "data": encoded,
        }
        assert body["max_tokens"] == 64
        assert body["output_config"]["format"]["type"] == "json_schema"
    else:
        assert body["messages"][0] == {"role": "system", "content": "system rules"}
        assert body["messages"][1]["images"] == [encoded]
        assert body["format"] == SCHEMA
        assert body["stream"] is False
        assert body["options"]["num_predict"] == 64


UNAVAILABLE = [
    Reply(status=500, body={"error": {"message": "boom"}}),
    Reply(status=503, body={"error": "loading"}),
    Reply(
        status=529, body={"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    ),
    Reply(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "42"}),
]
OPERATOR = [
    Reply(status=401, body={"error": {"message": "bad key"}}),
    Reply(status=403, body={"error": {"message": "forbidden"}}),
    Reply(status=404, body={"error": "model 'm' not found"}),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reply", UNAVAILABLE, ids=["500", "503", "529", "429"])
def test_unavailable_statuses(env, fake_llm, kind, reply):
    fake_llm.push(reply)
    with pytest.raises(LLMUnavailable) as raised:
        ask(make(kind, fake_llm))
    assert str(reply.status) in str(raised.value)
    assert raised.value.retry_after == (42 if reply.status == 429 else None)
    assert isinstance(raised.value, LLMRateLimited) == (reply.status == 429)
    assert not raised.value.needs_operator


@pytest.mark.parametrize("kind", KINDS)
def test_garbage_retry_after_is_still_a_429(env, fake_llm, kind):
    fake_llm.push(Reply(status=429, body={"error": "slow"}, headers={"Retry-After": "soon-ish"}))
    with pytest.raises(LLMRateLimited) as raised:
        ask(make(kind, fake_llm))
    assert raised.value.retry_after is None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reply", OPERATOR, ids=["401", "403", "404"])
def test_operator_statuses_are_unavailable_and_flagged(env, fake_llm, kind, reply):
    fake_llm.push(reply)
    with pytest.raises(LLMUnavailable) as raised:
        ask(make(kind, fake_llm))
    assert raised.value.needs_operator


@pytest.mark.parametrize("kind", KINDS)
def test_context_window_400_is_rejected(env, fake_llm, kind):
    fake_llm.push(Reply(status=400, body={"error": {"message": "prompt is too long: 9000 tokens"}}))
    with pytest.raises(LLMRequestRejected, match="prompt is too long"):
        ask(make(kind, fake_llm))


@pytest.mark.parametrize("kind", KINDS)
def test_timeout_and_refused_connection(env, fake_llm, kind):
    fake_llm.push(Reply(content={"ok": True}, delay=1.0))
    with pytest.raises(LLMUnavailable, match="timed out"):
        ask(make(kind, fake_llm, timeout=0.3))
    fake_llm.down()
    with pytest.raises(LLMUnavailable, match="cannot reach"):
        ask(make(kind, fake_llm))


@pytest.mark.parametrize("kind", KINDS)
def test_empty_answer_is_invalid(env, fake_llm, kind):
    fake_llm.push("")
    with pytest.raises(InvalidLLMResponse, match="empty"):
        ask(make(kind, fake_llm))


@pytest.mark.parametrize("kind", KINDS)
def test_probe(env, fake_llm, kind):
    provider = make(kind, fake_llm)
    assert provider.probe("m") >= 0
    fake_llm.push(Reply(status=503, body={"error": "down"}))
    with pytest.raises(LLMUnavailable):
        provider.probe("m")


def test_server_tokenizer_is_used_when_present(env, fake_llm):
    fake_llm.serves_tokenize = True
    provider = make("openai", fake_llm)
    prompt = Prompt("one two three", (Turn("user", "four five"),))
    assert provider.count_tokens("m", prompt) == 3 + 4 + 2 + 4
    fake_llm.serves_tokenize = False
    other = make("openai", fake_llm)
    assert other.count_tokens("m", prompt) is None  # falls back to the estimate


@pytest.mark.parametrize("serves", [False, True])
def test_tokenizer_is_decided_once_per_process(env, fake_llm, serves):
    fake_llm.serves_tokenize = serves
    fake_llm.tokenize_delay = 0.2  # the first decision is still going when the others ask
    provider = make("openai", fake_llm)
    prompt = Prompt("one two three", (Turn("user", "four five"),))
    start = threading.Barrier(16)

    def count() -> int | None:
        start.wait()
        return provider.count_tokens("m", prompt)

    with ThreadPoolExecutor(16) as pool:
        first_round = list(pool.map(lambda _: count(), range(16)))
    probes = [r for r in fake_llm.requests if "tokenize" in r["path"]]
    # One thread decided (llama.cpp's endpoint is the second style tried; with no
    # tokenizer all three are tried once); the others used the estimate meanwhile.
    assert len(probes) == (2 + 1 if serves else 3)
    assert first_round.count(None) >= 15
    fake_llm.clear()
    assert provider.count_tokens("m", prompt) == (3 + 4 + 2 + 4 if serves else None)
    assert len([r for r in fake_llm.requests if "tokenize" in r["path"]]) == (2 if serves else 0)


#: A schema with keywords Anthropic's structured outputs refuse.
BOUNDED = {
    "type": "object",
    "properties": {
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "note": {"type": "string", "maxLength": 20},
    },
    "required": ["score", "note"],
}
#: A schema whose root is no object (the review's answers).
EITHER = {
    "$defs": {"Yes": BOUNDED, "No": {"type": "object", "properties": {"why": {"type": "string"}}}},
    "oneOf": [{"$ref": "#/$defs/Yes"}, {"$ref": "#/$defs/No"}],
}


def tool_use(name, value):
    """A Messages API answer that calls the tool ``name`` with ``value``."""
    return Reply(
        body={
            "id": "msg_tool",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [
                {"type": "text", "text": "Calling it."},
                {"type": "tool_use", "id": "toolu_1", "name": name, "input": value},
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 11, "output_tokens": 7},
        }
    )


def ask_anthropic(fake_llm, response_format, schema, name="Answer"):
    provider = AnthropicProvider(
        api_key="k", base_url=fake_llm.url, timeout=2.0, response_format=response_format
    )
    prompt = Prompt("system rules", (Turn("user", "score it"),))
    answer = provider.complete(
        model="m", prompt=prompt, schema_name=name, schema=schema, max_tokens=64
    )
    [request] = fake_llm.chat_requests()
    return answer, request["json"]


def test_anthropic_structured_output_drops_what_it_refuses(env, fake_llm):
    fake_llm.push({"score": 0.5, "note": "fine"})

    answer, body = ask_anthropic(fake_llm, "json_schema", BOUNDED)

    assert answer.text == '{"score": 0.5, "note": "fine"}'
    sent = body["output_config"]["format"]
    assert sent["type"] == "json_schema"
    assert sent["schema"]["additionalProperties"] is False
    score, note = sent["schema"]["properties"]["score"], sent["schema"]["properties"]["note"]
    assert score["type"] == "number" and "minimum" not in score and "maximum" not in score
    assert "maxLength" not in note
    assert "minimum: 0" in score["description"]  # kept as words for the model
    assert "tools" not in body
    assert BOUNDED["properties"]["score"]["maximum"] == 1  # the caller's schema is untouched


def test_anthropic_forced_tool_answer_is_its_input(env, fake_llm):
    fake_llm.push(tool_use("Answer", {"score": 0.5, "note": "fine"}))

    answer, body = ask_anthropic(fake_llm, "tool", BOUNDED)

    assert answer.text == '{"score": 0.5, "note": "fine"}'
    [tool] = body["tools"]
    assert tool["name"] == "Answer" and tool["strict"] is True
    assert tool["input_schema"]["additionalProperties"] is False
    assert body["tool_choice"] == {"type": "tool", "name": "Answer"}
    assert "output_config" not in body


def test_anthropic_tool_wraps_a_schema_that_is_no_object(env, fake_llm):
    fake_llm.push(tool_use("Review_Answer", {"answer": {"why": "none"}}))

    answer, body = ask_anthropic(fake_llm, "tool", EITHER, name="Review Answer")

    assert answer.text == '{"why": "none"}'
    schema = body["tools"][0]["input_schema"]
    assert schema["type"] == "object" and schema["required"] == ["answer"]
    assert set(schema["$defs"]) == {"Yes", "No"}  # where the references point
    assert schema["properties"]["answer"]["anyOf"] == [
        {"$ref": "#/$defs/Yes"},
        {"$ref": "#/$defs/No"},
    ]


def test_anthropic_tool_not_called_gives_the_text(env, fake_llm):
    fake_llm.push({"score": 1, "note": "typed out"})

    answer, _ = ask_anthropic(fake_llm, "tool", BOUNDED)

    assert answer.text == '{"score": 1, "note": "typed out"}'


@pytest.mark.parametrize("response_format", ["none", "json_object", "llguidance"])
def test_anthropic_other_formats_leave_the_schema_to_the_prompt(env, fake_llm, response_format):
    fake_llm.push({"score": 1, "note": "ok"})

    _, body = ask_anthropic(fake_llm, response_format, BOUNDED)

    assert not {"output_config", "tools", "tool_choice"} & set(body)


def test_anthropic_response_format_comes_from_the_settings(env, fake_llm):
    svc = env(LLM_PROVIDER="anthropic", ANTHROPIC_BASE_URL=fake_llm.url, LLM_RESPONSE_FORMAT="tool")
    fake_llm.push(tool_use("Answer", {"ok": True}))

    answer = ask(svc.llm)

    assert answer.text == '{"ok": true}'
    assert fake_llm.chat_requests()[0]["json"]["tool_choice"]["name"] == "Answer"


def test_anthropic_counts_with_its_endpoint(env, fake_llm):
    prompt = Prompt("system", (Turn("user", "x" * 400),))
    assert make("anthropic", fake_llm).count_tokens("m", prompt) > 100


@pytest.mark.parametrize(
    ("env_vars", "expected"),
    [
        ({}, ("openai", "http://localhost:8080/v1")),
        ({"OLLAMA_HOST": "http://ollama:11434"}, ("ollama", "http://ollama:11434")),
        (
            {"ANTHROPIC_API_KEY": "sk-secret", "OLLAMA_HOST": "http://ollama:11434"},
            ("anthropic", "https://api.anthropic.com"),
        ),
        (
            {
                "OPENAI_API_KEY": "sk-secret",
                "ANTHROPIC_API_KEY": "sk-secret",
                "OLLAMA_HOST": "http://o:1",
            },
            ("openai", "https://api.openai.com/v1"),
        ),
        (
            {"OPENAI_API_KEY": "sk-secret", "LLM_BASE_URL": "http://vllm:8000/v1"},
            ("openai", "http://vllm:8000/v1"),
        ),
        (
            {"LLM_PROVIDER": "ollama", "OPENAI_API_KEY": "sk-secret"},
            ("ollama", "http://localhost:11434"),
        ),
    ],
)
def test_auto_detection_order(monkeypatch, env_vars, expected):
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in env_vars.items():
        monkeypatch.setenv(name, value)
    choice = choose_provider(Settings())
    assert (choice.name, choice.url) == expected
    assert choice.reason
    assert "sk-secret" not in f"{choice} {Settings()!r}"
