"""Which completions train and how they are split: all-equal groups (dropped or kept as TRL
does), micro-batches split evenly after drops (bnpo), and clip fractions on the capped ratio."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from test_train_e2e import make_config

from mlx_grpo.config import ObjectiveConfig, load_config
from mlx_grpo.train.batch import BatchSpec, even_chunks, micro_batches
from mlx_grpo.train.objective import LossSettings, clip_counts, grpo_loss
from mlx_grpo.train.rollout import RolloutBatch

G = 4


def _rollout(groups: int, lengths: list[int] | None = None) -> RolloutBatch:
    n = groups * G
    lengths = lengths or [2 + (i % 3) for i in range(n)]
    return RolloutBatch(
        prompt_ids=[[1, 2, 3] for _ in range(groups)],
        completion_ids=[[5 + i % 7] * lengths[i] for i in range(n)],
        truncated=[False] * n,
        group_size=G,
    )


def _spec(rows: int, loss_type: str) -> BatchSpec:
    return BatchSpec(rows, rows // G + 1, 1, False, loss_type, 8, False)


def test_even_chunks() -> None:
    assert [len(c) for c in even_chunks(list(range(12)), 8)] == [6, 6]
    assert [len(c) for c in even_chunks(list(range(17)), 8)] == [6, 6, 5]
    assert [len(c) for c in even_chunks(list(range(16)), 8)] == [8, 8]
    assert even_chunks([], 8) == []
    rows = list(range(23))
    assert sum(even_chunks(rows, 5), []) == rows  # contiguous, in order, nothing lost


def test_bnpo_micro_batches_are_even_after_a_drop() -> None:
    # 4 groups, one dropped: 12 rows in micro-batches of up to 8 rows -> 6 + 6, not 8 + 4.
    rollout = _rollout(4)
    keep = np.array([True, False, True, True])
    batches = micro_batches(rollout, np.ones(16), keep, _spec(8, "bnpo"))
    rows = [int((b.mask.sum(axis=1) > 0).sum().item()) for b in batches]
    assert rows == [6, 6]
    for b in batches:  # bnpo: each micro-batch divides by its own tokens x micro-batches
        assert float(b.norm.item()) == float(b.mask.sum().item()) * len(batches)


def test_kept_all_equal_groups_count_in_the_normalizers() -> None:
    rollout = _rollout(3)
    rewards = np.array([1, 1, 1, 1, 0, 1, 0, 1, 2, 2, 2, 2], dtype=float)
    adv = rewards - rewards.reshape(3, G).mean(axis=1).repeat(G)
    dropped = micro_batches(rollout, adv, np.array([False, True, False]), _spec(12, "dr_grpo"))
    kept = micro_batches(rollout, adv, np.ones(3, dtype=bool), _spec(12, "dr_grpo"))
    assert float(dropped[0].norm.item()) == 4 * 8  # dr_grpo: sequences x max length
    assert float(kept[0].norm.item()) == 12 * 8  # TRL: every sequence counts
    assert np.allclose(np.array(kept[0].advantages)[:4], 0.0)  # all-equal: advantage 0
    dapo = micro_batches(rollout, adv, np.ones(3, dtype=bool), _spec(12, "dapo"))
    assert float(dapo[0].norm.item()) == sum(len(c) for c in rollout.completion_ids)


def test_drop_uninformative_groups_false_trains_like_trl(tmp_path, tiny_model_dir) -> None:
    from mlx_grpo.train.trainer import Trainer

    path = make_config(tmp_path, str(tiny_model_dir), objective={"beta": 0.1})
    cfg = load_config(path, ["objective.drop_uninformative_groups=false"])
    trainer = Trainer(cfg, tmp_path / "runs" / "x")
    step = trainer.train_step()
    assert step.metrics["kl"] is not None  # an update happened over every completion
    assert "frac_zero_std_groups" in step.metrics  # still reported from the rewards
    assert ObjectiveConfig().drop_uninformative_groups is True


def _settings(level: str = "token", delta: float | None = None) -> LossSettings:
    return LossSettings("dapo", level, 0.2, 0.28, delta, 0.0)


def test_clip_fractions_use_the_delta_capped_ratio() -> None:
    ratio = mx.array([[5.0, 1.0]])
    adv, mask = mx.array([[1.0]]), mx.array([[1.0, 1.0]])
    high = clip_counts(ratio, adv, mask, _settings())["clip_high_sum"]
    assert float(high.item()) == 1.0  # 5 > 1.28: clipped above
    capped = mx.minimum(ratio, 1.1)  # delta 1.1 < 1 + eps_high: the cap acts first (TRL)
    assert float(clip_counts(capped, adv, mask, _settings(delta=1.1))["clip_high_sum"]) == 0
    logp = mx.array([[np.log(5.0), 0.0]])
    old = mx.zeros((1, 2))
    _, stats = grpo_loss(
        logp, old, None, mx.array([1.0]), mask, mx.array(2.0), _settings(delta=1.1)
    )
    assert float(stats["clip_high_sum"].item()) == 0.0


def test_sequence_level_clip_fractions_count_sequences() -> None:
    # Two sequences, 4 and 1 tokens; only the long one is clipped: 1 of 2 sequences (a token
    # count would say 4 of 5).
    logp = mx.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    mask = mx.array([[1.0, 1, 1, 1], [1.0, 0, 0, 0]])
    adv = mx.array([1.0, 1.0])
    _, stats = grpo_loss(
        logp, mx.zeros((2, 4)), None, adv, mask, mx.array(5.0), _settings("sequence")
    )
    assert float(stats["clip_high_sum"].item()) == 1.0
    assert float(stats["sequences"].item()) == 2.0


@pytest.mark.parametrize("level", ["token", "sequence"])
def test_the_trainer_reports_clip_fractions_per_level(tmp_path, tiny_model_dir, level) -> None:
    from mlx_grpo.train.trainer import Trainer

    path = make_config(tmp_path, str(tiny_model_dir))
    sets = [f"objective.importance_sampling_level={level}", "objective.num_iterations=2"]
    trainer = Trainer(load_config(path, sets), tmp_path / "runs" / level)
    m = trainer.train_step().metrics
    assert m["clip_ratio/region"] is None or 0.0 <= m["clip_ratio/region"] <= 1.0
