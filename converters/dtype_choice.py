"""Which float dtype `convert` writes when `--dtype` is not given, and the line that says why.

MLX on a Linux CPU runs float16/bfloat16 weights (and quantized layers with float16 scales)
about 50x slower than float32, so on the CPU backend half-precision sources are upcast to
float32 (lossless). On Metal and CUDA the compact dtype the source is stored in is kept.
An explicit `--dtype` always wins; `--to hf` keeps the stored dtype unless told otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

HALF = ("float16", "bfloat16")
BACKEND_NAMES = {"cpu": "CPU", "metal": "Metal", "cuda": "CUDA"}


@dataclass(frozen=True)
class DtypeChoice:
    """The dtype to cast to (None: keep as stored), the dtype written, and why."""

    cast: str | None
    name: str
    reason: str

    def line(self) -> str:
        return f"dtype {self.name} ({self.reason})"


def choose_dtype(requested: str | None, stored: str, backend: str, to: str = "mlx") -> DtypeChoice:
    """The dtype for the output: `requested` if given, else by backend (see module doc)."""
    if requested is not None:
        return DtypeChoice(requested, requested, "--dtype")
    where = BACKEND_NAMES.get(backend, backend)
    if to != "mlx":
        return DtypeChoice(None, stored, "as stored; --dtype to change it")
    if backend == "cpu" and stored in HALF:
        why = f"CPU backend; --dtype {stored} for a smaller file"
        return DtypeChoice("float32", "float32", why)
    if backend == "cpu":
        return DtypeChoice(None, stored, "as stored; CPU backend")
    return DtypeChoice(None, stored, f"as stored; {where} backend")
