"""Client of an OpenAI-compatible chat-completions server.

Maps every failure onto the two classes the middleware knows:
:class:`~llm_worker.errors.LLMUnavailable` (the breaker holds jobs back) and
:class:`~llm_worker.errors.InvalidLLMResponse` (retried with feedback), plus
:class:`~llm_worker.errors.LLMRequestRejected` for requests the server will
never accept.  The SDK's own retries are off: the middleware owns retrying.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Any

import httpx
import openai

from .errors import InvalidLLMResponse, LLMRequestRejected, LLMUnavailable
from .settings import Settings

#: Statuses that mean "the service cannot be used now", beyond 5xx.
UNAVAILABLE_STATUSES = {408, 429, 529}
#: Statuses only an operator can fix: bad key, forbidden, unknown model.
OPERATOR_STATUSES = {401, 403, 404}


@dataclass(frozen=True)
class LLMAnswer:
    """The text of one completion and its token usage."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Read ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _error_text(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or body.get("error")
        if isinstance(message, dict):
            message = message.get("message")
        if message:
            return str(message)[:500]
    return str(exc.message)[:500]


def classify_status_error(exc: openai.APIStatusError) -> Exception:
    """Turn an HTTP error answer into the error class the middleware acts on."""
    status = exc.status_code
    text = f"LLM answered HTTP {status}: {_error_text(exc)}"
    if status >= 500 or status in UNAVAILABLE_STATUSES:
        return LLMUnavailable(text, retry_after=retry_after_seconds(exc.response.headers))
    if status in OPERATOR_STATUSES:
        return LLMUnavailable(text, needs_operator=True)
    return LLMRequestRejected(text)


class LLMClient:
    """Calls the chat-completions endpoint at ``LLM_BASE_URL``.

    Parameters:
      settings: the worker settings (base URL, key, timeout, response format).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client = openai.OpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value(),
            timeout=settings.llm_timeout_seconds,
            max_retries=0,
        )

    def _response_format(self, name: str, schema: dict[str, Any]) -> Any:
        mode = self._settings.llm_response_format
        if mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
        if mode == "json_object":
            return {"type": "json_object"}
        return openai.NOT_GIVEN

    def complete(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        schema_name: str,
        schema: dict[str, Any],
    ) -> LLMAnswer:
        """Ask for one completion whose text should be a JSON object.

        Raises:
          LLMUnavailable: connection failure, timeout, 5xx, 429, 529, 401/403/404.
          LLMRequestRejected: any other 4xx, e.g. a prompt over the context window.
          InvalidLLMResponse: an answer without text.
        """
        try:
            completion = self._client.chat.completions.create(
                model=model,
                messages=messages,  # type: ignore[arg-type]
                response_format=self._response_format(schema_name, schema),
                temperature=0,
            )
        except openai.APITimeoutError:
            raise LLMUnavailable(
                f"LLM call timed out after {self._settings.llm_timeout_seconds:g}s"
            ) from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise LLMUnavailable(f"cannot reach the LLM: {cause}") from None
        except openai.APIStatusError as exc:
            raise classify_status_error(exc) from None
        if not completion.choices or not completion.choices[0].message.content:
            raise InvalidLLMResponse("the answer was empty")
        usage = completion.usage
        return LLMAnswer(
            text=completion.choices[0].message.content,
            model=completion.model or model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    def probe(self) -> float:
        """Make the smallest possible call to the text model; return its latency in seconds.

        Raises:
          LLMUnavailable: when the LLM still cannot be used.
        """
        started = time.monotonic()
        try:
            self._client.chat.completions.create(
                model=self._settings.llm_text_model,
                messages=[{"role": "user", "content": "ping"}],
                max_tokens=1,
            )
        except openai.APITimeoutError:
            raise LLMUnavailable("probe timed out") from None
        except openai.APIConnectionError as exc:
            raise LLMUnavailable(f"cannot reach the LLM: {exc.__cause__ or exc}") from None
        except openai.APIStatusError as exc:
            error = classify_status_error(exc)
            if isinstance(error, LLMUnavailable):
                raise error from None
        return time.monotonic() - started
