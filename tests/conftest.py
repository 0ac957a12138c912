"""Shared fixtures: tiny random models built in-process, a private cache, the CLI runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Built-in models and downloads go to a throwaway cache, never the user's."""
    import os

    os.environ["MLX_GRPO_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlx_grpo.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture
def run_cli():
    """Call the real CLI entry point in-process; returns the exit code."""
    from mlx_grpo.cli.main import main

    return lambda *args: main([str(a) for a in args])


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def tiny_run_config(tmp_path: Path, data: dict, rewards: list[dict], **logging: object) -> Path:
    """A two-step `train` config on builtin:tiny-qwen2 (B=2 x G=4, 8 new tokens) writing
    to tmp_path/runs/r; returns the config file."""
    import yaml

    cfg = {
        "model": {"path": "builtin:tiny-qwen2"},
        "lora": {"fine_tune_type": "full"},
        "rollout": {"group_size": 4, "max_completion_length": 8, "max_prompt_length": 4096},
        "data": data,
        "rewards": rewards,
        "logging": {"output_dir": str(tmp_path / "runs"), "run_name": "r", **logging},
        "checkpoint": {"every": 100},
        "steps": 2,
        "batch_size": 2,
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
