"""Config: YAML + --set overrides, type checks, did-you-mean, line numbers, round trip."""

from __future__ import annotations

import pytest
import yaml

from mlx_grpo.config import TrainConfig, apply_override, from_dict, load_config, to_dict
from mlx_grpo.errors import UserError


def _write(tmp_path, text: str):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_yaml_and_overrides(tmp_path):
    path = _write(tmp_path, "data:\n  train: d.jsonl\nrollout:\n  group_size: 4\n")
    cfg = load_config(
        path,
        [
            "rollout.group_size=6",
            "optimizer.learning_rate=2e-5",
            "rollout.stop=[</answer>]",
            "objective.epsilon_high=0.28",
        ],
    )
    assert cfg.rollout.group_size == 6
    assert cfg.optimizer.learning_rate == pytest.approx(2e-5)
    assert cfg.rollout.stop == ["</answer>"]
    assert cfg.objective.epsilon_high == pytest.approx(0.28)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["data.train=x.jsonl", "lora.keys=[self_attn.q_proj]"])
    again = from_dict(yaml.safe_load(yaml.safe_dump(to_dict(cfg))))
    assert again == cfg


def test_unknown_key_suggests_the_right_one_with_file_and_line(tmp_path):
    path = _write(tmp_path, "data:\n  train: d.jsonl\nrollout:\n  grup_size: 4\n")
    with pytest.raises(UserError) as err:
        load_config(path)
    message = str(err.value)
    assert f"{path}:4" in message
    assert "rollout.grup_size" in message and "did you mean 'group_size'" in message


def test_wrong_type_names_key_and_line(tmp_path):
    path = _write(tmp_path, "data:\n  train: d.jsonl\nsteps: many\n")
    with pytest.raises(UserError, match=r"run.yaml:3: steps: expected int, got 'many'"):
        load_config(path)


def test_bad_choice_lists_valid_values():
    with pytest.raises(UserError, match="objective.loss_type: must be one of 'grpo'"):
        load_config(None, ["data.train=x", "objective.loss_type=ppo"])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("rollout.group_size=1", "rollout.group_size"),
        ("rollout.top_p=1.5", "rollout.top_p"),
        ("objective.delta=0.5", "objective.delta"),
        ("optimizer.gradient_accumulation_steps=3", "optimizer.gradient_accumulation_steps"),
    ],
)
def test_semantic_checks(override, key):
    with pytest.raises(UserError, match=key):
        load_config(None, ["data.train=x", override])


def test_qlora_cannot_train_full_weights():
    with pytest.raises(UserError, match="model.quantize_bits"):
        load_config(None, ["data.train=x", "model.quantize_bits=4", "lora.fine_tune_type=full"])


def test_yaml_syntax_error_has_a_line(tmp_path):
    path = _write(tmp_path, "data:\n  train: [unclosed\n")
    with pytest.raises(UserError, match=r"run\.yaml:\d+"):
        load_config(path)


def test_bad_override_syntax():
    with pytest.raises(UserError, match="key=value"):
        apply_override({}, "steps")


def test_defaults_are_valid_once_data_is_given():
    assert isinstance(load_config(None, ["data.train=x"]), TrainConfig)


def test_config_reference_is_current():
    """docs/config.md is generated from the dataclasses; regenerate it when they change:
    python -m mlx_grpo.configdoc > docs/config.md"""
    from pathlib import Path

    from mlx_grpo.configdoc import render

    page = Path(__file__).resolve().parent.parent / "docs" / "config.md"
    assert page.read_text() == render()
    assert "| `group_size` | int | `8` | G completions per prompt |" in render()


def test_set_errors_blame_the_override_not_a_config_line(tmp_path):
    path = _write(tmp_path, "steps: 4\ndata:\n  train: d.jsonl\n")
    with pytest.raises(UserError) as err:
        load_config(path, ["steps=abc"])
    assert str(err.value).startswith("--set steps=abc: ") and "run.yaml" not in str(err.value)
    with pytest.raises(UserError, match=r"^--set rollout.grup_size=3: .*did you mean"):
        load_config(path, ["rollout.grup_size=3"])
    with pytest.raises(UserError, match=r"run\.yaml:1: steps"):  # the file's own mistakes
        load_config(_write(tmp_path, "steps: many\ndata:\n  train: d.jsonl\n"), ["seed=1"])


def test_paths_in_a_config_file_are_relative_to_that_file(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "rewards").mkdir(parents=True)
    (project / "rewards" / "mine.py").write_text("def f(prompts, completions, answers): ...\n")
    (project / "rows.jsonl").write_text("")
    cfg = project / "cfg.yaml"
    cfg.write_text(
        "data:\n  train: [rows.jsonl, openai/gsm8k]\n"
        "rewards:\n  - name: rewards/mine.py:f\n  - name: exact_number\n"
    )
    monkeypatch.chdir(tmp_path)  # another folder: the paths must not depend on it
    config = load_config(cfg)
    assert config.data.train == [str(project / "rows.jsonl"), "openai/gsm8k"]  # hub id kept
    assert config.rewards[0].name == f"{project / 'rewards' / 'mine.py'}:f"
    assert config.rewards[1].name == "exact_number"
    moved = load_config(cfg, ["data.train=rows.jsonl"])  # --set stays relative to the cwd
    assert moved.data.train == "rows.jsonl"


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("steps: 4\nrollout: {group_size: 4\nseed: 1\n", 2, "'{' is never closed"),
        ('steps: 4\nname: "abc\nseed: 1\n', 2, "quoted string is never closed"),
        ("steps: 4\nrollout:\n  group_size: 4\n   max: 8\nseed: 1\n", 4, "not allowed here"),
    ],
)
def test_yaml_syntax_error_points_at_the_mistake(tmp_path, text, line, says):
    with pytest.raises(UserError) as err:
        load_config(_write(tmp_path, text))
    assert str(err.value).startswith(f"{tmp_path / 'run.yaml'}:{line}: ") and says in str(err.value)
