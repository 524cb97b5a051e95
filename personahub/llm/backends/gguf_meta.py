"""Read one string from a GGUF file's metadata without loading the model.

A GGUF file starts with ``GGUF``, a version, the tensor and key-value counts, then the
key-value pairs (``general.name`` among the first). Loading the model to learn its name
would take seconds and memory; walking the header takes microseconds.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

GGUF_MAGIC = b"GGUF"
_STRING = 8
_ARRAY = 9
# Byte sizes of GGUF's fixed-size value types, by type id.
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
# A header walk stops past this many keys: the names sit at the top, tokenizer arrays later.
_MAX_KEYS = 64


class _Truncated(Exception):
    """The header ended early or holds an unknown value type."""


# A metadata string longer than this is not a name: a damaged or foreign file's length field.
_MAX_STRING = 1 << 20


def _read(handle: BinaryIO, size: int) -> bytes:
    if size > _MAX_STRING:
        raise _Truncated  # never allocate what a garbage length asks for
    data = handle.read(size)
    if len(data) != size:
        raise _Truncated
    return data


def _u32(handle: BinaryIO) -> int:
    return int(struct.unpack("<I", _read(handle, 4))[0])


def _u64(handle: BinaryIO) -> int:
    return int(struct.unpack("<Q", _read(handle, 8))[0])


def _string(handle: BinaryIO) -> str:
    return _read(handle, _u64(handle)).decode("utf-8", errors="replace")


def _skip(handle: BinaryIO, kind: int) -> None:
    if kind in _FIXED:
        handle.seek(_FIXED[kind], 1)
    elif kind == _STRING:
        handle.seek(_u64(handle), 1)
    elif kind == _ARRAY:
        item_kind, count = _u32(handle), _u64(handle)
        if item_kind in _FIXED:
            handle.seek(_FIXED[item_kind] * count, 1)
        else:
            for _ in range(count):
                _skip(handle, item_kind)
    else:
        raise _Truncated


def gguf_string(path: Path, key: str) -> str | None:
    """The string value of metadata ``key`` in the GGUF at ``path``; None when the file is
    not a GGUF (v2 or later), the key is absent or not a string."""
    with path.open("rb") as handle:
        try:
            if _read(handle, 4) != GGUF_MAGIC or _u32(handle) < 2:
                return None
            _u64(handle)  # tensor count
            for _ in range(min(_u64(handle), _MAX_KEYS)):
                name, kind = _string(handle), _u32(handle)
                if name == key:
                    return _string(handle) if kind == _STRING else None
                _skip(handle, kind)
        except _Truncated:
            return None
    return None
