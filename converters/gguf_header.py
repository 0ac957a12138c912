"""A small reader for the header of a GGUF file: metadata key/values and the tensor table.

It reads no tensor data, so `--info` is instant and a file holding a tensor type MLX cannot
load is refused with a message naming the tensor and its type before any work starts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from mlx_grpo.errors import UserError

GGUF_MAGIC = b"GGUF"

# ggml tensor type ids -> names (the subset worth naming in messages).
GGML_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
    10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS",
    17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S",
    23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16",
}  # fmt: skip

# GGUF metadata value types: id -> struct format (strings and arrays are handled apart).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
            11: "<q", 12: "<d"}  # fmt: skip
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table: name, shape (GGUF order: fastest dim first) and type."""

    name: str
    shape: tuple[int, ...]
    type_id: int

    @property
    def type_name(self) -> str:
        return GGML_TYPES.get(self.type_id, f"type {self.type_id}")

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class GGUFHeader:
    """Metadata and tensor table of a GGUF file."""

    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]


MAX_DIMS = 8  # GGUF tensors have at most 4; anything far beyond is a damaged header


def _unpack(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    raw = f.read(size)
    if len(raw) != size:
        raise EOFError
    return struct.unpack(fmt, raw)[0]


def _count(f: BinaryIO, fmt: str = "<Q") -> int:
    """A length or count read from the file, refused when more bytes than are left would be
    needed (random bytes after the magic must not make us allocate terabytes)."""
    n = _unpack(f, fmt)
    here = f.tell()
    left = f.seek(0, 2) - here
    f.seek(here)
    if n > left:
        raise ValueError(f"a length of {n} at byte {here} is past the end of the file")
    return n


def _string(f: BinaryIO) -> str:
    n = _count(f)
    raw = f.read(n)
    if len(raw) != n:
        raise EOFError
    return raw.decode("utf-8", errors="replace")


def _value(f: BinaryIO, vtype: int) -> Any:
    if vtype == _STRING:
        return _string(f)
    if vtype == _ARRAY:
        item_type, count = _unpack(f, "<I"), _count(f)
        return [_value(f, item_type) for _ in range(count)]
    if vtype not in _SCALARS:
        raise ValueError(f"unknown metadata value type {vtype}")
    return _unpack(f, _SCALARS[vtype])


def _tensor_info(f: BinaryIO) -> TensorInfo:
    name = _string(f)
    n_dims = _unpack(f, "<I")
    if n_dims > MAX_DIMS:
        raise ValueError(f"tensor {name!r} claims {n_dims} dimensions (at most {MAX_DIMS})")
    dims = tuple(_unpack(f, "<Q") for _ in range(n_dims))
    type_id = _unpack(f, "<I")
    _unpack(f, "<Q")  # data offset
    return TensorInfo(name, dims, type_id)


def read_gguf_header(path: Path) -> GGUFHeader:
    """Parse the header of a GGUF file; a UserError if it is not one or is cut short."""
    with path.open("rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise UserError(f"{path}: not a GGUF file (missing the 'GGUF' magic bytes)")
        try:
            version = _unpack(f, "<I")
            n_tensors, n_kv = _count(f), _count(f)
            metadata = {}
            for _ in range(n_kv):
                key = _string(f)
                metadata[key] = _value(f, _unpack(f, "<I"))
            tensors = [_tensor_info(f) for _ in range(n_tensors)]
        except (EOFError, ValueError) as exc:
            raise UserError(
                f"{path}: truncated or corrupt GGUF header ({exc or 'end of file'})"
            ) from exc
    return GGUFHeader(version, metadata, tensors)


def is_gguf(path: Path) -> bool:
    """True for a file that starts with the GGUF magic bytes."""
    try:
        with path.open("rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False
