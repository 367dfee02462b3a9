"""Any OpenAI-compatible chat-completions server, through the ``openai`` SDK."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai

from llm_worker.errors import InvalidLLMResponse, LLMUnavailable
from llm_worker.llm.constrained import guidance_grammar
from llm_worker.llm.deadline_http import BodyTooLarge, deadline_client
from llm_worker.llm.providers.base import LLMAnswer, Prompt, Turn, translate_sdk_error

#: Tokenize endpoints by server: path under the server root and request body.
TOKENIZE_STYLES: dict[str, tuple[str, Callable[[str, str], dict[str, Any]]]] = {
    "vllm": ("/tokenize", lambda model, text: {"model": model, "prompt": text}),
    "llama.cpp": ("/tokenize", lambda model, text: {"content": text}),
    "llama-cpp-python": ("/extras/tokenize", lambda model, text: {"input": text}),
}


def _content(turn: Turn) -> Any:
    if turn.image is None:
        return turn.text
    return [
        {"type": "text", "text": turn.text},
        {"type": "image_url", "image_url": {"url": turn.image.data_url()}},
    ]


def chat_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """The prompt as chat-completions ``messages``."""
    return [
        {"role": "system", "content": prompt.system},
        *({"role": turn.role, "content": _content(turn)} for turn in prompt.turns),
    ]


def parse_completion(response: httpx.Response, model: str) -> LLMAnswer:
    """The text and usage of a chat-completions answer.

    Raises:
      InvalidLLMResponse: when the body is not a completion with text.
    """
    try:
        data = response.json()
        text = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise InvalidLLMResponse("the server's answer was not a chat completion") from None
    if not text:
        raise InvalidLLMResponse("the answer was empty")
    usage = data.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    return LLMAnswer(
        text=str(text),
        model=str(data.get("model") or model),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=_text_or_none(data["choices"][0].get("finish_reason")),
        cached_tokens=int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0,
    )


def _text_or_none(value: Any) -> str | None:
    """``value`` as text, ``None`` when it is empty or absent."""
    return str(value) if value else None


class OpenAICompatibleProvider:
    """Chat completions at ``base_url``, JSON Schema as ``response_format``.

    Parameters:
      base_url: the server's ``/v1`` URL.
      api_key: the key (``not-needed`` for local servers).
      timeout: seconds one call may take, from connecting to the answer's last byte.
      response_format: ``json_schema`` (OpenAI, vLLM, llama.cpp), ``json_object_schema``
        (llama-cpp-python's server), ``llguidance`` (llama.cpp's ``grammar`` field, see
        :mod:`llm_worker.llm.constrained`), ``json_object`` or ``none``; ``tool`` (Anthropic's)
        is the prompt alone here.
      tokenizer: ``auto`` (the server's ``/tokenize`` when it has one),
        ``server`` (the same, required) or ``estimate``.
      max_bytes: the largest answer read (larger: an invalid answer); ``None``: no bound.
    """

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float,
        response_format: str = "json_schema",
        tokenizer: str = "auto",
        max_bytes: int | None = None,
    ) -> None:
        self._http = deadline_client(timeout, base_url, max_body_bytes=max_bytes)
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=0,
            http_client=self._http,
        )
        self._timeout = timeout
        self._response_format = response_format
        self._server_root = base_url.removesuffix("/v1")
        self._tokenizer = tokenizer
        self._tokenize_style: str | None = None if tokenizer != "estimate" else "none"
        # One thread at a time decides the tokenizer; the others estimate meanwhile.
        self._tokenizer_decision = threading.Lock()

    def _format(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        """The request's ``response_format`` field, if any."""
        if self._response_format == "json_schema":
            format_: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema},
            }
        elif self._response_format == "json_object_schema":  # llama-cpp-python's server
            format_ = {"type": "json_object", "schema": schema}
        elif self._response_format == "json_object":
            format_ = {"type": "json_object"}
        elif self._response_format == "llguidance":  # llama.cpp's server: enforced grammar
            return {"grammar": guidance_grammar(schema)}
        else:
            return {}
        return {"response_format": format_}

    def complete(
        self,
        *,
        model: str,
        prompt: Prompt,
        schema_name: str,
        schema: dict[str, Any],
        max_tokens: int,
    ) -> LLMAnswer:
        """See :meth:`Provider.complete`."""
        body: dict[str, Any] = {
            "model": model,
            "messages": chat_messages(prompt),
            "max_tokens": max_tokens,
            "temperature": 0,
            **self._format(schema_name, schema),
        }
        try:
            # The SDK's untyped call: its connection pool, auth and error classes,
            # without the typed request transform and response models, which cost
            # a worker more CPU than the rest of a job.
            response = self._client.post("/chat/completions", cast_to=httpx.Response, body=body)
        except openai.OpenAIError as exc:
            raise translate_sdk_error(exc, self._timeout, openai) from None
        return parse_completion(response, model)

    def probe(self, model: str) -> float:
        """See :meth:`Provider.probe`."""
        started = time.monotonic()
        body = {"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
        try:
            # The untyped call, as for jobs: the SDK's typed resources are imported on first
            # use, and under gevent an import made from a greenlet can deadlock the process.
            self._client.post("/chat/completions", cast_to=httpx.Response, body=body)
        except openai.OpenAIError as exc:
            error = translate_sdk_error(exc, self._timeout, openai)
            if isinstance(error, LLMUnavailable):
                raise error from None
        return time.monotonic() - started

    def _tokenize(self, model: str, text: str) -> int | None:
        """Count ``text`` with the server's tokenizer (vLLM, llama.cpp or llama-cpp-python)."""
        styles = [self._tokenize_style] if self._tokenize_style else list(TOKENIZE_STYLES)
        for style in styles:
            path, make_body = TOKENIZE_STYLES[style]
            try:
                response = self._http.post(self._server_root + path, json=make_body(model, text))
                data = response.json() if response.is_success else None
            except (httpx.HTTPError, ValueError, BodyTooLarge):
                data = None
            if isinstance(data, dict) and ("count" in data or "tokens" in data):
                self._tokenize_style = style
                return int(data.get("count", len(data.get("tokens", []))))
        if self._tokenize_style is None and self._tokenizer == "auto":
            self._tokenize_style = "none"  # no tokenizer: estimate from now on
        return None

    def count_tokens(self, model: str, prompt: Prompt) -> int | None:
        """See :meth:`Provider.count_tokens`; per-message overhead of 4 tokens.

        Which tokenizer the server has is decided by one thread of the process
        at a time: calls made meanwhile by other threads use the conservative
        estimate (``None``) instead of probing the tokenize endpoints too.
        """
        texts = [prompt.system, *(turn.text for turn in prompt.turns)]
        total = 0
        if self._tokenize_style is None:
            if not self._tokenizer_decision.acquire(blocking=False):
                return None
            try:
                if self._tokenize_style is None:
                    first = self._tokenize(model, texts[0])
                    if first is None:
                        return None
                    total += first + 4
                    texts = texts[1:]
            finally:
                self._tokenizer_decision.release()
        if self._tokenize_style == "none":
            return None
        for text in texts:
            count = self._tokenize(model, text)
            if count is None:
                return None
            total += count + 4
        return total
