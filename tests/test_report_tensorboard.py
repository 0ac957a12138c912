"""TensorBoard reporter: event files in the run folder, readable by tensorboard's reader."""

from pathlib import Path

import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from mlx_grpo.report.callbacks import TensorBoardReporter  # noqa: E402


def test_event_files_hold_trl_named_scalars_at_their_steps(tmp_path: Path) -> None:
    reporter = TensorBoardReporter(tmp_path)
    reporter.on_log(None, {"step": 1, "reward_mean": 0.25, "kl": 0.0})
    reporter.on_log(None, {"step": 2, "reward_mean": 0.75, "kl": 0.5, "eval/pass@1": 0.5})
    reporter.on_train_end(None, None)
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert {"reward", "kl", "eval/pass@1"} <= set(acc.Tags()["scalars"])
    assert [(e.step, e.value) for e in acc.Scalars("reward")] == [(1, 0.25), (2, 0.75)]
    assert [e.step for e in acc.Scalars("eval/pass@1")] == [2]
