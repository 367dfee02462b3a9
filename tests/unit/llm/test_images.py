"""Reading stored images: the path stays inside the storage, the size and type are checked."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from llm_worker.errors import ImageRefused, JobRejected
from llm_worker.llm.images import StoredImage, load_image, resolve_inside, sniff_mime_type

pytestmark = pytest.mark.unit

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    (root / "albums").mkdir(parents=True)
    (root / "cat.png").write_bytes(PNG)
    (root / "albums" / "dog.png").write_bytes(PNG)
    (tmp_path / "secret.png").write_bytes(PNG)
    return root


@pytest.mark.parametrize(
    ("head", "mime_type"),
    [
        (b"\xff\xd8\xff\xe0rest", "image/jpeg"),
        (PNG, "image/png"),
        (b"GIF87a....", "image/gif"),
        (b"GIF89a....", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),
        (b"%PDF-1.7", None),
        (b"", None),
    ],
)
def test_the_type_is_sniffed_from_the_first_bytes(head, mime_type):
    assert sniff_mime_type(head) == mime_type


def test_paths_inside_the_storage_resolve(storage):
    assert resolve_inside(storage, "cat.png") == (storage / "cat.png").resolve()
    assert (
        resolve_inside(storage, "albums/../albums/dog.png")
        == (storage / "albums" / "dog.png").resolve()
    )


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("../secret.png", "outside the image storage"),
        ("albums/../../secret.png", "outside the image storage"),
        ("/etc/passwd", "must be relative"),
        ("cat.png\x00.txt", "NUL byte"),
        ("missing.png", "not found"),
        ("albums", "not a regular file"),
    ],
)
def test_paths_that_escape_or_are_not_files_are_refused(storage, relative, reason):
    with pytest.raises(ImageRefused, match=reason) as caught:
        resolve_inside(storage, relative)
    assert isinstance(caught.value, JobRejected)  # the job fails at once, no retry


def test_a_symlink_leading_out_of_the_storage_is_refused(storage):
    (storage / "link.png").symlink_to(storage.parent / "secret.png")
    (storage / "inside.png").symlink_to(storage / "cat.png")

    with pytest.raises(ImageRefused, match="outside the image storage"):
        resolve_inside(storage, "link.png")
    assert load_image(storage, "inside.png", max_bytes=100).mime_type == "image/png"


def test_a_fifo_or_a_socket_is_refused_without_blocking(storage):
    os.mkfifo(storage / "pipe.png")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(storage / "sock.png"))
        for name in ("pipe.png", "sock.png"):
            with pytest.raises(ImageRefused, match="not a regular file"):
                load_image(storage, name, max_bytes=100)


def test_an_image_is_loaded_with_its_type_and_data_url(storage):
    image = load_image(storage, "cat.png", max_bytes=len(PNG))

    assert image == StoredImage("image/png", PNG)
    assert image.data_url() == "data:image/png;base64,iVBORw0KGgoAAAAAAAAAAA=="


def test_size_and_type_are_checked(storage):
    (storage / "notes.png").write_bytes(b"just text, not an image")

    with pytest.raises(ImageRefused, match=f"over the limit of {len(PNG) - 1}"):
        load_image(storage, "cat.png", max_bytes=len(PNG) - 1)
    with pytest.raises(ImageRefused, match="not a JPEG, PNG, GIF or WebP"):
        load_image(storage, "notes.png", max_bytes=1000)
