"""A non-editable install has what the demo and the packaged configs need: the wheel is
built from a copy of the source tree, unpacked into a folder of its own, and used from
another directory (the editable checkout must not be what answers)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(
    ".venv", ".git", "build", "*.egg-info", "runs", "__pycache__", "tests"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel's files, installed with pip into an empty target folder."""
    root = tmp_path_factory.mktemp("wheel")
    shutil.copytree(REPO, root / "src", ignore=SKIP)
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", root / "dist",
                    root / "src"], check=True)  # fmt: skip
    [wheel] = (root / "dist").glob("mlx_grpo-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", root / "site", wheel], check=True)
    return root / "site"


def run_installed(site: Path, cwd: Path, *code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-c", "\n".join(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_the_demo_config_ships_in_the_wheel(site: Path, tmp_path: Path) -> None:
    out = run_installed(
        site, tmp_path,
        "import mlx_grpo; from mlx_grpo.cli.demo import DEFAULT_CONFIG, DEFAULT_SFT_CONFIG",
        "from mlx_grpo.config import load_config",
        "from mlx_grpo.sft.config import load_sft_config",
        "cfg = load_config(DEFAULT_CONFIG, [])",
        "assert load_sft_config(DEFAULT_SFT_CONFIG, []).steps > 0  # the cold start's config",
        "print(mlx_grpo.__file__, DEFAULT_CONFIG, cfg.data.train, cfg.steps, sep='\\n')",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    package, config, train, steps = out.stdout.split()
    assert package.startswith(str(site)) and config.startswith(str(site))
    assert train == "builtin:arithmetic" and int(steps) > 0


def test_a_packaged_config_trains_from_another_directory(site: Path, tmp_path: Path) -> None:
    config = site / "mlx_grpo" / "configs" / "debug.yaml"  # names data/ and rewards/ files
    launcher = tmp_path / "mlx-grpo"  # what the console script does
    launcher.write_text("import sys\nfrom mlx_grpo.cli.entry import run\nsys.exit(run())\n")
    args = ["train", "-c", str(config), "--set", "steps=2", "--set", "logging.run_name=w",
            "--set", "checkpoint.every=100"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, launcher, *args], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert len((tmp_path / "runs" / "w" / "metrics.jsonl").read_text().splitlines()) == 2
