"""What `mlx-grpo runs` lists: one summary per run folder, read without loading a model.

State: `finished` (all configured steps done), `stopped` (the newest checkpoint is at the
last metrics step: a clean stop, resumable), `crashed` (metrics beyond the newest checkpoint,
or a torn last metrics line). A folder without config.yaml and metrics.jsonl is not a run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlx_grpo import rundir


@dataclass
class RunSummary:
    name: str
    model: str
    steps_done: int
    steps_total: int
    last_reward: float | None
    best_eval: float | None
    state: str


def read_metrics(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """The metrics lines that parse, and whether any line was torn."""
    rows, torn = [], False
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            torn = True
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows, torn


def summarize(run: Path) -> RunSummary | None:
    """The run's summary, or None when `run` is not a run folder."""
    if not (rundir.config_file(run).is_file() and rundir.metrics_file(run).is_file()):
        return None
    cfg = rundir.read_run_config(run)
    rows, torn = read_metrics(rundir.metrics_file(run))
    done = max((r["step"] for r in rows), default=0)
    total = int(cfg.get("steps", 0) or 0)
    evals = [r["eval/pass@1"] for r in rows if isinstance(r.get("eval/pass@1"), (int, float))]
    saved = max(rundir.list_steps(run), default=0)
    state = "finished" if done >= total and not torn else "stopped"
    if state == "stopped" and (torn or saved < done):
        state = "crashed"
    model = str((cfg.get("model") or {}).get("path", "?"))
    last = rows[-1].get("reward_mean") if rows else None
    return RunSummary(run.name, model, done, total, last, max(evals, default=None), state)


def scan(folder: Path) -> list[RunSummary]:
    """Summaries of the runs directly under `folder`, by name; other folders are skipped."""
    found = [summarize(child) for child in sorted(folder.iterdir()) if child.is_dir()]
    return [s for s in found if s is not None]


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def config_diff(a: Path, b: Path) -> list[tuple[str, Any, Any]]:
    """Dotted config keys whose values differ between two runs (`-` where one lacks it)."""
    fa, fb = _flatten(rundir.read_run_config(a)), _flatten(rundir.read_run_config(b))
    keys = sorted(set(fa) | set(fb))
    return [(k, fa.get(k, "-"), fb.get(k, "-")) for k in keys if fa.get(k, "-") != fb.get(k, "-")]


def final_metrics(run: Path) -> dict[str, Any]:
    """The last parsed metrics line of a run ({} when none)."""
    rows, _ = read_metrics(rundir.metrics_file(run))
    return rows[-1] if rows else {}
