"""Peak-memory planner: will this training config fit on that machine? Answered before loading.

Notation. Architecture: L layers, hidden D, MLP width I, H query heads and Hkv key/value heads
of size hd, vocabulary V; b = bytes per element of the training dtype (`model.dtype`, else the
checkpoint's). Run: B prompts x G completions, prompt P = `rollout.max_prompt_length` tokens
(the longest prompt kept; `--prompt-length` for your data's), completion C =
`max_completion_length` (worst case: every completion runs to the limit), A = gradient
accumulation steps, c = `logprob_chunk_size`. The shapes are the trainer's own
(`train.batch`: `BatchSpec`, `shared_widths`, `row_widths`), padded to a multiple m (32; 128
when the device is an NVIDIA GPU): micro-batch rows R = B*G/A; prompts are shared, so each of
the prompt slots runs Wp = round_m(P) tokens once and each row Tc = round_m(C - 1)
completion tokens attending to Wp + Tc positions, and the head scores Tc + 1 positions per
row (checkpointing bodies outside `models.families.LAYERWISE_MODELS`: R whole rows of
S = round_m(P + C) tokens, round_m(C) of them scored).

A step has three phases that never overlap (the KV cache is freed before scoring, the
activations before the optimizer step):

    peak = always + max(rollout, update, optimizer)

always (held for the whole run)
  weights     params x b; quantized layers: bits/8 + 2*b/group_size (scale+bias) per weight
  adapters    LoRA: r*(in+out) per adapted linear (+ out for DoRA), float32 (mlx-lm's init)
  optimizer   AdamW m and v: 2 x trainable bytes (same dtype as the trained parameters)
  reference   frozen copy of the weights: full/partial with beta > 0; else none
rollout
  KV cache    2 (k, v) x L x Hkv x hd x b x B*G x (P + 256*ceil(C/256))  (the cache grows in
              steps of 256), x KV_COPIES: when a BatchKVCache grows or merges, the old and the
              new buffer coexist (measured: 2.0-2.1 x on CPU), + the B per-prompt caches
update (one micro-batch forward + backward)
  gradients   trainable bytes; x2 with A > 1 (the running sum and the new micro-batch's:
              `Trainer.update` keeps the sum while the next micro-batch's backward runs);
              full fine-tuning adds one [V, D] buffer (the head's gradient, summed per chunk)
  activations per token and layer the backward pass keeps
                  a = 5*D + (H + 2*Hkv)*hd + 4*I + H*S
              (layer input, two norm outputs, residual, attention output; q, k, v; gate, up,
              silu, product; the softmax probabilities of attention), times tokens x b, for
                  no checkpointing:  (L + BACKWARD_LAYERS) * a
                  checkpointing:     L * D + (1 + BACKWARD_LAYERS) * a
              (checkpointing keeps only layer inputs and recomputes one layer at a time), plus
              the completions' gathered copies of their prompt's keys and values.
              BACKWARD_LAYERS = 2: the layer being differentiated needs its cotangents plus the
              vjp temporaries, measured at 1.7-2.1 layers' worth on MLX's CPU backend.
  log-probs   LOGPROB_BUFFERS = 3 float32 [R, min(c, Tc), V] buffers (logits, softmax, grad)
optimizer (the AdamW step)
  gradients   the summed set, + its clipped copy with `max_grad_norm`
  temporaries OPTIMIZER_SETS x trainable bytes: new m, v and parameters built before the old
              ones are released

Calibrated against `mx.get_peak_memory()` of real training steps (tests/test_planner.py and
benchmarks/bench_planner_3b_shape.py): the constants above are the only fitted numbers.
Fused attention kernels (cuDNN on CUDA) do not keep H*S per token, so on a GPU the
activation row is an upper bound.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
from dataclasses import dataclass
from typing import Any

from mlx_grpo.config import TrainConfig
from mlx_grpo.errors import UserError
from mlx_grpo.models.families import LAYERWISE_MODELS
from mlx_grpo.models.policy import adapted_layers
from mlx_grpo.plan.architecture import (
    Architecture,
    Quantization,
    UnknownArchitecture,
    read_architecture,
)
from mlx_grpo.train.batch import BatchSpec, pad_multiple, round_up, row_widths, shared_widths

KV_COPIES = 2.0
BACKWARD_LAYERS = 2
LOGPROB_BUFFERS = 3
KV_STEP = 256
OPTIMIZER_SETS = 2
PHASES = ("rollout", "update", "optimizer")  # in this order; they never overlap
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
GB = 1e9


@dataclass
class Row:
    """One line of the plan: what holds memory, how much, and in which phase."""

    name: str
    bytes: int
    note: str
    phase: str  # "always" or one of PHASES


@dataclass
class Plan:
    """Rows plus the predicted peak (always + the largest of the phases)."""

    rows: list[Row]
    params: int
    trainable: int
    shapes: Shapes
    arch: Architecture

    def phase_total(self, phase: str) -> int:
        return sum(r.bytes for r in self.rows if r.phase == phase)

    @property
    def peak_phase(self) -> str:
        return max(PHASES, key=self.phase_total)

    @property
    def total(self) -> int:
        return self.phase_total("always") + self.phase_total(self.peak_phase)


# ---------------------------------------------------------------- parameter counts


def layer_linears(arch: Architecture) -> dict[str, tuple[int, int]]:
    """(in, out) of each linear layer of one transformer block (mlx-lm's key names)."""
    d, i, hd = arch.hidden_size, arch.intermediate_size, arch.head_dim
    q, kv = arch.num_attention_heads * hd, arch.num_key_value_heads * hd
    return {
        "self_attn.q_proj": (d, q),
        "self_attn.k_proj": (d, kv),
        "self_attn.v_proj": (d, kv),
        "self_attn.o_proj": (q, d),
        "mlp.gate_proj": (d, i),
        "mlp.up_proj": (d, i),
        "mlp.down_proj": (i, d),
    }


def layer_small_params(arch: Architecture) -> int:
    """Per-layer parameters outside the linear weights: two norms and the qkv biases."""
    heads = arch.num_attention_heads + 2 * arch.num_key_value_heads
    bias = heads * arch.head_dim if arch.attention_bias else 0
    return 2 * arch.hidden_size + bias


def param_counts(arch: Architecture) -> dict[str, int]:
    """Parameter counts: per-layer linears, per-layer small, embeddings (+ untied head)."""
    linear = sum(a * b for a, b in layer_linears(arch).values())
    embed = arch.vocab_size * arch.hidden_size
    head = 0 if arch.tie_word_embeddings else embed
    return {
        "layer_linear": linear,
        "layer_small": layer_small_params(arch),
        "embed": embed + head,
        "final_norm": arch.hidden_size,
    }


def total_params(arch: Architecture) -> int:
    c = param_counts(arch)
    return (
        arch.num_hidden_layers * (c["layer_linear"] + c["layer_small"])
        + c["embed"]
        + (c["final_norm"])
    )


def trainable_params(cfg: TrainConfig, arch: Architecture) -> int:
    """Parameters the optimizer updates: all, the last N layers, or the LoRA/DoRA adapters."""
    lora = cfg.lora
    n = adapted_layers(arch.num_hidden_layers, lora)
    c = param_counts(arch)
    if lora.fine_tune_type == "full":
        return total_params(arch)
    if lora.fine_tune_type == "partial":
        return n * (c["layer_linear"] + c["layer_small"])
    linears = layer_linears(arch)
    keys = lora.keys if lora.keys is not None else list(linears)
    per_layer = sum(lora.rank * (linears[k][0] + linears[k][1]) for k in keys if k in linears)
    if lora.fine_tune_type == "dora":
        per_layer += sum(linears[k][1] for k in keys if k in linears)
    return n * per_layer


def dtype_bytes(cfg: TrainConfig, arch: Architecture) -> int:
    """Bytes per element of the weights and activations (`model.dtype`, else the checkpoint's)."""
    name = cfg.model.dtype or arch.dtype
    return DTYPE_BYTES.get(name, 4)


def quantization(cfg: TrainConfig, arch: Architecture) -> Quantization | None:
    """The base weights' quantization: an already-quantized model's, or the config's QLoRA."""
    if arch.quantization is not None:
        return arch.quantization
    if cfg.model.quantize_bits is not None:
        return Quantization(cfg.model.quantize_bits, cfg.model.quantize_group_size)
    return None


def weight_bytes(cfg: TrainConfig, arch: Architecture) -> int:
    """Weights in memory: b per parameter, or bits/8 + 2*b/group per quantized weight."""
    b, c, layers = dtype_bytes(cfg, arch), param_counts(arch), arch.num_hidden_layers
    small = layers * c["layer_small"] + c["final_norm"]
    big = layers * c["layer_linear"] + c["embed"]
    quant = quantization(cfg, arch)
    if quant is None:
        return (small + big) * b
    return small * b + math.ceil(big * (quant.bits / 8 + 2 * b / quant.group_size))


# ---------------------------------------------------------------- shapes


@dataclass
class Shapes:
    """The padded sizes one training step works with (see the module docstring)."""

    prompt: int  # P
    completion: int  # C
    rows: int  # micro-batch rows R
    prompt_slots: int  # distinct prompts per micro-batch when prompts are shared
    prompt_width: int  # Wp
    width: int  # Tc: completion positions run through the layers
    seq: int  # S: whole rows (per-row scoring)
    row_width: int  # completion positions of a whole row
    shared_prompts: bool  # prompts shared (else whole rows: checkpointing, other bodies)
    cache: int  # KV cache capacity per sequence during the rollout
    multiple: int  # m: lengths are padded to multiples of it

    @classmethod
    def of(
        cls, cfg: TrainConfig, arch: Architecture, prompt_length: int | None, multiple: int
    ) -> Shapes:
        p = prompt_length or cfg.rollout.max_prompt_length
        c = cfg.rollout.max_completion_length
        checkpointing = cfg.model.gradient_checkpointing
        spec = BatchSpec.of(cfg, not checkpointing or arch.model_type in LAYERWISE_MODELS, multiple)
        prompt_width, completion_width = shared_widths(p, c, multiple)
        seq, row_width = row_widths(p + c, c, multiple)
        return cls(
            prompt=p,
            completion=c,
            rows=spec.rows,
            prompt_slots=spec.prompt_slots,
            prompt_width=prompt_width,
            width=completion_width - 1,  # token t predicts t + 1; the prompt predicts token 0
            seq=seq,
            row_width=row_width,
            shared_prompts=spec.shared_prompts,
            cache=p + KV_STEP * math.ceil(c / KV_STEP),
            multiple=multiple,
        )

    @property
    def head_positions(self) -> int:
        """Positions per row the output head projects to the vocabulary."""
        return self.width + 1 if self.shared_prompts else self.row_width


# ---------------------------------------------------------------- the rows


def _gb(n: float) -> str:
    return f"{n / GB:.2f} GB"


def trainable_bytes(cfg: TrainConfig, arch: Architecture) -> int:
    """Bytes of the trained parameters (and so of one gradient set): adapters are float32
    (mlx-lm's initialisation), trained weights keep the training dtype."""
    adapters = cfg.lora.fine_tune_type in ("lora", "dora")
    return trainable_params(cfg, arch) * (4 if adapters else dtype_bytes(cfg, arch))


def static_rows(cfg: TrainConfig, arch: Architecture) -> list[Row]:
    """Weights, adapters, optimizer state and reference: held for the whole run."""
    b, lora = dtype_bytes(cfg, arch), cfg.lora
    weights, quant = weight_bytes(cfg, arch), quantization(cfg, arch)
    total, trainable = total_params(arch), trainable_params(cfg, arch)
    kind = f"{quant.bits}-bit (group {quant.group_size})" if quant else f"{b * 8}-bit floats"
    adapters = lora.fine_tune_type in ("lora", "dora")
    t_bytes = trainable_bytes(cfg, arch)
    share = f"{trainable / 1e6:,.1f}M of {total / 1e6:,.1f}M params"
    ref = weights if not adapters and cfg.objective.beta > 0 else 0
    ref_note = (
        "frozen copy of the weights (beta > 0)"
        if ref
        else ("none: beta = 0" if cfg.objective.beta == 0 else "none: adapters switched off")
    )
    return [
        Row("weights", weights, f"{total / 1e6:,.1f}M params, {kind}", "always"),
        Row(
            "trainable parameters",
            t_bytes if adapters else 0,
            f"{share}"
            + (
                f" ({lora.fine_tune_type} rank {lora.rank}, float32)"
                if adapters
                else " (the weights themselves)"
            ),
            "always",
        ),
        Row("optimizer state", 2 * t_bytes, "AdamW m and v: 2 x trainable", "always"),
        Row("reference policy", ref, ref_note, "always"),
    ]


def kv_bytes(cfg: TrainConfig, arch: Architecture, shapes: Shapes) -> int:
    """Rollout KV caches: B*G sequences at full capacity (x KV_COPIES) + B prompt caches."""
    per_token = 2 * arch.num_hidden_layers * arch.num_key_value_heads * arch.head_dim
    per_token *= dtype_bytes(cfg, arch)
    sequences = cfg.batch_size * cfg.rollout.group_size
    prompts = cfg.batch_size * round_up(shapes.prompt, KV_STEP)
    return int(per_token * (KV_COPIES * sequences * shapes.cache + prompts))


def layer_values(arch: Architecture, attended: int) -> int:
    """Values one layer keeps per token for its backward pass (tokens attending to
    `attended` positions): a = 5*D + (H + 2*Hkv)*hd + 4*I + H*attended."""
    d, i, hd = arch.hidden_size, arch.intermediate_size, arch.head_dim
    h, kv = arch.num_attention_heads, arch.num_key_value_heads
    return 5 * d + (h + 2 * kv) * hd + 4 * i + h * attended


def activation_values(arch: Architecture, attended: int, checkpointing: bool) -> int:
    """Values kept per scored token for the backward pass, over all layers."""
    layers, per_layer = arch.num_hidden_layers, layer_values(arch, attended)
    if checkpointing:
        return layers * arch.hidden_size + (1 + BACKWARD_LAYERS) * per_layer
    return (layers + BACKWARD_LAYERS) * per_layer


def activation_bytes(
    cfg: TrainConfig, arch: Architecture, shapes: Shapes, checkpointing: bool
) -> int:
    """Prompts shared (`logprobs.shared_prefix_hidden`): each of the prompt slots runs once
    (Wp tokens) and the R completions run Tc tokens, attending to Wp + Tc positions, against
    gathered copies of their prompt's keys and values (2 x Hkv x hd x R x Wp per layer: all
    layers without checkpointing, one at a time with it). Checkpointing bodies that cannot run
    layer by layer (`models.families.LAYERWISE_MODELS`) scores R whole rows of S tokens."""
    b, layers = dtype_bytes(cfg, arch), arch.num_hidden_layers
    if checkpointing and arch.model_type not in LAYERWISE_MODELS:
        return activation_values(arch, shapes.seq, True) * shapes.rows * shapes.seq * b
    prompt, attended = shapes.prompt_width, shapes.prompt_width + shapes.width
    p_tokens, c_tokens = shapes.prompt_slots * prompt, shapes.rows * shapes.width
    gathered = 2 * arch.num_key_value_heads * arch.head_dim * shapes.rows * prompt
    if not checkpointing:
        values = p_tokens * activation_values(arch, prompt, False)
        values += c_tokens * activation_values(arch, attended, False) + layers * gathered
        return values * b
    inputs = layers * arch.hidden_size * (p_tokens + c_tokens)
    one_layer = p_tokens * layer_values(arch, prompt) + c_tokens * layer_values(arch, attended)
    return (inputs + (1 + BACKWARD_LAYERS) * one_layer + gathered) * b


def head_gradient_row(cfg: TrainConfig, arch: Architecture) -> Row:
    """A trained output projection (full fine-tuning) gets its [V, D] gradient per log-prob
    chunk, summed into the running one (and, tied, into the embedding lookup's): one more
    [V, D] buffer beside the gradient set (measured 2.05 x V x D with a tied head)."""
    if cfg.lora.fine_tune_type != "full":
        return Row("output-projection gradient buffer", 0, "none: the head is frozen", "update")
    size = arch.vocab_size * arch.hidden_size * dtype_bytes(cfg, arch)
    note = f"[{arch.vocab_size}, {arch.hidden_size}]: summed over log-prob chunks"
    return Row("output-projection gradient buffer", size, note, "update")


def optimizer_rows(cfg: TrainConfig, grads: int) -> list[Row]:
    """The optimizer step: the summed gradients (clipped: a scaled copy) and AdamW's new m, v
    and parameters, computed before the old ones are released (OPTIMIZER_SETS sets, measured)."""
    clipped = grads if cfg.optimizer.max_grad_norm is not None else 0
    return [
        Row("gradients at the step", grads + clipped, "summed (+ clipped copy)", "optimizer"),
        Row(
            "AdamW update temporaries",
            OPTIMIZER_SETS * grads,
            f"{OPTIMIZER_SETS} x trainable: new m, v, parameters",
            "optimizer",
        ),
    ]


def accumulation_row(cfg: TrainConfig, grads: int) -> Row:
    """With A > 1 micro-batches the running gradient sum is held while the next micro-batch's
    backward builds its own full set (`Trainer.update`): a second set of gradients."""
    if cfg.optimizer.gradient_accumulation_steps == 1:
        return Row("accumulated gradients", 0, "none: one micro-batch per update", "update")
    note = "running sum over micro-batches, held while the next one's gradients are built"
    return Row("accumulated gradients", grads, note, "update")


def dynamic_rows(cfg: TrainConfig, arch: Architecture, shapes: Shapes) -> list[Row]:
    """Rollout KV cache, and the update's gradients, activations and log-prob buffers."""
    checkpointing = cfg.model.gradient_checkpointing
    grads = trainable_bytes(cfg, arch)
    on, off = activation_bytes(cfg, arch, shapes, True), activation_bytes(cfg, arch, shapes, False)
    chunk = min(cfg.objective.logprob_chunk_size, shapes.head_positions)
    logp = LOGPROB_BUFFERS * shapes.rows * chunk * arch.vocab_size * 4
    bg = cfg.batch_size * cfg.rollout.group_size
    return [
        Row(
            "rollout KV cache",
            kv_bytes(cfg, arch, shapes),
            f"{bg} sequences x {shapes.cache} tokens (prompt {shapes.prompt} + completion "
            f"{shapes.completion}, grown in steps of {KV_STEP})",
            "rollout",
        ),
        Row("gradients", grads, "one set, same dtype as the trained parameters", "update"),
        accumulation_row(cfg, grads),
        head_gradient_row(cfg, arch),
        Row(
            f"scoring activations ({'with' if checkpointing else 'no'} checkpointing)",
            on if checkpointing else off,
            f"{shapes.rows} rows x {shapes.seq} tokens; {_gb(off)} without checkpointing, "
            f"{_gb(on)} with",
            "update",
        ),
        Row(
            "log-prob buffers",
            logp,
            f"{LOGPROB_BUFFERS} float32 [{shapes.rows}, {chunk}, {arch.vocab_size}] chunks",
            "update",
        ),
        *optimizer_rows(cfg, grads),
    ]


def plan(
    cfg: TrainConfig,
    arch: Architecture,
    prompt_length: int | None = None,
    multiple: int | None = None,
) -> Plan:
    """Predicted peak memory of training `cfg` on a model of shape `arch`, with lengths
    padded to `multiple` (default: what this machine's backend pads to)."""
    shapes = Shapes.of(cfg, arch, prompt_length, multiple or pad_multiple())
    rows = static_rows(cfg, arch) + dynamic_rows(cfg, arch, shapes)
    return Plan(rows, total_params(arch), trainable_params(cfg, arch), shapes, arch)


# ---------------------------------------------------------------- devices

GIB = 2**30
CUDA_RESERVE = int(1.5 * GIB)  # CUDA context, cuBLAS/cuDNN workspaces: outside MLX's count
NVIDIA = {
    "h100": (80, 94),
    "h200": (141,),
    "a100": (40, 80),
    "l40s": (48,),
    "a10": (24,),
    "l4": (24,),
    "rtx4090": (24,),
    "rtx3090": (24,),
    "a6000": (48,),
}
APPLE = re.compile(r"^m[1-5](-(pro|max|ultra))?-(\d+)gb$")
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(gib|gb|g|mib|mb|m)\s*$", re.IGNORECASE)
UNITS = {"gib": GIB, "g": GIB, "gb": GB, "mib": 2**20, "mb": 1e6, "m": 2**20}


def apple_usable(ram: int) -> int:
    """What MLX may use on a Mac: macOS keeps about a quarter of RAM (at least 4 GiB) for
    itself, and Metal's default wired limit (recommendedMaxWorkingSetSize) is ~75% of RAM."""
    return int(ram - max(4 * GIB, ram // 4))


def device_memory(spec: str) -> int:
    """Usable bytes for `80GB`, `24GiB`, `h100-80gb`, `a100-40gb`, `m3-max-64gb`, ..."""
    s = spec.strip().lower()
    if match := SIZE.match(s):
        return int(float(match.group(1)) * UNITS[match.group(2).lower()])
    if match := APPLE.match(s):
        return apple_usable(int(match.group(3)) * GIB)
    name, _, size = s.rpartition("-")
    gb = size[:-2] if size.endswith("gb") and size[:-2].isdigit() else ""
    if name in NVIDIA and gb and int(gb) in NVIDIA[name]:
        return int(gb) * GIB - CUDA_RESERVE
    raise UserError(f"unknown memory size or device {spec!r}; {device_help()}")


def device_help() -> str:
    nvidia = ", ".join(f"{n}-{g}gb" for n, sizes in NVIDIA.items() for g in sizes)
    return (
        f"give a size (80GB, 24GiB) or a device: {nvidia}; or a Mac as "
        "m1-16gb, m2-pro-32gb, m3-max-64gb, m4-max-128gb"
    )


def device_note(spec: str | None) -> str:
    """How the usable memory of a device was worked out (shown under the table)."""
    if spec is None:
        return "this machine's memory"
    s = spec.strip().lower()
    if APPLE.match(s):
        return "Mac: RAM minus max(4 GiB, 25%) kept by macOS / the Metal wired limit"
    if s.split("-")[0] in NVIDIA:
        return "GPU memory minus 1.5 GiB for the CUDA context and library workspaces"
    return "as given"


def device_pad_multiple(spec: str | None) -> int:
    """The multiple training pads lengths to on a device: 128 on an NVIDIA GPU (cuDNN's fused
    attention), 32 on a Mac; for a bare size or this machine, what this backend pads to."""
    s = (spec or "").strip().lower()
    if s.split("-")[0] in NVIDIA:
        return pad_multiple(on_cuda=True)
    if APPLE.match(s):
        return pad_multiple(on_cuda=False)
    return pad_multiple()


def machine_memory() -> int:
    """This machine: Metal/CUDA device memory if MLX reports it, else total RAM."""
    import mlx.core as mx

    info: dict[str, Any] = {}
    for getter in (
        getattr(mx, "device_info", None),
        getattr(getattr(mx, "metal", None), "device_info", None),
    ):
        try:
            info = dict(getter()) if getter else {}
        except Exception:  # no device info on this backend
            info = {}
        if info:
            break
    for key in ("memory_size", "total_memory"):
        if isinstance(info.get(key), int) and info[key] > 0:
            ram = int(info[key])
            return apple_usable(ram) if key == "memory_size" else ram - CUDA_RESERVE
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


# ---------------------------------------------------------------- what to change


def _variants(cfg: TrainConfig) -> list[tuple[str, TrainConfig]]:
    """Candidate changes, each as (how to say it, the changed config)."""
    out: list[tuple[str, TrainConfig]] = []

    def change(text: str, edit: Any) -> None:
        new = copy.deepcopy(cfg)
        edit(new)
        out.append((text, new))

    rollouts, acc = (
        cfg.batch_size * cfg.rollout.group_size,
        cfg.optimizer.gradient_accumulation_steps,
    )
    if not cfg.model.gradient_checkpointing:
        change(
            "--set model.gradient_checkpointing=true",
            lambda c: setattr(c.model, "gradient_checkpointing", True),
        )
    if rollouts % (2 * acc) == 0:
        change(
            f"--set optimizer.gradient_accumulation_steps={2 * acc} (same batch, smaller "
            "micro-batches)",
            lambda c: setattr(c.optimizer, "gradient_accumulation_steps", 2 * acc),
        )
    if cfg.rollout.group_size >= 4:
        change(
            f"--set rollout.group_size={cfg.rollout.group_size // 2}",
            lambda c: setattr(c.rollout, "group_size", c.rollout.group_size // 2),
        )
    if cfg.rollout.max_completion_length >= 64:
        change(
            f"--set rollout.max_completion_length={cfg.rollout.max_completion_length // 2}",
            lambda c: setattr(
                c.rollout, "max_completion_length", c.rollout.max_completion_length // 2
            ),
        )
    out += _model_variants(cfg)
    return out


def _model_variants(cfg: TrainConfig) -> list[tuple[str, TrainConfig]]:
    """Train less of the model: no reference, LoRA instead of full, a 4-bit base."""
    out = []
    if cfg.objective.beta > 0 and cfg.lora.fine_tune_type in ("full", "partial"):
        new = copy.deepcopy(cfg)
        new.objective.beta = 0.0
        out.append(("--set objective.beta=0 (no reference copy)", new))
    if cfg.lora.fine_tune_type in ("full", "partial"):
        new = copy.deepcopy(cfg)
        new.lora.fine_tune_type = "lora"
        out.append(("--set lora.fine_tune_type=lora", new))
    if cfg.model.quantize_bits is None:
        new = copy.deepcopy(cfg)
        new.lora.fine_tune_type = (
            "lora" if new.lora.fine_tune_type not in ("lora", "dora") else new.lora.fine_tune_type
        )
        new.model.quantize_bits = 4
        out.append(("--set model.quantize_bits=4 (QLoRA: adapters over a 4-bit base)", new))
    return out


def advice(
    p: Plan, budget: int, cfg: TrainConfig, arch: Architecture, prompt_length: int | None = None
) -> list[str]:
    """Concrete changes that lower the peak, biggest saving first, marked when one alone fits."""
    found = []
    for text, new in _variants(cfg):
        other = plan(new, arch, prompt_length, p.shapes.multiple)
        saving = p.total - other.total
        if saving >= 0.01 * p.total:
            fits = " -> fits" if other.total <= budget else ""
            found.append((saving, f"{text}: saves {_gb(saving)} (peak {_gb(other.total)}){fits}"))
    return [text for _, text in sorted(found, key=lambda x: -x[0])]


# ---------------------------------------------------------------- text and the training check


def render_text(p: Plan, budget: int | None = None, budget_note: str = "") -> str:
    """The plan as a plain-text table (what `train` prints when it refuses a config)."""
    lines = [f"{'':2}{'memory':<42}{'phase':<9}{'size':>10}  note"]
    for r in p.rows:
        lines.append(f"{'':2}{r.name:<42}{r.phase:<9}{_gb(r.bytes):>10}  {r.note}")
    lines.append(
        f"{'':2}{'predicted peak':<42}{p.peak_phase:<9}{_gb(p.total):>10}  always + {p.peak_phase}"
    )
    if budget is not None:
        verdict = "fits" if p.total <= budget else "does NOT fit"
        lines.append(f"{'':2}{'available':<42}{'':<9}{_gb(budget):>10}  {budget_note} -> {verdict}")
    return "\n".join(lines)


def per_rank(cfg: TrainConfig, ranks: int) -> TrainConfig:
    """The config one of `ranks` data-parallel ranks trains: batch_size / ranks prompts
    (every other shape, and everything each rank holds, is that of the full config)."""
    if ranks == 1:
        return cfg
    return dataclasses.replace(cfg, batch_size=max(cfg.batch_size // ranks, 1))


def allreduce_bytes(cfg: TrainConfig, arch: Architecture) -> int:
    """Bytes one data-parallel update all-reduces: one gradient set, in the trained dtype
    (a ring all-reduce sends and receives about 2 (N - 1) / N of it on each rank)."""
    return trainable_bytes(cfg, arch)


def ranks_note(cfg: TrainConfig, arch: Architecture, ranks: int) -> str:
    """What `plan --ranks` adds under the per-device table: the split and the traffic."""
    g, mu = cfg.rollout.group_size, cfg.objective.num_iterations
    volume = allreduce_bytes(cfg, arch)
    return (
        f"{ranks} ranks: global batch {cfg.batch_size} prompts x {g} = "
        f"{cfg.batch_size * g} rollouts per step; each device takes "
        f"{cfg.batch_size // ranks} x {g} (the table above). All-reduce per update: "
        f"{volume / 1e6:,.1f} MB of gradients ({trainable_params(cfg, arch) / 1e6:,.1f}M "
        f"trainable parameters), {mu} update(s) per step"
    )


def check_before_training(
    cfg: TrainConfig, memory: str | None = None, prompt_length: int | None = None, ranks: int = 1
) -> None:
    """Raise a UserError with the plan and advice when `cfg` will not fit in `memory`
    (a size or device name; None: this machine). Reads only the model's config.json.
    With several ranks, what one rank needs on its own device (`per_rank`)."""
    cfg = per_rank(cfg, ranks)
    try:
        arch = read_architecture(cfg.model.path)
    except UnknownArchitecture:  # a hub model not downloaded yet: training will fetch it
        return
    budget = device_memory(memory) if memory else machine_memory()
    p = plan(cfg, arch, prompt_length, device_pad_multiple(memory))
    if p.total <= budget:
        return
    tips = advice(p, budget, cfg, arch, prompt_length)
    raise UserError(
        f"this config needs about {_gb(p.total)} at its peak, more than the "
        f"{_gb(budget)} available:\n{render_text(p, budget, device_note(memory))}\n"
        + ("to fit, try:\n" + "\n".join(f"  {t}" for t in tips) + "\n" if tips else "")
        + "(train anyway with --force)"
    )
