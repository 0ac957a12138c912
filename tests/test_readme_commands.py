"""The README's "Every command, offline" block runs as written and covers every command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
MARKER = "<!-- readme-commands -->\n```bash\n"


def readme_block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(MARKER) + len(MARKER)
    return text[start : text.index("```", start)]


def test_the_block_names_every_command_but_the_demo() -> None:
    from mlx_grpo.cli.main import app

    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    used = {line.split("mlx-grpo ")[1].split()[0] for line in readme_block().splitlines()
            if "mlx-grpo " in line}  # fmt: skip
    assert commands - {"demo"} <= used, commands - used  # the demo is the README's first command


def test_the_block_runs_offline_and_writes_what_it_says(tmp_path: Path) -> None:
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-e", "-c", readme_block()], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert len((tmp_path / "runs/quick/metrics.jsonl").read_text().splitlines()) == 2
    assert (tmp_path / "quick.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "quick-eval.json").read_text())["problems"] == 4
    code_eval = json.loads((tmp_path / "code-eval.json").read_text())
    assert code_eval["problems"] == 2 and "pass@2" in code_eval["summary"]  # judged by code_tests
    assert len((tmp_path / "answers.jsonl").read_text().splitlines()) == 2
    assert len((tmp_path / "sft.graded.jsonl").read_text().splitlines()) == 4  # all graded
    kept = [json.loads(x) for x in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert all(set(k) == {"prompt", "completion", "answer", "reward"} for k in kept)
    assert "kept rate" in out.stdout
    assert (tmp_path / "quick-mlx" / "config.json").is_file()
    assert "fits:" in out.stdout and "quick" in out.stdout
