"""A seeded run is bit-reproducible on one machine: two processes training the same config
write the same metrics (timings aside), the same samples and the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_train_e2e import TIMING_KEYS, make_config

pytestmark = pytest.mark.e2e

MEASURED = TIMING_KEYS | {"step_s", "elapsed_s"}


def _train(config: Path, name: str) -> Path:
    cmd = [sys.executable, "-m", "mlx_grpo.cli.main", "train", "-c", str(config)]
    cmd += ["--set", f"logging.run_name={name}"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return config.parent / "runs" / name


def _metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in MEASURED} for x in lines]


def test_two_seeded_runs_are_identical(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = make_config(
        tmp_path,
        str(tiny_model_dir),
        steps=4,
        lora={"fine_tune_type": "lora", "rank": 4, "dropout": 0.1},
        objective={"beta": 0.05, "num_iterations": 2},
        rollout={"temperature": 1.0, "top_p": 0.9},
        checkpoint={"every": 4},
        logging={"samples_every": 1, "eval_every": 2, "eval_limit": 4},
        data={"eval_size": 4},
    )
    cfg = yaml.safe_load(config.read_text())
    cfg["rewards"].append({"name": "math_correct"})
    config.write_text(yaml.safe_dump(cfg))
    first, second = _train(config, "a"), _train(config, "b")
    assert _metrics(first) == _metrics(second)
    assert (first / "samples.jsonl").read_bytes() == (second / "samples.jsonl").read_bytes()
    weights = "checkpoints/step_4/adapters.safetensors"
    assert (first / weights).read_bytes() == (second / weights).read_bytes()
