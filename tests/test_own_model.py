"""``--local-model PATH.gguf``: a user's own GGUF file, served with its own chat template."""

from __future__ import annotations

import os
import struct

import pytest
import requests

from console.gguf import read_metadata
from console.local_llm import MODELS, model_path, start_local_llm, stop_local_llm
from llm_worker.errors import CommandError
from tests.support import run_cli


def _gguf(path, metadata):
    """A GGUF file with ``metadata`` (string values) and no tensor."""
    with path.open("wb") as out:
        out.write(b"GGUF" + struct.pack("<IQQ", 3, 0, len(metadata)))
        for key, value in metadata.items():
            for text in (key, value):
                data = text.encode()
                out.write(struct.pack("<Q", len(data)) + data)
                if text is key:
                    out.write(struct.pack("<I", 8))  # a string value
    return path


def test_the_metadata_is_read_from_the_header(tmp_path):
    path = _gguf(tmp_path / "m.gguf", {"general.name": "Mine", "tokenizer.chat_template": "{{x}}"})
    assert read_metadata(path) == {"general.name": "Mine", "tokenizer.chat_template": "{{x}}"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ({"general.name": "Base model"}, "holds no chat template"),
        (b"PK\x03\x04 a zip file", "not a GGUF file"),
        (b"GGUF\x03\x00\x00\x00", "the file ends inside its header"),
    ],
)
def test_a_file_that_cannot_be_served_is_refused_before_anything_starts(
    cli_env, tmp_path, content, reason
):
    path = tmp_path / "mine.gguf"
    if isinstance(content, dict):
        _gguf(path, content)
    else:
        path.write_bytes(content)

    done = run_cli(cli_env, "local-llm", "--port", "1", "--model", str(path), timeout=60)

    assert done.returncode == 2
    assert f"{path} " in done.stderr and reason in done.stderr, done.stderr


def test_a_file_with_its_template_is_served_under_its_name(tmp_path):
    try:
        bundled = model_path("smollm2-135m")
    except CommandError as exc:  # not installed here: nothing to serve
        pytest.skip(f"smollm2-135m is not installed: {exc}")
    assert MODELS["smollm2-135m"].chat_template  # the bundled alias names a built-in one...
    own = tmp_path / "my-model.gguf"
    os.symlink(bundled, own)  # ...the file itself carries one, which is what is used here
    assert read_metadata(own)["tokenizer.chat_template"]

    process, base_url = start_local_llm(tmp_path / "engine.log", alias=str(own))
    try:
        answer = requests.post(
            f"{base_url}/chat/completions",
            json={
                "model": "my-model",
                "messages": [{"role": "user", "content": "Say hello."}],
                "max_tokens": 8,
            },
            timeout=120,
        )
        props = requests.get(base_url.removesuffix("/v1") + "/props", timeout=10).json()
        served = requests.get(f"{base_url}/models", timeout=10).json()
    finally:
        stop_local_llm(process)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"]
    assert [model["id"] for model in served["data"]] == ["my-model"]
    assert props.get("chat_template", "").startswith(
        read_metadata(own)["tokenizer.chat_template"][:40]
    )
