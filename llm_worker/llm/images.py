"""Safe reading of stored images for the vision model."""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from llm_worker.errors import ImageRefused

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(frozen=True)
class StoredImage:
    """An image read from storage, ready to send."""

    mime_type: str
    data: bytes

    def data_url(self) -> str:
        """The image as a ``data:`` URL with base64 content."""
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode()}"


def sniff_mime_type(head: bytes) -> str | None:
    """The MIME type of a JPEG, PNG, GIF or WebP file from its first bytes, else ``None``."""
    for signature, mime_type in _SIGNATURES:
        if head.startswith(signature):
            return mime_type
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def resolve_inside(root: Path, relative: str) -> Path:
    """Resolve ``relative`` under ``root``, refusing anything that escapes it.

    Raises:
      ImageRefused: for absolute paths, ``..`` escapes, symlinks leading
        outside ``root``, NUL bytes, missing files and anything that is not a
        regular file (folders, FIFOs, sockets, device files).
    """
    if "\x00" in relative:
        raise ImageRefused("image path contains a NUL byte")
    candidate = Path(relative)
    if candidate.is_absolute():
        raise ImageRefused("image path must be relative to the image storage")
    base = root.resolve()
    target = (base / candidate).resolve()
    if not target.is_relative_to(base):
        raise ImageRefused("image path resolves outside the image storage")
    if not target.exists():
        raise ImageRefused("image file not found")
    if not target.is_file():
        raise ImageRefused("image path is not a regular file")
    return target


def load_image(root: Path, relative: str, *, max_bytes: int) -> StoredImage:
    """Read an image stored under ``root`` after checking path, size and type.

    Raises:
      ImageRefused: when the path, size or file type is not acceptable.
    """
    path = resolve_inside(root, relative)
    # Opened without blocking and checked again once open: a file swapped for a FIFO or a
    # device after the check above is refused instead of hanging the worker.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        raise ImageRefused(f"image file cannot be opened: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageRefused("image path is not a regular file")
        if info.st_size > max_bytes:
            raise ImageRefused(f"image is {info.st_size} bytes, over the limit of {max_bytes}")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageRefused(f"image is over the limit of {max_bytes} bytes")
    mime_type = sniff_mime_type(data[:16])
    if mime_type is None:
        raise ImageRefused("file is not a JPEG, PNG, GIF or WebP image")
    return StoredImage(mime_type=mime_type, data=data)
