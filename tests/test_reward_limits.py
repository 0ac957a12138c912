"""Every reward call has a time limit: a reward that never returns costs one limit, not the run."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import read_metrics
from test_train_e2e import make_config

from mlx_grpo.config import RewardSpec, load_config
from mlx_grpo.errors import UserError
from mlx_grpo.rewards import build_rewards, score
from mlx_grpo.rewards.custom import call_safely
from mlx_grpo.rewards.limits import DEFAULT_LIMIT_S

PROMPTS, COMPLETIONS, ANSWERS = ["p", "p"], ["a", "b"], ["1", "2"]

HANGING = """
import asyncio, threading, time
from pathlib import Path

RELEASE = threading.Event()
CALLS = []

def hangs(prompts, completions, answers, **extras):
    CALLS.append(len(completions))
    if len(CALLS) == 1:
        RELEASE.wait()  # the first call blocks until the test releases it
    return [1.0] * len(completions)

def hangs_forever(prompts, completions, answers, **extras):
    marker = extras.get("marker")
    if marker:
        Path(marker[0]).write_text("in the reward")
    while True:
        time.sleep(0.05)

CANCELLED = []

async def awaits_forever(prompts, completions, answers, **extras):
    CALLS.append(len(completions))
    if len(CALLS) == 1:
        try:
            await asyncio.sleep(3600)  # a network call that never answers
        finally:
            CANCELLED.append(True)
    return [0.5] * len(completions)
