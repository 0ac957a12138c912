"""Seeded debug runs keep their exact metrics: a pin against accidental behaviour changes.

`tests/data/golden_runs.json` holds the metrics.jsonl lines of two short seeded runs of
`configs/debug.yaml` (timings, throughput and memory left out: they vary by machine load).
Together they exercise the whole step: rollouts, rewards, advantages, the old-policy pass
(num_iterations 2), the reference pass (beta > 0: a frozen copy, and LoRA with adapters off),
gradient accumulation, gradient checkpointing, both loss aggregations, checkpoints and eval.

Float results depend on the matrix-product library, so the numbers are kept per platform
(`linux-x86_64-cpu`: MLX's CPU backend with the BLAS bundled in its wheel; the runs happen in
a child process without the OpenBLAS restart, so a preloaded BLAS cannot change them). On a
platform without golden numbers the test says how to write them. Regenerate them, after a
change that is meant to alter training, with

    .venv/bin/python tests/test_golden_run.py

and say in the commit why the numbers moved.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "data" / "golden_runs.json"
RTOL, ATOL = 1e-6, 1e-9

COMMON = [
    f"data.train={REPO / 'configs' / 'data' / 'arithmetic-debug.jsonl'}",
    "rewards="
    + json.dumps(
        [
            {"name": f"{REPO / 'configs' / 'rewards' / 'toy.py'}:starts_with_digit"},
            {"name": "exact_number"},
        ]
    ),
    "steps=4",
    "logging.samples_every=2",
    "checkpoint.every=2",
]
RUNS: dict[str, list[str]] = {
    # full fine-tuning: frozen-copy reference, old-policy pass, 2 micro-batches, eval
    "full-dapo": [
        "objective.beta=0.04",
        "objective.num_iterations=2",
        "optimizer.gradient_accumulation_steps=2",
        "data.eval_size=4",
        "logging.eval_every=2",
        "logging.eval_limit=4",
    ],
    # LoRA: reference = adapters off; checkpointed layer-by-layer scoring; grpo aggregation,
    # sequence-level ratio, 4 micro-batches of one group each, truncated completions masked
    "lora-grpo-checkpointed": [
        "lora.fine_tune_type=lora",
        "lora.rank=4",
        "lora.dropout=0.1",
        "model.gradient_checkpointing=true",
        "objective.loss_type=grpo",
        "objective.importance_sampling_level=sequence",
        "objective.mask_truncated_completions=true",
        "objective.beta=0.04",
        "optimizer.gradient_accumulation_steps=4",
        "optimizer.learning_rate=1e-2",
    ],
}


def is_measurement(key: str) -> bool:
    """Timings (`*_s`), throughput (`*_per_s`) and memory: they vary with the machine."""
    return key.endswith("_s") or "memory" in key


def platform_key() -> str:
    import mlx.core as mx

    device = "cpu" if mx.default_device() == mx.cpu else "gpu"
    return f"{sys.platform}-{platform.machine()}-{device}"


def run_metrics(tmp_path: Path, name: str) -> list[dict]:
    """Run `mlx-grpo train` on the debug config in a child process with the bundled BLAS."""
    out = tmp_path / name
    overrides = [*COMMON, *RUNS[name], f"logging.output_dir={out}", "logging.run_name=r"]
    args = ["train", "-c", str(REPO / "configs" / "debug.yaml")]
    for item in overrides:
        args += ["--set", item]
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env["MLX_GRPO_NO_OPENBLAS"] = "1"
    command = [sys.executable, "-m", "mlx_grpo.cli.main", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = (out / "r" / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if not is_measurement(k)} for x in lines]


def assert_same(actual: list[dict], expected: list[dict], run: str) -> None:
    assert len(actual) == len(expected), run
    for got, want in zip(actual, expected):
        where = f"{run} step {want['step']}"
        assert got.keys() == want.keys(), (where, sorted(got.keys() ^ want.keys()))
        for key, value in want.items():
            if isinstance(value, float):
                ok = math.isclose(got[key], value, rel_tol=RTOL, abs_tol=ATOL)
                assert ok, (where, key, got[key], value)
            else:
                assert got[key] == value, (where, key, got[key], value)


@pytest.mark.parametrize("name", list(RUNS))
def test_seeded_run_reproduces_its_golden_metrics(tmp_path, name):
    golden = json.loads(GOLDEN.read_text()).get(platform_key())
    if golden is None:
        pytest.skip(f"no golden metrics for {platform_key()}: python tests/test_golden_run.py")
    expected = golden[name]
    assert_same(run_metrics(tmp_path, name), expected, name)


def regenerate() -> None:
    """Write tests/data/golden_runs.json from the current code (run as a script)."""
    import os
    import tempfile

    os.environ.setdefault("MLX_GRPO_CACHE", tempfile.mkdtemp(prefix="golden-cache-"))
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        golden[platform_key()] = {name: run_metrics(Path(tmp), name) for name in RUNS}
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {platform_key()} in {GOLDEN}", file=sys.stderr)


if __name__ == "__main__":
    regenerate()
