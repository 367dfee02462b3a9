"""What every LLM provider offers, in provider-neutral types."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from llm_worker.errors import (
    InvalidLLMResponse,
    LLMRateLimited,
    LLMRequestRejected,
    LLMUnavailable,
)
from llm_worker.llm.deadline_http import BodyTooLarge
from llm_worker.llm.images import StoredImage

#: Statuses that mean "the service cannot be used now", beyond 5xx.
UNAVAILABLE_STATUSES = {408, 429, 529}
#: Statuses only an operator can fix: bad key, forbidden, unknown model.
OPERATOR_STATUSES = {401, 403, 404}
#: Conservative token cost of one image in a prompt.
IMAGE_TOKENS = 1600

TurnKind = Literal["data", "example", "answer", "tool_call", "tool_result", "feedback"]


@dataclass(frozen=True)
class Turn:
    """One message of a conversation.

    ``kind`` tells the token budget what may be shortened: only
    ``tool_result`` turns are, oldest first.
    """

    role: Literal["user", "assistant"]
    text: str
    kind: TurnKind = "data"
    image: StoredImage | None = None

    def with_text(self, text: str) -> Turn:
        """A copy with other text."""
        return replace(self, text=text)


@dataclass(frozen=True)
class Prompt:
    """A system prompt and the conversation after it."""

    system: str
    turns: tuple[Turn, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class LLMAnswer:
    """The text of one completion, its token usage and why it ended (the provider's
    word: ``stop``, ``length``, ``end_turn``...; ``None`` when not said): ``prompt_tokens``
    counts every prompt token, ``cached_tokens`` those of them the provider read from its
    prompt cache (0 where it does not say)."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    cached_tokens: int = 0


class Provider(Protocol):
    """An LLM service: one completion, a probe, and (where it can) a token count."""

    name: str

    def complete(
        self,
        *,
        model: str,
        prompt: Prompt,
        schema_name: str,
        schema: dict[str, Any],
        max_tokens: int,
    ) -> LLMAnswer:
        """One completion whose text should be a JSON object matching ``schema``.

        Raises:
          LLMUnavailable: the service cannot be used now (breaker).
          LLMRequestRejected: the service will never accept this request.
          InvalidLLMResponse: an answer without text.
        """
        ...

    def probe(self, model: str) -> float:
        """The smallest call that proves ``model`` answers; its latency in seconds.

        Raises:
          LLMUnavailable: when it does not.
        """
        ...

    def count_tokens(self, model: str, prompt: Prompt) -> int | None:
        """The prompt's size in the model's own tokens, or ``None`` when unknown offline."""
        ...


def _seconds(value: str, scale: float = 1.0) -> float | None:
    """A finite, non-negative number of seconds, or ``None`` for anything else."""
    try:
        seconds = float(value.strip()) * scale
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative: not a delay
        return None
    return seconds


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Read ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date).

    Returns the delay in seconds (``inf`` for an absurdly large number), ``0``
    for a date already past, and ``None`` when the header is absent or not a
    valid value (negative, NaN, garbage): the caller then uses its own default.
    Callers cap the result with ``LLM_RETRY_AFTER_MAX_SECONDS``.
    """
    millis = headers.get("retry-after-ms")
    if millis:
        parsed_ms = _seconds(millis, 0.001)
        if parsed_ms is not None:
            return parsed_ms
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        date = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    now = time.time() if now is None else now
    return max(0.0, date.timestamp() - now)


def status_error(status: int, message: str, headers: Mapping[str, str]) -> Exception:
    """The error class for an HTTP error answer from any provider.

    429 is :class:`LLMRateLimited` (a cooldown, honouring ``Retry-After``);
    5xx, 408 and 529 are :class:`LLMUnavailable` (honouring ``Retry-After``);
    401, 403 and 404 are too, flagged as needing an operator; any other status
    is :class:`LLMRequestRejected`.
    """
    text = f"LLM answered HTTP {status}: {message[:500]}"
    if status == 429:
        return LLMRateLimited(text, retry_after=retry_after_seconds(headers))
    if status >= 500 or status in UNAVAILABLE_STATUSES:
        return LLMUnavailable(text, retry_after=retry_after_seconds(headers), status=status)
    if status in OPERATOR_STATUSES:
        return LLMUnavailable(text, needs_operator=True, status=status)
    return LLMRequestRejected(text)


def translate_sdk_error(exc: Exception, timeout: float, sdk: Any) -> Exception:
    """Map an error of the ``openai`` or ``anthropic`` SDK (the module ``sdk``) onto ours.

    Both SDKs share the shape: ``APITimeoutError`` is an ``APIConnectionError``,
    and ``APIStatusError`` carries the status, body and headers.  Statuses are
    mapped by number (Anthropic's 529 ``OverloadedError`` is not an
    ``InternalServerError``).
    """
    if isinstance(exc.__cause__, BodyTooLarge):  # the server is up: its answer is refused
        return InvalidLLMResponse(str(exc.__cause__))
    if isinstance(exc, sdk.APITimeoutError):
        return LLMUnavailable(f"LLM call timed out after {timeout:g}s")
    if isinstance(exc, sdk.APIConnectionError):
        return LLMUnavailable(f"cannot reach the LLM: {exc.__cause__ or exc}")
    if isinstance(exc, sdk.APIStatusError):
        message = error_message(exc.body, str(exc.message))
        return status_error(exc.status_code, message, exc.response.headers)
    return exc


def error_message(body: Any, default: str) -> str:
    """The human message inside an error body of any of the providers."""
    if isinstance(body, dict):
        message = body.get("message") or body.get("error")
        if isinstance(message, dict):
            message = message.get("message")
        if message:
            return str(message)
    return default
