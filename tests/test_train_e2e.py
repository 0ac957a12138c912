"""`mlx-grpo train` as a user runs it: learning, checkpoints, resume, Ctrl-C, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import read_metrics, write_jsonl

pytestmark = pytest.mark.e2e

TIMING_KEYS = {
    "rollout_s",
    "reward_s",
    "batch_s",
    "update_s",
    "rollout_tokens_per_s",
    "peak_memory_gb",
}

REWARD_FILE = """
def starts_with_digit(prompts, completions, answers, **extras):
    return [1.0 if c[:1].isdigit() else 0.0 for c in completions]
"""


def make_config(tmp_path: Path, model_path: str, **sections) -> Path:
    rows = [
        {"prompt": f"What is {a} + {b}?", "answer": str(a + b)} for a in range(4) for b in range(4)
    ]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    reward = tmp_path / "toy_reward.py"
    reward.write_text(REWARD_FILE)
    cfg = {
        "model": {"path": model_path},
        "lora": {"fine_tune_type": "full"},
        "rollout": {"group_size": 8, "max_completion_length": 8},
        "optimizer": {"learning_rate": 3e-3},
        "data": {"train": str(data)},
        "rewards": [{"name": f"{reward}:starts_with_digit"}],
        "logging": {"output_dir": str(tmp_path / "runs"), "run_name": "r", "samples_every": 2},
        "checkpoint": {"every": 100},
        "steps": 24,
        "batch_size": 2,
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_reward_rises_through_the_cli(tmp_path, tiny_model_dir, run_cli):
    config = make_config(tmp_path, str(tiny_model_dir))
    assert run_cli("train", "--config", config) == 0
    run = tmp_path / "runs" / "r"
    metrics = read_metrics(run)
    assert [m["step"] for m in metrics] == list(range(1, 25))
    first = sum(m["reward_mean"] for m in metrics[:6]) / 6
    last = sum(m["reward_mean"] for m in metrics[-6:]) / 6
    assert last > first + 0.3, (first, last)
    for key in (
        "kl",
        "clip_ratio/region",
        "entropy",
        "grad_norm",
        "lr",
        "truncation_rate",
        "frac_zero_std_groups",
        "rewards/starts_with_digit/mean",
        "completion_length/max",
        "rollout_tokens_per_s",
        "peak_memory_gb",
    ):
        assert key in metrics[-1], key
    samples = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
    assert samples and {"prompt", "completion", "reward", "advantage"} <= samples[0].keys()
    # the full-weight checkpoint is an ordinary model folder
    from mlx_lm import load

    model, tok = load(str(run / "checkpoints" / "step_24"))
    assert model(__import__("mlx.core").core.array([[1, 2]])).shape[-1] == 259
    assert yaml.safe_load((run / "config.yaml").read_text())["steps"] == 24


def _strip(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in TIMING_KEYS} for m in metrics]


def test_resume_reproduces_the_uninterrupted_run(tmp_path, tiny_model_dir, run_cli):
    config = make_config(
        tmp_path,
        str(tiny_model_dir),
        steps=6,
        lora={"fine_tune_type": "lora", "rank": 4, "dropout": 0.1},
        objective={"beta": 0.05, "num_iterations": 2},
        optimizer={"learning_rate": 1e-2, "gradient_accumulation_steps": 2},
        schedule={"name": "cosine", "warmup_steps": 2},
        checkpoint={"every": 3},
    )
    assert run_cli("train", "-c", config) == 0
    run = tmp_path / "runs" / "r"
    full = read_metrics(run)
    # simulate a crash after step 4: the step-6 checkpoint never happened
    shutil.rmtree(run / "checkpoints" / "step_6")
    assert run_cli("train", "--resume", run) == 0
    resumed = read_metrics(run)
    assert [m["step"] for m in resumed] == list(range(1, 7))
    assert _strip(resumed) == _strip(full)
    # the lines recomputed after the checkpoint were set aside, not deleted
    aside = [json.loads(x) for x in (run / "metrics.after-step-3.jsonl").read_text().splitlines()]
    assert [m["step"] for m in aside] == [4, 5, 6]
    # adapters are in mlx-lm's format
    from mlx_lm import load

    load(str(tiny_model_dir), adapter_path=str(run / "checkpoints" / "step_6"))


def test_resume_before_any_checkpoint_counts_no_step_twice(tmp_path, tiny_model_dir, run_cli):
    """Killed before its first checkpoint, mid-write: resume starts at step 0, sets the earlier
    metrics and samples aside (the torn line too) and writes each step once."""
    config = make_config(tmp_path, str(tiny_model_dir), steps=4, checkpoint={"every": 100})
    assert run_cli("train", "-c", config) == 0
    run = tmp_path / "runs" / "r"
    shutil.rmtree(run / "checkpoints")  # as if killed before the first save
    metrics = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(metrics + '{"step": 5, "rew')  # a torn last line
    samples_before = (run / "samples.jsonl").read_text()
    assert run_cli("train", "--resume", run) == 0
    assert [m["step"] for m in read_metrics(run)] == [1, 2, 3, 4]
    aside = (run / "metrics.after-step-0.jsonl").read_text()
    assert aside.startswith(metrics) and aside.rstrip().endswith('{"step": 5, "rew')
    assert (run / "samples.after-step-0.jsonl").read_text() == samples_before
    steps = [json.loads(x)["step"] for x in (run / "samples.jsonl").read_text().splitlines()]
    assert steps == [json.loads(x)["step"] for x in samples_before.splitlines()]  # once each


def test_corrupt_newest_checkpoint_falls_back_and_is_kept(tmp_path, tiny_model_dir, capsys):
    from mlx_grpo.cli.main import main

    config = make_config(tmp_path, str(tiny_model_dir), steps=4, checkpoint={"every": 2})
    assert main(["train", "-c", str(config)]) == 0
    run = tmp_path / "runs" / "r"
    full = _strip(read_metrics(run))
    weights = run / "checkpoints" / "step_4" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])  # cut by a kill
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "model.safetensors: cannot be read" in err and "kept as step_4.corrupt" in err
    assert (run / "checkpoints" / "step_4.corrupt" / "model.safetensors").is_file()  # kept
    assert _strip(read_metrics(run)) == full  # steps 3-4 recomputed from step_2, same numbers
    # a trainer_state.json that is not JSON is damaged too: one line, then the older one
    (run / "checkpoints" / "step_4" / "trainer_state.json").write_text("{not json")
    assert main(["train", "--resume", str(run)]) == 0
    assert "trainer_state.json: not valid JSON" in capsys.readouterr().err
    assert (run / "checkpoints" / "step_4.corrupt.2").is_dir()


def test_model_folder_without_tokenizer_is_refused_before_the_run_exists(
    tmp_path, tiny_model_dir, run_cli, capsys
):
    broken = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_model_dir, broken)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model"):
        (broken / name).unlink(missing_ok=True)
    assert run_cli("train", "-c", make_config(tmp_path, str(broken))) == 2
    assert "has no tokenizer" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing was created
    assert run_cli("chat", "-m", broken) == 2


def test_truncated_weights_are_one_line_for_every_command(
    tmp_path, tiny_model_dir, run_cli, capsys
):
    broken = tmp_path / "truncated"
    shutil.copytree(tiny_model_dir, broken)
    weights = broken / "model.safetensors"
    with weights.open("r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    assert run_cli("train", "-c", make_config(tmp_path, str(broken))) == 2
    err = capsys.readouterr().err
    assert "model.path: cannot load model" in err and "incomplete download" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "runs").exists()
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    for command in (
        ["chat", "-m", broken],
        ["generate", "-m", broken, "-p", prompts, "--out", tmp_path / "o.jsonl"],
    ):
        assert run_cli(*command) == 2
        assert "could not load model" in capsys.readouterr().err


def test_ctrl_c_checkpoints_and_resume_finishes(tmp_path, tiny_model_dir):
    config = make_config(tmp_path, str(tiny_model_dir), steps=400)
    run = tmp_path / "runs" / "r"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlx_grpo.cli.main", "train", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (run / "metrics.jsonl").exists() and len(read_metrics(run)) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    done = read_metrics(run)[-1]["step"]
    assert (run / "checkpoints" / f"step_{done}" / "trainer_state.json").exists()
    assert "--resume" in out
    assert done < 400


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c, d: c.update(steps="ten"), r"config\.yaml:\d+: steps: expected int"),
        (lambda c, d: c["rollout"].update(group_sise=4), r"did you mean 'group_size'"),
        (
            lambda c, d: c["model"].update(path=str(d / "missing-model")),
            r"model\.path: model directory not found",
        ),
        (
            lambda c, d: Path(c["data"]["train"]).write_text(
                '{"prompt": "x", "answer": "1"}\n{oops\n'
            ),
            r"train\.jsonl:2: not valid JSON",
        ),
        (
            lambda c, d: Path(c["data"]["train"]).write_text('{"prompt": "x"}\n'),
            r"train\.jsonl:1: missing field 'answer'",
        ),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, tiny_model_dir, run_cli, capsys, mutate, expected):
    config = make_config(tmp_path, str(tiny_model_dir))
    data = yaml.safe_load(config.read_text())
    mutate(data, tmp_path)
    config.write_text(yaml.safe_dump(data))
    assert run_cli("train", "-c", config) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    import re

    assert re.search(expected, err), err


def test_failed_resume_loses_nothing(tmp_path, tiny_model_dir, run_cli, capsys):
    config = make_config(tmp_path, str(tiny_model_dir), steps=2, checkpoint={"every": 1})
    assert run_cli("train", "-c", config) == 0
    run = tmp_path / "runs" / "r"
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert run_cli("train", "--resume", run, "--set", "steps=lots") == 2
    assert "steps: expected int" in capsys.readouterr().err
    # and starting a new run into the same directory is refused
    assert run_cli("train", "-c", config) == 2
    assert "already holds a run" in capsys.readouterr().err
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before


def test_a_run_that_cannot_fit_is_refused_before_loading(tmp_path, tiny_model_dir, run_cli, capsys):
    config = make_config(tmp_path, str(tiny_model_dir))
    assert run_cli("train", "-c", config, "--memory", "1MB") == 2
    err = capsys.readouterr().err
    assert "--force" in err and "weights" in err
    assert not (tmp_path / "runs" / "r" / "metrics.jsonl").exists()
    assert run_cli("train", "-c", config, "--memory", "1MB", "--force", "--set", "steps=1") == 0


@pytest.mark.parametrize("layerwise", [True, False], ids=["shared-prompts", "mlx-lm-per-row"])
def test_gradient_checkpointing_trains_like_without(
    tmp_path, tiny_model_dir, run_cli, monkeypatch, layerwise
):
    """Checkpointed training (prompts shared and run layer by layer, or, for bodies that cannot
    be, whole rows under mlx-lm's checkpoint) reproduces the un-checkpointed run's numbers."""
    from mlx_lm.models import qwen2

    block = qwen2.TransformerBlock  # mlx-lm's grad_checkpoint patches the class: undo it after
    monkeypatch.setattr(block, "__call__", block.__call__)
    if not layerwise:
        monkeypatch.setattr("mlx_grpo.train.trainer.layerwise_supported", lambda model: False)
    runs = {}
    for ckpt in (False, True):
        (tmp_path / str(ckpt)).mkdir()
        objective = {"beta": 0.04, "drop_uninformative_groups": False}  # every step trains
        sections = {"objective": objective, "optimizer": {"gradient_accumulation_steps": 2}}
        model = {"gradient_checkpointing": ckpt}
        config = make_config(
            tmp_path / str(ckpt), str(tiny_model_dir), model=model, steps=3, **sections
        )
        assert run_cli("train", "--config", config) == 0
        runs[ckpt] = read_metrics(tmp_path / str(ckpt) / "runs" / "r")
    assert len(runs[True]) == 3
    for plain, checkpointed in zip(runs[False], runs[True]):
        for key in ("loss", "grad_norm", "kl", "reward_mean"):
            assert checkpointed[key] == pytest.approx(plain[key], rel=2e-3, abs=1e-5), key


CONSTANT_REWARD = """
def always_one(prompts, completions, answers, **extras):
    return [1.0 for _ in completions]
"""


def test_step_without_update_logs_no_kl_and_plain_progress(tmp_path, tiny_model_dir, capsys):
    """Every group has zero variance, so nothing is updated: kl/entropy/clip are null (not a
    fake 0.0), and with stdout not a terminal the progress is plain lines with N/M and ETA."""
    from mlx_grpo.cli.main import main

    (tmp_path / "const.py").write_text(CONSTANT_REWARD)
    config = make_config(tmp_path, str(tiny_model_dir), steps=3)
    overrides = ["--set", f"rewards=[{{name: {tmp_path / 'const.py'}:always_one}}]"]
    assert main(["train", "--config", str(config), *overrides]) == 0
    metrics = read_metrics(tmp_path / "runs" / "r")
    assert [m["updates"] for m in metrics] == [0, 0, 0]
    for key in ("kl", "entropy", "clip_ratio/region"):
        assert all(m[key] is None for m in metrics), key
    out = capsys.readouterr().out
    assert "step 3/3" in out and "kl -" in out  # the time fields: tests/test_live_view.py
