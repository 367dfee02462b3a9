"""Settings validation: each bad value is one line naming its variable, never a secret."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_worker.errors import SettingsError
from llm_worker.settings import (
    SHOWN_VALUE_CHARS,
    BrokerSettings,
    Settings,
    broker_settings,
    reload_settings,
    send_check_settings,
    settings,
    shown_value,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set variables with ``environ.setenv``; the settings are read again before and after."""
    reload_settings()
    yield monkeypatch
    monkeypatch.undo()
    reload_settings()


def _error(read, environ, **variables: str) -> str:
    for name, value in variables.items():
        environ.setenv(name, value)
    reload_settings()
    with pytest.raises(SettingsError) as caught:
        read()
    return str(caught.value)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LLM_TIMEOUT_SECONDS", "soon", "LLM_TIMEOUT_SECONDS: Input should be a valid number"),
        ("LLM_TIMEOUT_SECONDS", "0", "LLM_TIMEOUT_SECONDS: Input should be greater than 0"),
        ("LLM_MAX_RETRIES", "21", "LLM_MAX_RETRIES: Input should be less than or equal to 20"),
        ("LLM_PROVIDER", "gemini", "LLM_PROVIDER: Input should be 'openai', 'anthropic'"),
        (
            "LLM_BASE_URL",
            "localhost:8080",
            "LLM_BASE_URL: must start with one of http://, https://",
        ),
        ("LLM_TEXT_MODEL", "", "LLM_TEXT_MODEL: String should have at least 1 character"),
        ("DASHBOARD_PORT", "70000", "DASHBOARD_PORT: Input should be less than or equal to 65535"),
    ],
)
def test_a_bad_worker_setting_names_its_variable(environ, name, value, message):
    text = _error(settings, environ, **{name: value})

    assert text.startswith(message)
    assert "\n" not in text


def test_a_check_across_variables_shows_no_value(environ):
    text = _error(settings, environ, LLM_MAX_OUTPUT_TOKENS="5000", LLM_CONTEXT_TOKENS="8192")

    assert text == "LLM_MAX_OUTPUT_TOKENS must be under half of LLM_CONTEXT_TOKENS"


def test_secrets_are_never_shown(environ):
    secret = "sk-SECRET-" + "x" * 20
    environ.setenv("OPENAI_API_KEY", secret)
    environ.setenv("CORE_API_TOKEN", secret)
    text = _error(settings, environ, LLM_TIMEOUT_SECONDS="soon")

    assert text.startswith("LLM_TIMEOUT_SECONDS: Input should be a valid number")
    assert text.endswith("(got 'soon')") and "SECRET" not in text
    for name in ("llm_api_key", "core_api_token", "openai_api_key", "dashboard_password"):
        assert shown_value(name, secret) == ""


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("ftp://core:SECRET@core.local/api", " (got 'ftp://***@core.local/api')"),
        ("tcp://h:1/?token=SECRET", " (got 'tcp://h:1/?***')"),
        ("x" * 200, f" (got '{'x' * SHOWN_VALUE_CHARS}...')"),
        (12, " (got '12')"),
        (["a"], ""),
    ],
)
def test_shown_values_lose_credentials_queries_and_length(value, shown):
    assert shown_value("core_api_url", value) == shown


def test_a_producer_reads_only_the_broker_and_send_check_settings(environ):
    environ.setenv("LLM_TIMEOUT_SECONDS", "soon")  # a worker-only setting, broken
    environ.setenv("JOB_MAX_PAYLOAD_BYTES", "2000")
    reload_settings()

    assert send_check_settings().job_max_payload_bytes == 2000
    assert broker_settings().redis_url.startswith("redis://")
    assert _error(send_check_settings, environ, JOB_MAX_PAYLOAD_BYTES="0").startswith(
        "JOB_MAX_PAYLOAD_BYTES: Input should be greater than 0"
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"REDIS_URL": "http://redis:6379"}, "REDIS_URL: must start with one of redis://"),
        ({"BROKER_URL": "kafka://k:9092"}, "BROKER_URL: must start with one of redis://"),
        ({"SWEEP_CRON": "every minute"}, "SWEEP_CRON: not a cron expression"),
        ({"BROKER_MAINTENANCE_CHANCE": "0"}, "BROKER_MAINTENANCE_CHANCE: Input should be greater"),
        ({"BROKER_RECOVERY_INTERVAL_SECONDS": "0"}, "BROKER_RECOVERY_INTERVAL_SECONDS: Input"),
    ],
)
def test_bad_broker_settings(environ, variables, message):
    assert _error(broker_settings, environ, **variables).startswith(message)


def test_the_broker_url_selects_the_broker():
    redis_only = BrokerSettings(redis_url="redis://r:6379/2", broker_url="")
    assert (redis_only.broker_url, redis_only.effective_broker_url) == (None, "redis://r:6379/2")
    assert not redis_only.uses_rabbitmq
    rabbit = BrokerSettings(redis_url="redis://r:6379/2", broker_url="amqps://mq:5671/%2F")
    assert rabbit.effective_broker_url == "amqps://mq:5671/%2F" and rabbit.uses_rabbitmq


def test_derived_values():
    config = Settings(
        llm_base_url="http://llm:8080/v1/",
        ollama_host="",
        llm_context_tokens=4096,
        llm_max_output_tokens=512,
        llm_priority_image_tag=7,
        llm_tokens_per_minute=0,
        llm_requests_per_minute=0,
        llm_max_concurrent_requests=0,
    )
    assert config.llm_base_url == "http://llm:8080/v1"  # the trailing slash is dropped
    assert config.ollama_host is None
    assert config.prompt_token_budget == 4096 - 512
    assert (config.llm_priority("image_tag"), config.llm_priority("weather")) == (7, 0)
    assert not config.capacity_limited
    assert Settings(llm_tokens_per_minute=1000).capacity_limited
