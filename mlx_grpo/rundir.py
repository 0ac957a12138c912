"""A training run on disk: the one module that knows the run folder's layout.

```
runs/<name>/config.yaml            the resolved config, exactly as run
runs/<name>/metrics.jsonl          one JSON line per step
runs/<name>/samples.jsonl          prompts, completions, rewards every N steps
runs/<name>/checkpoints/step_N/    adapters.safetensors + adapter_config.json (LoRA/DoRA)
                                   or model*.safetensors + config.json + tokenizer (full),
                                   optimizer.safetensors, trainer_state.json
```

Transformers / TRL output folders (`<output>/checkpoint-N/`) are read too, so `convert` can
bring those home. Everything else asks this module: where a file lives, which steps exist
and which is the newest, what an adapter folder records about its base model, and how to
write a folder so that a crash never leaves half of it (`atomic_folder`). It imports nothing
of the project but `errors`.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from mlx_grpo.errors import UserError

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SAMPLES_FILE = "samples.jsonl"
CHECKPOINTS = "checkpoints"
TRAINER_STATE = "trainer_state.json"
OPTIMIZER_STATE = "optimizer.safetensors"
ADAPTER_WEIGHTS = "adapters.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
# this project's `step_N` and transformers/TRL's `checkpoint-N`
STEP_NAME = re.compile(r"^(?:step_|checkpoint-)(\d+)$")
# adapter_config.json keys naming the base model: ours, mlx-lm's, PEFT's
BASE_MODEL_KEYS = ("base_model", "model", "base_model_name_or_path")


# ---------------------------------------------------------------- where things are


def config_file(run: Path) -> Path:
    return run / CONFIG_FILE


def metrics_file(run: Path) -> Path:
    return run / METRICS_FILE


def samples_file(run: Path) -> Path:
    return run / SAMPLES_FILE


def checkpoints_dir(run: Path) -> Path:
    return run / CHECKPOINTS


def step_folder(run: Path, step: int) -> Path:
    """Where this project writes the checkpoint of `step`: `RUN/checkpoints/step_N`."""
    return checkpoints_dir(run) / f"step_{step}"


# ---------------------------------------------------------------- steps


def step_of(folder: Path) -> int | None:
    """The step number in a checkpoint folder's name (None for other folders)."""
    match = STEP_NAME.match(folder.name)
    return int(match.group(1)) if match else None


def list_steps(folder: Path) -> dict[int, Path]:
    """Step -> checkpoint folder, in `folder/checkpoints` and in `folder` itself.

    Only complete checkpoints carry a step name: they are written under a hidden temporary
    name and renamed when done, so a folder being written (or left by a crash) is never
    listed."""
    steps: dict[int, Path] = {}
    for parent in (checkpoints_dir(folder), folder):
        if not parent.is_dir():
            continue
        for child in parent.iterdir():
            number = step_of(child)
            if number is not None and child.is_dir():
                steps.setdefault(number, child)
    return dict(sorted(steps.items()))


def holds_run(run: Path) -> bool:
    """Whether a run already lives here (metrics written or checkpoints saved)."""
    return metrics_file(run).exists() or bool(list_steps(run))


def is_run_folder(folder: Path) -> bool:
    """A run or trainer output folder: step folders and no model weights of its own."""
    return bool(list_steps(folder)) and not any(folder.glob("model*.safetensors"))


class MissingStep(UserError):
    """A step was asked for that the folder has no checkpoint of."""

    def __init__(self, folder: Path, step: int, available: list[int]) -> None:
        self.folder, self.step, self.available = folder, step, available
        known = ", ".join(map(str, available))
        super().__init__(f"{folder}: no checkpoint for step {step}; available steps: {known}")


def pick_step(folder: Path, step: int | str | None = None) -> tuple[int, Path]:
    """(step, checkpoint folder) for `step`: a number, or None / "latest" for the newest."""
    steps = list_steps(folder)
    if not steps:
        raise UserError(
            f"{folder}: no checkpoints found (expected checkpoints/step_N or checkpoint-N)"
        )
    if step is None or str(step) == "latest":
        newest = max(steps)
        return newest, steps[newest]
    if not str(step).isdigit():
        raise UserError(f"--step must be a step number or 'latest', not {step!r}")
    if int(step) not in steps:
        raise MissingStep(folder, int(step), list(steps))
    return int(step), steps[int(step)]


