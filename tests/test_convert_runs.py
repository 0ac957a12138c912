"""Bringing training output home: fused adapters from a run, full checkpoints, TRL folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from converters_fixtures import fabricate_run, logits
from mlx_grpo.converters import ConvertOptions, QuantSpec, convert
from mlx_lm import load

from mlx_grpo.errors import UserError
from mlx_grpo.models.tiny import build_tiny_model


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    base = build_tiny_model(root / "base", seed=0)
    return fabricate_run(root, base)


def adapted_logits(run: Path, step: int) -> np.ndarray:
    base = run.parent / "base"
    model, _ = load(str(base), adapter_path=str(run / "checkpoints" / f"step_{step}"))
    return logits(model)


def test_run_latest_step_fuses_adapters(run: Path, tmp_path: Path) -> None:
    rows = convert(str(run), tmp_path / "out", ConvertOptions())
    assert rows["step"] == "20" and "adapters" in rows["source"]
    fused = logits(load(str(tmp_path / "out"))[0])
    assert np.abs(fused - adapted_logits(run, 20)).max() < 1e-4
    assert np.abs(fused - logits(load(str(run.parent / "base"))[0])).max() > 1e-2
    assert not (tmp_path / "out" / "optimizer.safetensors").exists()


def test_step_flag_and_quantized_home_model(run: Path, tmp_path: Path) -> None:
    convert(
        str(run), tmp_path / "q", ConvertOptions(step=10, quant=QuantSpec(bits=4, group_size=32))
    )
    model, _ = load(str(tmp_path / "q"))
    assert model.model.layers[0].self_attn.q_proj.bits == 4
    ours, step10, step20 = logits(model), adapted_logits(run, 10), adapted_logits(run, 20)
    assert np.abs(ours - step10).mean() < 0.3 * step10.std()  # the 4-bit tolerance
    assert np.abs(ours - step10).mean() < np.abs(ours - step20).mean()
    with pytest.raises(UserError, match="available steps: 10, 20"):
        convert(str(run), tmp_path / "x", ConvertOptions(step=15))


def test_adapter_flag_with_explicit_base(run: Path, tmp_path: Path) -> None:
    ckpt = run / "checkpoints" / "step_10"
    convert(str(run.parent / "base"), tmp_path / "out", ConvertOptions(adapter=str(ckpt)))
    assert np.abs(logits(load(str(tmp_path / "out"))[0]) - adapted_logits(run, 10)).max() < 1e-4


def test_trl_output_with_full_weights(run: Path, tmp_path: Path) -> None:
    trl = tmp_path / "trl"
    for step in (100, 200):
        shutil.copytree(run.parent / "base", trl / f"checkpoint-{step}")
        for junk in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"):
            (trl / f"checkpoint-{step}" / junk).write_bytes(b"\x80junk")
        (trl / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"step": step}))
    rows = convert(str(trl), tmp_path / "out", ConvertOptions())
    assert rows["step"] == "200"
    assert (
        sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix in (".pt", ".pth", ".bin"))
        == []
    )


def test_pytorch_only_checkpoint_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoint-5"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    (ckpt / "pytorch_model.bin").write_bytes(b"\x80pickle")
    with pytest.raises(UserError, match="only PyTorch weights.*safetensors"):
        convert(str(ckpt), tmp_path / "out", ConvertOptions())
    assert not (tmp_path / "out").exists()
