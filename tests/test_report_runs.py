"""`runs`: finished, stopped and crashed runs (torn metrics line), a non-run folder skipped."""

import json
from pathlib import Path

from mlx_grpo.report.runs import scan


def _run(root: Path, name: str, total: int, done: int, saved: int, torn: bool = False) -> None:
    run = root / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(f"steps: {total}\nmodel:\n  path: builtin:tiny\n")
    lines = [json.dumps({"step": s, "reward_mean": s / 10}) for s in range(1, done + 1)]
    text = "\n".join(lines) + "\n" + ('{"step": 9, "rew' if torn else "")
    (run / "metrics.jsonl").write_text(text)
    if saved:
        (run / "checkpoints" / f"step_{saved:06d}").mkdir()


def test_states_and_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    _run(tmp_path, "a-finished", 4, 4, 4)
    _run(tmp_path, "b-stopped", 4, 2, 2)
    _run(tmp_path, "c-crashed", 4, 3, 2, torn=True)
    (tmp_path / "notes").mkdir()
    rows = {s.name: s for s in scan(tmp_path)}
    assert set(rows) == {"a-finished", "b-stopped", "c-crashed"}
    assert [rows[n].state for n in sorted(rows)] == ["finished", "stopped", "crashed"]
    assert rows["c-crashed"].steps_done == 3 and rows["c-crashed"].last_reward == 0.3
    assert rows["a-finished"].model == "builtin:tiny"


def test_compare_lists_config_differences_and_final_metrics(tmp_path: Path) -> None:
    from mlx_grpo.report.runs import config_diff, final_metrics

    _run(tmp_path, "a", 4, 4, 4)
    _run(tmp_path, "b", 6, 2, 2)
    assert config_diff(tmp_path / "a", tmp_path / "b") == [("steps", 4, 6)]
    assert final_metrics(tmp_path / "b") == {"step": 2, "reward_mean": 0.2}
