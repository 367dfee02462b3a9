"""The clients a worker process uses, built on first use and shared by threads."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

import redis

from .core_api import CoreClient
from .notify import Notifier
from .outbox import ReportOutbox, RetryPolicy
from .providers import Provider, ProviderChoice, choose_provider, make_provider
from .providers.base import Prompt
from .settings import Settings, settings
from .tokens import estimate_tokens


@dataclass
class Services:
    """Lazily built clients over one :class:`Settings`.

    Nothing connects until a client is first used, so building this is cheap.
    """

    settings: Settings

    @cached_property
    def redis(self) -> redis.Redis:
        """Redis at ``REDIS_URL``: notifications, breaker state, expiry claims."""
        return redis.Redis.from_url(self.settings.redis_url, health_check_interval=30)

    @cached_property
    def llm(self) -> Provider:
        """The LLM provider chosen by the settings."""
        return make_provider(self.settings)

    @property
    def provider_choice(self) -> ProviderChoice:
        """Which provider was chosen and why."""
        return choose_provider(self.settings)

    def count_tokens(self, model: str, prompt: Prompt) -> int:
        """The prompt's size: the provider's own count, else the conservative estimate."""
        counted = self.llm.count_tokens(model, prompt)
        return counted if counted is not None else estimate_tokens(prompt)

    @cached_property
    def core(self) -> CoreClient:
        """The Core API client."""
        return CoreClient(self.settings)

    @cached_property
    def notifier(self) -> Notifier:
        """Publisher of Telegram notifications."""
        config = self.settings
        return Notifier(
            self.redis,
            config.notify_stream,
            prefix=config.key_prefix,
            dedupe_seconds=config.notify_dedupe_seconds,
        )

    @cached_property
    def outbox(self) -> ReportOutbox:
        """Terminal job reports, delivered to Core until it accepts them."""
        config = self.settings
        return ReportOutbox(
            self.redis,
            config.key_prefix,
            core=self.core,
            notifier=self.notifier,
            policy=RetryPolicy(
                max_attempts=config.job_max_retries + 1,
                min_backoff_seconds=config.job_retry_min_backoff_seconds,
                max_backoff_seconds=config.job_retry_max_backoff_seconds,
            ),
            finished_ttl_seconds=config.notify_dedupe_seconds,
            lease_seconds=max(60.0, 3 * config.core_timeout_seconds),
            hold_seconds=config.core_unauthorized_hold_seconds,
        )


_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    """The process's shared :class:`Services`, built from the environment on first call."""
    global _services
    with _lock:
        if _services is None:
            _services = Services(settings())
        return _services


def reset_services() -> None:
    """Drop the shared clients and cached settings (the environment is read again)."""
    global _services
    from .settings import reload_settings

    with _lock:
        if _services is not None and "core" in _services.__dict__:
            _services.core.close()
        _services = None
        reload_settings()
