"""Quantization settings and the in-memory transforms: cast dtype, quantize, dequantize.

The work is done by mlx-lm (`quantize_model`, `dequantize_model`, its mixed-precision
recipes); this module validates the user's choices first and keeps config.json in step.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
from mlx.utils import tree_map_with_path
from mlx_grpo.converters.loaded import LoadedModel

from mlx_grpo.errors import UserError

DTYPES = {"float16": mx.float16, "bfloat16": mx.bfloat16, "float32": mx.float32}
AFFINE_BITS = (2, 3, 4, 5, 6, 8)
GROUP_SIZES = (32, 64, 128)
# mode -> the one (bits, group size) it allows, or None for affine's free choice
MODES: dict[str, tuple[int, int] | None] = {
    "affine": None,
    "mxfp4": (4, 32),
    "nvfp4": (4, 16),
    "mxfp8": (8, 32),
}
RECIPES = ("mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6")


@dataclass(frozen=True)
class QuantSpec:
    """What `--quantize` asks for: bits, group size, mode, or a mixed-precision recipe."""

    bits: int | None = None
    group_size: int | None = None
    mode: str = "affine"
    recipe: str | None = None

    def resolved(self) -> QuantSpec:
        """Fill defaults and validate; a UserError names the bad flag and the valid values."""
        if self.mode not in MODES:
            raise UserError(f"--mode {self.mode}: unknown; valid: {', '.join(MODES)}")
        fixed = MODES[self.mode]
        if fixed is not None:
            return self._fixed(fixed)
        bits, group = self.bits or 4, self.group_size or 64
        if bits not in AFFINE_BITS:
            raise UserError(f"--bits {bits}: valid for affine: {', '.join(map(str, AFFINE_BITS))}")
        if group not in GROUP_SIZES:
            raise UserError(f"--group-size {group}: valid: {', '.join(map(str, GROUP_SIZES))}")
        if self.recipe is not None and self.recipe not in RECIPES:
            raise UserError(f"--recipe {self.recipe}: valid: {', '.join(RECIPES)}")
        return QuantSpec(bits, group, "affine", self.recipe)

    def _fixed(self, fixed: tuple[int, int]) -> QuantSpec:
        bits, group = fixed
        if (self.bits or bits, self.group_size or group) != fixed or self.recipe:
            raise UserError(
                f"--mode {self.mode}: fixed at {bits} bits, group size {group}, no recipe"
            )
        return QuantSpec(bits, group, self.mode, None)


def cast(loaded: LoadedModel, dtype: str) -> None:
    """Cast the floating-point parameters (not packed integers) to `dtype`."""
    target = DTYPES[dtype]
    model = loaded.model
    keep = getattr(model, "cast_predicate", lambda _: True)

    def convert(path: str, value: mx.array) -> mx.array:
        if keep(path) and mx.issubdtype(value.dtype, mx.floating):
            return value.astype(target)
        return value

    model.update(tree_map_with_path(convert, model.parameters()))
    loaded.config["torch_dtype"] = dtype


def dequantize(loaded: LoadedModel) -> None:
    """Turn every quantized layer back into a float layer and drop the quantization config."""
    from mlx_lm.utils import dequantize_model

    loaded.model = dequantize_model(loaded.model)
    loaded.config.pop("quantization", None)
    loaded.config.pop("quantization_config", None)


def quantize(loaded: LoadedModel, spec: QuantSpec) -> None:
    """Quantize with mlx-lm (re-quantizing an already quantized model from its float values)."""
    from mlx_lm.convert import mixed_quant_predicate_builder
    from mlx_lm.utils import quantize_model

    if loaded.quantized:
        dequantize(loaded)
    predicate: Any = None
    if spec.recipe:
        try:
            predicate = mixed_quant_predicate_builder(spec.recipe, loaded.model, spec.group_size)
        except ValueError as exc:
            raise UserError(f"--recipe {spec.recipe}: {exc}") from exc
    with contextlib.redirect_stdout(io.StringIO()):  # mlx-lm prints bits per weight
        loaded.model, loaded.config = quantize_model(
            loaded.model, loaded.config, spec.group_size, spec.bits, mode=spec.mode,
            quant_predicate=predicate,
        )  # fmt: skip
