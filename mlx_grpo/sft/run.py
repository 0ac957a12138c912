"""An SFT run on disk: GRPO's run folder (`train.loop.new_run` / `resume_run`) with its config.

The folder is a normal run (config.yaml, metrics.jsonl, checkpoints/step_N), so `chat`,
`eval`, `generate` and `convert` read it with `--run`; its config.yaml is an `SftConfig`,
recognised by its `sft` section.
"""

from __future__ import annotations

from pathlib import Path

from mlx_grpo import rundir
from mlx_grpo.errors import UserError
from mlx_grpo.sft.config import is_sft_config, load_sft_config
from mlx_grpo.train.loop import RunSetup, new_run, resume_run


def is_sft_run(run_dir: Path) -> bool:
    """Whether a run folder's config.yaml is an SFT config (it has an `sft` section)."""
    return is_sft_config(rundir.read_run_config(run_dir))


def new_sft_run(config_path: Path | None, overrides: list[str]) -> RunSetup:
    """Validate the SFT config and choose a fresh run folder (`sft-<time>` by default)."""
    return new_run(config_path, overrides, load=load_sft_config, prefix="sft")


def resume_sft_run(run_dir: Path, overrides: list[str]) -> RunSetup:
    """Reopen an SFT run at its newest checkpoint; a GRPO run is refused with the command."""
    if rundir.config_file(run_dir).is_file() and not is_sft_run(run_dir):
        raise UserError(
            f"not an SFT run; continue a GRPO run with mlx-grpo train --resume {run_dir}",
            where=str(run_dir),
        )
    return resume_run(run_dir, overrides, load=load_sft_config)
