"""One rank of the data-parallel tests, started by `mlx.launch -n 2 --backend ring` from
tests/test_distributed.py (not collected by pytest itself).

`grads MODEL OUT`: on fixed rollouts (the same prompts, completions and rewards on every rank),
compare, for each case, the loss and gradient of the real trainer on 2 ranks x B/2 groups with
those of a world of one on all B groups, computed in the same process. Rank 0 writes every
case's numbers to OUT (JSON) once every rank has checked them; any mismatch exits non-zero.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from mlx.utils import tree_flatten

from mlx_grpo.config import load_config
from mlx_grpo.train.distributed import World, global_advantages
from mlx_grpo.train.objective import group_advantages, informative_groups
from mlx_grpo.train.rollout import RolloutBatch
from mlx_grpo.train.trainer import StepStats, Trainer

B, G = 4, 4
CASES: dict[str, dict[str, Any]] = {
    "grpo": {"objective": {"loss_type": "grpo"}},
    "dr_grpo": {"objective": {"loss_type": "dr_grpo"}},
    "dapo": {"objective": {"loss_type": "dapo"}},
    "bnpo": {"objective": {"loss_type": "bnpo"}},
    "dapo_scale_batch": {"objective": {"loss_type": "dapo", "scale_rewards": "batch"}},
    "grpo_scale_batch_kept_all": {
        "objective": {
            "loss_type": "grpo",
            "scale_rewards": "batch",
            "drop_uninformative_groups": False,
        }
    },
    "dr_grpo_accumulation_2": {
        "objective": {"loss_type": "dr_grpo"},
        "optimizer": {"gradient_accumulation_steps": 2},
    },
    "dapo_rank1_keeps_nothing": {"objective": {"loss_type": "dapo"}, "rewards": "rank1_flat"},
    "bnpo_sequence_level": {
        "objective": {"loss_type": "bnpo", "importance_sampling_level": "sequence"},
    },
}


def fixed_rollout(seed: int = 7) -> RolloutBatch:
    """B prompts x G completions of random tokens and lengths (the same on every rank)."""
    rng = np.random.default_rng(seed)
    prompts = [rng.integers(3, 250, size=int(rng.integers(3, 9))).tolist() for _ in range(B)]
    completions = [
        rng.integers(3, 250, size=int(rng.integers(1, 10))).tolist() for _ in range(B * G)
    ]
    truncated = [len(c) == 9 for c in completions]
    return RolloutBatch(prompts, completions, truncated, G)


def fixed_rewards(kind: str) -> np.ndarray:
    """Rewards per completion: group 0 all equal (dropped), the others informative; with
    `rank1_flat`, both of rank 1's groups (2 and 3) are all equal too."""
    r = np.array([0.0, 1.0, 0.5, 2.0] * B, dtype=np.float64)
    r[:G] = 1.0
    if kind == "rank1_flat":
        r[2 * G :] = 0.25
    return r


def make_config(folder: Path, model: str, case: dict[str, Any]) -> Path:
    data = folder / "train.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": f"{i}+1", "answer": str(i + 1)}) + "\n" for i in range(8))
    )
    cfg: dict[str, Any] = {
        "model": {"path": model},
        "lora": {"fine_tune_type": "full"},
        "rollout": {"group_size": G, "max_completion_length": 9},
        "objective": {"beta": 0.04, "num_iterations": 1},
        "optimizer": {"learning_rate": 1e-3},
        "data": {"train": str(data)},
        "rewards": [{"name": "exact_number"}],
        "batch_size": B,
        "steps": 1,
    }
    for key in ("objective", "optimizer"):
        cfg[key] = {**cfg.get(key, {}), **case.get(key, {})}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def loss_and_grads(
    trainer: Trainer, rollout: RolloutBatch, rewards: np.ndarray
) -> tuple[float, dict[str, np.ndarray]]:
    """What `Trainer.train_step` computes for its update, on a given rollout and rewards."""
    obj = trainer.cfg.objective
    adv = global_advantages(trainer.world, rewards, G, obj.scale_rewards)
    informative = informative_groups(rewards, G)
    keep = informative if obj.drop_uninformative_groups else np.ones_like(informative)
    batches = trainer.with_old_and_ref(trainer.micro_batches(rollout, adv, keep))
    grads, loss = trainer.gradients(batches, StepStats())
    total = float(trainer.world.sum([loss])[0])
    return total, {k: np.array(v) for k, v in tree_flatten(grads)}


def local_part(
    rollout: RolloutBatch, rewards: np.ndarray, world: World
) -> tuple[RolloutBatch, np.ndarray]:
    """This rank's B / N groups, as `Trainer.draw` would have kept them."""
    groups = world.shard(list(range(B)))
    rows = [b * G + i for b in groups for i in range(G)]
    part = RolloutBatch(
        [rollout.prompt_ids[b] for b in groups],
        [rollout.completion_ids[n] for n in rows],
        [rollout.truncated[n] for n in rows],
        G,
    )
    return part, rewards[rows]


def check_case(world: World, model: str, name: str, case: dict[str, Any]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(make_config(Path(tmp), model, case))
        rollout, rewards = fixed_rollout(), fixed_rewards(case.get("rewards", ""))
        solo = Trainer(cfg, Path(tmp) / "run", World())
        ref_loss, ref = loss_and_grads(solo, rollout, rewards)
        ranked = Trainer(cfg, Path(tmp) / "run", world)
        loss, grads = loss_and_grads(ranked, *local_part(rollout, rewards, world))
    assert ref.keys() == grads.keys()
    scale = max(float(np.abs(v).max()) for v in ref.values())
    diff = max(float(np.abs(ref[k] - grads[k]).max()) for k in ref)
    ok = abs(loss - ref_loss) <= 1e-5 * max(1.0, abs(ref_loss)) and diff <= 1e-4 * scale
    if not ok:
        print(
            f"rank {world.rank} {name}: loss {loss} vs {ref_loss}, grad diff {diff} of {scale}",
            file=sys.stderr,
        )
        raise SystemExit(1)
    return {"loss": loss, "loss_one_process": ref_loss, "max_grad_diff": diff, "max_grad": scale}


def grads_mode(model: str, out: Path) -> None:
    world = World.init()
    if world.size != 2:
        raise SystemExit(f"expected 2 ranks, got {world.size}: the ring backend did not start")
    assert not np.allclose(
        group_advantages(fixed_rewards(""), G, "batch"),
        group_advantages(fixed_rewards(""), G, "group"),
    )
    results = {name: check_case(world, model, name, case) for name, case in CASES.items()}
    world.barrier()
    if world.is_main:
        out.write_text(json.dumps({"world_size": world.size, "cases": results}, indent=2))


if __name__ == "__main__":
    if sys.argv[1] == "grads":
        grads_mode(sys.argv[2], Path(sys.argv[3]))
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]}")
