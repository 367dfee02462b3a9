"""One LLM call as OpenTelemetry's GenAI conventions describe it: its span and metrics.

The span (``chat {model}``, kind client) carries the operation, the provider, the models
asked and answering, the answer's budget, its tokens and finish reason, or the error's
type.  Prompts and answers go on it only with
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``, as ``gen_ai.system_instructions``,
``gen_ai.input.messages`` and ``gen_ai.output.messages``.  Nothing is done while tracing
is off (:mod:`llm_worker.observability.tracing`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from llm_worker.llm.providers.base import LLMAnswer, Prompt
from llm_worker.observability import tracing


def input_messages(prompt: Prompt) -> str:
    """The conversation of ``prompt`` as ``gen_ai.input.messages`` (JSON, text parts only;
    an image is named, not sent)."""
    messages = []
    for turn in prompt.turns:
        parts: list[dict[str, Any]] = [{"type": "text", "content": turn.text}]
        if turn.image is not None:
            parts.append({"type": "image", "content": "(image)"})
        messages.append({"role": turn.role, "parts": parts})
    return json.dumps(messages, ensure_ascii=False)


def output_messages(answer: LLMAnswer) -> str:
    """``answer`` as ``gen_ai.output.messages`` (JSON)."""
    message = {
        "role": "assistant",
        "parts": [{"type": "text", "content": answer.text}],
        "finish_reason": answer.finish_reason or "stop",
    }
    return json.dumps([message], ensure_ascii=False)


@dataclass
class LLMCallTrace:
    """The span and metrics of one LLM call.

    Parameters:
      provider: the provider's name (``openai``, ``anthropic``, ``ollama``).
      model: the model asked.
      max_tokens: the answer's budget.
      fallback: whether the call goes to the fallback LLM.
      capacity_wait_seconds: how long the call waited for fleet capacity on its thread.
    """

    provider: str
    model: str
    max_tokens: int
    fallback: bool = False
    capacity_wait_seconds: float = 0.0
    _span: Any = field(default=tracing.NO_SPAN, init=False)
    _started: float = field(default=0.0, init=False)

    def metric_attributes(self) -> dict[str, tracing.AttributeValue]:
        """The attributes the GenAI metrics share with the span."""
        return {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self.provider,
            "gen_ai.request.model": self.model,
        }

    def span(self, prompt: Prompt) -> Any:
        """The call's span, for a ``with`` block around the call (a no-op while tracing
        is off); ``prompt`` goes on it only when content is captured."""
        self._started = time.monotonic()
        if not tracing.enabled():
            return tracing.NO_SPAN
        attributes: dict[str, tracing.AttributeValue] = {
            **self.metric_attributes(),
            "gen_ai.system": self.provider,
            "gen_ai.request.max_tokens": self.max_tokens,
            "gen_ai.output.type": "json",
            "llm_worker.served_by": "fallback" if self.fallback else "primary",
            "llm_worker.capacity_wait_ms": int(self.capacity_wait_seconds * 1000),
        }
        if tracing.captures_content():
            attributes["gen_ai.system_instructions"] = json.dumps(
                [{"type": "text", "content": prompt.system}], ensure_ascii=False
            )
            attributes["gen_ai.input.messages"] = input_messages(prompt)
        self._span = tracing.span(f"chat {self.model}", kind="client", attributes=attributes)
        return self._span

    def answered(self, answer: LLMAnswer) -> None:
        """Record the answer: its model, tokens and finish reason (and text, when content
        is captured)."""
        if not tracing.enabled():
            return
        span = self._span
        span.set_attribute("gen_ai.response.model", answer.model)
        span.set_attribute("gen_ai.usage.input_tokens", answer.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", answer.completion_tokens)
        if answer.finish_reason:
            span.set_attribute("gen_ai.response.finish_reasons", [answer.finish_reason])
        if tracing.captures_content():
            span.set_attribute("gen_ai.output.messages", output_messages(answer))
        tracing.record_llm_call(
            {**self.metric_attributes(), "gen_ai.response.model": answer.model},
            seconds=time.monotonic() - self._started,
            input_tokens=answer.prompt_tokens,
            output_tokens=answer.completion_tokens,
        )

    def failed(self, error: BaseException) -> None:
        """Record a call that raised ``error`` (its span is marked by the ``with`` block)."""
        if not tracing.enabled():
            return
        tracing.record_llm_call(
            {**self.metric_attributes(), "error.type": tracing.error_type(error)},
            seconds=time.monotonic() - self._started,
        )
