"""MLX backend packaging: each install extra brings exactly one backend; none or two is reported."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from mlx_grpo.cli import main as cli_main
from packaging.requirements import Requirement

from mlx_grpo import backend

BACKEND_EXTRAS = {"cpu", "cuda12", "cuda13"}


def mlx_backends(extras: set[str], platform: str) -> set[str]:
    """The MLX backend extras that installing mlx-grpo[extras] on `platform` would pull in,
    read from this package's own installed metadata (what pip really sees)."""
    found: set[str] = set()
    for line in importlib.metadata.requires("mlx-grpo") or []:
        req = Requirement(line)
        env = {"sys_platform": platform, "platform_system": platform.capitalize()}
        active = req.marker is None or any(
            req.marker.evaluate({**env, "extra": extra}) for extra in extras | {""}
        )
        if active and req.name in ("mlx", "mlx-lm"):
            found |= req.extras & BACKEND_EXTRAS
    return found


@pytest.mark.parametrize(
    ("extras", "expected"),
    [
        ({"cpu"}, {"cpu"}),
        ({"cpu", "dev"}, {"cpu"}),
        ({"cuda12"}, {"cuda12"}),
        ({"cuda13", "data"}, {"cuda13"}),
        ({"cuda12", "dev"}, {"cuda12"}),
        (set(), set()),
    ],
)
def test_each_extra_brings_one_backend_on_linux(extras: set[str], expected: set[str]) -> None:
    assert mlx_backends(extras, "linux") == expected


@pytest.mark.parametrize("extras", [set(), {"cpu", "dev"}, {"cuda12"}])
def test_macos_never_gets_a_linux_backend(extras: set[str]) -> None:
    assert mlx_backends(extras, "darwin") == set()


def test_installed_backends_reads_distributions() -> None:
    present = {"mlx-cpu": "0.32.4", "mlx-cuda-12": "0.32.4"}

    def version(name: str) -> str:
        if name not in present:
            raise importlib.metadata.PackageNotFoundError(name)
        return present[name]

    assert backend.installed_backends(version) == ["mlx-cpu", "mlx-cuda-12"]
    assert backend.installed_backends() != []  # this test environment has one


def test_no_backend_on_linux_names_the_extras() -> None:
    error = ImportError("libmlx.so: cannot open shared object file: No such file or directory")
    message = backend.backend_error("linux", error, [])
    assert "no backend installed" in message and "mlx-grpo[cpu]" in message
    assert "mlx-grpo[cuda12]" in message
    broken = backend.backend_error("linux", error, ["mlx-cuda-12"])
    assert "cannot be loaded" in broken and "libmlx.so" in broken
    assert backend.backend_error("linux", None, ["mlx-cpu"]) == ""


def test_two_backends_warn_with_the_repair() -> None:
    assert backend.backend_conflict(["mlx-cpu"]) == ""
    warning = backend.backend_conflict(["mlx-cpu", "mlx-cuda-12"])
    assert "overwrite" in warning and "pip uninstall -y mlx-cpu mlx-cuda-12" in warning


def test_cli_stops_with_one_line_without_a_backend(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(backend, "installed_backends", lambda: [])
    monkeypatch.setattr(backend, "import_mlx", lambda: ImportError("libmlx.so: cannot open"))
    monkeypatch.setattr(cli_main.sys, "platform", "linux")
    assert cli_main.main(["info"]) == 2
    err = capsys.readouterr().err
    assert "MLX has no backend installed" in err and "Traceback" not in err
    flat = "".join(err.split())  # rich may wrap; the extras' brackets must survive as text
    assert "mlx-grpo[cpu]" in flat and "[cuda12]" in flat and "[cuda13]" in flat


def test_user_error_text_with_brackets_is_printed_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "run[bold]s" / "cfg[red].yaml"
    assert cli_main.main(["train", "-c", str(missing)]) == 2
    assert "cfg[red].yaml" in "".join(capsys.readouterr().err.split())


def test_cli_warns_about_two_backends_and_still_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(backend, "installed_backends", lambda: ["mlx-cpu", "mlx-cuda-13"])
    assert cli_main.main(["info"]) == 0
    captured = capsys.readouterr()
    assert "mlx-cpu and mlx-cuda-13 are both installed" in " ".join(captured.err.split())
    assert "mlx backend" in captured.out


def test_info_says_where_built_in_models_live(tmp_path, monkeypatch, capsys) -> None:
    from mlx_grpo.cli import main as cli_main

    (tmp_path / "models" / "tiny-qwen2").mkdir(parents=True)
    monkeypatch.setenv("MLX_GRPO_CACHE", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "300")
    assert cli_main.main(["info"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "models") in out
    assert f"mlx_lm.generate --model {tmp_path / 'models' / 'tiny-qwen2'}" in out


def test_cpu_keeps_a_tenth_of_the_memory_of_freed_buffers():
    import mlx.core as mx

    from mlx_grpo.backend import keep_cpu_buffers

    before = mx.set_cache_limit(32 << 20)
    try:
        assert keep_cpu_buffers(memory_bytes=20 << 30) == 2 << 30
        assert mx.set_cache_limit(2 << 30) == 2 << 30  # the limit it set
        assert keep_cpu_buffers(memory_bytes=10 << 30) is None  # never lowered
        assert mx.set_cache_limit(2 << 30) == 2 << 30
    finally:
        mx.set_cache_limit(before)
