"""TRL-compatible names for the keys of metrics.jsonl.

metrics.jsonl keeps its own keys (tests pin them); reporters rename on the way out so that
dashboards built for TRL's GRPOTrainer runs read ours. Keys without a TRL counterpart pass
through unchanged; the `step` key is the x axis, never a metric.
"""

from __future__ import annotations

from typing import Any

TRL_NAMES: dict[str, str] = {
    "reward_mean": "reward",
    "reward_std": "reward_std",
    "frac_zero_std_groups": "frac_reward_zero_std",
    "completion_length/mean": "completions/mean_length",
    "completion_length/min": "completions/min_length",
    "completion_length/max": "completions/max_length",
    "truncation_rate": "completions/clipped_ratio",
    "lr": "learning_rate",
}


def trl_name(key: str) -> str:
    """The name a TRL dashboard expects for one metrics.jsonl key."""
    return TRL_NAMES.get(key, key)


def trl_metrics(line: dict[str, Any]) -> dict[str, float]:
    """One metrics line as TRL-named numbers: `step`, non-numbers and booleans dropped."""
    out: dict[str, float] = {}
    for key, value in line.items():
        if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        out[trl_name(key)] = float(value)
    return out
