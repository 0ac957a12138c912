"""The training batch: one step's kept rollouts packed into micro-batches of a fixed shape.

Everything about the shape of what the compiled loss sees is decided here, and nowhere else
(the memory planner calls these same functions):

- which completions train: those of groups whose rewards differ (`objective.informative_groups`);
- micro-batches of `rows = B * G / gradient_accumulation_steps` rows, the last padded with inert
  rows (mask 0, advantage 0) so every micro-batch has the same row count;
- the packing: each distinct prompt once, left-padded, with its completions right-padded and
  pointing at it through `owner` (`pack_groups`, `SharedTokens`), or, when gradient
  checkpointing needs whole rows, prompt + completion per row (`pack`, `RowTokens`);
- a fixed number of prompt slots per micro-batch, and lengths rounded up to a multiple (32;
  128 on CUDA, where cuDNN's fused attention backward needs it), so compiled steps are reused.

`TrainBatch` is the one structure carried whole into the compiled loss: tokens, loss mask,
advantages, normalizer, and the old-policy / reference log-probs when the run computes them.
It is a tree of NamedTuples because that is what `mx.compile` takes as an argument: nested
tuples, lists and dicts of arrays, with None and numbers as constants (a dataclass is refused),
and a NamedTuple keeps its field names inside the compiled function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import mlx.core as mx
import numpy as np

from mlx_grpo.config import TrainConfig
from mlx_grpo.train.objective import normalizer
from mlx_grpo.train.rollout import RolloutBatch

PAD_MULTIPLE, CUDA_PAD_MULTIPLE = 32, 128


# ----------------------------------------------------------------------------- shapes


def round_up(n: int, multiple: int) -> int:
    """n rounded up to a multiple (at least one multiple)."""
    return max(multiple, -(-n // multiple) * multiple)


def pad_multiple(on_cuda: bool | None = None) -> int:
    """The multiple scored lengths are padded to on this backend (or the one named)."""
    if on_cuda is None:
        cuda = getattr(mx, "cuda", None)
        on_cuda = bool(cuda and cuda.is_available() and mx.default_device() == mx.gpu)
    return CUDA_PAD_MULTIPLE if on_cuda else PAD_MULTIPLE


def micro_batch_rows(rollouts: int, accumulation_steps: int) -> int:
    """Rows of every micro-batch: the B * G rollouts split into `accumulation_steps` parts."""
    return rollouts // accumulation_steps


def prompt_slots(batch_size: int, group_size: int, rows: int) -> int:
    """Distinct prompts a micro-batch can hold: its rows span at most ceil(rows / G) + 1
    groups (a micro-batch may start inside a group), and never more than the B prompts."""
    return min(batch_size, -(-rows // group_size) + 1)


def shared_widths(longest_prompt: int, longest_completion: int, multiple: int) -> tuple[int, int]:
    """(prompt width, completion width T) of `pack_groups`: the completions' query length
    T - 1 is what is rounded up (token t predicts token t + 1; the prompt predicts token 0)."""
    return round_up(longest_prompt, multiple), round_up(longest_completion - 1, multiple) + 1


def row_widths(longest_row: int, longest_completion: int, multiple: int) -> tuple[int, int]:
    """(sequence width S, completion width T) of `pack`: prompt + completion per row."""
    return round_up(longest_row, multiple), round_up(longest_completion, multiple)


# ----------------------------------------------------------------------------- packing


class RowTokens(NamedTuple):
    """Per-row packing: each row is its prompt + completion."""

    inputs: mx.array  # [N, S] token ids
    positions: mx.array  # [N, T] index of the hidden state that predicts completion token t
    targets: mx.array  # [N, T] completion token ids (0 where padded)


class SharedTokens(NamedTuple):
    """Shared packing: distinct prompts once (left-padded), completions pointing at them."""

    prompts: mx.array  # [P, Sp] token ids, left-padded
    left_padding: mx.array  # [P] pad tokens before each prompt
    inputs: mx.array  # [N, T] completion token ids (right-padded); also the targets
    owner: mx.array  # [N] index of each completion's prompt


Tokens = RowTokens | SharedTokens


@dataclass
class Packed:
    """`pack`'s result: the tokens and a mask of the real completion tokens."""

    inputs: mx.array
    positions: mx.array
    targets: mx.array
    mask: mx.array  # [N, T] 1.0 on real completion tokens

    @property
    def tokens(self) -> RowTokens:
        return RowTokens(self.inputs, self.positions, self.targets)


