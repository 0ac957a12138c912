"""TRL-compatible metric names for reporters; metrics.jsonl keys stay as they are."""

from mlx_grpo.report.names import trl_metrics, trl_name


def test_trl_names_for_the_keys_trl_dashboards_read() -> None:
    assert trl_name("reward_mean") == "reward"
    assert trl_name("frac_zero_std_groups") == "frac_reward_zero_std"
    assert trl_name("completion_length/mean") == "completions/mean_length"
    assert trl_name("rewards/format/mean") == "rewards/format/mean"
    assert trl_name("kl") == "kl"


def test_trl_metrics_keeps_values_and_drops_step_and_non_numbers() -> None:
    line = {"step": 3, "reward_mean": 0.5, "kl": 0.01, "note": "x", "flag": True}
    assert trl_metrics(line) == {"reward": 0.5, "kl": 0.01}


def test_report_to_unknown_or_missing_extra_is_a_config_error(monkeypatch) -> None:
    import importlib.util

    import pytest

    from mlx_grpo.config import load_config
    from mlx_grpo.errors import UserError

    base = ["data.train=builtin:arithmetic"]
    with pytest.raises(UserError, match="unknown reporter"):
        load_config(None, [*base, "logging.report_to=[comet]"])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"mlx-grpo\[wandb\]"):
        load_config(None, [*base, "logging.report_to=[wandb]"])
