"""TensorBoard reporter: event files in the run folder, readable by tensorboard's reader."""

from pathlib import Path
from types import SimpleNamespace

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


def test_sample_rows_become_a_completions_text_table_at_their_step(tmp_path: Path) -> None:
    reporter = TensorBoardReporter(tmp_path)
    row = {"step": 4, "prompt": "2+2? [x]", "completion": "<answer>4</answer>", "reward": 1.0}
    reporter.on_step_end(None, SimpleNamespace(samples=[row]))
    reporter.on_log(None, {"step": 4, "reward_mean": 1.0})
    reporter.on_log(None, {"step": 5, "reward_mean": 0.5})  # no samples this step
    reporter.on_train_end(None, None)
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    events = acc.Tensors("completions")
    assert [e.step for e in events] == [4]
    cells = [c.decode() for c in events[0].tensor_proto.string_val]
    assert cells[:3] == ["step", "prompt", "completion"]
    assert "2+2? [x]" in cells and "<answer>4</answer>" in cells
