"""HF <-> MLX conversion: bit-exact round trip, quantization error bounds, sharding, HF config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
import pytest
from converters_fixtures import logits
from mlx_grpo.converters import ConvertOptions, QuantSpec, convert
from mlx_lm import load

from mlx_grpo.models.tiny import build_tiny_model

# Documented tolerances on fixed prompts (16 positions) for a random 256-wide, 4-layer Qwen2,
# group size 64, as fractions of the float logits' std (~1.0). Measured (seed 0):
#   8-bit: max |dlogit| 0.041, mean 0.0085, top-1 agreement 100%
#   4-bit: max |dlogit| 1.07,  mean 0.17,   top-1 agreement 94%
# (random weights are a worst case for 4-bit; trained models do better relative to their std).
TOLERANCE = {8: (0.1, 0.02, 1.0), 4: (1.6, 0.3, 0.75)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "hf"
    return build_tiny_model(
        path, seed=0, hidden_size=256, num_hidden_layers=4, intermediate_size=512
    )


def tensors(folder: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for file in sorted(folder.glob("model*.safetensors")):
        out.update({k: np.array(v) for k, v in mx.load(str(file)).items()})
    return out


def test_hf_mlx_hf_round_trip_is_bit_exact(tiny: Path, tmp_path: Path) -> None:
    convert(str(tiny), tmp_path / "mlx", ConvertOptions())
    convert(str(tmp_path / "mlx"), tmp_path / "hf", ConvertOptions(to="hf"))
    before, after = tensors(tiny), tensors(tmp_path / "hf")
    assert before.keys() == after.keys()
    for name in before:
        assert before[name].dtype == after[name].dtype
        assert np.array_equal(before[name], after[name]), name
    assert (tmp_path / "hf" / "tokenizer.json").read_bytes() == (
        tiny / "tokenizer.json"
    ).read_bytes()


def test_hf_config_has_what_transformers_needs(tiny: Path, tmp_path: Path) -> None:
    convert(str(tiny), tmp_path / "q", ConvertOptions(quant=QuantSpec(bits=4)))
    convert(str(tmp_path / "q"), tmp_path / "hf", ConvertOptions(to="hf", dtype="bfloat16"))
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForCausalLM"]
    assert config["torch_dtype"] == "bfloat16" and config["rope_theta"] == 10000.0
    assert config["tie_word_embeddings"] is True
    assert "quantization" not in config and "quantization_config" not in config
    header = mx.load(str(tmp_path / "hf" / "model.safetensors"))
    assert {v.dtype for v in header.values()} == {mx.bfloat16}


@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_logits_stay_within_tolerance(tiny: Path, tmp_path: Path, bits: int) -> None:
    out = tmp_path / f"q{bits}"
    rows = convert(str(tiny), out, ConvertOptions(quant=QuantSpec(bits=bits, group_size=64)))
    assert rows["quantization"] == f"{bits}-bit affine, group 64"
    reference = logits(load(str(tiny))[0])
    quantized = logits(load(str(out))[0])
    error = np.abs(quantized - reference) / reference.std()
    top1 = (reference.argmax(-1) == quantized.argmax(-1)).mean()
    max_tol, mean_tol, top1_tol = TOLERANCE[bits]
    assert error.max() < max_tol and error.mean() < mean_tol and top1 >= top1_tol


def test_sharded_output_loads_and_matches(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "sharded"
    convert(str(tiny), out, ConvertOptions(shard_bytes=400_000))
    shards = sorted(out.glob("model-*-of-*.safetensors"))
    assert len(shards) > 1
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == {p.name for p in shards}
    convert(str(out), tmp_path / "hf", ConvertOptions(to="hf"))  # sharded in, one file out
    assert np.array_equal(logits(load(str(out))[0]), logits(load(str(tiny))[0]))


def test_mixed_recipe_and_mxfp4(tiny: Path, tmp_path: Path) -> None:
    convert(str(tiny), tmp_path / "mixed", ConvertOptions(quant=QuantSpec(recipe="mixed_3_6")))
    config = json.loads((tmp_path / "mixed" / "config.json").read_text())
    per_layer = {v["bits"] for v in config["quantization"].values() if isinstance(v, dict)}
    assert per_layer == {3, 6}
    convert(str(tiny), tmp_path / "fp4", ConvertOptions(quant=QuantSpec(mode="mxfp4")))
    model, _ = load(str(tmp_path / "fp4"))
    assert model.model.layers[0].mlp.up_proj.mode == "mxfp4"
    assert np.isfinite(logits(model)).all()


def test_transformers_logits_match_mlx(tiny: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is a test extra (pip install torch)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    convert(str(tiny), tmp_path / "mlx", ConvertOptions())
    convert(str(tmp_path / "mlx"), tmp_path / "hf", ConvertOptions(to="hf", dtype="float32"))
    hf = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"), dtype=torch.float32)
    with torch.no_grad():
        theirs = hf(torch.tensor([[1, 5, 77, 100, 200, 3, 9, 42]])).logits.numpy()
    ours = logits(load(str(tmp_path / "mlx"))[0], [[1, 5, 77, 100, 200, 3, 9, 42]])
    assert np.abs(theirs - ours).max() < 1e-4
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    assert tok.decode(tok("hello <|im_end|>")["input_ids"]) == "hello <|im_end|>"


def test_hf_export_loads_with_auto_classes_and_decodes_greedy_like_mlx(
    tiny: Path, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch", reason="torch is a test extra (pip install torch)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    convert(str(tiny), tmp_path / "mlx", ConvertOptions())
    convert(str(tmp_path / "mlx"), tmp_path / "hf", ConvertOptions(to="hf", dtype="float32"))
    tok_config = json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())
    # transformers 4.x has no TokenizersBackend class; both major versions load this one
    assert (
        tok_config["tokenizer_class"] == "PreTrainedTokenizerFast" and "backend" not in tok_config
    )
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    hf = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"), dtype=torch.float32)
    prompt = tok("What is 2 + 3?")["input_ids"]
    with torch.no_grad():
        out = hf.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=8,
                          min_new_tokens=8, pad_token_id=tok.pad_token_id)  # fmt: skip
    theirs = out[0, len(prompt) :].tolist()
    model, _ = load(str(tmp_path / "mlx"))
    ours, ids = [], list(prompt)
    for _ in range(8):
        nxt = int(np.argmax(logits(model, [ids])[0, -1]))
        ours.append(nxt)
        ids.append(nxt)
    assert theirs == ours


@pytest.mark.parametrize(("bits", "poor"), [(2, True), (8, False)])
def test_quantizing_says_its_top1_agreement_and_warns_when_poor(
    tiny: Path, tmp_path: Path, bits: int, poor: bool
) -> None:
    said: list[str] = []
    rows = convert(str(tiny), tmp_path / "q", ConvertOptions(quant=QuantSpec(bits=bits)),
                   say=said.append)  # fmt: skip
    [line] = [s for s in said if "top-1 agreement" in s]
    rate = float(line.split("source: ")[1].split("%")[0]) / 100
    assert (rate < 0.9) == poor and line.startswith("warning:") == poor
    assert rows["top-1 agreement"].startswith(f"{rate:.1%}")


def test_agreement_of_an_unchanged_model_is_total(tiny: Path) -> None:
    from mlx_grpo.converters.agreement import measure
    from mlx_grpo.converters.load_folder import load_folder

    agreement = measure(load_folder(tiny), lambda: None)
    assert agreement.positions > 30 and agreement.rate == 1.0


def test_float_conversion_says_no_agreement(tiny: Path, tmp_path: Path) -> None:
    said: list[str] = []
    rows = convert(str(tiny), tmp_path / "f", ConvertOptions(), say=said.append)
    assert not any("agreement" in s for s in said) and "top-1 agreement" not in rows


def test_cli_prints_the_agreement_warning_and_exports_a_portable_tokenizer(
    tiny: Path, tmp_path: Path, run_cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("convert", str(tiny), str(tmp_path / "q2"), "--quantize", "--bits", "2") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "warning: top-1 agreement with the source" in out and "--bits 8" in out
    assert run_cli("convert", str(tiny), str(tmp_path / "hf"), "--to", "hf") == 0
    config = json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
