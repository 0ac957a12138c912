"""`convert()`: source -> in-memory MLX model -> optional dtype/quantization -> output folder.

One function behind every direction (HF/MLX/GGUF/adapters/runs -> MLX, anything -> HF). The
output is written into a temp folder beside OUT and renamed into place only when complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlx_grpo.converters.agreement import Agreement, measure
from mlx_grpo.converters.detect import Source, detect
from mlx_grpo.converters.dtype_choice import BACKEND_NAMES, DtypeChoice, choose_dtype
from mlx_grpo.converters.fuse import load_fused
from mlx_grpo.converters.info import describe
from mlx_grpo.converters.load_folder import load_folder
from mlx_grpo.converters.load_gguf import load_gguf
from mlx_grpo.converters.loaded import LoadedModel
from mlx_grpo.converters.quantize import DTYPES, QuantSpec, cast, dequantize, quantize
from mlx_grpo.converters.safetensors_io import DEFAULT_SHARD_BYTES
from mlx_grpo.converters.staging import check_output, staged_output
from mlx_grpo.converters.write import float_dtype_name, weights_of, write_hf, write_mlx

from mlx_grpo.errors import UserError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ConvertOptions:
    """Everything `mlx-grpo convert` can be asked to do besides SRC and OUT."""

    to: str = "mlx"
    quant: QuantSpec | None = None
    dequantize: bool = False
    dtype: str | None = None
    step: int | None = None
    base: str | None = None
    adapter: str | None = None
    force: bool = False
    shard_bytes: int = DEFAULT_SHARD_BYTES
    backend: str | None = None  # "cpu", "metal" or "cuda"; None: the one MLX runs on

    def check(self) -> None:
        """Reject contradictory or invalid flag combinations before any work starts."""
        if self.to not in ("mlx", "hf"):
            raise UserError(f"--to {self.to}: valid: mlx, hf")
        if self.backend is not None and self.backend not in BACKEND_NAMES:
            raise UserError(f"backend {self.backend}: valid: {', '.join(BACKEND_NAMES)}")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise UserError(f"--dtype {self.dtype}: valid: {', '.join(DTYPES)}")
        if self.quant and self.dequantize:
            raise UserError("--quantize and --dequantize contradict each other; pick one")
        if self.quant and self.to == "hf":
            raise UserError("--quantize applies to --to mlx; Hugging Face output is float")
        if self.quant:
            self.quant.resolved()
        if self.adapter and self.base:
            raise UserError("--adapter takes its base model from SRC; drop --base")


def load_source(source: Source, options: ConvertOptions) -> LoadedModel:
    """Load any resolved source into memory (adapters are fused on the way)."""
    if source.kind == "gguf":
        return load_gguf(source.path)
    if source.kind == "adapters":
        assert source.base is not None
        return load_fused(source.path, source.base, dequantize=options.dequantize)
    return load_folder(source.path)


def dtype_for(loaded: LoadedModel, options: ConvertOptions) -> DtypeChoice:
    """The output dtype: --dtype, else chosen by backend from the loaded model's dtype."""
    from mlx_grpo.backend import compute_backend

    stored = float_dtype_name(weights_of(loaded))
    backend = options.backend or compute_backend()
    return choose_dtype(options.dtype, stored, backend, options.to)


def transform(
    loaded: LoadedModel, options: ConvertOptions, dtype: DtypeChoice, say: Progress
) -> Agreement | None:
    """Apply the dtype, --dequantize and --quantize, in that order; a quantizing conversion
    returns (and says) its top-1 agreement with the source (`converters/agreement.py`)."""
    if dtype.cast and options.to == "mlx":
        cast(loaded, dtype.cast)
    if options.dequantize and loaded.quantized:
        dequantize(loaded)
    if not options.quant:
        return None
    spec = options.quant.resolved()
    agreement = measure(loaded, lambda: quantize(loaded, spec))
    say(agreement.line(spec.bits or 4))
    return agreement


def convert(
    src: str,
    out: Path,
    options: ConvertOptions,
    progress: Progress = lambda _: None,
    say: Progress = lambda _: None,
) -> dict[str, str]:
    """Convert SRC into OUT; `say` gets the dtype line; returns `--info`-style rows."""
    options.check()
    progress(f"Inspecting {src}")
    source = detect(src, step=options.step, base=options.base, adapter=options.adapter)
    check_output(out, options.force, (source.path,))
    progress(f"Loading {source.kind} from {source.path}")
    loaded = load_source(source, options)
    dtype = dtype_for(loaded, options)
    say(dtype.line())
    agreement = transform(loaded, options, dtype, say)
    with staged_output(out, options.force) as staging:
        progress(f"Writing {options.to.upper()} weights to {out}")
        if options.to == "hf":
            write_hf(staging, loaded, options.dtype, options.shard_bytes)
        else:
            write_mlx(staging, loaded, options.shard_bytes)
    rows = {"source": f"{source.path} ({loaded.source_format})"}
    if source.step is not None:
        rows["step"] = str(source.step)
    rows.update(describe(out))
    if agreement is not None:
        rows["top-1 agreement"] = f"{agreement.rate:.1%} with the source"
    return rows
