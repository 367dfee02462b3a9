"""Ollama's native ``/api/chat``, over an HTTP client with a whole-call deadline."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx

from llm_worker.errors import InvalidLLMResponse, LLMUnavailable
from llm_worker.llm.deadline_http import BodyTooLarge, deadline_client
from llm_worker.llm.providers.base import LLMAnswer, Prompt, Turn, error_message, status_error


def _message(turn: Turn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": turn.role, "content": turn.text}
    if turn.image is not None:
        message["images"] = [base64.b64encode(turn.image.data).decode()]
    return message


def ollama_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """The prompt as ``/api/chat`` messages, images as base64."""
    return [{"role": "system", "content": prompt.system}, *map(_message, prompt.turns)]


class OllamaProvider:
    """A local Ollama server; ``format`` carries the answer's JSON Schema.

    Parameters:
      host: ``OLLAMA_HOST``, e.g. ``http://localhost:11434``.
      timeout: seconds one call may take, from connecting to the answer's last byte.
      max_bytes: the largest answer read (larger: an invalid answer); ``None``: no bound.
    """

    name = "ollama"

    def __init__(self, *, host: str, timeout: float, max_bytes: int | None = None) -> None:
        self._url = host.rstrip("/") + "/api/chat"
        self._timeout = timeout
        self._http = deadline_client(timeout, host, max_body_bytes=max_bytes)

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.post(self._url, json=body)
        except BodyTooLarge as exc:
            raise InvalidLLMResponse(str(exc)) from None
        except httpx.TimeoutException:
            raise LLMUnavailable(f"LLM call timed out after {self._timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise LLMUnavailable(f"cannot reach the LLM: {exc}") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not response.is_success:
            message = error_message(data, response.text[:500])
            raise status_error(response.status_code, message, response.headers)
        if not isinstance(data, dict):
            raise InvalidLLMResponse("the server's answer was not a JSON object")
        return data

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
        data = self._chat(
            {
                "model": model,
                "messages": ollama_messages(prompt),
                "format": schema,
                "stream": False,
                "options": {"temperature": 0, "num_predict": max_tokens},
            }
        )
        text = (data.get("message") or {}).get("content") or ""
        if not text:
            raise InvalidLLMResponse("the answer was empty")
        return LLMAnswer(
            text=text,
            model=str(data.get("model") or model),
            prompt_tokens=int(data.get("prompt_eval_count") or 0),
            completion_tokens=int(data.get("eval_count") or 0),
            finish_reason=str(data["done_reason"]) if data.get("done_reason") else None,
            cached_tokens=0,  # Ollama does not say which prompt tokens it reused
        )

    def probe(self, model: str) -> float:
        """See :meth:`Provider.probe`."""
        started = time.monotonic()
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "ping"}],
            "stream": False,
            "options": {"num_predict": 1},
        }
        try:
            self._chat(body)
        except LLMUnavailable:
            raise
        except Exception:  # any answer at all means the server is up
            pass
        return time.monotonic() - started

    def count_tokens(self, model: str, prompt: Prompt) -> int | None:
        """Ollama has no tokenize endpoint: always ``None`` (estimate)."""
        return None
