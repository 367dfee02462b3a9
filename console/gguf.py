"""The metadata of a GGUF model file, read from its header (no tensor is loaded).

GGUF (llama.cpp's model format, version 2 and 3) starts with the magic
``GGUF``, a version, the tensor and key counts, then each key: a string name, a
value type and the value.  Only scalars and strings are returned; arrays (the
tokenizer's vocabulary) are skipped.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import IO, Any

#: Bytes of each scalar value type, by GGUF type id, with its ``struct`` format.
_SCALARS: dict[int, str] = {
    0: "<B",  # uint8
    1: "<b",  # int8
    2: "<H",  # uint16
    3: "<h",  # int16
    4: "<I",  # uint32
    5: "<i",  # int32
    6: "<f",  # float32
    7: "<?",  # bool
    10: "<Q",  # uint64
    11: "<q",  # int64
    12: "<d",  # float64
}
_STRING = 8
_ARRAY = 9
#: Longest string value read, in bytes (a chat template is a few kilobytes).
MAX_STRING_BYTES = 1 << 20
#: Most keys read from one header.
MAX_KEYS = 100_000


class GgufError(ValueError):
    """A file that is not a readable GGUF model."""


def _read(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise GgufError("the file ends inside its header")
    return data


def _unpack(stream: IO[bytes], fmt: str) -> Any:
    return struct.unpack(fmt, _read(stream, struct.calcsize(fmt)))[0]


def _string(stream: IO[bytes]) -> str:
    size = _unpack(stream, "<Q")
    if size > MAX_STRING_BYTES:
        raise GgufError(f"a string of {size} bytes in the header")
    return _read(stream, size).decode("utf-8", errors="replace")


def _skip_array(stream: IO[bytes]) -> None:
    kind = _unpack(stream, "<I")
    count = _unpack(stream, "<Q")
    if kind == _STRING:
        for _ in range(count):
            stream.seek(_unpack(stream, "<Q"), 1)
    elif kind in _SCALARS:
        stream.seek(count * struct.calcsize(_SCALARS[kind]), 1)
    elif kind == _ARRAY:
        for _ in range(count):
            _skip_array(stream)
    else:
        raise GgufError(f"unknown value type {kind}")


def read_metadata(path: Path) -> dict[str, Any]:
    """The scalar and string metadata of the GGUF file at ``path``, by key.

    Raises:
      GgufError: when the file is not GGUF, or its header is cut short or malformed.
      OSError: when it cannot be opened.
    """
    found: dict[str, Any] = {}
    with path.open("rb") as stream:
        if stream.read(4) != b"GGUF":
            raise GgufError("not a GGUF file (no GGUF magic)")
        version = _unpack(stream, "<I")
        if version not in (2, 3):
            raise GgufError(f"GGUF version {version} is not supported")
        _unpack(stream, "<Q")  # tensors
        keys = _unpack(stream, "<Q")
        if keys > MAX_KEYS:
            raise GgufError(f"{keys} metadata keys")
        for _ in range(keys):
            name = _string(stream)
            kind = _unpack(stream, "<I")
            if kind == _STRING:
                found[name] = _string(stream)
            elif kind == _ARRAY:
                _skip_array(stream)
            elif kind in _SCALARS:
                found[name] = _unpack(stream, _SCALARS[kind])
            else:
                raise GgufError(f"unknown value type {kind} for {name!r}")
    return found
