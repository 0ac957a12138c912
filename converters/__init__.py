"""Weight conversion between Hugging Face, GGUF and MLX folders.

`convert(src, out, ConvertOptions(...))` is the one entry point (the `mlx-grpo convert`
command calls it); `describe(path)` is `--info`; `smollm2_gguf()` fetches a real model.

The names below load their module on first use (PEP 562): importing one converter module
(the GGUF reader, say) never drags in the whole pipeline, whose source detection resolves
base models through `mlx_grpo.models.resolve`, which itself builds
`builtin:smollm2-135m-instruct` with the GGUF reader.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlx_grpo.converters.info import describe
    from mlx_grpo.converters.pipeline import ConvertOptions, convert
    from mlx_grpo.converters.quantize import QuantSpec
    from mlx_grpo.converters.smollm import smollm2_gguf

_HOME = {
    "ConvertOptions": "pipeline",
    "convert": "pipeline",
    "describe": "info",
    "QuantSpec": "quantize",
    "smollm2_gguf": "smollm",
}
__all__ = ["ConvertOptions", "QuantSpec", "convert", "describe", "smollm2_gguf"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
