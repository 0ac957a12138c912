"""Which MLX backend is installed, and one clear line when there is none or more than one.

On Linux the `mlx` package holds only the Python bindings; the library itself comes from
exactly one backend package: `mlx-cpu` (`mlx-grpo[cpu]`), `mlx-cuda-12` (`[cuda12]`) or
`mlx-cuda-13` (`[cuda13]`). They all ship the same file, `mlx/lib/libmlx.so`, so with two
installed the last one wins and uninstalling either removes MLX's library. On macOS `mlx`
pulls `mlx-metal` itself and there is nothing to choose.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from collections.abc import Callable

BACKENDS = ("mlx-metal", "mlx-cpu", "mlx-cuda-12", "mlx-cuda-13")  # distribution names
CHOOSE = (
    "install one backend: pip install 'mlx-grpo[cpu]' (CPU), 'mlx-grpo[cuda12]' or "
    "'mlx-grpo[cuda13]' (NVIDIA GPU)"
)


def installed_backends(version: Callable[[str], str] = importlib.metadata.version) -> list[str]:
    """The MLX backend distributions installed in this environment, e.g. ["mlx-cpu"]."""
    found = []
    for dist in BACKENDS:
        try:
            version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append(dist)
    return found


def backend_error(platform: str, import_error: BaseException | None, installed: list[str]) -> str:
    """The one-line message when MLX cannot load, else ""."""
    if import_error is None:
        return ""
    if platform == "linux" and not installed:
        return f"MLX has no backend installed (mlx/lib/libmlx.so is missing); {CHOOSE}"
    return f"MLX cannot be loaded ({import_error}); reinstall it, or {CHOOSE}"


def backend_conflict(installed: list[str]) -> str:
    """A warning when two backends share (and overwrite) libmlx.so, else ""."""
    if len(installed) < 2:
        return ""
    names = " ".join(installed)
    return (
        f"{' and '.join(installed)} are both installed; they overwrite each other's "
        f"mlx/lib/libmlx.so. Keep one: pip uninstall -y {names}, then "
        "pip install 'mlx-grpo[cpu]' (or [cuda12] / [cuda13])"
    )


def import_mlx() -> BaseException | None:
    """Import mlx.core; the error when that fails (a missing or broken backend), else None."""
    try:
        import mlx.core  # noqa: F401
    except (ImportError, OSError) as exc:
        return exc
    return None


def compute_backend() -> str:
    """Where MLX runs by default: "metal", "cuda" or "cpu" (what the default dtype follows)."""
    import mlx.core as mx

    if mx.default_device().type != mx.DeviceType.gpu:
        return "cpu"
    return "metal" if mx.metal.is_available() else "cuda"


@functools.cache
def physical_memory_mb() -> int:
    """The machine's memory in MiB (Linux and macOS; 8 GiB when the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        return 8192


CPU_CACHE_FRACTION = 0.1  # of the machine's memory


def keep_cpu_buffers(memory_bytes: int | None = None) -> int | None:
    """On MLX's CPU device, let freed buffers up to a tenth of the memory stay cached for
    reuse; return the new limit (None off the CPU, or when the limit is already higher).

    MLX's CPU allocator caches only 32 MB of freed buffers: each scoring pass's
    [rows, positions, vocab] float32 buffers (~100 MB at B x G = 8, 64 positions, a 49k
    vocabulary) go back to the OS and come back page-faulted and zeroed, step after step
    (benchmarks/RESULTS.md: ~0.5 s of a step). Metal and CUDA keep theirs up to their
    memory limit already. The peak of live memory does not change; the process holds up to
    the limit more (the demo's peak RSS 3.4 -> 5.3 GB at a tenth of 24 GB, 8.8 GB at a
    quarter, no faster). What is cached is handed back by `mx.clear_cache()` or at exit."""
    import mlx.core as mx

    if compute_backend() != "cpu":
        return None
    if memory_bytes is None:
        memory_bytes = physical_memory_mb() * 2**20
    limit = int(memory_bytes * CPU_CACHE_FRACTION)
    previous = mx.set_cache_limit(limit)
    if previous >= limit:
        mx.set_cache_limit(previous)
        return None
    return limit
