"""What a reward function receives, built in one place for training and for evaluation.

A reward is called as `fn(prompts, completions, answers, **extras)`, one entry per completion
(group-major: completion n answers prompt n // G). `extras` holds the dataset's other
columns (one list per column, aligned with the completions) and what the engine knows about
each completion (`EngineExtras`). A config cannot set an engine extra as a reward parameter
(`library.TRAINER_EXTRAS` is the set of their names).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class EngineExtras:
    """Extras every reward gets from the engine, whatever the dataset."""

    completion_lengths: list[int]  # tokens per completion, EOS included
    max_completion_length: int  # the generation cap


ENGINE_EXTRAS = frozenset(f.name for f in dataclasses.fields(EngineExtras))


class Graded(Protocol):
    """A prompt with its gold answer and extra columns (`data.examples.Example`)."""

    prompt: str
    answer: str
    extras: Mapping[str, Any]


@dataclass
class RewardInputs:
    """The arguments of one reward call."""

    prompts: list[str]
    completions: list[str]
    answers: list[str]
    extras: dict[str, Any]

    def args(self) -> tuple[list[str], list[str], list[str], dict[str, Any]]:
        return self.prompts, self.completions, self.answers, self.extras


def reward_inputs(
    examples: Sequence[Graded],
    completions: list[str],
    completion_lengths: Sequence[int],
    max_completion_length: int,
) -> RewardInputs:
    """Inputs for `len(completions) // len(examples)` completions of each example, in order."""
    g = len(completions) // max(len(examples), 1)
    keys = sorted({key for e in examples for key in e.extras})
    columns = {key: [e.extras.get(key) for e in examples for _ in range(g)] for key in keys}
    engine = EngineExtras([int(n) for n in completion_lengths], int(max_completion_length))
    return RewardInputs(
        prompts=[e.prompt for e in examples for _ in range(g)],
        completions=completions,
        answers=[e.answer for e in examples for _ in range(g)],
        extras={**columns, **{f.name: getattr(engine, f.name) for f in dataclasses.fields(engine)}},
    )
