"""DAPO dynamic sampling: draw more prompts until B groups are informative, within a cap."""

from __future__ import annotations

import numpy as np
import yaml
from test_train_e2e import make_config

from mlx_grpo import rewards as rw
from mlx_grpo.config import load_config
from mlx_grpo.data.examples import Example
from mlx_grpo.train.dynamic import Drawn, concat, fill_informative, select_groups
from mlx_grpo.train.rollout import RolloutBatch

G, B = 2, 3


def _draw(tag: str, group_rewards: list[tuple[float, float]]) -> Drawn:
    """One draw of len(group_rewards) prompts; a group's two completions get those rewards."""
    n = len(group_rewards)
    examples = [Example(f"{tag}{b}", f"{tag}{b}", [b], "1") for b in range(n)]
    rewards = np.array([r for pair in group_rewards for r in pair], dtype=float)
    rollout = RolloutBatch(
        prompt_ids=[[b] for b in range(n)],
        completion_ids=[[i] for i in range(n * G)],
        truncated=[False] * (n * G),
        group_size=G,
        seconds=1.0,
    )
    texts = [f"{tag}{i // G}.{i % G}" for i in range(n * G)]
    scores = rw.Scores(total=rewards, per_function={"r": rewards}, errors={"r": 1})
    return Drawn(examples, rollout, texts, scores)


def test_enough_informative_groups_draw_nothing_more() -> None:
    first = _draw("a", [(0, 1), (1, 0), (0, 1)])
    out, extra = fill_informative(first, lambda: _fail(), B, 4)
    assert extra == 0 and [e.prompt for e in out.examples] == ["a0", "a1", "a2"]


def _fail() -> Drawn:
    raise AssertionError("drew again")


def test_draws_until_b_groups_are_informative() -> None:
    draws = iter([_draw("b", [(1, 1), (0, 1), (0, 0)]), _draw("c", [(0, 1), (1, 1), (1, 0)])])
    first = _draw("a", [(0, 0), (1, 0), (1, 1)])
    out, extra = fill_informative(first, lambda: next(draws), B, 4)
    assert extra == 2
    assert [e.prompt for e in out.examples] == ["a1", "b1", "c0"]  # informative, drawn order
    assert out.texts == ["a1.0", "a1.1", "b1.0", "b1.1", "c0.0", "c0.1"]
    assert out.scores.total.tolist() == [1, 0, 0, 1, 0, 1]
    assert out.rollout.prompt_ids == [[1], [1], [0]]
    assert out.scores.errors == {"r": 3}  # counted over everything scored


def test_a_merged_draw_carries_the_rollout_bookkeeping_of_all_its_parts() -> None:
    """The step's rollout record spans every draw: their prompts and their completions."""
    parts = [_draw("a", [(0, 1)]), _draw("b", [(1, 0), (0, 1)])]
    merged = concat(parts)
    assert merged.rollout.prompt_ids == [[0], [0], [1]]
    assert merged.rollout.num_tokens == sum(p.rollout.num_tokens for p in parts)


def test_the_cap_tops_up_with_all_equal_groups_of_the_first_draw() -> None:
    draws = iter([_draw("b", [(1, 1), (1, 1), (1, 1)])])
    first = _draw("a", [(0, 0), (1, 0), (1, 1)])
    out, extra = fill_informative(first, lambda: next(draws), B, 1)
    assert extra == 1
    assert [e.prompt for e in out.examples] == ["a0", "a1", "a2"]  # B groups all the same
    assert len(out.rollout.completion_ids) == B * G


def test_concat_and_select_keep_rows_aligned() -> None:
    both = concat([_draw("a", [(0, 1)]), _draw("b", [(1, 1), (0, 0)])])
    picked = select_groups(both, [2, 0])
    assert [e.prompt for e in picked.examples] == ["b1", "a0"]
    assert picked.scores.per_function["r"].tolist() == [0, 0, 0, 1]
    assert picked.rollout.completion_ids == [[2], [3], [0], [1]]


def test_the_trainer_draws_more_and_logs_it(tmp_path, tiny_model_dir) -> None:
    from mlx_grpo.train.trainer import Trainer

    rare = tmp_path / "rare.py"  # most groups score all 0: little signal without resampling
    rare.write_text(
        "def r(p, completions, a, **e):\n    return [c[:1] == '7' for c in completions]\n"
    )
    path = make_config(tmp_path, str(tiny_model_dir), rollout={"dynamic_sampling": 3})
    cfg = yaml.safe_load(path.read_text())
    cfg["rewards"] = [{"name": f"{rare}:r"}]
    path.write_text(yaml.safe_dump(cfg))
    trainer = Trainer(load_config(path, []), tmp_path / "runs" / "x")
    extras: list[int] = []
    for _ in range(2):
        m = trainer.train_step().metrics
        extra = m["dynamic_sampling/extra_draws"]
        extras.append(extra)
        assert 0 <= extra <= 3 and m["dynamic_sampling/prompts_drawn"] == 2 * (1 + extra)
        if extra < 3:  # stopped early: B informative groups were found
            assert m["frac_zero_std_groups"] == 0.0
    assert max(extras) > 0  # the rare reward left groups all equal: it drew more
