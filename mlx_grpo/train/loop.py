"""A training run on disk: creating or reopening the run directory, the step loop, Ctrl-C.

Ctrl-C finishes the step in flight, writes a checkpoint and stops (a second Ctrl-C stops at
once, keeping the last checkpoint). `--resume RUN_DIR` reloads the run's own config.yaml,
restores the newest checkpoint and continues; metrics lines written after that checkpoint are
moved aside to `metrics.after-step-N.jsonl` (never deleted) because they will be recomputed.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlx_grpo import rundir
from mlx_grpo.config import TrainConfig, load_config
from mlx_grpo.errors import UserError


@dataclass
class RunPlan:
    """What `train` will do: the config, where it writes, and what it resumes from."""

    cfg: TrainConfig
    run_dir: Path
    resume_from: Path | None = None


def plan_new_run(config_path: Path | None, overrides: list[str]) -> RunPlan:
    """Validate the config and choose a fresh run directory (refusing to overwrite one)."""
    cfg = load_config(config_path, overrides)
    name = cfg.logging.run_name or time.strftime("grpo-%Y%m%d-%H%M%S")
    run_dir = Path(cfg.logging.output_dir) / name
    if rundir.holds_run(run_dir):
        raise UserError(
            "run directory already holds a run; continue it with --resume "
            f"{run_dir} or choose another logging.run_name",
            where=str(run_dir),
        )
    cfg.logging.run_name = name
    return RunPlan(cfg, run_dir)


def plan_resume(run_dir: Path, overrides: list[str]) -> RunPlan:
    """Reopen a run: its own resolved config (plus overrides) and its newest checkpoint."""
    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        raise UserError("not a run directory (no config.yaml)", where=str(run_dir))
    cfg = load_config(config_file, overrides)
    steps = rundir.list_steps(run_dir)
    return RunPlan(cfg, run_dir, rundir.pick_step(run_dir)[1] if steps else None)


def set_aside_metrics_after(run_dir: Path, step: int) -> None:
    """Keep metrics up to `step` in metrics.jsonl; move later lines to a side file."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [ln for ln in lines if ln.strip() and json.loads(ln)["step"] <= step]
    later = [ln for ln in lines if ln.strip() and json.loads(ln)["step"] > step]
    if later:
        (run_dir / f"metrics.after-step-{step}.jsonl").write_text("".join(later))
        path.write_text("".join(kept))


class StopFlag:
    """Set by the first Ctrl-C; the loop stops after the current step."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def graceful_interrupt() -> Iterator[StopFlag]:
    """First SIGINT sets the flag, the second raises KeyboardInterrupt as usual."""
    flag = StopFlag()

    def handler(signum: int, frame: object) -> None:
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: keep the default behaviour
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
