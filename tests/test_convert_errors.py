"""Bad input to `mlx-grpo convert`: one clear message, exit 2, nothing half-written; and --info."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlx_grpo.cli.main import main

from mlx_grpo.models.tiny import build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "hf", seed=0)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(["convert", *args])
    captured = capsys.readouterr()
    text = (captured.out + captured.err).translate({ord(c): " " for c in "│┃┌┐└┘─━┬┴┼├┤"})
    return rc, " ".join(text.split())


def only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_folder_without_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    rc, text = run_cli([str(tmp_path / "empty"), str(tmp_path / "out")], capsys)
    assert rc == 2 and "no model weights found" in text and "model.safetensors" in text
    assert only(tmp_path) == ["empty"]


def test_config_without_model_type(tiny: Path, tmp_path: Path, capsys) -> None:
    src = shutil.copytree(tiny, tmp_path / "src")
    config = json.loads((src / "config.json").read_text())
    del config["model_type"]
    (src / "config.json").write_text(json.dumps(config))
    rc, text = run_cli([str(src), str(tmp_path / "out")], capsys)
    assert rc == 2 and "config.json: no 'model_type' key" in text
    assert only(tmp_path) == ["src"]


def test_truncated_safetensors(tiny: Path, tmp_path: Path, capsys) -> None:
    src = shutil.copytree(tiny, tmp_path / "src")
    data = (src / "model.safetensors").read_bytes()
    (src / "model.safetensors").write_bytes(data[: len(data) // 2])
    rc, text = run_cli([str(src), str(tmp_path / "out")], capsys)
    assert rc == 2 and "model.safetensors: truncated safetensors file" in text
    assert only(tmp_path) == ["src"]


def test_existing_output_needs_force(tiny: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    rc, text = run_cli([str(tiny), str(out)], capsys)
    assert rc == 2 and "already exists; pass --force" in text
    assert only(out) == ["keep.txt"]
    rc, text = run_cli([str(tiny), str(out), "--force", "-q", "--bits", "8"], capsys)
    assert rc == 0 and "8-bit affine, group 64" in text
    assert "keep.txt" not in only(out) and only(tmp_path) == ["out"]


def test_failure_mid_write_leaves_nothing(tiny: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from mlx_grpo.converters import pipeline

    def boom(*_args, **_kwargs) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pipeline, "write_mlx", boom)
    with pytest.raises(OSError, match="disk full"):
        main(["convert", str(tiny), str(tmp_path / "out")])
    assert only(tmp_path) == []


def test_flag_errors(tiny: Path, tmp_path: Path, capsys) -> None:
    cases = [
        (["-q", "--bits", "7"], "--bits 7: valid for affine: 2, 3, 4, 5, 6, 8"),
        (["-q", "--mode", "mxfp4", "--bits", "8"], "--mode mxfp4: fixed at 4 bits, group size 32"),
        (["-q", "--dequantize"], "contradict"),
        (["--dtype", "float64"], "--dtype float64: valid: float16, bfloat16, float32"),
        (["--bits", "4"], "need --quantize"),
        (["--step", "3"], "--step only applies to a run"),
    ]
    for flags, message in cases:
        rc, text = run_cli([str(tiny), str(tmp_path / "out"), *flags], capsys)
        assert rc == 2 and message in text, (flags, text)
    assert only(tmp_path) == []


def test_info_describes_folder_and_checks_cli_summary(tiny: Path, tmp_path: Path, capsys) -> None:
    rc, text = run_cli(["--info", str(tiny)], capsys)
    assert rc == 0
    for expected in (
        "format mlx",
        "qwen2 (Qwen2ForCausalLM)",
        "float32",
        "chat template yes",
    ):
        assert expected in text, expected
    rc, text = run_cli([str(tiny), str(tmp_path / "q"), "-q", "--group-size", "32"], capsys)
    assert rc == 0 and "4-bit affine, group 32" in text and "Wrote" in text
    rc, text = run_cli(["--info", str(tmp_path / "q")], capsys)
    assert rc == 0 and "format mlx" in text and "tokenizer yes" in text
    (tmp_path / "pt").mkdir()
    (tmp_path / "pt" / "pytorch_model.bin").write_bytes(b"x")
    rc, text = run_cli(["--info", str(tmp_path / "pt")], capsys)
    assert rc == 0 and "pytorch (.bin/.pt) only" in text


@pytest.mark.parametrize("seed", range(5))
def test_gguf_magic_then_random_bytes_is_one_line(seed: int, tmp_path: Path, capsys) -> None:
    """Every length in the header is checked against the file's size before it is read."""
    import random
    import struct

    rng = random.Random(seed)
    bad = tmp_path / "random.gguf"
    body = bytes(rng.getrandbits(8) for _ in range(4096))
    bad.write_bytes(b"GGUF" + struct.pack("<I", 3) + body)
    rc, text = run_cli([str(bad), str(tmp_path / "out")], capsys)
    assert rc == 2 and "corrupt GGUF header" in text and "Traceback" not in text
    assert only(tmp_path) == ["random.gguf"]  # nothing written
