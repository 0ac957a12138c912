"""R1's pipeline through the CLI, offline: `sft` -> `train` from it (`init_from`) -> `eval`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlx.core as mx
import pytest
from conftest import read_metrics

from mlx_grpo.config import load_config
from mlx_grpo.sft.config import load_sft_config

REPO = Path(__file__).resolve().parents[1]
PAIRS = [  # SFT config, GRPO config, the SFT run's name (the debug one is given by --set)
    ("sft-debug.yaml", "grpo-from-sft-debug.yaml", "sft-debug"),
    ("sft-qwen2.5-0.5b.yaml", "qwen2.5-0.5b-grpo-from-sft.yaml", "qwen0.5b-sft"),
]


@pytest.mark.parametrize(("sft", "grpo", "run"), PAIRS)
def test_shipped_pairs_agree(sft: str, grpo: str, run: str) -> None:
    """The GRPO config starts from its SFT config's run, with the same model, lora and prompts."""
    first, second = load_sft_config(REPO / "configs" / sft), load_config(REPO / "configs" / grpo)
    assert Path(second.model.init_from).name == run
    assert first.logging.run_name in (run, None)
    assert (first.model.path, first.lora) == (second.model.path, second.lora)
    assert first.data.template == second.data.template


@pytest.mark.e2e
def test_sft_then_grpo_from_it_then_eval(tmp_path: Path, run_cli, monkeypatch) -> None:
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    sft = ["-c", "configs/sft-debug.yaml", "--set", "logging.run_name=sft-debug"]
    assert run_cli("sft", *sft, "--set", "steps=10") == 0
    assert run_cli("train", "-c", "configs/grpo-from-sft-debug.yaml", "--set", "steps=3",
                   "--set", "logging.run_name=grpo") == 0  # fmt: skip
    grpo = Path("runs/grpo")
    assert [m["step"] for m in read_metrics(grpo)] == [1, 2, 3]
    assert "kl" in read_metrics(grpo)[0]
    # The first rollout came from the SFT weights: step 1's kl against the start is ~0.
    kl = read_metrics(grpo)[0]["kl"]
    assert kl is None or kl < 1e-5
    from mlx_lm import load

    start, _ = load("runs/sft-debug/checkpoints/step_10")
    after, _ = load("runs/grpo/checkpoints/step_3")
    ids = mx.array([[1, 2, 3, 4]])
    assert not mx.array_equal(start(ids), after(ids))  # GRPO moved on from the SFT weights
    out = tmp_path / "eval.json"
    data = "configs/data/arithmetic-debug.jsonl"
    assert run_cli("eval", "--run", grpo, "--data", data, "--limit", "4", "--out", out) == 0
    assert json.loads(out.read_text())["problems"] == 4


def test_rejection_sampling_rows_are_sft_data(tmp_path: Path) -> None:
    """What `generate --keep correct` writes is what `sft` reads, extra columns and all."""
    from mlx_grpo.infer.rejection import KEPT_FIELDS
    from mlx_grpo.sft.data import load_sft_rows

    values = [(f"What is {a} + 1?", f"<answer>{a + 1}</answer>", str(a + 1), 1.0) for a in range(3)]
    rows = [dict(zip(KEPT_FIELDS, v, strict=True)) for v in values]
    path = tmp_path / "kept.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_sft_config(REPO / "configs" / "sft-debug.yaml", [f"data.train={path}"])
    loaded = load_sft_rows(cfg.data)
    assert [(r["prompt"], r["completion"]) for r in loaded] == [
        (r["prompt"], r["completion"]) for r in rows
    ]
