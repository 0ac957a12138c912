"""Reporters as loop callbacks: `reporters(cfg, run_dir)` builds what `logging.report_to` asks.

Each reporter sends every numeric metric of a metrics line under its TRL-compatible name
(`report/names.py`) at the line's step, so eval metrics land at the steps they were run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mlx_grpo.config import TrainConfig
from mlx_grpo.report.names import trl_metrics
from mlx_grpo.train.loop import Callback


class TensorBoardReporter(Callback):
    """Scalars into TensorBoard event files in the run folder."""

    def __init__(self, run_dir: Path) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._event, self._summary = event_pb2, summary_pb2
        self._writer = EventFileWriter(str(run_dir))

    def on_log(self, trainer: Any, metrics: dict[str, Any]) -> None:
        values = [
            self._summary.Summary.Value(tag=tag, simple_value=value)
            for tag, value in trl_metrics(metrics).items()
        ]
        event = self._event.Event(
            step=int(metrics["step"]), summary=self._summary.Summary(value=values)
        )
        self._writer.add_event(event)
        self._writer.flush()

    def on_train_end(self, trainer: Any, result: Any) -> None:
        self._writer.close()


class WandbReporter(Callback):
    """One W&B run per run folder: its id is the run's name, so `--resume` continues it.

    Offline runs (`WANDB_MODE=offline`) write under the run folder; the resolved config is the
    run's hyperparameters.
    """

    def __init__(self, cfg: TrainConfig, run_dir: Path) -> None:
        import wandb

        self._wandb = wandb
        name = run_dir.name
        self._run = wandb.init(
            project="mlx-grpo",
            name=name,
            id=name,
            resume="allow",
            dir=str(run_dir),
            config=dataclasses.asdict(cfg),
        )

    def on_log(self, trainer: Any, metrics: dict[str, Any]) -> None:
        self._run.log(trl_metrics(metrics), step=int(metrics["step"]))

    def on_train_end(self, trainer: Any, result: Any) -> None:
        self._run.finish()


def reporters(cfg: TrainConfig, run_dir: Path) -> list[Callback]:
    """The callbacks `logging.report_to` names (validated at config time)."""
    out: list[Callback] = []
    for name in cfg.logging.report_to:
        out.append(
            TensorBoardReporter(run_dir) if name == "tensorboard" else WandbReporter(cfg, run_dir)
        )
    return out
