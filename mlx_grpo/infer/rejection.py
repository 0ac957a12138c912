"""Rejection sampling (`mlx-grpo generate --keep correct`): R1's distillation step.

Every completion is graded by rewards (a run's configured rewards, `--reward NAME`, or
`math_correct` against the prompts file's `answer` column) and kept when its weighted total
is at least the threshold. `--out` receives SFT rows `{"prompt", "completion", "answer",
"reward"}` (the prompt as written in the prompts file), each (prompt, completion) once.

Every graded completion, kept or not, goes to `OUT.graded.jsonl` beside it: generate's own
row format (so generate's resume logic applies) plus `answer`, `reward` and `rewards` (the
score of each function). That file is the record: each run rebuilds `--out` from it
atomically before generating more, so a crash between the two appends, or a rerun with
another `--threshold` or other weights, never duplicates or loses a kept row.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mlx_grpo.config import RewardSpec, TrainConfig
from mlx_grpo.data.sources import gold_answer
from mlx_grpo.errors import UserError
from mlx_grpo.infer.generation import done_rows
from mlx_grpo.infer.held_out import reward_params
from mlx_grpo.rewards import Reward, build_rewards, score
from mlx_grpo.rewards.inputs import reward_inputs

KEPT_FIELDS = ("prompt", "completion", "answer", "reward")
DEFAULT_THRESHOLD = 1.0  # a correct answer under math_correct at weight 1
ANSWER_REWARDS = frozenset({"math_correct", "exact_number", "cosine_length"})


@dataclass
class Gold:
    """What the rewards need about one prompt: its text, gold answer and extra columns."""

    prompt: str
    answer: str
    extras: dict[str, Any] = field(default_factory=dict)


def read_gold(path: Path, lines: list[tuple[int, str]]) -> dict[int, Gold]:
    """Gold answers and extra columns by prompt line (a .txt file has none)."""
    if path.suffix != ".jsonl":
        return {number: Gold(text, "") for number, text in lines}
    raw = path.read_bytes().splitlines()
    return {
        number: _gold_of(json.loads(raw[number - 1]), f"{path}:{number}") for number, _ in lines
    }


def _gold_of(row: dict[str, Any], where: str) -> Gold:
    extras = {k: v for k, v in row.items() if k not in ("prompt", "answer")}
    if row.get("answer") is None:
        return Gold(row["prompt"], "", extras)
    try:
        answer = row["answer"]
        return Gold(
            row["prompt"], gold_answer(answer if isinstance(answer, str) else str(answer)), extras
        )
    except ValueError as exc:
        raise UserError(f"cannot read the answer: {exc}", where=where) from None


def choose_rewards(
    run_cfg: TrainConfig | None, names: list[str], has_answers: bool
) -> list[Reward]:
    """--reward NAME..., else the run's rewards, else math_correct when there are answers."""
    if names:
        specs = [RewardSpec(name, params=reward_params(run_cfg, name)) for name in names]
    elif run_cfg is not None:
        specs = list(run_cfg.rewards)
    elif has_answers:
        specs = [RewardSpec("math_correct")]
    else:
        raise UserError(
            'nothing to grade by: the prompts have no "answer" column (a .jsonl file) and '
            "no --reward NAME or --run RUN names rewards",
            where="--keep correct",
        )
    needy = sorted({s.name for s in specs} & ANSWER_REWARDS)
    if needy and not has_answers:
        raise UserError(
            f"{', '.join(needy)} compares with gold answers, and no prompt has an "
            '"answer" (a .jsonl prompts file with an "answer" column)',
            where="--keep correct",
        )
    return build_rewards(specs)


