"""The clients a worker process uses, built on first use and shared by threads."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

import redis

from llm_worker import keys
from llm_worker.core.client import CoreClient
from llm_worker.core.notify import Notifier
from llm_worker.core.outbox import ReportOutbox, RetryPolicy
from llm_worker.fleet.breaker import BreakerStore
from llm_worker.fleet.capacity import CapacityGate, CapacityLimits, CapacityStore
from llm_worker.fleet.usage_counters import UsageCounters
from llm_worker.jobs.lease import JobLeases
from llm_worker.jobs.registry import declared_prompts
from llm_worker.llm.prices import PriceTable, load_prices
from llm_worker.llm.providers import (
    Provider,
    ProviderChoice,
    choose_provider,
    make_fallback_provider,
    make_provider,
)
from llm_worker.llm.providers.base import Prompt
from llm_worker.llm.tokens import estimate_tokens
from llm_worker.prompts.profiles import PromptProfile, load_profile
from llm_worker.redis_pools import connection_pool
from llm_worker.settings import Settings, settings

#: Most connections a worker process's Redis pool opens for its worker threads (or
#: greenlets), however many it runs: a job holds one only for a command or two, so
#: more threads than this share them, waiting at most :data:`POOL_WAIT_SECONDS`.
MAX_THREAD_CONNECTIONS = 64
#: Connections kept on top for the process's background threads (breaker watcher,
#: report outbox, dead worker recovery).
BACKGROUND_CONNECTIONS = 4
#: Seconds a command waits for a free pooled connection before it fails (as a Redis error).
POOL_WAIT_SECONDS = 20.0


def pool_size_for(threads: int) -> int:
    """The bound of a Redis connection pool used by ``threads`` worker threads."""
    return min(max(1, threads), MAX_THREAD_CONNECTIONS) + BACKGROUND_CONNECTIONS


@dataclass
class Services:
    """Lazily built clients over one :class:`Settings`.

    Nothing connects until a client is first used, so building this is cheap.

    Parameters:
      settings: the settings the clients are built from.
      redis_max_connections: bound of the Redis connection pool (see :meth:`size_for`).
    """

    settings: Settings
    redis_max_connections: int = pool_size_for(8)

    def size_for(self, threads: int) -> None:
        """Bound the Redis pool for a process of ``threads`` worker threads (or greenlets);
        has no effect once the Redis client was built."""
        self.redis_max_connections = pool_size_for(threads)

    @cached_property
    def redis(self) -> redis.Redis:
        """Redis at ``REDIS_URL``: notifications, breaker state, expiry claims.

        Its pool is bounded (``redis_max_connections``): a command waits for a free
        connection instead of opening one per thread or greenlet.
        """
        pool = connection_pool(
            self.settings.redis_url,
            max_connections=self.redis_max_connections,
            wait_seconds=POOL_WAIT_SECONDS,
            health_check_interval=30,
            socket_options=self.settings.redis_socket_options,
        )
        return redis.Redis(connection_pool=pool)

    @cached_property
    def job_leases(self) -> JobLeases:
        """The job leases this process holds, renewed together; each lasts
        ``BROKER_HEARTBEAT_TIMEOUT_SECONDS`` unrenewed, as a worker's heartbeat does."""
        return JobLeases(self.redis, ttl_seconds=self.settings.broker_heartbeat_timeout_seconds)

    @cached_property
    def llm(self) -> Provider:
        """The LLM provider chosen by the settings."""
        return make_provider(self.settings)

    @property
    def provider_choice(self) -> ProviderChoice:
        """Which provider was chosen and why."""
        return choose_provider(self.settings)

    @cached_property
    def fallback_llm(self) -> Provider | None:
        """The fallback provider (``LLM_FALLBACK_BASE_URL``), or ``None`` when unset."""
        return make_fallback_provider(self.settings)

    def fallback_active(self) -> bool:
        """Whether calls go to the fallback now: the primary's breaker is open and the
        fallback's is not (one Redis round trip; none without a fallback)."""
        if not self.settings.llm_fallback_base_url:
            return False
        prefix = self.settings.key_prefix
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(keys.breaker(prefix))
        pipe.exists(keys.breaker_fallback(prefix))
        primary_open, fallback_open = pipe.execute()
        return bool(primary_open) and not fallback_open

    def fallback_model(self, model: str) -> str:
        """The fallback's name for the primary's ``model`` (text or vision)."""
        config = self.settings
        if model == config.llm_text_model:
            return config.llm_fallback_text_model or model
        return config.llm_fallback_vision_model or model

    @cached_property
    def breaker(self) -> BreakerStore:
        """The primary LLM's circuit breaker state; past outages are kept twice
        ``LLM_UNAVAILABLE_EXPIRY_SECONDS``."""
        return self._breaker_store(fallback=False)

    @cached_property
    def fallback_breaker(self) -> BreakerStore:
        """The fallback LLM's circuit breaker state."""
        return self._breaker_store(fallback=True)

    def _breaker_store(self, *, fallback: bool) -> BreakerStore:
        config = self.settings
        return BreakerStore(
            self.redis,
            config.key_prefix,
            outage_retention=config.llm_unavailable_expiry_seconds * 2,
            fallback=fallback,
        )

    @cached_property
    def capacity(self) -> CapacityGate:
        """The fleet-wide capacity gate every LLM call goes through."""
        config = self.settings
        limits = CapacityLimits(
            max_concurrent=config.llm_max_concurrent_requests,
            requests_per_minute=config.llm_requests_per_minute,
            tokens_per_minute=config.llm_tokens_per_minute,
            lease_seconds=config.llm_slot_lease_seconds,
            per_share=config.llm_max_concurrent_requests_per_user,
            daily_tokens=config.llm_user_daily_tokens,
        )
        store = CapacityStore(
            self.redis,
            config.key_prefix,
            limits,
            history_seconds=config.llm_unavailable_expiry_seconds * 2,
        )
        return CapacityGate(store, wait_seconds=config.llm_capacity_wait_seconds)

    def count_tokens(self, model: str, prompt: Prompt, provider: Provider | None = None) -> int:
        """The prompt's size: the provider's own count (``provider``, default the
        primary), else the conservative estimate."""
        counted = (provider or self.llm).count_tokens(model, prompt)
        return counted if counted is not None else estimate_tokens(prompt)

    @cached_property
    def prompt_profile(self) -> PromptProfile:
        """The prompts in force (``LLM_PROMPT_PROFILE``, ``LLM_PROMPTS_FILE``)."""
        config = self.settings
        return load_profile(config.llm_prompt_profile, config.llm_prompts_file, declared_prompts())

    @cached_property
    def prices(self) -> PriceTable | None:
        """The models' prices (``LLM_PRICES_FILE``), ``None`` when unset.

        Raises:
          SettingsError: on a file that cannot be read or is badly shaped.
        """
        return load_prices(self.settings.llm_prices_file)

    @cached_property
    def usage_counters(self) -> UsageCounters:
        """The hourly usage counters, each hour kept ``USAGE_RETENTION_DAYS``."""
        days = self.settings.usage_retention_days
        return UsageCounters(self.redis, self.settings.key_prefix, retention_seconds=days * 86_400)

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
            max_entries=config.notify_stream_max_entries,
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
            dead_ttl_seconds=config.outbox_dead_ttl_seconds,
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
    from llm_worker.settings import reload_settings

    with _lock:
        if _services is not None and "core" in _services.__dict__:
            _services.core.close()
        _services = None
        reload_settings()
