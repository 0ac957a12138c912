"""`mlx-grpo eval`, pass@k, emergence metrics, and evaluation during training."""

from __future__ import annotations

import json

import pytest
from conftest import read_metrics, write_jsonl

from mlx_grpo.infer.emergence import emergence_metrics
from mlx_grpo.infer.evaluate import pass_at_k


def test_pass_at_k_estimator():
    assert pass_at_k(5, 0, 1) == 0.0
    assert pass_at_k(5, 5, 3) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - 3 / 6)  # 1 - C(3,2)/C(4,2)
    assert pass_at_k(10, 3, 10) == 1.0


def test_emergence_metrics_on_written_completions():
    completions = [
        "<think>2+2 is 5. Wait, let me check: 4.</think><answer>4</answer>",
        "<think>easy</think>The answer is \\boxed{7}",
        "just 3",
        "Actually I think it is 9",
    ]
    m = emergence_metrics(completions, count_tokens=lambda s: len(s.split()))
    assert m["think_rate"] == 0.5
    assert m["think_tokens"] == pytest.approx((8 + 1) / 2)  # "2+2 is 5. Wait, ... 4." and "easy"
    assert m["self_correction_rate"] == 0.5
    assert m["answer_rate"] == 0.5


YES_REWARD = """
def is_yes(prompts, completions, answers, **extras):
    return [1.0 if a == "yes" else 0.0 for a in answers]
"""


