"""Read safetensors headers without loading tensors, and write (optionally sharded) weight files.

Headers give shapes, dtypes and integrity checks (a truncated file is caught before MLX reads
it); the writer produces Hugging Face's layout: `model.safetensors`, or
`model-0000i-of-0000n.safetensors` shards plus `model.safetensors.index.json`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import mlx.core as mx

from mlx_grpo.errors import UserError

DEFAULT_SHARD_BYTES = 5 << 30


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor name -> dtype/shape/offsets, __metadata__)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise UserError(f"{path}: not a safetensors file (shorter than its 8-byte header)")
        (n,) = struct.unpack("<Q", raw)
        if n > size - 8:
            raise UserError(f"{path}: truncated safetensors file (header runs past the end)")
        try:
            return json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path}: corrupt safetensors header ({exc})") from exc


def check_complete(path: Path) -> dict[str, Any]:
    """Raise a UserError unless every tensor's bytes are present in the file; return the header."""
    header = read_header(path)
    (n,) = struct.unpack("<Q", path.open("rb").read(8))
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    needed = 8 + n + max(ends, default=0)
    actual = path.stat().st_size
    if actual < needed:
        raise UserError(
            f"{path}: truncated safetensors file ({actual} bytes, its header needs {needed}); "
            "re-download or re-export it"
        )
    return header


def tensor_headers(folder: Path) -> dict[str, dict[str, Any]]:
    """Name -> {dtype, shape} for every tensor in a folder's model*.safetensors files."""
    out: dict[str, dict[str, Any]] = {}
    for file in sorted(folder.glob("model*.safetensors")):
        header = check_complete(file)
        out.update({k: v for k, v in header.items() if k != "__metadata__"})
    return out


def shard(weights: dict[str, mx.array], max_bytes: int) -> list[dict[str, mx.array]]:
    """Split weights into groups of at most `max_bytes` (a bigger tensor stands alone)."""
    shards: list[dict[str, mx.array]] = []
    size = 0
    for name in sorted(weights):
        value = weights[name]
        if not shards or size + value.nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = value
        size += value.nbytes
    return shards


def save_weights(
    folder: Path,
    weights: dict[str, mx.array],
    *,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    fmt: str = "mlx",
) -> list[str]:
    """Write weights as one file or as shards plus an index; return the file names written."""
    shards = shard(weights, max_shard_bytes)
    count = len(shards)
    names = [
        "model.safetensors" if count == 1 else f"model-{i + 1:05d}-of-{count:05d}.safetensors"
        for i in range(count)
    ]
    weight_map: dict[str, str] = {}
    for name, part in zip(names, shards):
        mx.save_safetensors(str(folder / name), part, metadata={"format": fmt})
        weight_map.update({k: name for k in part})
    if count > 1:
        total = sum(v.nbytes for v in weights.values())
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return names
