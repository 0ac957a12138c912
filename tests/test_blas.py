"""OpenBLAS detection and the one-time restart, on machines with and without it (simulated)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from mlx_grpo.blas import OPT_OUT, REEXEC_MARK, find_openblas, reexec_env

REF = "/venv/site-packages/mlx_cpu.libs/libblas-1234.so.3"
OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0"


def test_restart_only_when_it_helps():
    env = reexec_env({"PATH": "/bin"}, "linux", REF, OPENBLAS)
    assert env is not None and env["LD_PRELOAD"] == OPENBLAS and env[REEXEC_MARK] == "1"
    assert env["PATH"] == "/bin"
    assert reexec_env({}, "linux", REF, None) is None  # no OpenBLAS installed
    assert reexec_env({}, "darwin", REF, OPENBLAS) is None  # Accelerate on a Mac
    assert reexec_env({}, "linux", None, OPENBLAS) is None  # not the mlx-cpu wheel (e.g. CUDA)
    assert reexec_env({OPT_OUT: "1"}, "linux", REF, OPENBLAS) is None
    assert reexec_env({REEXEC_MARK: "1"}, "linux", REF, OPENBLAS) is None  # never loops
    assert reexec_env({"LD_PRELOAD": OPENBLAS}, "linux", REF, OPENBLAS) is None


def test_existing_preloads_are_kept():
    env = reexec_env({"LD_PRELOAD": "/lib/libfoo.so"}, "linux", REF, OPENBLAS)
    assert env["LD_PRELOAD"] == f"{OPENBLAS} /lib/libfoo.so"


def test_find_openblas_searches_the_usual_places():
    present = {"/usr/lib/aarch64-linux-gnu/libopenblas.so.0"}
    assert find_openblas("aarch64", exists=present.__contains__) == next(iter(present))
    assert find_openblas("x86_64", exists=lambda p: False) is None


def _info(env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-m", "mlx_grpo.cli.main", "info"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **env},
        check=True,
    ).stdout


def test_info_reports_the_blas_really_loaded():
    opted_out = _info({OPT_OUT: "1", "LD_PRELOAD": ""})
    for key in ("mlx-grpo", "mlx ", "default device", "metal", "cuda", "memory", "blas"):
        assert key in opted_out
    if sys.platform == "linux":
        assert "reference BLAS bundled with mlx-cpu" in opted_out
        if find_openblas():  # installed here: the plain command restarts itself with it
            assert re.search(r"blas\s+│ OpenBLAS", _info({"LD_PRELOAD": ""}))
