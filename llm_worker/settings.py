"""Settings read from the environment with pydantic-settings.

:class:`BrokerSettings` is the small part a producer needs to enqueue jobs and
:class:`SendCheckSettings` what its send-time check reads; :class:`Settings` adds
everything a worker needs.  Each is read on first use, never at import, and a bad
value raises :class:`~llm_worker.errors.SettingsError` with one line naming the
variable; the line never shows a secret, nor the values of other variables.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from llm_worker.errors import SettingsError
from llm_worker.text import safe_url

_SECRETS = {
    "llm_api_key",
    "core_api_token",
    "openai_api_key",
    "anthropic_api_key",
    "dashboard_password",
    "llm_fallback_api_key",
}


#: The variables that set an actor's LLM priority: ``LLM_PRIORITY_<ACTOR>``.
PRIORITY_PREFIX = "llm_priority_"
#: Highest value of ``LLM_PRIORITY_<ACTOR>``.
MAX_PRIORITY = 1000


def _priority_value(variable: str, value: Any) -> int:
    """``value`` of ``variable`` (``LLM_PRIORITY_<ACTOR>``) as a priority.

    Raises:
      ValueError: naming the variable, when it is not a whole number from 0 to
        :data:`MAX_PRIORITY`.
    """
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else -1
    except ValueError:
        number = -1
    if not 0 <= number <= MAX_PRIORITY:
        raise ValueError(
            f"{variable}: must be a whole number from 0 to {MAX_PRIORITY}"
            f"{shown_value(variable.lower(), value)}"
        )
    return number


def _require_scheme(value: str, schemes: tuple[str, ...]) -> str:
    if not value.startswith(tuple(f"{scheme}://" for scheme in schemes)):
        raise ValueError(f"must start with one of {', '.join(s + '://' for s in schemes)}")
    return value


#: The schemes of a Redis URL: redis-py's, and a primary found through Sentinel
#: (:mod:`llm_worker.redis_pools`).
REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel")


class BrokerSettings(BaseSettings):
    """What importing :mod:`actors` needs: where jobs are queued, and the sweeper's schedule."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=False)

    #: Redis for notifications and shared state; also the broker unless BROKER_URL is set.
    #: ``redis+sentinel://host:port,host:port/service_name/db`` finds the primary through
    #: Redis Sentinel (see Operations).
    redis_url: str = "redis://localhost:6379/0"
    #: Broker URL; unset means REDIS_URL, an ``amqp://`` URL selects RabbitMQ.
    broker_url: str | None = None
    #: Cron expression of the expiry sweeper (read by the scheduler at import).
    sweep_cron: str = "*/10 * * * *"
    #: A Redis broker counts a worker process dead after this long without a heartbeat.
    broker_heartbeat_timeout_seconds: float = Field(60.0, gt=0)
    #: Per million broker commands, how many also requeue dead workers' messages of the
    #: command's queue (Dramatiq's own default).
    broker_maintenance_chance: int = Field(1_000, ge=1, le=1_000_000)
    #: Seconds between each worker process's recovery passes over every queue, which
    #: requeue dead workers' messages whatever the chance above draws.
    broker_recovery_interval_seconds: float = Field(10.0, gt=0)
    #: Seconds a Redis command (broker and shared state) may wait for its answer, and a
    #: connection to be made, unless the URL sets ``socket_timeout``; a Redis that stops
    #: answering then counts as gone, as one that closed its connections.  0 waits forever.
    redis_socket_timeout_seconds: float = Field(30.0, ge=0)
    #: Prometheus metrics (Dramatiq's and this service's); port and host are
    #: Dramatiq's own ``dramatiq_prom_port`` (9191) and ``dramatiq_prom_host``.
    metrics_enabled: bool = True

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        return _require_scheme(value, REDIS_SCHEMES)

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        return _require_scheme(value, (*REDIS_SCHEMES, "amqp", "amqps"))

    @field_validator("sweep_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from periodiq import cron

        try:
            cron(value)
        except Exception as exc:  # periodiq raises plain exceptions for bad specs
            raise ValueError(f"not a cron expression: {exc}") from None
        return value

    @property
    def redis_socket_options(self) -> dict[str, float]:
        """The socket timeouts for a Redis connection pool; a URL's own win."""
        timeout = self.redis_socket_timeout_seconds
        if not timeout:
            return {}
        return {"socket_timeout": timeout, "socket_connect_timeout": timeout}

    @property
    def effective_broker_url(self) -> str:
        """The URL the broker connects to."""
        return self.broker_url or self.redis_url

    @property
    def uses_rabbitmq(self) -> bool:
        """Whether the broker is RabbitMQ rather than Redis."""
        return self.effective_broker_url.startswith(("amqp://", "amqps://"))


class SendCheckSettings(BaseSettings):
    """What a producer's send-time check reads (``actor.send``), and nothing else."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=False)

    #: Largest job accepted: its arguments as JSON, in bytes (checked at send and at pick-up).
    job_max_payload_bytes: int = Field(1_048_576, gt=0)


class Settings(BrokerSettings, SendCheckSettings):
    """Everything a worker process needs; the manual's settings page lists each variable."""

    #: ``openai``, ``anthropic`` or ``ollama``; unset: chosen from the keys present.
    llm_provider: Literal["openai", "anthropic", "ollama"] | None = None
    #: Any OpenAI-compatible chat-completions server.
    llm_base_url: str = "http://localhost:8080/v1"
    #: API key, used when the chosen provider's own key is unset.
    llm_api_key: SecretStr = SecretStr("not-needed")
    #: OpenAI's key; selects ``openai`` (at https://api.openai.com/v1 unless LLM_BASE_URL
    #: is set).
    openai_api_key: SecretStr | None = None
    #: Anthropic's key; selects ``anthropic`` when no OpenAI key is set.
    anthropic_api_key: SecretStr | None = None
    #: Anthropic's API URL.
    anthropic_base_url: str = "https://api.anthropic.com"
    #: Ollama's URL; setting it selects Ollama when no key is present.
    ollama_host: str | None = None
    #: Model of the text jobs.
    llm_text_model: str = Field("mistral", min_length=1)
    #: Empty: no vision model, jobs that send an image fail saying so.
    llm_vision_model: str = "llava"
    #: Bound on one whole LLM call (connect, send, wait, read), in seconds.
    llm_timeout_seconds: float = Field(120.0, gt=0)
    #: Largest LLM answer read, in bytes; a larger one is refused as an invalid answer.
    llm_max_response_bytes: int = Field(8_388_608, ge=1_024)
    #: How the answer's shape is requested: a JSON Schema (Anthropic: structured outputs),
    #: ``tool`` (Anthropic: a forced strict tool), plain JSON mode, or only by prompt; see
    #: the providers page.
    llm_response_format: Literal[
        "json_schema", "json_object_schema", "json_object", "llguidance", "tool", "none"
    ] = "json_schema"
    #: Which prompts (task texts, examples, answer budgets) the jobs use: ``default`` or
    #: ``small`` (small local models); a JSON file of the same shape replaces entries.
    llm_prompt_profile: Literal["default", "small"] = "default"
    #: A JSON file whose entries replace the profile's, per job type (checked at start-up).
    llm_prompts_file: str | None = None
    #: A JSON file of each model's prices in US dollars per million tokens (``input``,
    #: ``output``, optional ``cached_input``), checked at start-up; unset: no costs are
    #: computed (there are no built-in prices; see Costs).
    llm_prices_file: str | None = None
    #: Days the hourly usage counters read by ``llm-worker usage`` are kept in Redis.
    usage_retention_days: int = Field(35, ge=1, le=3660)
    #: The model's context window and the part of it kept for the answer, in tokens.
    llm_context_tokens: int = Field(8192, ge=256)
    #: Tokens kept for the answer (sent as ``max_tokens``); under half of
    #: LLM_CONTEXT_TOKENS.
    llm_max_output_tokens: int = Field(1024, ge=16)
    #: How prompts are counted: ``auto`` (the server's tokenizer when it has one), ``server``
    #: or ``estimate`` (a conservative estimate).
    llm_tokenizer: Literal["auto", "server", "estimate"] = "auto"
    #: Retries after an invalid answer (so at most this + 1 calls).
    llm_max_retries: int = Field(5, ge=0, le=20)
    #: First delay between invalid-answer retries, doubled each time, in seconds.
    llm_retry_backoff_seconds: float = Field(1.0, gt=0)
    #: Bound on a job's total time across invalid-answer retries, in seconds.
    llm_job_max_seconds: float = Field(900.0, gt=0)
    #: Seconds between probes of an unavailable LLM (one probe for the whole fleet).
    llm_probe_interval_seconds: float = Field(30.0, gt=0)
    #: Server errors (HTTP 5xx but 503 and 529) of one job's request, each followed by a
    #: successful probe, before the job fails with the server's error.
    llm_request_max_server_errors: int = Field(3, ge=1)
    #: A job held back by an unavailable LLM for longer than this expires, in seconds.
    llm_unavailable_expiry_seconds: float = Field(1_209_600.0, gt=0)
    #: A job older than this when first picked up is skipped as stale, in seconds (0 disables).
    message_max_age_seconds: float = Field(300.0, ge=0)
    #: Most LLM requests in flight across the fleet (0: no cap).
    llm_max_concurrent_requests: int = Field(0, ge=0)
    #: Who shares LLM capacity fairly when it is short: ``user_id`` (within one priority
    #: the job of the user with fewer calls in flight goes first; a review counts for its
    #: review request) or ``none`` (first come, first served within a priority).
    llm_share_key: Literal["user_id", "none"] = "user_id"
    #: Most LLM requests one user (one review request) has in flight across the fleet
    #: (0: no limit).
    llm_max_concurrent_requests_per_user: int = Field(0, ge=0)
    #: Tokens (prompt plus completion) one user may use per UTC day (0: no budget); a
    #: job over it waits in the broker until the day turns, and the user is told once.
    llm_user_daily_tokens: int = Field(0, ge=0)
    #: Fleet-wide LLM requests and tokens per minute (0: no limit).
    llm_requests_per_minute: int = Field(0, ge=0)
    #: Fleet-wide LLM tokens per minute (0: no limit); a call is charged its prompt, then
    #: corrected by the usage reported.
    llm_tokens_per_minute: int = Field(0, ge=0)
    #: Lease of a concurrency slot, renewed during a call: a killed holder's slot
    #: returns within this, in seconds.
    llm_slot_lease_seconds: float = Field(30.0, gt=0)
    #: How long a job waits on its thread for capacity before it is re-enqueued, in seconds.
    llm_capacity_wait_seconds: float = Field(5.0, ge=0)
    #: Longest wait a ``Retry-After`` can impose (cooldown or next probe), in seconds.
    llm_retry_after_max_seconds: float = Field(300.0, gt=0)
    #: Fleet-wide cooldown after a 429 that gives no usable ``Retry-After``, in seconds.
    llm_cooldown_seconds: float = Field(5.0, gt=0)
    #: ``LLM_PRIORITY_<ACTOR>``, one variable per job type (``LLM_PRIORITY_TASK_MATCH=5``):
    #: the priority of its LLM calls when capacity is short, 0 to 1000, lower runs first.
    #: Unset: the job type's own (0 for jobs a user waits for, 10 for batch work).
    llm_priorities: dict[str, int] = Field(
        default_factory=dict, json_schema_extra={"variable": "LLM_PRIORITY_<ACTOR>"}
    )
    #: A second LLM used while the primary's breaker is open (unset: none).
    llm_fallback_base_url: str | None = None
    #: The fallback's protocol: ``openai`` (any OpenAI-compatible server), ``anthropic`` or
    #: ``ollama``.
    llm_fallback_provider: Literal["openai", "anthropic", "ollama"] = "openai"
    #: The fallback's API key.
    llm_fallback_api_key: SecretStr = SecretStr("not-needed")
    #: The fallback's models; unset: the primary's names.
    llm_fallback_text_model: str | None = None
    #: The fallback's vision model; unset: LLM_VISION_MODEL.
    llm_fallback_vision_model: str | None = None
    #: Ordinary retries for other errors (Core failing, bugs), and of reports Core refused.
    job_max_retries: int = Field(20, ge=0)
    #: Shortest delay of the ordinary retries' exponential backoff, in seconds.
    job_retry_min_backoff_seconds: float = Field(5.0, gt=0)
    #: Longest delay of the ordinary retries' exponential backoff, in seconds.
    job_retry_max_backoff_seconds: float = Field(1800.0, gt=0)

    #: How long a report Core never accepted is kept for an operator's ``requeue-dead``,
    #: in seconds; older ones are dropped (and logged) by the outbox's drain.
    outbox_dead_ttl_seconds: int = Field(2_592_000, gt=0)

    #: Lifetime of a review conversation in Redis, refreshed on each turn, in seconds.
    review_conversation_ttl_seconds: int = Field(604_800, gt=0)
    #: How long a review's posted comments stay in Redis for its reader, in seconds
    #: (refreshed by each chunk's comments).
    review_comments_ttl_seconds: int = Field(604_800, gt=0)
    #: Tool calls the model may make per diff chunk before it must comment.
    review_max_tool_calls: int = Field(5, ge=0)

    #: Core API base URL.
    core_api_url: str = "http://localhost:8000"
    #: Sent as ``Authorization: Bearer <token>`` when set.
    core_api_token: SecretStr | None = None
    #: Bound on one whole Core API call (connect, send, wait, read), in seconds.
    core_timeout_seconds: float = Field(10.0, gt=0)
    #: Largest Core answer read (an error, the open tasks), in bytes; a larger one is a
    #: Core failure.
    core_max_response_bytes: int = Field(8_388_608, ge=1_024)
    #: While Core refuses the worker's credentials (401, 403), jobs and reports wait this
    #: long before trying again, in seconds.
    core_unauthorized_hold_seconds: float = Field(60.0, gt=0)

    #: Root of the stored images; jobs read image paths under it only.
    image_storage_path: Path = Path("/data/images")
    #: Largest image a job reads, in bytes.
    image_max_bytes: int = Field(20_971_520, gt=0)

    #: Redis stream of user notifications (read by the Telegram bot).
    notify_stream: str = Field("notify:telegram", min_length=1)
    #: Most entries the notification stream keeps (``XADD MAXLEN ~``: trimmed a Redis
    #: macro node at a time, so slightly more may stay).  The default holds about 27 hours
    #: of notifications at 10 a second: the longest the bot may be away and miss none.
    notify_stream_max_entries: int = Field(1_000_000, ge=1_000)
    #: How long a published notification is remembered, so it is never sent twice, in seconds.
    notify_dedupe_seconds: int = Field(1_296_000, gt=0)
    #: How long a job's valid LLM result is kept for retries after Core failed, in seconds.
    job_result_ttl_seconds: int = Field(86_400, gt=0)
    #: ``text`` or ``json`` (one JSON object per line).
    log_format: Literal["text", "json"] = "text"
    #: Let user content (message text, payloads, image paths) appear in logs.
    log_content: bool = False
    #: Address ``llm-worker dashboard`` listens on.
    dashboard_host: str = "127.0.0.1"
    #: Port ``llm-worker dashboard`` listens on.
    dashboard_port: int = Field(8081, ge=1, le=65535)
    #: HTTP basic auth user of the dashboard; required on a non-loopback address.
    dashboard_user: str | None = None
    #: HTTP basic auth password of the dashboard; required on a non-loopback address.
    dashboard_password: SecretStr | None = None
    #: Without credentials, the dashboard answers only requests whose Host is loopback,
    #: ``localhost`` or one of these comma-separated names.
    dashboard_allowed_hosts: str = ""
    #: Prefix of this service's own Redis keys (breaker state, expiry claims).
    key_prefix: str = Field("llmw", min_length=1)
    #: Folder where each worker process touches its liveness file (``llm-worker health``).
    liveness_dir: Path = Path(tempfile.gettempdir()) / "llm-worker-liveness"

    @field_validator(
        "llm_base_url", "core_api_url", "anthropic_base_url", "ollama_host", "llm_fallback_base_url"
    )
    @classmethod
    def _http_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        return _require_scheme(value, ("http", "https")).rstrip("/")

    @model_validator(mode="after")
    def _budget(self) -> Settings:
        if self.llm_max_output_tokens >= self.llm_context_tokens // 2:
            raise ValueError("LLM_MAX_OUTPUT_TOKENS must be under half of LLM_CONTEXT_TOKENS")
        return self

    @property
    def capacity_limited(self) -> bool:
        """Whether any fleet-wide capacity limit (slots, requests or tokens) is set."""
        return bool(
            self.llm_max_concurrent_requests
            or self.llm_requests_per_minute
            or self.llm_tokens_per_minute
        )

    def llm_priority(self, actor_name: str, default: int = 0) -> int:
        """``LLM_PRIORITY_<ACTOR>`` of an actor (lower runs first), else ``default``."""
        return self.llm_priorities.get(actor_name.lower(), default)

    @model_validator(mode="before")
    @classmethod
    def _collect_priorities(cls, data: Any) -> Any:
        """Gather every ``LLM_PRIORITY_<ACTOR>`` variable (and ``llm_priority_<actor>``
        keyword) into ``llm_priorities``."""
        if not isinstance(data, dict):
            return data
        sources = {**os.environ, **{str(k): v for k, v in data.items()}}
        found = dict(data.get("llm_priorities") or {})
        for name, value in sources.items():
            lowered = name.lower()
            if not lowered.startswith(PRIORITY_PREFIX) or lowered == "llm_priorities":
                continue
            actor = lowered.removeprefix(PRIORITY_PREFIX)
            found[actor] = _priority_value(name.upper(), value)
        return {**data, "llm_priorities": found}

    @property
    def prompt_token_budget(self) -> int:
        """Tokens a prompt may use: the context window less the answer's share."""
        return self.llm_context_tokens - self.llm_max_output_tokens


_S = TypeVar("_S", bound=BaseSettings)


#: Longest part of a bad value shown in a settings error.
SHOWN_VALUE_CHARS = 80


def shown_value(name: str, value: Any) -> str:
    """How a bad value of the variable ``name`` may appear in an error: nothing for
    secrets and for anything but a plain value, URLs without their credentials."""
    if name in _SECRETS or not isinstance(value, (str, int, float)):
        return ""
    text = safe_url(str(value))  # a URL may carry a password: no credentials nor query
    if text == "<unparsable URL>":
        return ""
    if len(text) > SHOWN_VALUE_CHARS:
        text = text[:SHOWN_VALUE_CHARS] + "..."
    return f" (got {text!r})"


def _load(cls: type[_S]) -> _S:
    try:
        return cls()
    except ValidationError as exc:
        error = exc.errors(include_input=True, include_url=False)[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a check across variables: its input is every variable
            raise SettingsError(message) from None
        name = str(error["loc"][0])
        field = cls.model_fields.get(name)
        secret = field is not None and "SecretStr" in str(field.annotation)
        shown = "" if secret else shown_value(name, error.get("input"))
        raise SettingsError(f"{name.upper()}: {message}{shown}") from None


@lru_cache(maxsize=1)
def send_check_settings() -> SendCheckSettings:
    """The send-time check's settings of this process, read from the environment once."""
    return _load(SendCheckSettings)


@lru_cache(maxsize=1)
def broker_settings() -> BrokerSettings:
    """The broker settings of this process, read from the environment once."""
    return _load(BrokerSettings)


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The full settings of this process, read from the environment once."""
    return _load(Settings)


def reload_settings() -> None:
    """Forget the cached settings so the next call reads the environment again."""
    broker_settings.cache_clear()
    send_check_settings.cache_clear()
    settings.cache_clear()