"""


@pytest.fixture
def reward_file(tmp_path: Path) -> Path:
    path = tmp_path / "hanging.py"
    path.write_text(HANGING)
    return path


def test_a_blocking_reward_costs_one_limit_and_is_not_piled_up(
    reward_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    [reward] = build_rewards([RewardSpec(name=f"{reward_file}:hangs", timeout=0.5)])
    module = sys.modules[reward.fn.__module__]
    with caplog.at_level(logging.WARNING):
        first = score([reward], PROMPTS, COMPLETIONS, ANSWERS)
        # The first call is still blocked: the second is not started, and times out at once.
        start = time.monotonic()
        second = score([reward], PROMPTS, COMPLETIONS, ANSWERS)
        waited = time.monotonic() - start
    assert first.per_function["hangs"].tolist() == [0.0, 0.0]
    assert first.errors["hangs"] == 2 and first.outcomes["hangs"] == {"timeout": 2}
    assert second.outcomes["hangs"] == {"timeout": 2} and module.CALLS == [2]
    assert waited < 0.5  # it did not wait a second limit
    timeouts = [r for r in caplog.records if "call timeout" in r.getMessage()]
    assert len(timeouts) == 1  # logged once, counted every time
    assert "rewards[].timeout" in timeouts[0].getMessage()
    module.RELEASE.set()  # the stuck call returns; the reward is called normally again
    deadline = time.monotonic() + 10
    while reward.call._busy.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    third = score([reward], PROMPTS, COMPLETIONS, ANSWERS)
    assert third.per_function["hangs"].tolist() == [1.0, 1.0] and third.errors["hangs"] == 0


def test_an_async_reward_past_its_limit_is_cancelled(reward_file: Path) -> None:
    [reward] = build_rewards([RewardSpec(name=f"{reward_file}:awaits_forever", timeout=0.3)])
    module = sys.modules[reward.fn.__module__]
    first = score([reward], PROMPTS, COMPLETIONS, ANSWERS)
    assert first.outcomes["awaits_forever"] == {"timeout": 2}
    assert module.CANCELLED == [True]  # the coroutine was cancelled, not left running
    second = score([reward], PROMPTS, COMPLETIONS, ANSWERS)
    assert second.per_function["awaits_forever"].tolist() == [0.5, 0.5]


def test_call_safely_has_a_default_limit() -> None:
    release = threading.Event()

    def blocks(prompts, completions, answers, **extras):
        release.wait()
        return [1.0] * len(completions)

    called = call_safely(blocks, PROMPTS, COMPLETIONS, ANSWERS, limit=0.2)
    release.set()
    assert called.scores == [0.0, 0.0] and called.outcomes == {"timeout": 2}
    assert DEFAULT_LIMIT_S == 60.0
    assert call_safely(blocks, PROMPTS, COMPLETIONS, ANSWERS).scores == [1.0, 1.0]


def test_limits_per_reward_from_the_config(tmp_path: Path) -> None:
    rewards = build_rewards(
        [RewardSpec(name="math_correct"), RewardSpec(name="code_tests"), RewardSpec(timeout=5)]
    )
    assert [r.limit for r in rewards] == [DEFAULT_LIMIT_S, 600.0, 5]
    path = tmp_path / "c.yaml"
    cfg = {
        "data": {"train": "builtin:arithmetic"},
        "rewards": [{"name": "math_correct", "timeout": 0}],
    }
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(UserError, match=r"rewards\[0\]\.timeout.*must be > 0"):
        load_config(path, [])


def _hanging_run(tmp_path: Path, model: Path, timeout: float, steps: int) -> Path:
    reward = tmp_path / "hanging.py"
    reward.write_text(HANGING)
    config = make_config(tmp_path, str(model), steps=steps)
    cfg = yaml.safe_load(config.read_text())
    marker = tmp_path / "marker"
    cfg["data"]["train"] = str(_rows_with_marker(tmp_path, marker))
    cfg["rewards"] = [
        {"name": "exact_number"},
        {"name": f"{reward}:hangs_forever", "timeout": timeout},
    ]
    config.write_text(yaml.safe_dump(cfg))
    return config


def _rows_with_marker(tmp_path: Path, marker: Path) -> Path:
    from conftest import write_jsonl

    rows = [
        {"prompt": f"{a} + 1 = ?", "answer": str(a + 1), "marker": str(marker)} for a in range(8)
    ]
    return write_jsonl(tmp_path / "rows.jsonl", rows)


@pytest.mark.e2e
def test_a_reward_that_never_returns_does_not_stop_training(
    tmp_path: Path, tiny_model_dir: Path, run_cli, caplog: pytest.LogCaptureFixture
) -> None:
    config = _hanging_run(tmp_path, tiny_model_dir, timeout=1.0, steps=3)
    with caplog.at_level(logging.WARNING):
        assert run_cli("train", "-c", config) == 0
    metrics = read_metrics(tmp_path / "runs" / "r")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    n = 2 * 8  # batch_size x group_size
    assert all(m["rewards/hangs_forever/timeout"] == n for m in metrics)
    assert all(m["rewards/hangs_forever/errors"] == n for m in metrics)
    assert "rewards/exact_number/mean" in metrics[-1]
    assert caplog.text.count("call timeout") == 1, caplog.text  # logged once, counted each step


def _start_train(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mlx_grpo.cli.main", "train", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "never reached the reward"
        time.sleep(0.05)


@pytest.mark.e2e
def test_ctrl_c_during_a_reward_call_stops_the_run(tmp_path: Path, tiny_model_dir: Path) -> None:
    # First Ctrl-C: the step ends when the reward's limit is up, then a checkpoint, exit 130.
    config = _hanging_run(tmp_path, tiny_model_dir, timeout=2.0, steps=50)
    proc = _start_train(config)
    _wait_for(tmp_path / "marker", proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "--resume" in out and "Traceback" not in out
    assert read_metrics(tmp_path / "runs" / "r")[-1]["step"] == 1


@pytest.mark.e2e
def test_second_ctrl_c_during_a_long_reward_call_stops_at_once(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    config = _hanging_run(tmp_path, tiny_model_dir, timeout=600.0, steps=50)
    proc = _start_train(config)
    _wait_for(tmp_path / "marker", proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)  # far less than the reward's 600 s limit
    assert proc.returncode == 130, out
    assert "interrupted" in out.lower() and "Traceback" not in out
