"""Weight conversion between Hugging Face, GGUF and MLX folders.

`convert(src, out, ConvertOptions(...))` is the one entry point (the `mlx-grpo convert`
command calls it); `describe(path)` is `--info`; `smollm2_gguf()` fetches a real model.
"""

from mlx_grpo.converters.info import describe
from mlx_grpo.converters.pipeline import ConvertOptions, convert
from mlx_grpo.converters.quantize import QuantSpec
from mlx_grpo.converters.smollm import smollm2_gguf

__all__ = ["ConvertOptions", "QuantSpec", "convert", "describe", "smollm2_gguf"]
