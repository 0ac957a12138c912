"""W&B reporter against a fake `wandb` module: same run id on resume, TRL names, config."""

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from mlx_grpo.config import load_config
from mlx_grpo.report.callbacks import WandbReporter


class FakeRun:
    def __init__(self) -> None:
        self.logged: list[tuple[dict[str, float], int]] = []
        self.finished = False

    def log(self, data: dict[str, float], step: int) -> None:
        self.logged.append((data, step))

    def finish(self) -> None:
        self.finished = True


def test_wandb_run_id_is_the_run_name_and_metrics_are_trl_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inits: list[dict[str, Any]] = []
    run = FakeRun()

    def init(**kwargs: Any) -> FakeRun:
        inits.append(kwargs)
        return run

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
    cfg = load_config(None, ["data.train=builtin:arithmetic", "steps=7"])
    reporter = WandbReporter(cfg, tmp_path / "my-run")
    reporter.on_log(None, {"step": 3, "reward_mean": 0.5})
    reporter.on_train_end(None, None)
    assert inits[0]["id"] == "my-run" and inits[0]["resume"] == "allow"
    assert inits[0]["config"]["steps"] == 7
    assert run.logged == [({"reward": 0.5}, 3)] and run.finished
