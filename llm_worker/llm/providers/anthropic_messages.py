"""Anthropic's Messages API, through the ``anthropic`` SDK."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import anthropic
import anthropic._base_client
import httpx

from llm_worker.errors import InvalidLLMResponse, LLMUnavailable
from llm_worker.llm.deadline_http import deadline_client
from llm_worker.llm.providers.base import LLMAnswer, Prompt, Turn, translate_sdk_error

#: The httpx the SDK is built on: its own fork ``httpx2`` in recent versions, else httpx.
SDK_HTTPX = getattr(anthropic._base_client, "httpx2", None) or httpx


def _content(turn: Turn) -> Any:
    if turn.image is None:
        return turn.text
    return [
        {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": turn.image.mime_type,
                "data": base64.b64encode(turn.image.data).decode(),
            },
        },
        {"type": "text", "text": turn.text},
    ]


def anthropic_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """The conversation as Messages API ``messages`` (the system prompt goes apart)."""
    return [{"role": turn.role, "content": _content(turn)} for turn in prompt.turns]


#: The property that carries an answer whose schema is no object, in a tool's input.
WRAPPED = "answer"


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as Anthropic's structured outputs accept it: the SDK's own
    ``transform_schema``, which sets ``additionalProperties: false`` on every object and
    moves what they refuse (``minimum``, ``maximum``, ``maxLength``, ``maxItems``, ...) into
    the ``description``; the worker still validates every answer against the full schema."""
    return anthropic.transform_schema(schema)


def answer_tool(name: str, schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The strict tool whose input is the answer, and whether the answer is wrapped.

    A tool's input must be an object: any other schema (the review's ``oneOf``) becomes
    the :data:`WRAPPED` property of one, its ``$defs`` kept at the root.
    """
    strict = strict_schema(schema)
    wrapped = strict.get("type") != "object"
    if wrapped:
        defs = strict.pop("$defs", None)
        strict = {
            "type": "object",
            "properties": {WRAPPED: strict},
            "required": [WRAPPED],
            "additionalProperties": False,
            **({"$defs": defs} if defs is not None else {}),
        }
    tool = {
        "name": re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "answer",
        "description": "Give the answer.",
        "input_schema": strict,
        "strict": True,
    }
    return tool, wrapped


def answer_text(message: Any, tool: dict[str, Any] | None, wrapped: bool) -> str:
    """The answer in ``message``: the input of its call of ``tool`` as JSON when it made
    one, else its text."""
    for block in message.content:
        if tool is not None and block.type == "tool_use" and block.name == tool["name"]:
            value = block.input.get(WRAPPED) if wrapped else block.input
            return json.dumps(value)
    return "".join(getattr(block, "text", "") for block in message.content)


class AnthropicProvider:
    """Claude models; the system prompt is its own field, token counts come
    from the count-tokens endpoint.

    Parameters:
      api_key: ``ANTHROPIC_API_KEY``.
      base_url: the API's URL (``ANTHROPIC_BASE_URL``).
      timeout: seconds one call may take, from connecting to the answer's last byte.
      response_format: ``json_schema`` (structured outputs: the schema as
        ``output_config.format``), ``tool`` (a strict tool whose input is the answer,
        forced by ``tool_choice``); any other value: the prompt alone.
      max_bytes: the largest answer read (larger: an invalid answer); ``None``: no bound.
    """

    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: float,
        response_format: str = "json_schema",
        max_bytes: int | None = None,
    ) -> None:
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=0,
            http_client=deadline_client(
                timeout, base_url, flavour=SDK_HTTPX, max_body_bytes=max_bytes
            ),
        )
        # The SDK imports its resources on first use; resolved here, when the worker boots,
        # because under gevent an import made from a greenlet can deadlock the process.
        self._messages = self._client.messages
        self._timeout = timeout
        self._response_format = response_format

    def complete(
        self,
        *,
        model: str,
        prompt: Prompt,
        schema_name: str,
        schema: dict[str, Any],
        max_tokens: int,
    ) -> LLMAnswer:
        """See :meth:`Provider.complete`; the schema travels as the provider's
        ``response_format`` says."""
        shape: dict[str, Any] = {}
        tool, wrapped = None, False
        if self._response_format == "json_schema":
            answer_format = {"type": "json_schema", "schema": strict_schema(schema)}
            shape = {"output_config": {"format": answer_format}}
        elif self._response_format == "tool":
            tool, wrapped = answer_tool(schema_name, schema)
            shape = {"tools": [tool], "tool_choice": {"type": "tool", "name": tool["name"]}}
        try:
            message = self._messages.create(
                model=model,
                system=prompt.system,
                messages=anthropic_messages(prompt),  # type: ignore[arg-type]
                max_tokens=max_tokens,
                **shape,
            )
        except anthropic.AnthropicError as exc:
            raise translate_sdk_error(exc, self._timeout, anthropic) from None
        text = answer_text(message, tool, wrapped)
        if not text:
            raise InvalidLLMResponse("the answer was empty")
        usage = message.usage
        cached = usage.cache_read_input_tokens or 0
        return LLMAnswer(
            text=text,
            model=message.model or model,
            # Anthropic's input_tokens leaves out the tokens read from or written to its cache
            prompt_tokens=usage.input_tokens + cached + (usage.cache_creation_input_tokens or 0),
            completion_tokens=usage.output_tokens,
            cached_tokens=cached,
            finish_reason=message.stop_reason,
        )

    def probe(self, model: str) -> float:
        """See :meth:`Provider.probe`."""
        started = time.monotonic()
        try:
            self._messages.create(
                model=model, max_tokens=1, messages=[{"role": "user", "content": "ping"}]
            )
        except anthropic.AnthropicError as exc:
            error = translate_sdk_error(exc, self._timeout, anthropic)
            if isinstance(error, LLMUnavailable):
                raise error from None
        return time.monotonic() - started

    def count_tokens(self, model: str, prompt: Prompt) -> int | None:
        """See :meth:`Provider.count_tokens`."""
        try:
            counted = self._messages.count_tokens(
                model=model,
                system=prompt.system,
                messages=anthropic_messages(prompt),  # type: ignore[arg-type]
            )
        except anthropic.AnthropicError:
            return None
        return int(counted.input_tokens)