@dataclass
class PackedGroups:
    """`pack_groups`'s result: the tokens and a mask of the real completion tokens."""

    prompts: mx.array
    left_padding: mx.array
    inputs: mx.array
    owner: mx.array
    mask: mx.array  # [N, T] 1.0 on real completion tokens

    @property
    def tokens(self) -> SharedTokens:
        return SharedTokens(self.prompts, self.left_padding, self.inputs, self.owner)


def pack(prompts: list[list[int]], completions: list[list[int]], multiple: int = 32) -> Packed:
    """Right-pad prompt+completion pairs to shapes rounded up to `multiple`."""
    lengths = [len(p) + len(c) for p, c in zip(prompts, completions)]
    seq, width = row_widths(max(lengths), max(len(c) for c in completions), multiple)
    n = len(completions)
    inputs = np.zeros((n, seq), dtype=np.int32)
    positions = np.zeros((n, width), dtype=np.int32)
    targets = np.zeros((n, width), dtype=np.int32)
    mask = np.zeros((n, width), dtype=np.float32)
    for i, (p, c) in enumerate(zip(prompts, completions)):
        inputs[i, : len(p) + len(c)] = p + c
        t = len(c)
        positions[i, :t] = np.arange(len(p) - 1, len(p) - 1 + t)
        positions[i, t:] = len(p) - 1
        targets[i, :t] = c
        mask[i, :t] = 1.0
    return Packed(mx.array(inputs), mx.array(positions), mx.array(targets), mx.array(mask))


def pack_groups(
    prompts: list[list[int]], owner: list[int], completions: list[list[int]], multiple: int = 32
) -> PackedGroups:
    """Pack distinct prompts (left-padded) and the completions that continue them
    (right-padded; completion i continues prompt owner[i]) to shapes of `shared_widths`."""
    longest = (max(len(p) for p in prompts), max(len(c) for c in completions))
    width, t = shared_widths(*longest, multiple)
    padded = np.zeros((len(prompts), width), dtype=np.int32)
    for i, p in enumerate(prompts):
        padded[i, width - len(p) :] = p
    ids = np.zeros((len(completions), t), dtype=np.int32)
    mask = np.zeros((len(completions), t), dtype=np.float32)
    for i, c in enumerate(completions):
        ids[i, : len(c)] = c
        mask[i, : len(c)] = 1.0
    left = mx.array([width - len(p) for p in prompts], dtype=mx.int32)
    return PackedGroups(
        mx.array(padded), left, mx.array(ids), mx.array(owner, dtype=mx.int32), mx.array(mask)
    )


# ----------------------------------------------------------------------------- the batch


class TrainBatch(NamedTuple):
    """One micro-batch, exactly as the compiled loss receives it."""

    tokens: Tokens
    mask: mx.array  # [R, T] completion tokens that carry loss
    advantages: mx.array  # [R]
    norm: mx.array  # scalar: what the summed loss is divided by (`objective.normalizer`)
    old_logp: mx.array | None = None  # [R, T] before any update (num_iterations > 1)
    ref_logp: mx.array | None = None  # [R, T] under the reference policy (beta > 0)


@dataclass(frozen=True)
class BatchSpec:
    """How one run packs its micro-batches (fixed for the run, so the compiled step is reused)."""

    rows: int  # rows per micro-batch
    prompt_slots: int  # distinct prompts per micro-batch (shared packing)
    multiple: int  # lengths are rounded up to this
    shared_prompts: bool  # pack_groups (True) or pack (False)
    loss_type: str
    max_completion_length: int
    mask_truncated: bool  # truncated completions carry no loss

    @classmethod
    def of(
        cls, cfg: TrainConfig, shared_prompts: bool, multiple: int | None = None, ranks: int = 1
    ) -> BatchSpec:
        """The spec of one rank of `ranks` (each takes batch_size / ranks prompts)."""
        g, prompts = cfg.rollout.group_size, cfg.batch_size // ranks
        rows = micro_batch_rows(prompts * g, cfg.optimizer.gradient_accumulation_steps)
        return cls(
            rows=rows,
            prompt_slots=prompt_slots(prompts, g, rows),
            multiple=pad_multiple() if multiple is None else multiple,
            shared_prompts=shared_prompts,
            loss_type=cfg.objective.loss_type,
            max_completion_length=cfg.rollout.max_completion_length,
            mask_truncated=cfg.objective.mask_truncated_completions,
        )


def loss_mask(rollout: RolloutBatch, chunk: list[int], mask_truncated: bool) -> np.ndarray:
    """Completion-token mask for a chunk; truncated completions masked if asked."""
    width = max(len(rollout.completion_ids[n]) for n in chunk)
    mask = np.zeros((len(chunk), width), dtype=np.float32)
    for r, n in enumerate(chunk):
        if not (mask_truncated and rollout.truncated[n]):
            mask[r, : len(rollout.completion_ids[n])] = 1.0
    return mask


