"""`plot`: a non-blank PNG, smoothing, sparklines, and a broken input."""

import json
from pathlib import Path

import pytest
from mlx_grpo.cli.main import main

from mlx_grpo.report.plot import moving_average, series, sparkline


def _run(root: Path, name: str) -> Path:
    run = root / name
    run.mkdir()
    rows = [
        {"step": s, "reward_mean": s / 4, "kl": 0.1 * s, "rollout_s": 1.0} for s in (1, 2, 3, 4)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_smoothing_and_sparkline() -> None:
    assert moving_average([0.0, 2.0, 4.0], 2) == [0.0, 1.0, 3.0]
    assert sparkline([0.0, 1.0]) == "▁█"


def test_series_sums_step_time(tmp_path: Path) -> None:
    data = series(_run(tmp_path, "a"))
    assert data["reward_mean"] == ([1, 2, 3, 4], [0.25, 0.5, 0.75, 1.0])
    assert data["step_s"][1] == [1.0] * 4


def test_plot_writes_a_png_that_is_not_blank(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.image

    out = tmp_path / "c.png"
    assert (
        main(["plot", str(_run(tmp_path, "a")), str(_run(tmp_path, "b")), "--out", str(out)]) == 0
    )
    pixels = matplotlib.image.imread(out)
    assert pixels.std() > 0.05  # lines and text, not one flat colour


def test_plot_of_a_non_run_folder_is_one_line_error(tmp_path: Path, capsys) -> None:
    assert main(["plot", str(tmp_path)]) != 0
    assert "no metrics.jsonl" in capsys.readouterr().err
