"""The training progress line: N/M, elapsed and ETA survive a narrow terminal; null metrics."""

from __future__ import annotations

import io

from mlx_grpo.cli.live_view import LiveView, metrics_line, summary_table
from rich.console import Console

METRICS = {
    "step": 3,
    "reward_mean": 0.5,
    "rewards/a_very_long_reward_function_name/mean": 0.25,
    "rewards/another_long_reward_name/mean": 0.75,
    "kl": 0.0123,
    "completion_length/mean": 42.0,
    "rollout_tokens_per_s": 99.0,
}


def test_narrow_terminal_keeps_step_elapsed_and_eta() -> None:
    for width in (60, 80, 100):
        out = io.StringIO()
        console = Console(file=out, width=width, force_terminal=True, color_system=None)
        view = LiveView(console, total=10)
        view.on_log(None, METRICS)  # type: ignore[arg-type]
        console.print(view.progress.get_renderable())
        text = out.getvalue()
        assert "3/10" in text and "eta" in text and "0:00:" in text, (width, text)


def test_null_metrics_print_as_a_dash() -> None:
    line = metrics_line({**METRICS, "kl": None})
    assert "kl -" in line
    table = summary_table([{**METRICS, "kl": None}, METRICS], "r")
    out = io.StringIO()
    Console(file=out, width=120).print(table)
    assert "0.0123" in out.getvalue()  # the mean skips the step that measured nothing


def test_plain_lines_show_an_eta_when_steps_take_longer_than_30_seconds() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False, color_system=None)
    view = LiveView(console, total=10)
    clock = iter(float(t) for t in range(0, 10_000, 40))  # 40 s per step
    view.progress.get_time = lambda: next(clock)  # type: ignore[method-assign]
    view.progress.reset(view.task, total=10)
    for step in range(1, 5):
        view.every = 1
        view.on_log(None, {**METRICS, "step": step})  # type: ignore[arg-type]
    last = out.getvalue().strip().splitlines()[-1]
    assert "step 4/10" in last and "eta ?" not in last, last
