"""Loading the policy through mlx-lm and choosing what is trained.

LoRA/DoRA adapters (mlx-lm's own layers, so `mlx_lm.generate --adapter-path` loads what we save),
full fine-tuning, or full fine-tuning of the last N layers ("partial"); optionally over a
4-bit base (QLoRA). The KL reference is the same model with its adapters switched off, or a
frozen copy when all weights train.
"""

from __future__ import annotations

import contextlib
import copy
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from mlx_grpo.config import LoraConfig, ModelConfig
from mlx_grpo.errors import UserError
from mlx_grpo.models.fastmath import use_fast_swiglu
from mlx_grpo.models.resolve import check_model_folder, resolve_model_path


@dataclass
class Policy:
    """The model being trained plus what is needed to save and reload it."""

    model: nn.Module
    tokenizer: Any  # mlx_lm TokenizerWrapper
    config: dict[str, Any]  # the model's config.json
    path: Path  # local folder the weights came from
    lora: LoraConfig

    @property
    def uses_adapters(self) -> bool:
        return self.lora.fine_tune_type in ("lora", "dora")


def _remote_code_hint(exc: Exception, trust: bool) -> str:
    """transformers says "pass trust_remote_code=True"; in a config that is this key."""
    if trust or "trust_remote_code" not in str(exc):
        return ""
    return " (to allow it: model.trust_remote_code: true, only for a repo you trust)"


def load_policy(model_cfg: ModelConfig, lora_cfg: LoraConfig) -> Policy:
    """Load the model and tokenizer, cast/quantize the base, and mark the trainable part."""
    from mlx_lm import load

    spec = resolve_model_path(model_cfg.path)
    check_model_folder(spec)
    trust = model_cfg.trust_remote_code
    if trust:
        print(
            "warning: model.trust_remote_code is on: the model repo's own Python code may run",
            file=sys.stderr,
        )
    try:
        model, tokenizer, config = load(
            spec, return_config=True, tokenizer_config={"trust_remote_code": trust}
        )
    except Exception as exc:  # mlx-lm and mx.load raise many kinds (a truncated file: Runtime)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"cannot load model {model_cfg.path!r}: {first}{_remote_code_hint(exc, trust)}",
            where="model.path",
        ) from None
    if model_cfg.dtype is not None:
        model.set_dtype(getattr(mx, model_cfg.dtype))
    if model_cfg.quantize_bits is not None and "quantization" not in config:
        from mlx_lm.utils import quantize_model

        model, config = quantize_model(
            model, config, model_cfg.quantize_group_size, model_cfg.quantize_bits
        )
    apply_trainable(model, lora_cfg)
    use_fast_swiglu(model)
    local = Path(spec) if Path(spec).exists() else Path(_hub_path(spec))
    return Policy(model=model, tokenizer=tokenizer, config=config, path=local, lora=lora_cfg)


def _hub_path(repo: str) -> str:
    from mlx_lm.utils import hf_repo_to_path

    return str(hf_repo_to_path(repo))


def adapter_parameters(lora: LoraConfig) -> dict[str, Any]:
    """The `lora_parameters` block of mlx-lm's adapter_config.json."""
    params: dict[str, Any] = {"rank": lora.rank, "scale": lora.scale, "dropout": lora.dropout}
    if lora.keys is not None:
        params["keys"] = list(lora.keys)
    return params


def adapted_layers(total_layers: int, lora: LoraConfig) -> int:
    """How many of the last layers get adapters (or train, for "partial"): `lora.num_layers`,
    all of them for -1."""
    return total_layers if lora.num_layers < 0 else min(lora.num_layers, total_layers)


def apply_trainable(model: nn.Module, lora: LoraConfig) -> None:
    """Freeze the model, then unfreeze (or insert) exactly what this run trains."""
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model.freeze()
    n = adapted_layers(len(model.layers), lora)
    if lora.fine_tune_type in ("lora", "dora"):
        try:
            linear_to_lora_layers(
                model, n, adapter_parameters(lora), use_dora=lora.fine_tune_type == "dora"
            )
        except ValueError as exc:
            raise UserError(str(exc), where="lora.keys") from None
        if not tree_flatten(model.trainable_parameters()):
            raise UserError(f"no layer matched {lora.keys}", where="lora.keys")
    elif lora.fine_tune_type == "full":
        model.unfreeze()
    else:
        for layer in model.layers[len(model.layers) - n :]:
            layer.unfreeze()


def adapter_config(policy: Policy) -> dict[str, Any]:
    """mlx-lm's adapter_config.json contents for this run's adapters."""
    return {
        "fine_tune_type": policy.lora.fine_tune_type,
        "num_layers": adapted_layers(len(policy.model.layers), policy.lora),
        "lora_parameters": adapter_parameters(policy.lora),
        "base_model": str(policy.path),
    }


def _adapter_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    from mlx_lm.tuner.dora import DoRALinear
    from mlx_lm.tuner.lora import LoRALinear

    return [(k, m) for k, m in model.named_modules() if isinstance(m, (LoRALinear, DoRALinear))]


@contextlib.contextmanager
def adapters_disabled(model: nn.Module) -> Iterator[None]:
    """Temporarily put the base layers back in place of the adapter layers (the reference)."""
    adapted = _adapter_modules(model)
    model.update_modules(tree_unflatten([(k, m.linear) for k, m in adapted]))
    try:
        yield
    finally:
        model.update_modules(tree_unflatten(adapted))


def frozen_copy(model: nn.Module) -> nn.Module:
    """A frozen deep copy of the current weights (the reference when all weights train)."""
    ref = copy.deepcopy(model)
    ref.freeze()
    mx.eval(ref.parameters())
    return ref


def trainable_count(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts, counting quantized weights at full size."""
    from mlx_lm.utils import get_total_parameters

    trainable = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    return trainable, get_total_parameters(model)
