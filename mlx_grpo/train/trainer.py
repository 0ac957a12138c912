"""One GRPO step: rollout -> rewards -> advantages -> training batch -> mu updates -> metrics.

`Trainer` holds what one run trains (policy, reference, optimizer, prompt stream, rewards)
and runs one step at a time (`train_step`). The stages live in their own modules (rollout,
rewards, objective, batch, logprobs, checkpoint); the loop over steps, with checkpoints,
resume and Ctrl-C, is `train.loop.train`.

One step = one generation batch of B prompts x G completions:

1. rollout: G completions per prompt (`rollout.generate_groups`);
2. rewards: every reward function on every completion (`rewards.score`);
3. advantages A_i = (r_i - mean(r_group)) / (std(r_group) + 1e-4), groups whose rewards are
   all equal dropped (`objective.group_advantages`, `objective.informative_groups`);
4. the training batch: micro-batches of fixed shape (`batch.micro_batches`), with the
   old-policy log-probs (num_iterations > 1) and the reference's (beta > 0);
5. mu = num_iterations optimizer updates, each the sum of the micro-batches' gradients,
   clipped by global norm;
6. metrics (the line metrics.jsonl gets) and sample rows (samples.jsonl).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_map

from mlx_grpo import rewards as rw
from mlx_grpo.backend import keep_cpu_buffers
from mlx_grpo.config import TrainConfig
from mlx_grpo.data.examples import Example, PromptStream, build_examples, load_rows, split_rows
from mlx_grpo.infer.evaluate import CODE_REWARD, correctness_reward, evaluate
from mlx_grpo.models.init_from import adapters_at, load_starting_policy
from mlx_grpo.models.policy import adapters_disabled, frozen_copy
from mlx_grpo.rewards.inputs import reward_inputs
from mlx_grpo.train.batch import BatchSpec, TrainBatch, micro_batches
from mlx_grpo.train.checkpoint import Checkpointed
from mlx_grpo.train.distributed import World, check_divides, global_advantages, rank_seed
from mlx_grpo.train.dynamic import Drawn, fill_informative
from mlx_grpo.train.logprobs import layerwise_supported, token_logprobs
from mlx_grpo.train.objective import LossSettings, grpo_loss, informative_groups
from mlx_grpo.train.observed import Observed, from_json, merge, observe
from mlx_grpo.train.optim import build_optimizer, clipped_step
from mlx_grpo.train.rollout import (
    RolloutBatch,
    decode_completions,
    generate_groups,
    sampling_from_config,
)


@dataclass
class StepStats:
    """Token-sum statistics accumulated over the micro-batches and iterations of a step."""

    sums: dict[str, float] = field(default_factory=dict)
    grad_norms: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)

    def add(self, stats: dict[str, mx.array]) -> None:
        for k, v in stats.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v.item())


@dataclass
class StepOutput:
    """What one step produced: its metrics line and its sample rows (often none)."""

    step: int
    metrics: dict[str, Any]
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StepTimes:
    """Wall time of a step's phases, in seconds (reported as `*_s` metrics)."""

    reward: float = 0.0  # decoding completions, reward functions, advantages
    batch: float = 0.0  # packing the training batch, old-policy and reference log-probs
    update: float = 0.0  # the mu optimizer updates


def step_seed(seed: int, step: int) -> int:
    """Per-step RNG seed: a resumed run samples exactly what an uninterrupted one would."""
    return (seed * 1_000_003 + step * 7919) % (2**31)


