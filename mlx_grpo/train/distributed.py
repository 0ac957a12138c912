"""Data parallelism on MLX's own engine: which rank this process is, and the collectives.

`mlx.launch` starts the processes and `mx.distributed` carries the collectives (ring over
Ethernet/Thunderbolt, JACCL over Thunderbolt 5, NCCL on CUDA); nothing here is a launcher or
a transport. `World.init()` joins the group the launcher set up; a process started on its own
is a world of one, and every helper below then returns its input without calling a collective
(the single-machine path costs nothing extra).

How a step is split (docs/distributed.md):

- `batch_size` B is global: every rank draws the same B prompts from the same shuffled stream
  and keeps its own B / N whole groups (`World.shard`), so the data cursor is the same everywhere;
- the normalizers of the loss (kept sequences, completion tokens) are summed over ranks first,
  so each rank's loss is its share of the global loss and the global gradient is the sum of the
  ranks' gradients (`World.sum_grads`: `nn.average_gradients` times N);
- the metrics line is computed on every rank from everything every rank saw (`gather_json`);
- ranks start from the same seeded weights and stay identical; `check_in_sync` compares a
  checksum of the trainable parameters at every checkpoint and fails loudly on drift.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_map

from mlx_grpo.errors import UserError
from mlx_grpo.train.objective import group_advantages

CHECKSUM_RTOL = 1e-6  # reductions may differ in their last bits on some backends


class RanksDrifted(UserError):
    """The ranks' trainable parameters are no longer identical."""


@dataclass(frozen=True)
class World:
    """This process's place in the group: `rank` of `size` (a world of one by default)."""

    group: Any = None
    rank: int = 0
    size: int = 1

    @classmethod
    def init(cls) -> World:
        """The group `mlx.launch` started (or a world of one when run on its own)."""
        if not mx.distributed.is_available():
            return cls()
        group = mx.distributed.init()
        return cls(group, group.rank(), group.size()) if group.size() > 1 else cls()

    @property
    def is_main(self) -> bool:
        """Rank 0: the only one that writes the run directory."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    # ------------------------------------------------------------------ splitting the batch

    def shard(self, items: Sequence[Any]) -> list[Any]:
        """This rank's contiguous 1/N of `items` (the caller checked that N divides them)."""
        n = len(items) // self.size
        return list(items[self.rank * n : (self.rank + 1) * n])

    # ------------------------------------------------------------------ collectives

    def sum(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """Element-wise sum over ranks (float32 on the wire)."""
        local = np.asarray(values, dtype=np.float64)
        if not self.distributed:
            return local
        out = mx.distributed.all_sum(mx.array(local.astype(np.float32)), group=self.group)
        return np.array(out, dtype=np.float64)

    def max(self, values: Sequence[int] | np.ndarray) -> np.ndarray:
        """Element-wise maximum over ranks of integers (an all-gather: every backend has one)."""
        local = np.asarray(values, dtype=np.int32)
        if not self.distributed:
            return local
        rows = mx.distributed.all_gather(mx.array(local)[None], group=self.group)
        return np.array(rows).max(axis=0)

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one."""
        return bool(self.max([int(flag)])[0]) if self.distributed else flag

    def barrier(self) -> None:
        """Return once every rank got here."""
        if self.distributed:
            self.sum([1.0])

    def gather_json(self, obj: Any) -> list[Any]:
        """Every rank's JSON-able `obj`, in rank order (floats travel exactly, as JSON text)."""
        if not self.distributed:
            return [obj]
        data = np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)
        width = int(self.max([len(data)])[0])
        buf = np.zeros((1, width), dtype=np.uint8)
        buf[0, : len(data)] = data
        rows = np.array(mx.distributed.all_gather(mx.array(buf), group=self.group))
        return [json.loads(bytes(row).rstrip(b"\0")) for row in rows]

    def from_main(self, obj: Any) -> Any:
        """Rank 0's JSON-able `obj` on every rank (a run name, a checkpoint to resume)."""
        return self.gather_json(obj if self.is_main else None)[0] if self.distributed else obj

    def sum_grads(self, grads: Any) -> Any:
        """The sum over ranks of a gradient tree: MLX's `nn.average_gradients` (arrays packed
        into large all-reduces) times N. Each rank's loss is already divided by the global
        normalizer, so the sum is the gradient of the global loss."""
        if not self.distributed:
            return grads
        mean = nn.average_gradients(grads, self.group)
        return tree_map(lambda g: g * self.size, mean)

    # ------------------------------------------------------------------ staying identical

    def check_in_sync(self, params: Any, step: int) -> None:
        """Compare a checksum of the trainable parameters across ranks; raise on drift."""
        if not self.distributed:
            return
        sums = checksum(params)
        rows = [np.asarray(r) for r in self.gather_json(sums.tolist())]
        for rank, other in enumerate(rows):
            if not np.allclose(other, sums, rtol=CHECKSUM_RTOL, atol=0.0):
                raise RanksDrifted(
                    f"rank {self.rank}: trainable parameters differ from rank {rank}'s at step "
                    f"{step} (checksum {float(sums.sum()):.9g} vs {float(other.sum()):.9g}); "
                    "the ranks no longer train the same model, stopping"
                )


def checksum(params: Any) -> np.ndarray:
    """[sum, sum of squares] of every trainable array, in float32: cheap, order-stable."""
    values = []
    for _, p in tree_flatten(params):
        p = p.astype(mx.float32)
        values += [p.sum(), (p * p).sum()]
    return np.array(mx.stack(values) if values else mx.zeros((0,)), dtype=np.float64)


def check_divides(batch_size: int, group_size: int, accumulation_steps: int, ranks: int) -> None:
    """B must split into whole groups per rank, and each rank's rollouts into micro-batches."""
    if batch_size % ranks:
        raise UserError(
            f"{batch_size} prompts do not split over {ranks} ranks (each rank takes "
            f"batch_size / ranks whole groups); use a multiple of {ranks}",
            where="batch_size",
        )
    local = batch_size // ranks * group_size
    if local % accumulation_steps:
        raise UserError(
            f"must divide each rank's {local} rollouts (batch_size / {ranks} ranks x group_size)",
            where="optimizer.gradient_accumulation_steps",
        )


def rank_seed(seed: int, rank: int) -> int:
    """A per-rank sampling seed (rank 0 keeps the single-process seed)."""
    return (seed + rank * 104_729) % (2**31)


def global_advantages(world: World, rewards: np.ndarray, group_size: int, scale: str) -> np.ndarray:
    """This rank's advantages. Group scaling needs only its own groups; `scale_rewards: batch`
    divides by the standard deviation of the whole batch, so it sees every rank's rewards."""
    if scale != "batch" or not world.distributed:
        return group_advantages(rewards, group_size, scale)
    every = np.concatenate(
        [np.asarray(r, dtype=np.float64) for r in world.gather_json([float(x) for x in rewards])]
    )
    return np.asarray(world.shard(group_advantages(every, group_size, scale)))
