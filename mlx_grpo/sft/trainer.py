"""One SFT step: a length-bucketed batch -> NLL of the completion tokens -> one AdamW update.

The loss (`sft.loss`) is the negative log-likelihood of each completion token given the ones
before it, from a row's `offset` (the first completion token) to its end (the EOS), averaged
over those tokens:

    L = -(1 / N) * sum over rows r, completion positions t of log p(x[r, t] | x[r, <t])

With `optimizer.gradient_accumulation_steps` = k, the batch is k micro-batches whose losses
and gradients are weighted by their token counts, so the update is the same as for one big
batch. `SftTrainer` has the interface `train.loop.train` drives (step, `train_step`, `save`,
`restore`, `canaries` + `evaluate` for `logging.eval_every`), so the run folder, checkpoints,
`--resume` and Ctrl-C are GRPO's own; checkpoints are `train.checkpoint`'s (adapters in
mlx-lm's format, or full weights).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_map

from mlx_grpo.backend import keep_cpu_buffers
from mlx_grpo.data.examples import split_rows
from mlx_grpo.errors import UserError
from mlx_grpo.models.init_from import load_starting_policy
from mlx_grpo.models.policy import Policy
from mlx_grpo.sft.batches import Batch, BatchStream
from mlx_grpo.sft.config import SftConfig
from mlx_grpo.sft.data import SftExample, build_sft_examples, load_sft_rows
from mlx_grpo.sft.loss import completion_nll, completion_rows, rows_nll
from mlx_grpo.train.batch import RowTokens
from mlx_grpo.train.checkpoint import Checkpointed
from mlx_grpo.train.optim import build_optimizer, clipped_step
from mlx_grpo.train.trainer import StepOutput, step_seed


class SftTrainer(Checkpointed):
    """Holds the model, optimizer and batch stream of one SFT run; trains it step by step."""

    def __init__(self, cfg: SftConfig, run_dir: Path) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        rows, eval_rows = split_rows(load_sft_rows(cfg.data), cfg.data.eval_size, cfg.seed)
        mx.random.seed(cfg.seed)  # adapter initialisation draws random numbers
        self.policy: Policy = load_starting_policy(cfg.model, cfg.lora)[0]  # init_from too
        keep_cpu_buffers()  # big scoring buffers reused, not page-faulted anew each step
        tok, longest = self.policy.tokenizer, cfg.sft.max_length
        self.examples, self.dropped = build_sft_examples(rows, tok, cfg.data, longest)
        self.canaries: list[SftExample] = (
            build_sft_examples(eval_rows, tok, cfg.data, longest)[0] if eval_rows else []
        )
        self.micro_batch = cfg.batch_size // cfg.optimizer.gradient_accumulation_steps
        self.stream = self._stream()
        self.optimizer = build_optimizer(cfg.optimizer, cfg.schedule, cfg.steps)
        if cfg.model.gradient_checkpointing:
            from mlx_lm.tuner.trainer import grad_checkpoint

            grad_checkpoint(self.policy.model.layers[0])
        self.step = 0
        self._grad_fn = self._compile_grad_fn()

    def _stream(self) -> BatchStream:
        if len(self.examples) < self.micro_batch:
            raise UserError(
                f"{len(self.examples)} training rows cannot fill a micro-batch of "
                f"{self.micro_batch} (batch_size / gradient_accumulation_steps)",
                where="batch_size",
            )
        return BatchStream(self.examples, self.micro_batch, self.cfg.sft.max_length, self.cfg.seed)

    def _compile_grad_fn(self) -> Callable[[RowTokens, mx.array], Any]:
        """Loss, completion-token count and gradients of one micro-batch, compiled."""
        model, chunk = self.policy.model, self.cfg.sft.logprob_chunk_size
        checkpoint = self.cfg.model.gradient_checkpointing
        loss_fn = partial(rows_nll, chunk=chunk, checkpoint=checkpoint)
        value_and_grad = nn.value_and_grad(model, loss_fn)
        state = [model.state, mx.random.state]

        @partial(mx.compile, inputs=state, outputs=state)
        def grad_fn(rows: RowTokens, mask: mx.array) -> tuple[mx.array, mx.array, Any]:
            (loss, tokens), grads = value_and_grad(model, rows, mask)
            return loss, tokens, grads

        return grad_fn

    # ------------------------------------------------------------------ one step

    def accumulate(self, batches: list[Batch]) -> tuple[Any, float, float]:
        """Token-weighted sum of the micro-batches' gradients: (grads, loss, tokens)."""
        grads, loss_sum, tokens = None, 0.0, 0.0
        for batch, lengths in batches:
            loss, count, g = self._grad_fn(*completion_rows(batch, lengths))
            weighted = tree_map(lambda x, c=count: x * c, g)
            grads = weighted if grads is None else tree_map(mx.add, grads, weighted)
            mx.eval(grads, loss, count)
            loss_sum += loss.item() * count.item()
            tokens += count.item()
        return tree_map(lambda x: x / tokens, grads), loss_sum / tokens, tokens

    def update(self, grads: Any) -> float:
        """Clip by global norm, apply AdamW; return the norm before clipping."""
        return clipped_step(
            self.policy.model, self.optimizer, grads, self.cfg.optimizer.max_grad_norm
        )

    def train_step(self) -> StepOutput:
        """One optimizer update on `batch_size` rows; its metrics line."""
        self.step += 1
        mx.random.seed(step_seed(self.cfg.seed, self.step))  # dropout: resumable
        mx.reset_peak_memory()
        start = time.perf_counter()
        k = self.cfg.optimizer.gradient_accumulation_steps
        batches = [self.stream.next_batch() for _ in range(k)]
        self.policy.model.train()
        grads, loss, completion_tokens = self.accumulate(batches)
        grad_norm = self.update(grads)
        seconds = time.perf_counter() - start
        metrics = self.metrics(batches, loss, completion_tokens, grad_norm, seconds)
        return StepOutput(self.step, metrics)

    def metrics(
        self, batches: list[Batch], loss: float, tokens: float, grad_norm: float, seconds: float
    ) -> dict[str, Any]:
        """One metrics.jsonl line (docs/metrics.md, SFT section)."""
        seq_tokens = sum(float(lengths[:, 1].sum().item()) for _, lengths in batches)
        padded = sum(b.shape[0] * (b.shape[1] - 1) for b, _ in batches)
        return {
            "step": self.step,
            "loss": loss,
            "completion_tokens": int(tokens),
            "tokens": int(seq_tokens),
            "padding_frac": 1.0 - seq_tokens / padded if padded else 0.0,
            "grad_norm": grad_norm,
            "lr": float(self.optimizer.learning_rate.item()),
            "epoch": self.stream.epoch + self.stream.index / self.stream.batches_per_epoch,
            "step_s": seconds,
            "tokens_per_s": seq_tokens / seconds if seconds else 0.0,
            "peak_memory_gb": mx.get_peak_memory() / 1e9,
        }

    def evaluate(self) -> dict[str, float]:
        """The validation loss: mean completion NLL over every held-out row (mlx-lm's
        `evaluate`, in batches that divide the held-out set so each row counts once)."""
        from mlx_lm.tuner.trainer import evaluate

        size = eval_batch_size(len(self.canaries), self.micro_batch)
        loss = evaluate(
            self.policy.model,
            self.canaries,
            size,
            num_batches=-1,
            max_seq_length=self.cfg.sft.max_length,
            loss=partial(completion_nll, chunk=self.cfg.sft.logprob_chunk_size),
        )
        self.policy.model.train()
        return {"val_loss": float(loss)}

    # ------------------------------------------------------------------ checkpoints

    def trainer_state(self) -> dict[str, Any]:
        return {"data": self.stream.state(), "seed": self.cfg.seed, "kind": "sft"}


def eval_batch_size(rows: int, largest: int) -> int:
    """The largest batch size <= `largest` that divides `rows` (mlx-lm drops a remainder)."""
    return next(size for size in range(min(rows, largest), 0, -1) if rows % size == 0)