def prune_steps(run: Path, keep_last: int) -> None:
    """Delete this project's checkpoints of `run` but the newest `keep_last`."""
    ours = {n: p for n, p in list_steps(run).items() if p.parent == checkpoints_dir(run)}
    for number in sorted(ours)[:-keep_last]:
        shutil.rmtree(ours[number], ignore_errors=True)


# ---------------------------------------------------------------- what a run records


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file holding a mapping ({} when the file is absent)."""
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"not valid YAML: {exc}", where=str(path)) from exc
    if not isinstance(data, dict):
        raise UserError("expected a mapping of config sections", where=str(path))
    return data


def read_run_config(run: Path) -> dict[str, Any]:
    """The resolved `config.yaml` of a run as plain data ({} when the run has none)."""
    return read_yaml_mapping(config_file(run))


def run_of(checkpoint: Path) -> Path:
    """The run folder holding a checkpoint (`RUN/checkpoints/step_N` or `OUT/checkpoint-N`)."""
    parent = checkpoint.parent
    return parent.parent if parent.name == CHECKPOINTS else parent


def run_base_model(checkpoint: Path) -> str | None:
    """`model.path` in the config.yaml of the run a checkpoint belongs to, if any."""
    model = read_run_config(run_of(checkpoint)).get("model")
    return str(model["path"]) if isinstance(model, dict) and model.get("path") else None


def adapter_base_model(adapters: Path) -> str | None:
    """The base model an adapter folder's adapter_config.json names, if any (we write
    `base_model`; mlx-lm writes `model`; PEFT writes `base_model_name_or_path`)."""
    try:
        config = json.loads((adapters / ADAPTER_CONFIG).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(config, dict):
        return None
    value = next((config[k] for k in BASE_MODEL_KEYS if config.get(k)), None)
    return str(value) if value else None


def recorded_base_model(checkpoint: Path) -> str | None:
    """The base model of an adapter checkpoint: its run's config.yaml, else the adapters'."""
    return run_base_model(checkpoint) or adapter_base_model(checkpoint)


def is_full_checkpoint(folder: Path) -> bool:
    """Whether a checkpoint holds full model weights (rather than adapters)."""
    return (folder / "config.json").exists() and any(folder.glob("model*.safetensors"))


def is_adapter_folder(folder: Path) -> bool:
    return (folder / ADAPTER_WEIGHTS).is_file() and (folder / ADAPTER_CONFIG).is_file()


# ---------------------------------------------------------------- writing


@contextmanager
def atomic_folder(final: Path) -> Iterator[Path]:
    """Yield a hidden temp folder beside `final`; when the block succeeds it becomes `final`
    (an existing `final` is moved aside first and deleted after), when it fails it is removed.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.partial-"))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{staging.name.rsplit('-', 1)[-1]}")
        final.rename(old)
    staging.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """Yield a hidden temp file beside `final`; it replaces `final` in one rename when the
    block succeeds (readers see the old or the new file, never half of one)."""
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.partial-")
    os.close(fd)
    staging = Path(name)
    try:
        yield staging
        os.replace(staging, final)
    finally:
        staging.unlink(missing_ok=True)


def append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append one JSON line per row."""
    with open(path, "a") as f:
        f.write("".join(json.dumps(row) + "\n" for row in rows))


def set_aside_after(run: Path, step: int) -> None:
    """Resume at `step`: in metrics.jsonl and samples.jsonl keep the lines of steps up to it
    and move the rest (later steps, and a line torn by a kill) to `<name>.after-step-N.jsonl`.

    A resumed run recomputes those steps, so nothing is counted twice; nothing is deleted."""
    for path in (metrics_file(run), samples_file(run)):
        if path.is_file():
            _split_jsonl_at(path, step)


def _split_jsonl_at(path: Path, step: int) -> None:
    kept, later = [], []
    for line in path.read_bytes().splitlines(keepends=True):
        if line.strip():
            (kept if _line_step(line) <= step else later).append(line)
    if later:
        aside = path.with_name(f"{path.stem}.after-step-{step}.jsonl")
        with open(aside, "ab") as f:  # a second resume at the same step adds, never replaces
            f.write(b"".join(ln if ln.endswith(b"\n") else ln + b"\n" for ln in later))
        with atomic_file(path) as staging:
            staging.write_bytes(b"".join(kept))


def _line_step(line: bytes) -> float:
    """The step of one JSON line; a torn or foreign line counts as after every step."""
    try:
        row = json.loads(line)
        return int(row["step"]) if isinstance(row, dict) else math.inf
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return math.inf
