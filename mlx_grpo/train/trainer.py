"""The GRPO training loop: rollout -> rewards -> advantages -> mu updates, per step.

One step = one generation batch of B prompts x G completions. Everything else lives in the
stage modules (rollout, rewards, objective, logprobs, checkpoint); this file wires them
together, times them, and writes `metrics.jsonl` and `samples.jsonl`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_map

from mlx_grpo import rewards as rw
from mlx_grpo.config import TrainConfig, save_config
from mlx_grpo.data.examples import Example, PromptStream, build_examples, load_rows, split_rows
from mlx_grpo.models.policy import Policy, adapters_disabled, frozen_copy, load_policy
from mlx_grpo.train import checkpoint as ckpt
from mlx_grpo.train.logprobs import (
    layerwise_supported,
    pack,
    pack_groups,
    pad_multiple,
    score_arrays,
    score_from_arrays,
)
from mlx_grpo.train.objective import (
    LossSettings,
    group_advantages,
    grpo_loss,
    informative_groups,
    normalizer,
)
from mlx_grpo.train.optim import build_optimizer
from mlx_grpo.train.rollout import (
    RolloutBatch,
    decode_completions,
    generate_groups,
    sampling_from_config,
)

StepCallback = Callable[[dict[str, Any]], None]


@dataclass
class MicroBatch:
    """One slice of the kept rollouts, padded to a fixed row count (see `logprobs`)."""

    arrays: tuple[mx.array, ...]  # what the scorer reads: `logprobs.score_arrays`
    mask: mx.array  # [rows, T] completion tokens that carry loss
    advantages: mx.array
    norm: mx.array
    old_logp: mx.array | None = None
    ref_logp: mx.array | None = None


@dataclass
class StepStats:
    """Token-sum statistics accumulated over the micro-batches and iterations of a step."""

    sums: dict[str, float] = field(default_factory=dict)
    grad_norms: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)

    def add(self, stats: dict[str, mx.array]) -> None:
        for k, v in stats.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v.item())


def step_seed(seed: int, step: int) -> int:
    """Per-step RNG seed: a resumed run samples exactly what an uninterrupted one would."""
    return (seed * 1_000_003 + step * 7919) % (2**31)


class Trainer:
    """Holds the policy, optimizer and data stream of one run and trains it step by step."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, on_step: StepCallback | None = None):
        self.cfg = cfg
        self.run_dir = run_dir
        self.on_step = on_step
        self.rewards = rw.build_rewards(cfg.rewards)
        eval_every = cfg.logging.eval_every
        self.eval_reward = rw.resolve_reward(cfg.logging.eval_reward) if eval_every else None
        rows, self.eval_rows = split_rows(
            load_rows(cfg.data, cfg.seed), cfg.data.eval_size, cfg.seed
        )
        mx.random.seed(cfg.seed)  # adapter initialisation draws random numbers: seed it too
        self.policy: Policy = load_policy(cfg.model, cfg.lora)
        # each prompt scored once for its G completions; under gradient checkpointing that
        # needs a body run layer by layer, else rows are scored whole with mlx-lm's checkpoint
        ckpt = cfg.model.gradient_checkpointing
        self.shared_prompts = not ckpt or layerwise_supported(self.policy.model)
        self.pad_multiple = pad_multiple()
        if ckpt and not self.shared_prompts:
            from mlx_lm.tuner.trainer import grad_checkpoint

            grad_checkpoint(self.policy.model.layers[0])
        examples, self.dropped_prompts = build_examples(
            rows, self.policy.tokenizer, cfg.data, cfg.rollout.max_prompt_length
        )
        self.stream = PromptStream(examples, cfg.seed, cfg.data.shuffle)
        self.canaries = self._canaries(examples)
        self.ref_model = self._make_reference()
        total_updates = cfg.steps * cfg.objective.num_iterations
        self.optimizer = build_optimizer(cfg.optimizer, cfg.schedule, total_updates)
        self.settings = LossSettings.from_config(cfg.objective)
        self.sampling = sampling_from_config(cfg.rollout, self.policy.tokenizer)
        self.step = 0
        self._grad_fn = self._compile_grad_fn()

    # ------------------------------------------------------------------ setup

    def _canaries(self, train_examples: list[Example]) -> list[Example]:
        """Fixed eval prompts: the held-out rows if any, else the first training prompts."""
        limit = self.cfg.logging.eval_limit
        if not self.cfg.logging.eval_every:
            return []
        return self.held_out_examples(limit) or train_examples[:limit]

    def held_out_examples(self, limit: int | None = None) -> list[Example]:
        """The held-out rows (`data.eval_size`), rendered like the training prompts."""
        rows = self.eval_rows[:limit]
        if not rows:
            return []
        tok, longest = self.policy.tokenizer, self.cfg.rollout.max_prompt_length
        return build_examples(rows, tok, self.cfg.data, longest)[0]

    def _make_reference(self) -> nn.Module | None:
        """No reference with beta = 0; adapters-off with LoRA; a frozen copy otherwise."""
        if self.cfg.objective.beta == 0 or self.policy.uses_adapters:
            return None
        return frozen_copy(self.policy.model)

    def _compile_grad_fn(self) -> Callable[..., Any]:
        model, obj = self.policy.model, self.cfg.objective
        use_old, use_ref = obj.num_iterations > 1, obj.beta > 0
        temperature, chunk = self.cfg.rollout.temperature, obj.logprob_chunk_size

        n_arrays = 4 if self.shared_prompts else 3
        ckpt = self.cfg.model.gradient_checkpointing

        def loss_fn(model, mask, adv, norm, *rest):
            # rest: the scorer's arrays, then old log-probs (mu > 1) and/or reference (beta > 0)
            arrays, extra = rest[:n_arrays], rest[n_arrays:]
            old = extra[0] if use_old else None
            ref = extra[-1] if use_ref else None
            logp, entropy = score_from_arrays(model, arrays, temperature, chunk, ckpt)
            loss, stats = grpo_loss(logp, old, ref, adv, mask, norm, self.settings)
            stats["entropy_sum"] = (entropy * mask).sum()
            return loss, stats

        value_and_grad = nn.value_and_grad(model, loss_fn)
        state = [model.state, mx.random.state]

        @partial(mx.compile, inputs=state, outputs=state)
        def grad_fn(*arrays):
            (loss, stats), grads = value_and_grad(model, *arrays)
            return loss, stats, grads

        return grad_fn

    # ------------------------------------------------------------------ one step

    def rollout(self, batch: list[Example]) -> RolloutBatch:
        self.policy.model.eval()
        return generate_groups(
            self.policy.model, [e.ids for e in batch], self.cfg.rollout.group_size, self.sampling
        )

    def score(self, batch: list[Example], rollout: RolloutBatch, texts: list[str]) -> rw.Scores:
        g = rollout.group_size
        prompts = [e.prompt for e in batch for _ in range(g)]
        answers = [e.answer for e in batch for _ in range(g)]
        extra_keys = sorted({k for e in batch for k in e.extras})
        extras: dict[str, Any] = {
            k: [e.extras.get(k) for e in batch for _ in range(g)] for k in extra_keys
        }
        extras["completion_lengths"] = [len(c) for c in rollout.completion_ids]
        extras["max_completion_length"] = self.cfg.rollout.max_completion_length
        return rw.score(self.rewards, prompts, texts, answers, extras)

    def micro_batches(
        self, rollout: RolloutBatch, advantages: np.ndarray, keep: np.ndarray
    ) -> list[MicroBatch]:
        """Kept completions in micro-batches of a fixed row count (padded rows are inert)."""
        idx = [n for n in range(len(rollout.completion_ids)) if keep[n // rollout.group_size]]
        rows = len(rollout.completion_ids) // self.cfg.optimizer.gradient_accumulation_steps
        chunks = [idx[i : i + rows] for i in range(0, len(idx), rows)]
        masks = [self._row_mask(rollout, c) for c in chunks]
        total_tokens = float(sum(m.sum() for m in masks))
        out = []
        for chunk, mask in zip(chunks, masks):
            norm = normalizer(
                self.cfg.objective.loss_type,
                mask,
                len(idx),
                total_tokens,
                len(chunks),
                self.cfg.rollout.max_completion_length,
            )
            out.append(self._micro_batch(rollout, chunk, mask, rows, advantages[chunk], norm))
        return out

    def _micro_batch(
        self,
        rollout: RolloutBatch,
        chunk: list[int],
        mask: np.ndarray,
        rows: int,
        advantages: np.ndarray,
        norm: float,
    ) -> MicroBatch:
        """Pack one chunk, padding it with inert rows (mask 0, advantage 0) up to `rows`."""
        pad = rows - len(chunk)
        completions = [rollout.completion_ids[n] for n in chunk] + [[0]] * pad
        if not self.shared_prompts:
            prompts = [rollout.prompt_of(n) for n in chunk] + [[0]] * pad
            packed = pack(prompts, completions, self.pad_multiple)
        else:
            packed = self._pack_shared(rollout, chunk, completions, rows)
        width = packed.mask.shape[1]
        full_mask = mx.array(np.pad(mask, [(0, pad), (0, width - mask.shape[1])]))
        adv = np.pad(advantages.astype(np.float32), (0, pad))
        return MicroBatch(score_arrays(packed), full_mask, mx.array(adv), mx.array(norm))

    def _pack_shared(
        self, rollout: RolloutBatch, chunk: list[int], completions: list[list[int]], rows: int
    ) -> Any:
        """Each distinct prompt once; the prompt count is padded to a fixed number."""
        g = rollout.group_size
        groups = list(dict.fromkeys(n // g for n in chunk))
        owner = [groups.index(n // g) for n in chunk] + [0] * (rows - len(chunk))
        prompts = [rollout.prompt_ids[b] for b in groups]
        slots = min(self.cfg.batch_size, -(-rows // g) + 1)
        prompts += [[0]] * (slots - len(prompts))
        return pack_groups(prompts, owner, completions, self.pad_multiple)

    def _row_mask(self, rollout: RolloutBatch, chunk: list[int]) -> np.ndarray:
        """Completion-token mask for a chunk; truncated completions masked if configured."""
        width = max(len(rollout.completion_ids[n]) for n in chunk)
        mask = np.zeros((len(chunk), width), dtype=np.float32)
        for r, n in enumerate(chunk):
            if not (self.cfg.objective.mask_truncated_completions and rollout.truncated[n]):
                mask[r, : len(rollout.completion_ids[n])] = 1.0
        return mask

    def fill_old_and_ref(self, mbs: list[MicroBatch]) -> None:
        """Log-probs before any update (mu > 1) and under the reference (beta > 0)."""
        obj = self.cfg.objective
        for mb in mbs:
            if obj.num_iterations > 1:
                mb.old_logp = self._logprobs(self.policy.model, mb)
            if obj.beta > 0:
                mb.ref_logp = self._reference_logprobs(mb)
            mx.eval(mb.old_logp, mb.ref_logp)

    def _logprobs(self, model: nn.Module, mb: MicroBatch) -> mx.array:
        temp, chunk = self.cfg.rollout.temperature, self.cfg.objective.logprob_chunk_size
        return score_from_arrays(model, mb.arrays, temp, chunk)[0]

    def _reference_logprobs(self, mb: MicroBatch) -> mx.array:
        if self.ref_model is not None:
            return self._logprobs(self.ref_model, mb)
        with adapters_disabled(self.policy.model):
            logp = self._logprobs(self.policy.model, mb)
            mx.eval(logp)
        return logp

    def update(self, mbs: list[MicroBatch], stats: StepStats) -> None:
        """One optimizer update: summed micro-batch gradients, clipped by global norm."""
        self.policy.model.train()
        grads, loss = None, 0.0
        for mb in mbs:
            extra = [x for x in (mb.old_logp, mb.ref_logp) if x is not None]
            value, mb_stats, g = self._grad_fn(mb.mask, mb.advantages, mb.norm, *mb.arrays, *extra)
            grads = g if grads is None else tree_map(mx.add, grads, g)
            mx.eval(grads, value, mb_stats)
            del g  # only the running sum may outlive its micro-batch (one set, not two)
            stats.add({"policy_loss": value, **mb_stats})
            loss += value.item()
        max_norm = self.cfg.optimizer.max_grad_norm
        if max_norm is not None:
            grads, norm = optim.clip_grad_norm(grads, max_norm)
        else:
            norm = mx.sqrt(sum((g * g).sum() for g in _leaves(grads)))
        self.optimizer.update(self.policy.model, grads)
        mx.eval(self.policy.model.trainable_parameters(), self.optimizer.state)
        stats.grad_norms.append(float(norm.item()))
        stats.losses.append(loss)

    def train_step(self) -> dict[str, Any]:
        """Run one full GRPO step and return its metrics."""
        self.step += 1
        mx.random.seed(step_seed(self.cfg.seed, self.step))
        mx.reset_peak_memory()
        batch = self.stream.next_batch(self.cfg.batch_size)
        rollout = self.rollout(batch)
        t0 = time.perf_counter()
        texts = decode_completions(self.policy.tokenizer, rollout)
        scores = self.score(batch, rollout, texts)
        g = self.cfg.rollout.group_size
        advantages = group_advantages(scores.total, g, self.cfg.objective.scale_rewards)
        keep = informative_groups(scores.total, g)
        mbs = self.micro_batches(rollout, advantages, keep) if keep.any() else []
        self.fill_old_and_ref(mbs)
        t1 = time.perf_counter()
        stats = StepStats()
        for _ in range(self.cfg.objective.num_iterations if mbs else 0):
            self.update(mbs, stats)
        t2 = time.perf_counter()
        metrics = self.metrics(rollout, scores, keep, mbs, stats, (t1 - t0, t2 - t1))
        if self.canaries and self.step % self.cfg.logging.eval_every == 0:
            metrics |= self.evaluate()
        self.log(metrics, batch, rollout, texts, scores, advantages)
        return metrics

    def evaluate(self) -> dict[str, float]:
        """Greedy accuracy, format and emergence metrics on the canary prompts."""
        from mlx_grpo.infer.evaluate import evaluate

        self.policy.model.eval()
        result = evaluate(
            self.policy.model,
            self.policy.tokenizer,
            self.canaries,
            self.eval_reward,
            rollout=self.cfg.rollout,
            batch_size=self.cfg.batch_size * self.cfg.rollout.group_size,
        )
        return {f"eval/{k}": v for k, v in result.summary.items()}

    # ------------------------------------------------------------------ metrics and logs

    def metrics(
        self,
        rollout: RolloutBatch,
        scores: rw.Scores,
        keep: np.ndarray,
        mbs: list[MicroBatch],
        stats: StepStats,
        timings: tuple[float, float],
    ) -> dict[str, Any]:
        lengths = np.array([len(c) for c in rollout.completion_ids])
        tokens = sum(float(mb.mask.sum().item()) for mb in mbs) * len(stats.losses)
        per_tok = {k: v / tokens if tokens else 0.0 for k, v in stats.sums.items()}
        m: dict[str, Any] = {
            "step": self.step,
            "reward_mean": float(scores.total.mean()),
            "reward_std": float(scores.total.std()),
        }
        for name, values in scores.per_function.items():
            m[f"rewards/{name}/mean"] = float(values.mean())
            m[f"rewards/{name}/std"] = float(values.std())
            m[f"rewards/{name}/errors"] = scores.errors.get(name, 0)
        m |= {
            "frac_zero_std_groups": float(1.0 - keep.mean()),
            "kl": per_tok.get("kl_sum", 0.0),
            "clip_ratio/low": per_tok.get("clip_low_sum", 0.0),
            "clip_ratio/high": per_tok.get("clip_high_sum", 0.0),
            "clip_ratio/region": per_tok.get("clip_region_sum", 0.0),
            "policy_loss": stats.sums.get("policy_loss", 0.0) / max(len(stats.losses), 1),
            "loss": _mean(stats.losses),
            "entropy": per_tok.get("entropy_sum", 0.0),
            "completion_length/mean": float(lengths.mean()),
            "completion_length/min": int(lengths.min()),
            "completion_length/max": int(lengths.max()),
            "truncation_rate": float(np.mean(rollout.truncated)),
            "grad_norm": _mean(stats.grad_norms),
            "lr": float(self.optimizer.learning_rate.item()),
            "updates": len(stats.losses),
            "rollout_s": rollout.seconds,
            "score_s": timings[0],
            "update_s": timings[1],
            "rollout_tokens_per_s": rollout.tokens_per_second,
            "peak_memory_gb": mx.get_peak_memory() / 1e9,
        }
        return m

    def log(
        self,
        metrics: dict[str, Any],
        batch: list[Example],
        rollout: RolloutBatch,
        texts: list[str],
        scores: rw.Scores,
        advantages: np.ndarray,
    ) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(metrics) + "\n")
        log_cfg = self.cfg.logging
        if log_cfg.samples_every and self.step % log_cfg.samples_every == 0:
            with open(self.run_dir / "samples.jsonl", "a") as f:
                for n in range(min(log_cfg.samples_per_step, len(texts))):
                    row = {
                        "step": self.step,
                        "prompt": batch[n // rollout.group_size].text,
                        "answer": batch[n // rollout.group_size].answer,
                        "completion": texts[n],
                        "reward": float(scores.total[n]),
                        "rewards": {k: float(v[n]) for k, v in scores.per_function.items()},
                        "advantage": float(advantages[n]),
                        "truncated": rollout.truncated[n],
                    }
                    f.write(json.dumps(row) + "\n")
        if self.on_step is not None:
            self.on_step(metrics)

    # ------------------------------------------------------------------ checkpoints

    def trainer_state(self) -> dict[str, Any]:
        return {"data": self.stream.state(), "seed": self.cfg.seed}

    def save(self) -> Path:
        return ckpt.save_checkpoint(
            self.run_dir,
            self.step,
            self.policy,
            self.optimizer,
            self.trainer_state(),
            self.cfg.checkpoint.keep_last,
        )

    def restore(self, folder: Path) -> None:
        state = ckpt.load_checkpoint(folder, self.policy, self.optimizer)
        self.step = int(state["step"])
        self.stream.restore(state["data"])

    def write_config(self) -> None:
        save_config(self.cfg, self.run_dir / "config.yaml")


def _leaves(tree: Any) -> list[mx.array]:
    from mlx.utils import tree_flatten

    return [v for _, v in tree_flatten(tree)]


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0
