"""The default output dtype of `convert` follows the backend; --dtype always wins."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import pytest
from mlx_grpo.cli.main import main
from mlx_grpo.converters import ConvertOptions, convert
from mlx_grpo.converters.dtype_choice import choose_dtype

from mlx_grpo.errors import UserError
from mlx_grpo.models.tiny import build_tiny_model


@pytest.fixture(scope="module")
def half(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model stored in float16 (as a GGUF's scales or a Hub checkpoint would be)."""
    src = build_tiny_model(tmp_path_factory.mktemp("tiny") / "hf", seed=0)
    out = tmp_path_factory.mktemp("half") / "f16"
    convert(str(src), out, ConvertOptions(dtype="float16"))
    return out


def stored_dtypes(folder: Path) -> set[mx.Dtype]:
    return {value.dtype for value in mx.load(str(folder / "model.safetensors")).values()}


@pytest.mark.parametrize(
    ("backend", "stored", "written"),
    [
        ("cpu", "float16", "float32"),
        ("cpu", "bfloat16", "float32"),
        ("cpu", "float32", "float32"),
        ("metal", "float16", "float16"),
        ("cuda", "bfloat16", "bfloat16"),
        ("metal", "float32", "float32"),
    ],
)
def test_default_dtype_follows_backend(backend: str, stored: str, written: str) -> None:
    choice = choose_dtype(None, stored, backend)
    assert choice.name == written
    assert choice.cast == ("float32" if written != stored else None)
    assert ("CPU backend" in choice.reason) == (backend == "cpu")


@pytest.mark.parametrize("backend", ["cpu", "metal", "cuda"])
def test_explicit_dtype_wins_on_every_backend(backend: str) -> None:
    choice = choose_dtype("bfloat16", "float16", backend)
    assert (choice.cast, choice.name, choice.reason) == ("bfloat16", "bfloat16", "--dtype")


def test_hf_output_keeps_the_stored_dtype_on_cpu() -> None:
    assert choose_dtype(None, "bfloat16", "cpu", to="hf").cast is None


@pytest.mark.parametrize(("backend", "written"), [("cpu", mx.float32), ("metal", mx.float16)])
def test_convert_writes_the_backend_default(half: Path, tmp_path: Path, backend, written) -> None:
    lines: list[str] = []
    convert(str(half), tmp_path / "out", ConvertOptions(backend=backend), say=lines.append)
    assert stored_dtypes(tmp_path / "out") == {written}
    assert lines == [choose_dtype(None, "float16", backend).line()]


def test_unknown_backend_is_one_clear_error(half: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="backend tpu: valid: cpu, metal, cuda"):
        convert(str(half), tmp_path / "out", ConvertOptions(backend="tpu"))
    assert not (tmp_path / "out").exists()


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(["convert", *args])
    captured = capsys.readouterr()
    return rc, " ".join((captured.out + captured.err).split())


@pytest.mark.parametrize("backend", ["cpu", "metal"])
def test_cli_prints_the_chosen_dtype(
    half: Path, tmp_path: Path, capsys, monkeypatch, backend
) -> None:
    monkeypatch.setattr("mlx_grpo.backend.compute_backend", lambda: backend)
    rc, text = run_cli([str(half), str(tmp_path / "out")], capsys)
    assert rc == 0
    if backend == "cpu":
        assert "dtype float32 (CPU backend; --dtype float16 for a smaller file)" in text
        assert stored_dtypes(tmp_path / "out") == {mx.float32}
    else:
        assert "dtype float16 (as stored; Metal backend)" in text
        assert stored_dtypes(tmp_path / "out") == {mx.float16}


def test_cli_explicit_dtype_overrides_cpu_default(
    half: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setattr("mlx_grpo.backend.compute_backend", lambda: "cpu")
    rc, text = run_cli([str(half), str(tmp_path / "out"), "--dtype", "bfloat16"], capsys)
    assert rc == 0 and "dtype bfloat16 (--dtype)" in text
    assert stored_dtypes(tmp_path / "out") == {mx.bfloat16}


def test_compute_backend_names_a_known_backend() -> None:
    from mlx_grpo.backend import compute_backend

    expected = "cpu" if mx.default_device().type == mx.DeviceType.cpu else ("metal", "cuda")
    assert compute_backend() in expected
