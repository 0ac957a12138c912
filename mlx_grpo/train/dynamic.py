"""DAPO's dynamic sampling (arXiv 2503.14476, section 3.2): when groups whose rewards are all
equal leave fewer than B informative groups, draw more prompts until B are informative, within
a cap on extra draws per step (`rollout.dynamic_sampling`: at most that many more batches of B
prompts). The step then trains on B groups: the informative ones in the order they were drawn,
topped up with all-equal groups from the first draw when the cap is reached first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlx_grpo import rewards as rw
from mlx_grpo.data.examples import Example
from mlx_grpo.train.distributed import World
from mlx_grpo.train.objective import informative_groups
from mlx_grpo.train.rollout import RolloutBatch


@dataclass
class Drawn:
    """Prompts with their G completions each, decoded and scored (group-major)."""

    examples: list[Example]
    rollout: RolloutBatch
    texts: list[str]
    scores: rw.Scores


def concat(parts: list[Drawn]) -> Drawn:
    """Several draws as one (counts of errors and outcomes summed)."""
    g = parts[0].rollout.group_size
    rollout = RolloutBatch(
        prompt_ids=[p for d in parts for p in d.rollout.prompt_ids],
        completion_ids=[c for d in parts for c in d.rollout.completion_ids],
        truncated=[t for d in parts for t in d.rollout.truncated],
        group_size=g,
        seconds=sum(d.rollout.seconds for d in parts),
        logprobs=None
        if any(d.rollout.logprobs is None for d in parts)
        else [lp for d in parts for lp in d.rollout.logprobs or []],
    )
    scores = rw.Scores(total=np.concatenate([d.scores.total for d in parts]))
    for name in parts[0].scores.per_function:
        scores.per_function[name] = np.concatenate([d.scores.per_function[name] for d in parts])
        scores.errors[name] = sum(d.scores.errors.get(name, 0) for d in parts)
        outcomes: dict[str, int] = {}
        for d in parts:
            for kind, count in d.scores.outcomes.get(name, {}).items():
                outcomes[kind] = outcomes.get(kind, 0) + count
        if outcomes:
            scores.outcomes[name] = outcomes
    examples = [e for d in parts for e in d.examples]
    return Drawn(examples, rollout, [t for d in parts for t in d.texts], scores)


def select_groups(drawn: Drawn, groups: list[int]) -> Drawn:
    """Only the given groups (prompts), in that order; counts stay those of everything drawn."""
    g = drawn.rollout.group_size
    rows = [b * g + i for b in groups for i in range(g)]
    r = drawn.rollout
    rollout = RolloutBatch(
        prompt_ids=[r.prompt_ids[b] for b in groups],
        completion_ids=[r.completion_ids[n] for n in rows],
        truncated=[r.truncated[n] for n in rows],
        group_size=g,
        seconds=r.seconds,
        logprobs=None if r.logprobs is None else [r.logprobs[n] for n in rows],
    )
    s = drawn.scores
    scores = rw.Scores(
        total=s.total[rows],
        per_function={k: v[rows] for k, v in s.per_function.items()},
        errors=dict(s.errors),
        outcomes={k: dict(v) for k, v in s.outcomes.items()},
    )
    texts = [drawn.texts[n] for n in rows]
    return Drawn([drawn.examples[b] for b in groups], rollout, texts, scores)


def fill_informative(
    first: Drawn,
    draw: Callable[[], Drawn],
    batch_size: int,
    max_extra_draws: int,
    world: World | None = None,
) -> tuple[Drawn, int]:
    """B groups for the step, informative ones first, and how many extra draws it took.

    With several ranks, `batch_size` is this rank's B / N and every rank draws again while
    any rank is short (`world.any`), so all ranks draw as often and their prompt streams stay
    in step; each then keeps its own B / N groups."""
    parts, g, world = [first], first.rollout.group_size, world or World()
    informative = list(informative_groups(first.scores.total, g))
    while world.any(sum(informative) < batch_size) and len(parts) <= max_extra_draws:
        parts.append(draw())
        informative += list(informative_groups(parts[-1].scores.total, g))
    drawn = concat(parts)
    chosen = [b for b, ok in enumerate(informative) if ok][:batch_size]
    chosen += [b for b in range(batch_size) if not informative[b]][: batch_size - len(chosen)]
    return select_groups(drawn, sorted(chosen)), len(parts) - 1