@dataclass
class Keeper:
    """Grades rows, keeps those at or above the threshold, each (prompt, completion) once."""

    rewards: list[Reward]
    threshold: float
    max_tokens: int
    gold: dict[int, Gold]
    seen: set[tuple[str, str]] = field(default_factory=set)
    kept_ids: set[int] = field(default_factory=set)
    completions: int = 0
    passed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def grade(self, rows: list[dict[str, Any]]) -> None:
        """Add `answer`, `rewards` (per function) and `reward` (weighted total) to each row."""
        if not rows:
            return
        golds = [self.gold[r["id"]] for r in rows]
        lengths = [r["completion_tokens"] for r in rows]
        inputs = reward_inputs(golds, [r["completion"] for r in rows], lengths, self.max_tokens)
        scores = score(self.rewards, *inputs.args())
        for name, count in scores.errors.items():
            self.errors[name] = self.errors.get(name, 0) + count
        for i, (row, gold) in enumerate(zip(rows, golds)):
            row["answer"] = gold.answer
            row["rewards"] = {name: float(v[i]) for name, v in scores.per_function.items()}
            row["reward"] = float(scores.total[i])

    def keep(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """SFT rows for the graded `rows` that pass and were not kept before."""
        kept = []
        for row in rows:
            self.completions += 1
            total = self.total(row)
            if total < self.threshold:
                continue
            self.passed += 1
            if (row["prompt"], row["completion"]) in self.seen:
                continue
            self.seen.add((row["prompt"], row["completion"]))
            self.kept_ids.add(row["id"])
            kept.append({"prompt": row["prompt"], "completion": row["completion"],
                         "answer": row["answer"], "reward": total})  # fmt: skip
        return kept

    def total(self, row: dict[str, Any]) -> float:
        """The weighted total under this command's rewards and weights."""
        return sum((r.weight * row["rewards"][r.name] for r in self.rewards), 0.0)


def graded_path(out: Path) -> Path:
    """Where every graded completion is recorded, beside the kept rows."""
    return out.with_suffix(".graded.jsonl")


def resume(out: Path, keeper: Keeper) -> set[tuple[int, int]]:
    """(id, sample) pairs already graded; rewrites `out` from the graded record first."""
    graded = graded_path(out)
    _check_kept_file(out, graded)
    done = done_rows(graded)
    rows = _read_graded(graded, [r.name for r in keeper.rewards])
    kept = keeper.keep(rows)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    os.replace(tmp, out)
    return done


def _check_kept_file(out: Path, graded: Path) -> None:
    """Refuse an `out` this command did not write (it is about to be rewritten)."""
    if not out.exists():
        return
    if not out.is_file():
        raise UserError("is not a file; --out takes a .jsonl file path", where=str(out))
    lines = out.read_bytes().splitlines(keepends=True)
    for number, raw in enumerate(lines, start=1):
        torn = number == len(lines) and not raw.endswith(b"\n")
        if raw.strip() and not _is_kept_row(raw) and not torn:
            raise UserError(
                f"line {number} is not a row kept by mlx-grpo generate --keep correct; "
                "refusing to rewrite this file (choose a new --out)",
                where=str(out),
            )
    if lines and not graded.is_file():
        raise UserError(
            f"exists, but {graded.name} (the record of its graded completions) does not; "
            "refusing to rewrite it (choose a new --out)",
            where=str(out),
        )


def _is_kept_row(raw: bytes) -> bool:
    try:
        row = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(row, dict) and sorted(row) == sorted(KEPT_FIELDS)


def _read_graded(graded: Path, names: list[str]) -> list[dict[str, Any]]:
    """The graded record's rows; each must carry a score for each of `names`, no others."""
    if not graded.exists():
        return []
    rows = []
    for number, line in enumerate(graded.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)  # done_rows has checked every line is one of our rows
        scored = row.get("rewards")
        if not isinstance(scored, dict) or sorted(scored) != sorted(names):
            had = ", ".join(sorted(scored)) if isinstance(scored, dict) else "none"
            raise UserError(
                f"line {number} was graded by rewards [{had}], this command grades by "
                f"[{', '.join(names)}]; choose a new --out",
                where=str(graded),
            )
        rows.append(row)
    return rows


def write_graded(
    out: Path,
    batches: Iterator[list[dict[str, Any]]],
    done: set[tuple[int, int]],
    keeper: Keeper,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Grade each batch's new rows, append them to the record, then their kept rows to `out`.
    Returns how many completions were graded."""
    written = 0
    with graded_path(out).open("a") as record, out.open("a") as kept:
        for rows in batches:
            fresh = [r for r in rows if (r["id"], r["sample"]) not in done]
            keeper.grade(fresh)
            _append(record, fresh)
            _append(kept, keeper.keep(fresh))
            written += len(fresh)
            if on_batch is not None:
                on_batch(len(rows))
    return written


def _append(f: TextIO, rows: list[dict[str, Any]]) -> None:
    f.write("".join(json.dumps(r) + "\n" for r in rows))
    f.flush()


def summary(keeper: Keeper, prompts: int) -> dict[str, float]:
    """The numbers of the end-of-run table, over everything graded so far."""
    kept = len(keeper.seen)
    return {
        "prompts": prompts,
        "completions": keeper.completions,
        "at or above threshold": keeper.passed,
        "kept (deduplicated)": kept,
        "kept rate": kept / keeper.completions if keeper.completions else 0.0,
        "prompts with a kept completion": len(keeper.kept_ids),
    }
