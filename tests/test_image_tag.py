"""image_tag: vision request, Core tags before completion, path refusals."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from actors import image_tag
from tests.support import PNG_BYTES, dead_letters, drain, notifications, send_unchecked, usage


def test_success_sends_image_and_stores_tags_first(worker, fake_llm, fake_core, redis_client):
    fake_llm.push({"description": "A cat on a sofa.", "tags": ["Cat", "sofa", "cat"]})

    image_tag.send(10, 42, {"image_id": "img-1", "path": "cat.png"})
    drain(worker, "llm.image_tag")

    [request] = fake_llm.chat_requests()
    assert request["json"]["model"] == "llava"
    parts = request["json"]["messages"][1]["content"]
    url = parts[1]["image_url"]["url"]
    assert url == "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()
    result = {"description": "A cat on a sofa.", "tags": ["cat", "sofa"]}
    put, patch = [(r["method"], r["path"], r["json"]) for r in fake_core.requests]
    assert put == ("PUT", "/images/img-1/tags", result)
    assert patch == (
        "PATCH",
        "/jobs/10",
        {"status": "completed", "result": result, "error": None, "usage": usage(1, model="llava")},
    )
    assert [n["message_type"] for n in notifications(redis_client)] == ["llm_image_tag_result"]


def _write(image_dir, name, data):
    (image_dir / name).write_bytes(data)


@pytest.mark.parametrize(
    ("path", "setup", "reason"),
    [
        ("../secret.png", None, "outside the image storage"),
        ("/etc/passwd", None, "must be relative"),
        ("link.png", "symlink", "outside the image storage"),
        ("missing.png", None, "not found"),
        ("big.png", "big", "over the limit"),
        ("notes.png", "text", "not a JPEG, PNG, GIF or WebP"),
        ("sub", "dir", "not a regular file"),
        ("pipe.png", "fifo", "not a regular file"),
        ("zero.png", "device", "not a regular file"),
        ("dev.png", "device link", "outside the image storage"),
    ],
)
def test_refused_paths_fail_without_llm_call(
    env, worker, fake_llm, fake_core, redis_client, image_dir, tmp_path, path, setup, reason
):
    env(IMAGE_MAX_BYTES=1000)
    (tmp_path / "secret.png").write_bytes(PNG_BYTES)
    if setup == "symlink":
        os.symlink(tmp_path / "secret.png", image_dir / "link.png")
    elif setup == "big":
        _write(image_dir, "big.png", PNG_BYTES + b"\x00" * 2000)
    elif setup == "text":
        _write(image_dir, "notes.png", b"hello, not an image")
    elif setup == "dir":
        (image_dir / "sub").mkdir()
    elif setup == "fifo":
        os.mkfifo(image_dir / "pipe.png")  # reading it would block forever
    elif setup == "device":
        os.mknod(image_dir / "zero.png", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero
    elif setup == "device link":
        os.symlink("/dev/zero", image_dir / "dev.png")

    message = image_tag.send(11, 42, {"image_id": 7, "path": path})
    drain(worker, "llm.image_tag")

    [update] = fake_core.job_updates(11)
    assert update["status"] == "failed"
    assert reason in update["error"]
    assert fake_llm.chat_requests() == []
    assert dead_letters(redis_client, "llm.image_tag") == [message.message_id]
    assert [n["message_type"] for n in notifications(redis_client)] == ["llm_failure"]


@pytest.mark.parametrize(
    "magic",
    [b"\xff\xd8\xff\xe0", b"GIF89a", b"GIF87a", b"RIFF\x10\x00\x00\x00WEBPVP8 "],
)
def test_accepted_image_types(worker, fake_llm, fake_core, image_dir, magic):
    _write(image_dir, "photo.bin", magic + b"\x00" * 32)
    fake_llm.push({"description": "x", "tags": ["y"]})

    image_tag.send(12, 42, {"image_id": 1, "path": "photo.bin"})
    drain(worker, "llm.image_tag")

    assert fake_core.job_updates(12)[0]["status"] == "completed"


def test_invalid_payload_names_field(worker, fake_llm, fake_core):
    send_unchecked(image_tag, 13, 42, {"image_id": 1.5, "path": "cat.png"})
    drain(worker, "llm.image_tag")

    [update] = fake_core.job_updates(13)
    assert update["status"] == "failed"
    assert "payload.image_id" in update["error"]
    assert fake_llm.chat_requests() == []
