"""`mlx-grpo plot`: the curves of one run or several overlaid, as one PNG or as sparklines.

Panels: reward, per-reward means, kl, mean completion length, eval accuracy and format rate,
step time; each against step. Runs of `mlx-grpo sft` (no rewards) get their own panels: loss,
validation loss, learning rate, gradient norm, tokens/s, step time. `smooth` is a trailing
moving average over N steps.
"""

from __future__ import annotations

from pathlib import Path

from mlx_grpo import rundir
from mlx_grpo.report.runs import read_metrics

PANELS: list[tuple[str, str]] = [
    ("reward_mean", "reward"),
    ("rewards/", "per-reward mean"),
    ("kl", "kl"),
    ("completion_length/mean", "mean completion length (tokens)"),
    ("eval/", "eval accuracy / format rate"),
    ("step_s", "step time (s)"),
]
SFT_PANELS: list[tuple[str, str]] = [
    ("loss", "loss (completion NLL per token)"),
    ("val_loss", "validation loss"),
    ("lr", "learning rate"),
    ("grad_norm", "gradient norm"),
    ("tokens_per_s", "tokens/s"),
    ("step_s", "step time (s)"),
]
TIMES = ("rollout_s", "reward_s", "batch_s", "update_s")
BARS = "▁▂▃▄▅▆▇█"


def series(run: Path, smooth: int = 1) -> dict[str, tuple[list[int], list[float]]]:
    """Metric -> (steps, values) of one run, step_s summed from the timings, smoothed."""
    rows, _ = read_metrics(rundir.metrics_file(run))
    out: dict[str, tuple[list[int], list[float]]] = {}
    for row in rows:
        if "step_s" not in row:  # GRPO logs its phases; an SFT step logs its own step_s
            row = {**row, "step_s": sum(float(row.get(t, 0.0)) for t in TIMES)}
        for key, value in row.items():
            keep = key.endswith("/mean") or key.startswith("eval/") or "/" not in key
            if key != "step" and keep and isinstance(value, (int, float)):
                steps, values = out.setdefault(key, ([], []))
                steps.append(row["step"])
                values.append(float(value))
    return {k: (s, moving_average(v, smooth)) for k, (s, v) in out.items()}


def moving_average(values: list[float], n: int) -> list[float]:
    """Trailing mean over up to `n` values (n <= 1: unchanged)."""
    if n <= 1:
        return values
    return [
        sum(values[max(0, i - n + 1) : i + 1]) / (i + 1 - max(0, i - n + 1))
        for i in range(len(values))
    ]


def sparkline(values: list[float]) -> str:
    """One character per value, scaled between the series' min and max."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(BARS[int((v - low) / span * (len(BARS) - 1))] for v in values)


def panel_keys(data: dict[str, tuple[list[int], list[float]]], prefix: str) -> list[str]:
    """The metrics a panel draws: an exact key, or every key under a `prefix/`."""
    if prefix.endswith("/"):
        return sorted(k for k in data if k.startswith(prefix))
    return [prefix] if prefix in data else []


def panels_for(runs: dict[str, dict[str, tuple[list[int], list[float]]]]) -> list[tuple[str, str]]:
    """GRPO's panels, or SFT's when no run logged a reward."""
    return PANELS if any("reward_mean" in data for data in runs.values()) else SFT_PANELS


def write_png(runs: dict[str, dict[str, tuple[list[int], list[float]]]], out: Path) -> None:
    """One figure, a panel per PANELS entry, every run overlaid with a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    for ax, (prefix, title) in zip(axes.flat, panels_for(runs)):
        for name, data in runs.items():
            for key in panel_keys(data, prefix):
                label = name if len(panel_keys(data, prefix)) == 1 else f"{name}: {key}"
                ax.plot(*data[key], label=label, linewidth=1.5)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    fig.savefig(out, dpi=110)
    plt.close(fig)