class Trainer(Checkpointed):
    """Holds the policy, optimizer and data stream of one run and trains it step by step."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, world: World | None = None):
        self.cfg = cfg
        self.run_dir = run_dir
        self.world = world or World()
        g, accumulation = cfg.rollout.group_size, cfg.optimizer.gradient_accumulation_steps
        check_divides(cfg.batch_size, g, accumulation, self.world.size)
        self.rewards = rw.build_rewards(cfg.rewards)
        rw.warm_up(self.rewards)  # the answer checker loads while the model does
        eval_every = cfg.logging.eval_every
        self.eval_reward = correctness_reward(cfg.logging.eval_reward) if eval_every else None
        code_eval = cfg.logging.eval_reward == CODE_REWARD
        self.eval_format = rw.resolve_reward("code_block" if code_eval else "r1_format_strict")
        rows, self.eval_rows = split_rows(
            load_rows(cfg.data, cfg.seed), cfg.data.eval_size, cfg.seed
        )
        rw.check_rows(self.rewards, rows + self.eval_rows)  # e.g. a missing compiler
        mx.random.seed(cfg.seed)  # adapter initialisation draws random numbers: seed it too
        # with init_from adapters, the starting adapters are the KL reference (adapters_at)
        self.policy, self.start_adapters = load_starting_policy(cfg.model, cfg.lora)
        keep_cpu_buffers()  # big scoring buffers reused, not page-faulted anew each step
        self.batch_spec = BatchSpec.of(cfg, self._shared_prompts(), ranks=self.world.size)
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
        if cfg.objective.num_iterations > 1 and cfg.objective.sampler_old_logp:
            # logp_old = the sampler's log-probs at the training temperature: they equal the
            # scoring pass's in float32 (tests/test_rollout.py), so the old-policy pass is skipped
            self.sampling.return_logprobs = True
            self.sampling.logprob_temperature = cfg.rollout.temperature
        self.step = 0
        self._reward_s = 0.0  # this step's time in reward functions (over every draw)
        self._grad_fn = self._compile_grad_fn()

    # ------------------------------------------------------------------ setup

    def _shared_prompts(self) -> bool:
        """Whether each prompt is scored once for its G completions (shared packing). Under
        gradient checkpointing that needs a body that runs layer by layer; other bodies are
        scored whole per row, their layers checkpointed by mlx-lm."""
        checkpointing = self.cfg.model.gradient_checkpointing
        shared = not checkpointing or layerwise_supported(self.policy.model)
        if not shared:
            from mlx_lm.tuner.trainer import grad_checkpoint  # mlx-lm imports transformers

            grad_checkpoint(self.policy.model.layers[0])
        return shared

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

    def _compile_grad_fn(self) -> Callable[[TrainBatch], Any]:
        """Loss, token-sum stats and gradients of one micro-batch, compiled once."""
        model, obj = self.policy.model, self.cfg.objective
        temperature, chunk = self.cfg.rollout.temperature, obj.logprob_chunk_size
        checkpointing = self.cfg.model.gradient_checkpointing

        def loss_fn(model: nn.Module, batch: TrainBatch) -> tuple[mx.array, dict[str, mx.array]]:
            logp, entropy = token_logprobs(model, batch.tokens, temperature, chunk, checkpointing)
            loss, stats = grpo_loss(
                logp,
                batch.old_logp,
                batch.ref_logp,
                batch.advantages,
                batch.mask,
                batch.norm,
                self.settings,
            )
            stats["entropy_sum"] = (entropy * batch.mask).sum()
            return loss, stats

        value_and_grad = nn.value_and_grad(model, loss_fn)
        state = [model.state, mx.random.state]

        @partial(mx.compile, inputs=state, outputs=state)
        def grad_fn(batch: TrainBatch) -> tuple[mx.array, dict[str, mx.array], Any]:
            (loss, stats), grads = value_and_grad(model, batch)
            return loss, stats, grads

        return grad_fn

    # ------------------------------------------------------------------ one step

    @property
    def local_batch_size(self) -> int:
        """Prompts this rank trains on per step: B / N."""
        return self.cfg.batch_size // self.world.size

    def draw(self) -> Drawn:
        """The next B prompts (this rank's B / N of them), their G completions each, decoded
        and scored (the time spent on rewards adds up in `_reward_s`)."""
        examples = self.world.shard(self.stream.next_batch(self.cfg.batch_size))
        rollout = self.rollout(examples)
        t0 = time.perf_counter()
        texts = decode_completions(self.policy.tokenizer, rollout)
        scores = self.reward(examples, rollout, texts)
        self._reward_s += time.perf_counter() - t0
        return Drawn(examples, rollout, texts, scores)

    def rollout(self, batch: list[Example]) -> RolloutBatch:
        self.policy.model.eval()
        return generate_groups(
            self.policy.model, [e.ids for e in batch], self.cfg.rollout.group_size, self.sampling
        )

    def reward(self, batch: list[Example], rollout: RolloutBatch, texts: list[str]) -> rw.Scores:
        """Every reward function on every completion (weighted sum and per function)."""
        lengths = [len(c) for c in rollout.completion_ids]
        inputs = reward_inputs(batch, texts, lengths, self.cfg.rollout.max_completion_length)
        return rw.score(self.rewards, *inputs.args())

    def with_old_and_ref(self, batches: list[TrainBatch]) -> list[TrainBatch]:
        """Each micro-batch with its log-probs before any update (num_iterations > 1) and
        under the reference (beta > 0)."""
        obj, out = self.cfg.objective, []
        for b in batches:
            old = b.old_logp  # the sampler's (objective.sampler_old_logp), else a pass
            if old is None and obj.num_iterations > 1:
                old = self._logprobs(self.policy.model, b)
            ref = self._reference_logprobs(b) if obj.beta > 0 else None
            mx.eval(old, ref)
            out.append(b._replace(old_logp=old, ref_logp=ref))
        return out

    def _logprobs(self, model: nn.Module, batch: TrainBatch) -> mx.array:
        temp, chunk = self.cfg.rollout.temperature, self.cfg.objective.logprob_chunk_size
        return token_logprobs(model, batch.tokens, temp, chunk, entropy=False)[0]

    def _reference_logprobs(self, batch: TrainBatch) -> mx.array:
        if self.ref_model is not None:
            return self._logprobs(self.ref_model, batch)
        if self.start_adapters is not None:  # init_from adapters: the reference is the start
            reference = adapters_at(self.policy.model, self.start_adapters)
        else:
            reference = adapters_disabled(self.policy.model)
        with reference:
            logp = self._logprobs(self.policy.model, batch)
            mx.eval(logp)
        return logp

    def gradients(self, batches: list[TrainBatch], stats: StepStats) -> tuple[Any, float]:
        """The gradient of the generation batch's loss and this rank's share of the loss:
        micro-batch gradients summed, then summed over ranks (the global gradient)."""
        self.policy.model.train()
        grads, loss = None, 0.0
        for batch in batches:
            value, batch_stats, g = self._grad_fn(batch)
            grads = g if grads is None else tree_map(mx.add, grads, g)
            mx.eval(grads, value, batch_stats)
            del g  # only the running sum may outlive its micro-batch (one set, not two)
            stats.add({"policy_loss": value, **batch_stats})
            loss += value.item()
        if grads is None:  # this rank kept no group this step, other ranks did
            grads = tree_map(mx.zeros_like, self.policy.model.trainable_parameters())
        return self.world.sum_grads(grads), loss

    def update(self, batches: list[TrainBatch], stats: StepStats) -> None:
        """One optimizer update on the global gradient, clipped by its global norm."""
        grads, loss = self.gradients(batches, stats)
        norm = clipped_step(
            self.policy.model, self.optimizer, grads, self.cfg.optimizer.max_grad_norm
        )
        stats.grad_norms.append(norm)
        stats.losses.append(loss)

    def train_step(self) -> StepOutput:
        """Run one full GRPO step; return its metrics and sample rows."""
        self.step += 1
        mx.random.seed(rank_seed(step_seed(self.cfg.seed, self.step), self.world.rank))
        mx.reset_peak_memory()
        self._reward_s = 0.0
        times = StepTimes()
        drawn = self.draw()
        extra = 0
        if self.cfg.rollout.dynamic_sampling:  # DAPO: more prompts until B are informative
            drawn, extra = fill_informative(
                drawn,
                self.draw,
                self.local_batch_size,
                self.cfg.rollout.dynamic_sampling,
                self.world,
            )
        examples, rollout, texts, scores = drawn.examples, drawn.rollout, drawn.texts, drawn.scores
        times.reward, t0 = self._reward_s, time.perf_counter()
        g = self.cfg.rollout.group_size
        advantages = global_advantages(
            self.world, scores.total, g, self.cfg.objective.scale_rewards
        )
        informative = informative_groups(scores.total, g)
        drop = self.cfg.objective.drop_uninformative_groups
        keep = informative if drop else np.ones_like(informative)
        t1 = time.perf_counter()
        batches = self.micro_batches(rollout, advantages, keep)
        batches = self.with_old_and_ref(batches)
        t2 = time.perf_counter()
        stats = StepStats()
        for _ in range(self.cfg.objective.num_iterations if self.world.any(bool(batches)) else 0):
            self.update(batches, stats)
        times.reward += t1 - t0
        times.batch, times.update = t2 - t1, time.perf_counter() - t2
        metrics = self.metrics(rollout, scores, informative, batches, stats, times)
        if self.cfg.rollout.dynamic_sampling:
            metrics["dynamic_sampling/extra_draws"] = extra
            metrics["dynamic_sampling/prompts_drawn"] = self.cfg.batch_size * (1 + extra)
        samples = self.samples(examples, rollout, texts, scores, advantages)
        return StepOutput(self.step, metrics, samples)

    def micro_batches(
        self, rollout: RolloutBatch, advantages: np.ndarray, keep: np.ndarray
    ) -> list[TrainBatch]:
        """The kept groups' micro-batches, normalized over every rank's (`batch.micro_batches`)."""
        if not self.world.distributed:
            return micro_batches(rollout, advantages, keep, self.batch_spec) if keep.any() else []
        return micro_batches(rollout, advantages, keep, self.batch_spec, self.world.sum)

    def evaluate(self) -> dict[str, float]:
        """Greedy accuracy, format and emergence metrics on the canary prompts (`eval/...`)."""
        self.policy.model.eval()
        result = evaluate(
            self.policy.model,
            self.policy.tokenizer,
            self.canaries,
            self.eval_reward,
            rollout=self.cfg.rollout,
            batch_size=self.cfg.batch_size * self.cfg.rollout.group_size,
            format_reward=self.eval_format,
        )
        return {f"eval/{k}": v for k, v in result.summary.items()}

    # ------------------------------------------------------------------ metrics and samples

    def metrics(
        self,
        rollout: RolloutBatch,
        scores: rw.Scores,
        keep: np.ndarray,
        batches: list[TrainBatch],
        stats: StepStats,
        times: StepTimes,
    ) -> dict[str, Any]:
        """One metrics.jsonl line (docs/metrics.md says what each key means), describing the
        whole generation batch: with several ranks, what every rank saw (`observed.merge`)."""
        local = observe(
            scores,
            lengths=[len(c) for c in rollout.completion_ids],
            truncated=[bool(t) for t in rollout.truncated],
            informative=[bool(k) for k in keep],
            sums=dict(stats.sums),
            losses=list(stats.losses),
            tokens=sum(float(b.mask.sum().item()) for b in batches) * len(stats.losses),
            rollout_tokens=rollout.num_tokens,
            rollout_s=rollout.seconds,
            times={"reward_s": times.reward, "batch_s": times.batch, "update_s": times.update},
            peak_memory=float(mx.get_peak_memory()),
        )
        seen = merge([from_json(o) for o in self.world.gather_json(local.as_json())])
        return self._metrics_line(seen, stats.grad_norms)

    def _metrics_line(self, seen: Observed, grad_norms: list[float]) -> dict[str, Any]:
        scores, lengths = seen.scores, np.array(seen.lengths)
        informative = np.array(seen.informative, dtype=float)
        # Per-token measurements exist only when something was updated: a step whose groups
        # were all dropped logs them as null, not as a fake 0.0.
        per_tok = _per_token(seen.sums, seen.tokens)
        if self.cfg.objective.importance_sampling_level == "sequence":
            per_tok |= _per_sequence(seen.sums)  # clip ratios: fractions of sequences
        m: dict[str, Any] = {
            "step": self.step,
            "reward_mean": float(scores.total.mean()),
            "reward_std": float(scores.total.std()),
        }
        for name, values in scores.per_function.items():
            m[f"rewards/{name}/mean"] = float(values.mean())
            m[f"rewards/{name}/std"] = float(values.std())
            m[f"rewards/{name}/errors"] = scores.errors.get(name, 0)
            for kind, count in scores.outcomes.get(name, {}).items():
                m[f"rewards/{name}/{kind}"] = count
        m |= {
            "frac_zero_std_groups": float(1.0 - informative.mean()),
            "kl": per_tok.get("kl_sum"),
            "clip_ratio/low": per_tok.get("clip_low_sum"),
            "clip_ratio/high": per_tok.get("clip_high_sum"),
            "clip_ratio/region": per_tok.get("clip_region_sum"),
            "policy_loss": seen.sums.get("policy_loss", 0.0) / max(len(seen.losses), 1),
            "loss": _mean(seen.losses),
            "entropy": per_tok.get("entropy_sum"),
            "completion_length/mean": float(lengths.mean()),
            "completion_length/min": int(lengths.min()),
            "completion_length/max": int(lengths.max()),
            "truncation_rate": float(np.mean(seen.truncated)),
            "grad_norm": _mean(grad_norms),
            "lr": float(self.optimizer.learning_rate.item()),
            "updates": len(seen.losses),
            "rollout_s": seen.rollout_s,
            **seen.times,
            "rollout_tokens_per_s": seen.rollout_tokens / seen.rollout_s if seen.rollout_s else 0.0,
            "peak_memory_gb": seen.peak_memory / 1e9,
        }
        return m

    def samples(
        self,
        batch: list[Example],
        rollout: RolloutBatch,
        texts: list[str],
        scores: rw.Scores,
        advantages: np.ndarray,
    ) -> list[dict[str, Any]]:
        """samples.jsonl rows, every `logging.samples_every` steps (else none)."""
        log = self.cfg.logging
        if not log.samples_every or self.step % log.samples_every:
            return []
        g = rollout.group_size
        return [
            {
                "step": self.step,
                "prompt": batch[n // g].text,
                "answer": batch[n // g].answer,
                "completion": texts[n],
                "reward": float(scores.total[n]),
                "rewards": {k: float(v[n]) for k, v in scores.per_function.items()},
                "advantage": float(advantages[n]),
                "truncated": rollout.truncated[n],
            }
            for n in range(min(log.samples_per_step, len(texts)))
        ]

    # ------------------------------------------------------------------ checkpoints

    def restored(self, state: dict[str, Any], folder: Path) -> None:
        """Resuming with another number of ranks is allowed, and said once (by rank 0)."""
        saved = int(state.get("world_size", 1))
        if saved != self.world.size and self.world.is_main:
            print(
                f"note: {folder.name} was written by {saved} rank(s), resuming with "
                f"{self.world.size}: same global batch and prompt order, but each rank samples "
                f"with its own seed, so completions differ from an uninterrupted {saved}-rank run",
                file=sys.stderr,
            )

    def trainer_state(self) -> dict[str, Any]:
        return {"data": self.stream.state(), "seed": self.cfg.seed, "world_size": self.world.size}


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def _per_sequence(sums: dict[str, float]) -> dict[str, float | None]:
    """At sequence level a sequence is clipped or not: clip sums count sequences."""
    names = ("clip_low_sum", "clip_high_sum", "clip_region_sum")
    sequences = sums.get("sequences", 0.0)
    return {k: sums.get(k, 0.0) / sequences if sequences else None for k in names}


def _per_token(sums: dict[str, float], tokens: float) -> dict[str, float | None]:
    """Token-weighted means of the objective's sums; None for every one when no token counted."""
    names = ("kl_sum", "clip_low_sum", "clip_high_sum", "clip_region_sum", "entropy_sum")
    if not tokens:
        return dict.fromkeys(names)
    return {k: sums.get(k, 0.0) / tokens for k in names} | {
        k: v / tokens for k, v in sums.items() if k not in names
    }
