"""Settings errors never show secrets, and a producer's send-time check reads only what
it needs (real processes: the dramatiq CLI and producer scripts)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llm_worker.errors import SettingsError
from llm_worker.settings import reload_settings, settings
from tests.support import ROOT

SECRETS = {
    "OPENAI_API_KEY": "sk-live-SECRET-openai",
    "ANTHROPIC_API_KEY": "sk-ant-SECRET-anthropic",
    "LLM_API_KEY": "SECRET-llm-key",
    "CORE_API_TOKEN": "SECRET-core-token",
    "DASHBOARD_PASSWORD": "SECRET-dashboard",
}


def test_a_check_across_variables_prints_no_value(start_worker, tmp_path):
    worker = start_worker(
        "--processes", "1", "--threads", "1", LLM_MAX_OUTPUT_TOKENS="5000", **SECRETS
    )

    assert worker.wait(timeout=60) != 0
    output = (tmp_path / "worker0.log").read_text()
    assert "invalid setting LLM_MAX_OUTPUT_TOKENS must be under half of" in output
    for secret in SECRETS.values():
        assert secret not in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("CORE_API_URL", "ftp://core:SECRET-pw@core.local/api", "'ftp://***@core.local/api'"),
        ("OLLAMA_HOST", "tcp://h:1/?token=SECRET-q", "'tcp://h:1/?***'"),
        ("CORE_TIMEOUT_SECONDS", "x" * 500, "'" + "x" * 80 + "...'"),
    ],
)
def test_a_bad_value_is_shown_without_credentials(monkeypatch, name, value, shown):
    for key, secret in SECRETS.items():
        monkeypatch.setenv(key, secret)
    monkeypatch.setenv(name, value)
    reload_settings()
    try:
        with pytest.raises(SettingsError) as caught:
            settings()
    finally:
        monkeypatch.delenv(name)
        reload_settings()
    text = str(caught.value)
    assert text.startswith(f"{name}: ")
    assert "SECRET" not in text
    assert shown in text


PRODUCER = """
import json
from actors import intent_classify
from middleware.job_arguments import InvalidJob, SendCheckFailed
outcomes = []
for payload in ({"text": "hi"}, {"text": "x" * 5000}):
    try:
        message = intent_classify.send(1, 42, payload)
        outcomes.append(["sent", message.options.get("llm_checked")])
    except (InvalidJob, SendCheckFailed) as exc:
        outcomes.append([type(exc).__name__, str(exc)])
print(json.dumps(outcomes))
"""


def _produce(cli_env, **env):
    done = subprocess.run(
        [sys.executable, "-c", PRODUCER],
        cwd=ROOT,
        env={**cli_env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_producer_ignores_worker_only_settings(cli_env, redis_client):
    outcomes, stderr = _produce(
        cli_env,
        JOB_MAX_PAYLOAD_BYTES="2000",
        LLM_TIMEOUT_SECONDS="-1",
        LLM_MAX_OUTPUT_TOKENS="5000",
        CORE_API_URL="not a url",
    )

    assert outcomes[0] == ["sent", True]
    assert outcomes[1][0] == "InvalidJob" and "over the limit of 2000" in outcomes[1][1]
    assert "CRITICAL" not in stderr
    assert redis_client.hlen("dramatiq:llm.intent.msgs") == 1


def test_a_check_that_cannot_run_refuses_the_send(cli_env, redis_client):
    outcomes, stderr = _produce(cli_env, JOB_MAX_PAYLOAD_BYTES="a lot", **SECRETS)

    for kind, text in outcomes:
        assert kind == "SendCheckFailed"
        assert "not sent, the job cannot be checked: invalid setting JOB_MAX_PAYLOAD_BYTES" in text
    assert "CRITICAL" not in stderr
    assert redis_client.hlen("dramatiq:llm.intent.msgs") == 0