def test_eval_cli_reports_accuracy_and_writes_json(tmp_path, tiny_model_dir, run_cli, capsys):
    rows = [{"prompt": f"q{i}", "answer": "yes" if i % 4 == 0 else "no"} for i in range(8)]
    data = write_jsonl(tmp_path / "test.jsonl", rows)
    reward = tmp_path / "judge.py"
    reward.write_text(YES_REWARD)
    out = tmp_path / "result.json"
    code = run_cli(
        "eval",
        "-m",
        tiny_model_dir,
        "--data",
        data,
        "--samples",
        "3",
        "--max-tokens",
        "4",
        "--reward",
        f"{reward}:is_yes",
        "--out",
        out,
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["problems"] == 8
    assert result["summary"]["pass@1"] == pytest.approx(0.25)
    assert result["summary"]["pass@3"] == pytest.approx(0.25)
    assert result["summary"]["mean@3"] == pytest.approx(0.25)
    assert {"format_rate", "think_rate", "answer_rate", "mean_length"} <= result["summary"].keys()
    assert len(result["rows"]) == 8 and all(len(r["completion"]) > 0 for r in result["rows"])
    assert "pass@1" in capsys.readouterr().out


def test_eval_cli_bad_reward_and_missing_data(tmp_path, tiny_model_dir, run_cli, capsys):
    assert (
        run_cli(
            "eval",
            "-m",
            tiny_model_dir,
            "--data",
            "builtin:arithmetic",
            "--reward",
            "no_such_reward",
        )
        == 2
    )
    assert "unknown reward 'no_such_reward'" in capsys.readouterr().err
    assert run_cli("eval", "-m", tiny_model_dir, "--data", tmp_path / "none.jsonl") == 2
    assert "dataset file not found" in capsys.readouterr().err


def test_training_logs_eval_and_emergence_metrics(tmp_path, tiny_model_dir, run_cli):
    from test_train_e2e import make_config

    config = make_config(
        tmp_path,
        str(tiny_model_dir),
        steps=2,
        logging={"eval_every": 2, "eval_limit": 4, "eval_reward": "exact_number"},
        data={"eval_size": 4},
    )
    assert run_cli("train", "-c", config) == 0
    metrics = read_metrics(tmp_path / "runs" / "r")
    assert "eval/pass@1" not in metrics[0]
    for key in (
        "eval/pass@1",
        "eval/format_rate",
        "eval/think_rate",
        "eval/think_tokens",
        "eval/self_correction_rate",
        "eval/answer_rate",
    ):
        assert key in metrics[1], key


LENGTH_REWARD = """
def within_budget(prompts, completions, answers, *, completion_lengths, max_completion_length,
                  **extras):
    return [1.0 if 0 < n <= max_completion_length else 0.0 for n in completion_lengths]
"""


def test_eval_reward_gets_the_same_inputs_as_training_rewards(tmp_path, tiny_model_dir, run_cli):
    """A length-based eval_reward sees completion_lengths and max_completion_length during
    the eval, exactly as a training reward does (every completion is within the budget)."""
    from test_train_e2e import make_config

    reward = tmp_path / "length.py"
    reward.write_text(LENGTH_REWARD)
    config = make_config(
        tmp_path,
        str(tiny_model_dir),
        steps=1,
        logging={"eval_every": 1, "eval_limit": 4, "eval_reward": f"{reward}:within_budget"},
        rewards=[{"name": f"{reward}:within_budget"}],
    )
    assert run_cli("train", "-c", config) == 0
    metrics = read_metrics(tmp_path / "runs" / "r")[0]
    assert metrics["rewards/within_budget/mean"] == 1.0
    assert metrics["rewards/within_budget/errors"] == 0
    assert metrics["eval/pass@1"] == 1.0


def _held_out_run(tmp_path, model_dir, eval_size: int, **data):  # noqa: ANN001, ANN202, ANN003
    """A full-weight run folder whose config holds `eval_size` arithmetic rows out."""
    import shutil

    import yaml

    run = tmp_path / "run"
    shutil.copytree(model_dir, run / "checkpoints" / "step_3")
    config = {
        "model": {"path": str(model_dir)},
        "data": {"train": "builtin:arithmetic", "num_examples": 40, "eval_size": eval_size,
                 "template": "plain", **data},
        "rewards": [{"name": "math_correct", "params": {"tagged_only": True}},
                    {"name": "answer_tag", "weight": 0.5}],
        "rollout": {"max_completion_length": 6},
        "seed": 3,
    }  # fmt: skip
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return run


def test_eval_held_out_scores_the_rows_training_held_out(tmp_path, tiny_model_dir, run_cli):
    from mlx_grpo.config import load_config
    from mlx_grpo.data.examples import load_rows, split_rows

    run = _held_out_run(tmp_path, tiny_model_dir, eval_size=5)
    out_after, out_before = tmp_path / "after.json", tmp_path / "before.json"
    args = ("eval", "--run", run, "--data", "held-out", "--temp", "0")
    assert run_cli(*args, "--out", out_after) == 0
    assert run_cli(*args, "--step", "base", "--out", out_before) == 0
    cfg = load_config(run / "config.yaml", [])
    held = split_rows(load_rows(cfg.data, cfg.seed), 5, cfg.seed)[1]
    for path in (out_after, out_before):
        result = json.loads(path.read_text())
        assert [row["prompt"] for row in result["rows"]] == [r["prompt"] for r in held]
        assert result["model"].endswith("@ base" if path == out_before else "@ step_3")


def test_eval_held_out_asks_each_question_with_the_runs_instruction(tmp_path, tiny_model_dir,
                                                                    run_cli):  # fmt: skip
    instructions = ["Tag it.", "Use <answer> tags."]
    run = _held_out_run(tmp_path, tiny_model_dir, eval_size=6, instruction=instructions)
    out = tmp_path / "e.json"
    assert run_cli("eval", "--run", run, "--data", "held-out", "--temp", "0", "--out", out) == 0
    prompts = [row["prompt"] for row in json.loads(out.read_text())["rows"]]
    assert len(prompts) == 6 and all(
        p.endswith(tuple(" " + i for i in instructions)) for p in prompts
    )


def test_eval_held_out_without_a_run_or_rows_is_one_line(tmp_path, tiny_model_dir, run_cli, capsys):
    assert run_cli("eval", "-m", tiny_model_dir, "--data", "held-out") != 0
    assert "--data held-out needs --run" in capsys.readouterr().err
    run = _held_out_run(tmp_path, tiny_model_dir, eval_size=0)
    assert run_cli("eval", "--run", run, "--data", "held-out") != 0
    assert "held no rows out" in capsys.readouterr().err
