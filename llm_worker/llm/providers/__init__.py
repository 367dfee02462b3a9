"""LLM providers: OpenAI-compatible servers, Anthropic and Ollama.

Each maps its failures onto :class:`~llm_worker.errors.LLMUnavailable` and
:class:`~llm_worker.errors.InvalidLLMResponse` (plus
:class:`~llm_worker.errors.LLMRequestRejected`), reports token usage, and
has its SDK's own retries off: the middleware owns retrying.

The provider modules (and so the ``openai`` and ``anthropic`` SDKs, most of a
producer's import time) are imported only when a provider is built or one of
their classes is first named here: ``import actors`` loads no LLM SDK.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llm_worker.llm.providers.base import LLMAnswer, Prompt, Provider, Turn
from llm_worker.settings import Settings

if TYPE_CHECKING:
    from llm_worker.llm.providers.anthropic_messages import AnthropicProvider
    from llm_worker.llm.providers.ollama import OllamaProvider
    from llm_worker.llm.providers.openai_compat import OpenAICompatibleProvider

#: The provider classes, by name, and the module each lives in (imported on first use).
_LAZY_CLASSES = {
    "AnthropicProvider": "anthropic_messages",
    "OllamaProvider": "ollama",
    "OpenAICompatibleProvider": "openai_compat",
}

OPENAI_URL = "https://api.openai.com/v1"
OLLAMA_DEFAULT_HOST = "http://localhost:11434"


@dataclass(frozen=True)
class ProviderChoice:
    """Which provider runs the jobs, where, and why it was chosen."""

    name: str
    url: str
    reason: str


def choose_provider(settings: Settings) -> ProviderChoice:
    """Pick the provider: ``LLM_PROVIDER``, else the first of ``OPENAI_API_KEY``,
    ``ANTHROPIC_API_KEY``, ``OLLAMA_HOST`` present, else the OpenAI-compatible
    server at ``LLM_BASE_URL``."""
    explicit_base = "llm_base_url" in settings.model_fields_set
    name, reason = settings.llm_provider, "LLM_PROVIDER is set"
    if name is None:
        if settings.openai_api_key is not None:
            name, reason = "openai", "OPENAI_API_KEY is set"
        elif settings.anthropic_api_key is not None:
            name, reason = "anthropic", "ANTHROPIC_API_KEY is set"
        elif settings.ollama_host:
            name, reason = "ollama", "OLLAMA_HOST is set"
        else:
            name, reason = "openai", "no provider key set: OpenAI-compatible server"
    if name == "anthropic":
        return ProviderChoice(name, settings.anthropic_base_url, reason)
    if name == "ollama":
        return ProviderChoice(name, settings.ollama_host or OLLAMA_DEFAULT_HOST, reason)
    use_openai = settings.openai_api_key is not None and not explicit_base
    return ProviderChoice("openai", OPENAI_URL if use_openai else settings.llm_base_url, reason)


def __getattr__(name: str) -> Any:
    """The provider classes, each imported (with its SDK) when first named."""
    module = _LAZY_CLASSES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def make_fallback_provider(settings: Settings) -> Provider | None:
    """The fallback provider of ``LLM_FALLBACK_*``, or ``None`` when no URL is set."""
    url = settings.llm_fallback_base_url
    if not url:
        return None
    key = settings.llm_fallback_api_key.get_secret_value()
    timeout = settings.llm_timeout_seconds
    max_bytes = settings.llm_max_response_bytes
    if settings.llm_fallback_provider == "anthropic":
        from llm_worker.llm.providers.anthropic_messages import AnthropicProvider

        return AnthropicProvider(
            api_key=key,
            base_url=url,
            timeout=timeout,
            response_format=settings.llm_response_format,
            max_bytes=max_bytes,
        )
    if settings.llm_fallback_provider == "ollama":
        from llm_worker.llm.providers.ollama import OllamaProvider

        return OllamaProvider(host=url, timeout=timeout, max_bytes=max_bytes)
    from llm_worker.llm.providers.openai_compat import OpenAICompatibleProvider

    return OpenAICompatibleProvider(
        base_url=url,
        api_key=key,
        timeout=timeout,
        response_format=settings.llm_response_format,
        tokenizer=settings.llm_tokenizer,
        max_bytes=max_bytes,
    )


def make_provider(settings: Settings) -> Provider:
    """Build the chosen provider from the settings (importing only its own SDK)."""
    choice = choose_provider(settings)
    timeout = settings.llm_timeout_seconds
    max_bytes = settings.llm_max_response_bytes
    if choice.name == "anthropic":
        from llm_worker.llm.providers.anthropic_messages import AnthropicProvider

        key = settings.anthropic_api_key or settings.llm_api_key
        return AnthropicProvider(
            api_key=key.get_secret_value(),
            base_url=choice.url,
            timeout=timeout,
            response_format=settings.llm_response_format,
            max_bytes=max_bytes,
        )
    if choice.name == "ollama":
        from llm_worker.llm.providers.ollama import OllamaProvider

        return OllamaProvider(host=choice.url, timeout=timeout, max_bytes=max_bytes)
    from llm_worker.llm.providers.openai_compat import OpenAICompatibleProvider

    key = settings.openai_api_key or settings.llm_api_key
    return OpenAICompatibleProvider(
        base_url=choice.url,
        api_key=key.get_secret_value(),
        timeout=timeout,
        response_format=settings.llm_response_format,
        tokenizer=settings.llm_tokenizer,
        max_bytes=max_bytes,
    )


__all__ = [
    "AnthropicProvider",
    "LLMAnswer",
    "OllamaProvider",
    "OpenAICompatibleProvider",
    "Prompt",
    "Provider",
    "ProviderChoice",
    "Turn",
    "choose_provider",
    "make_fallback_provider",
    "make_provider",
]
