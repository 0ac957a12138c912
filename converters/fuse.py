"""Fuse LoRA/DoRA adapters (mlx-lm format) into their base model.

The adapters are attached with mlx-lm's own loader, then each adapted layer's `fuse()` folds
`scale * B A` into the base weight. Over a quantized base (QLoRA) the fused layer is
re-quantized with the base layer's settings, or left in float with `dequantize=True`.
"""

from __future__ import annotations

from pathlib import Path

from mlx.utils import tree_unflatten
from mlx_grpo.converters.load_folder import load_folder
from mlx_grpo.converters.loaded import LoadedModel

from mlx_grpo.errors import UserError


def load_fused(adapters: Path, base: Path, dequantize: bool = False) -> LoadedModel:
    """Load `base`, apply the adapters in `adapters`, fuse them; return the merged model."""
    from mlx_lm.tuner.utils import load_adapters

    loaded = load_folder(base)
    if not (adapters / "adapter_config.json").is_file():
        raise UserError(f"{adapters}: adapters.safetensors without adapter_config.json")
    try:
        model = load_adapters(loaded.model, str(adapters))
    except (ValueError, KeyError, AttributeError) as exc:
        raise UserError(f"{adapters}: adapters do not fit base model {base} ({exc})") from exc
    fused = [
        (n, m.fuse(dequantize=dequantize)) for n, m in model.named_modules() if hasattr(m, "fuse")
    ]
    if fused:
        model.update_modules(tree_unflatten(fused))
    loaded.model = model
    loaded.source_format = "adapters"
    loaded.source = adapters
    loaded.notes.append(f"fused {len(fused)} adapter layers into {base}")
    return loaded
