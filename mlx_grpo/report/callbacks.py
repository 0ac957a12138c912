"""Reporters as loop callbacks: `reporters(cfg, run_dir)` builds what `logging.report_to` asks.

Each reporter sends every numeric metric of a metrics line under its TRL-compatible name
(`report/names.py`) at the line's step, so eval metrics land at the steps they were run, and
the step's sample rows (every `logging.samples_every` steps) as a table named `completions`,
as TRL does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mlx_grpo.config import TrainConfig
from mlx_grpo.report.names import trl_metrics
from mlx_grpo.train.loop import Callback

SAMPLE_COLUMNS = ("step", "prompt", "completion", "answer", "reward", "advantage")


def sample_rows(samples: list[dict[str, Any]]) -> list[list[str | float | int]]:
    """samples.jsonl rows as table rows in `SAMPLE_COLUMNS` order (missing cells empty)."""
    return [[row.get(col, "") for col in SAMPLE_COLUMNS] for row in samples]


class SampleReporter(Callback):
    """Keeps the step's sample rows from `on_step_end` until its metrics line is logged."""

    def __init__(self) -> None:
        self._samples: list[dict[str, Any]] = []

    def on_step_end(self, trainer: Any, out: Any) -> None:
        self._samples = list(out.samples)

    def take_samples(self) -> list[dict[str, Any]]:
        samples, self._samples = self._samples, []
        return samples


class TensorBoardReporter(SampleReporter):
    """Scalars, and the sample table as text, into TensorBoard event files in the run folder."""

    def __init__(self, run_dir: Path) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        super().__init__()
        self._event, self._summary = event_pb2, summary_pb2
        self._writer = EventFileWriter(str(run_dir))

    def _table(self, samples: list[dict[str, Any]]) -> Any:
        """The text plugin's table: a 2-D string tensor whose first row names the columns."""
        import numpy as np
        from tensorboard.plugins.text.metadata import create_summary_metadata
        from tensorboard.util.tensor_util import make_tensor_proto

        cells = [list(SAMPLE_COLUMNS)] + [[str(c) for c in r] for r in sample_rows(samples)]
        return self._summary.Summary.Value(
            tag="completions",
            metadata=create_summary_metadata(display_name="completions", description=""),
            tensor=make_tensor_proto(np.array(cells, dtype=object)),
        )

    def on_log(self, trainer: Any, metrics: dict[str, Any]) -> None:
        values = [
            self._summary.Summary.Value(tag=tag, simple_value=value)
            for tag, value in trl_metrics(metrics).items()
        ]
        samples = self.take_samples()
        if samples:
            values.append(self._table(samples))
        event = self._event.Event(
            step=int(metrics["step"]), summary=self._summary.Summary(value=values)
        )
        self._writer.add_event(event)
        self._writer.flush()

    def on_train_end(self, trainer: Any, result: Any) -> None:
        self._writer.close()


class WandbReporter(SampleReporter):
    """One W&B run per run folder: its id is the run's name, so `--resume` continues it.

    Offline runs (`WANDB_MODE=offline`) write under the run folder; the resolved config is the
    run's hyperparameters.
    """

    def __init__(self, cfg: TrainConfig, run_dir: Path) -> None:
        import wandb

        super().__init__()
        self._wandb = wandb
        name = run_dir.name
        self._run = wandb.init(
            project="mlx-grpo",
            name=name,
            id=name,
            resume="allow",
            dir=str(run_dir.resolve()),
            config=dataclasses.asdict(cfg),
        )

    def on_log(self, trainer: Any, metrics: dict[str, Any]) -> None:
        data: dict[str, Any] = dict(trl_metrics(metrics))
        samples = self.take_samples()
        if samples:
            data["completions"] = self._wandb.Table(
                columns=list(SAMPLE_COLUMNS), data=sample_rows(samples)
            )
        self._run.log(data, step=int(metrics["step"]))

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