def even_chunks(rows: list[int], most: int) -> list[list[int]]:
    """`rows` in as few contiguous chunks of at most `most` as possible, their sizes differing
    by at most one: after groups are dropped no micro-batch is left short (under bnpo a short
    one's tokens would weigh more)."""
    if not rows:
        return []
    n = -(-len(rows) // most)
    size, extra = divmod(len(rows), n)
    bounds = [i * size + min(i, extra) for i in range(n + 1)]
    return [rows[bounds[i] : bounds[i + 1]] for i in range(n)]


def micro_batches(
    rollout: RolloutBatch,
    advantages: np.ndarray,
    keep: np.ndarray,
    spec: BatchSpec,
    sum_over_ranks: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[TrainBatch]:
    """The kept completions (groups with `keep`) in micro-batches of `spec.rows` rows.

    With several ranks, `sum_over_ranks` (`World.sum`) makes the normalizers global: kept
    sequences and tokens of the whole generation batch, and under bnpo the tokens of each
    micro-batch index summed over ranks (micro-batch i of every rank is one global one)."""
    g = rollout.group_size
    kept = [n for n in range(len(rollout.completion_ids)) if keep[n // g]]
    chunks = even_chunks(kept, spec.rows)
    masks = [loss_mask(rollout, c, spec.mask_truncated) for c in chunks]
    slots = max(-(-len(rollout.completion_ids) // spec.rows), len(chunks), 1)
    counts = np.zeros(2 + 2 * slots)
    counts[0], counts[1] = len(kept), sum(float(m.sum()) for m in masks)
    for i, m in enumerate(masks):
        counts[2 + i], counts[2 + slots + i] = float(m.sum()), 1.0
    if sum_over_ranks is not None:
        counts = sum_over_ranks(counts)
    sequences, total_tokens = int(round(counts[0])), float(counts[1])
    chunk_count = int((counts[2 + slots :] > 0).sum())
    out = []
    for i, (chunk, mask) in enumerate(zip(chunks, masks)):
        norm = normalizer(
            spec.loss_type,
            np.asarray(counts[2 + i]),  # this micro-batch's tokens (over every rank)
            sequences,
            total_tokens,
            chunk_count,
            spec.max_completion_length,
        )
        out.append(_micro_batch(rollout, chunk, mask, advantages[chunk], norm, spec))
    return out


def _micro_batch(
    rollout: RolloutBatch,
    chunk: list[int],
    mask: np.ndarray,
    advantages: np.ndarray,
    norm: float,
    spec: BatchSpec,
) -> TrainBatch:
    """Pack one chunk, padding it with inert rows (mask 0, advantage 0) up to `spec.rows`."""
    pad = spec.rows - len(chunk)
    completions = [rollout.completion_ids[n] for n in chunk] + [[0]] * pad
    if spec.shared_prompts:
        packed = _pack_shared(rollout, chunk, completions, spec)
    else:
        prompts = [rollout.prompt_of(n) for n in chunk] + [[0]] * pad
        packed = pack(prompts, completions, spec.multiple)
    width = packed.mask.shape[1]
    full_mask = mx.array(np.pad(mask, [(0, pad), (0, width - mask.shape[1])]))
    adv = np.pad(advantages.astype(np.float32), (0, pad))
    old = sampler_logprobs(rollout, chunk, spec.rows, width)
    return TrainBatch(packed.tokens, full_mask, mx.array(adv), mx.array(norm), old_logp=old)


def sampler_logprobs(
    rollout: RolloutBatch, chunk: list[int], rows: int, width: int
) -> mx.array | None:
    """[rows, width] log-probs the sampler recorded for the chunk's completions (zeros past
    each one), or None when the rollout recorded none (`objective.sampler_old_logp`)."""
    if rollout.logprobs is None:
        return None
    out = np.zeros((rows, width), dtype=np.float32)
    for r, n in enumerate(chunk):
        out[r, : len(rollout.logprobs[n])] = rollout.logprobs[n]
    return mx.array(out)


def _pack_shared(
    rollout: RolloutBatch, chunk: list[int], completions: list[list[int]], spec: BatchSpec
) -> PackedGroups:
    """Each distinct prompt of the chunk once, padded to `spec.prompt_slots` prompts; padding
    rows point at prompt 0."""
    g = rollout.group_size
    groups = list(dict.fromkeys(n // g for n in chunk))
    owner = [groups.index(n // g) for n in chunk] + [0] * (spec.rows - len(chunk))
    prompts = [rollout.prompt_ids[b] for b in groups]
    prompts += [[0]] * (spec.prompt_slots - len(prompts))
    return pack_groups(prompts, owner, completions, spec.multiple)
