"""`mlx-grpo convert --info PATH`: say what a model folder, GGUF file, run or checkpoint is.

Everything is read from headers and JSON files; no tensor data is loaded.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from mlx_grpo.converters.gguf_header import TensorInfo, is_gguf, read_gguf_header
from mlx_grpo.converters.gguf_model import type_summary
from mlx_grpo.converters.loaded import has_tokenizer
from mlx_grpo.converters.safetensors_io import tensor_headers
from mlx_grpo.converters.validate import pytorch_files, read_config, weight_files, written_by_mlx

from mlx_grpo.errors import UserError
from mlx_grpo.rundir import is_adapter_folder, is_run_folder, list_steps, recorded_base_model

SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "U32": "uint32"}


def human_size(n: int) -> str:
    """Bytes in the largest unit that keeps the number readable."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def human_count(n: int) -> str:
    """A parameter count as 135.0M / 1.54B / 91.1K."""
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def quant_summary(config: dict[str, Any]) -> str:
    """`4-bit affine, group 64` (+ per-layer bit counts when layers differ), or `none`."""
    quant = config.get("quantization")
    if not quant:
        return "none"
    text = f"{quant.get('bits')}-bit {quant.get('mode', 'affine')}, group {quant.get('group_size')}"
    per_layer = Counter(v.get("bits") for v in quant.values() if isinstance(v, dict))
    if per_layer:
        text += (
            " (mixed: "
            + ", ".join(f"{n} layers {b}-bit" for b, n in sorted(per_layer.items()))
            + ")"
        )
    return text


def _group_size(config: dict[str, Any], layer: str) -> int:
    quant = config.get("quantization") or {}
    entry = quant.get(layer)
    return int(entry["group_size"] if isinstance(entry, dict) else quant.get("group_size", 64))


def count_params(headers: dict[str, dict[str, Any]], config: dict[str, Any]) -> tuple[int, str]:
    """(parameter count, dominant float dtype) from safetensors headers."""
    params, dtypes = 0, Counter[str]()
    for name, info in headers.items():
        numel = 1
        for d in info["shape"]:
            numel *= d
        layer, _, leaf = name.rpartition(".")
        if leaf == "biases" or (leaf == "weight" and f"{layer}.scales" in headers):
            continue
        if leaf == "scales":
            numel *= _group_size(config, layer)
        else:
            dtypes[SAFETENSORS_DTYPES.get(info["dtype"], info["dtype"])] += numel
        params += numel
    return params, (dtypes.most_common(1)[0][0] if dtypes else "-")


def chat_template_present(folder: Path) -> bool:
    """A chat template in chat_template.jinja/json or in tokenizer_config.json."""
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    try:
        return bool(json.loads((folder / "tokenizer_config.json").read_text()).get("chat_template"))
    except (OSError, json.JSONDecodeError):
        return False


def folder_size(path: Path) -> int:
    """Bytes on disk of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def describe_model_folder(folder: Path) -> dict[str, str]:
    """Rows for an HF or MLX model folder."""
    config = read_config(folder)
    params, dtype = count_params(tensor_headers(folder), config)
    arch = ", ".join(config.get("architectures") or []) or "-"
    return {
        "format": "mlx" if written_by_mlx(folder, config) else "hf (safetensors)",
        "architecture": f"{config['model_type']} ({arch})",
        "parameters": human_count(params),
        "dtype": dtype,
        "quantization": quant_summary(config),
        "weight files": str(len(weight_files(folder))),
        "size on disk": human_size(folder_size(folder)),
        "tokenizer": "yes" if has_tokenizer(folder) else "no",
        "chat template": "yes" if chat_template_present(folder) else "no",
    }


def gguf_dtype(tensors: list[TensorInfo]) -> str:
    """float16 for block-quantized files (their scales), else the dominant float type."""
    names = Counter(t.type_name for t in tensors)
    if any(n.startswith("Q") for n in names):
        return "float16 (block scales)"
    floats = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
    return next((floats[n] for n, _ in names.most_common() if n in floats), "-")


def describe_gguf(path: Path) -> dict[str, str]:
    """Rows for a GGUF file, from its header."""
    header = read_gguf_header(path)
    meta = header.metadata
    return {
        "format": f"gguf v{header.version}",
        "architecture": str(meta.get("general.architecture", "-")),
        "name": str(meta.get("general.name", "-")),
        "parameters": human_count(sum(t.numel for t in header.tensors)),
        "dtype": gguf_dtype(header.tensors),
        "quantization": type_summary(header.tensors),
        "size on disk": human_size(folder_size(path)),
        "tokenizer": "yes" if "tokenizer.ggml.tokens" in meta else "no",
        "chat template": "yes" if meta.get("tokenizer.chat_template") else "no",
    }


def describe_adapters(folder: Path) -> dict[str, str]:
    """Rows for an mlx-lm adapter checkpoint."""
    config = json.loads((folder / "adapter_config.json").read_text())
    lora = config.get("lora_parameters", {})
    return {
        "format": f"adapters ({config.get('fine_tune_type', 'lora')})",
        "rank / scale": f"{lora.get('rank', '-')} / {lora.get('scale', '-')}",
        "layers adapted": str(config.get("num_layers", "-")),
        "base model": recorded_base_model(folder) or "unknown (use --base)",
        "size on disk": human_size((folder / "adapters.safetensors").stat().st_size),
    }


def describe_run(folder: Path) -> dict[str, str]:
    """Rows for a run / trainer output folder, followed by its latest checkpoint's rows."""
    steps = list_steps(folder)
    latest = max(steps)
    rows = {"format": "training run", "checkpoints": ", ".join(str(s) for s in sorted(steps))}
    rows.update({f"latest ({latest}): {k}": v for k, v in describe(steps[latest]).items()})
    return rows


def describe(path: Path) -> dict[str, str]:
    """What `path` is, as label -> value rows."""
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_file():
        if not is_gguf(path):
            raise UserError(f"{path}: not a GGUF file or a model folder")
        return describe_gguf(path)
    if is_run_folder(path):
        return describe_run(path)
    if is_adapter_folder(path):
        return describe_adapters(path)
    if weight_files(path):
        return describe_model_folder(path)
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return describe_gguf(ggufs[0])
    if pytorch_files(path):
        return {"format": "pytorch (.bin/.pt) only: save as safetensors to convert"}
    raise UserError(f"{path}: no model weights, GGUF file, adapters or checkpoints found")
