"""What `chat` loads: base models, adapters from a run at a step, full checkpoints, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten, tree_unflatten

from mlx_grpo.errors import UserError
from mlx_grpo.infer.chat import (
    ChatSession,
    ChatSettings,
)
from mlx_grpo.models.loading import (
    context_limit,
    load_model_source,
    pick_template,
)
from mlx_grpo.models.resolve import resolve_source
from mlx_grpo.models.tiny import build_tiny_model

LORA = {"rank": 4, "scale": 20.0, "dropout": 0.0}


def write_adapters(model_path: Path, folder: Path, seed: int, num_layers: int = 2) -> Path:
    """mlx-lm format LoRA adapters for `model_path` with random, non-zero lora_b."""
    from mlx_lm import load
    from mlx_lm.tuner.utils import linear_to_lora_layers

    model, _ = load(str(model_path))
    model.freeze()
    linear_to_lora_layers(model, num_layers, dict(LORA))
    mx.random.seed(seed)
    params = tree_flatten(model.trainable_parameters())
    assert params and all(k.endswith(("lora_a", "lora_b")) for k, _ in params)
    noisy = [(k, mx.random.normal(v.shape) if k.endswith("lora_b") else v) for k, v in params]
    model.update(tree_unflatten(noisy))
    folder.mkdir(parents=True)
    weights = dict(tree_flatten(model.trainable_parameters()))
    mx.save_safetensors(str(folder / "adapters.safetensors"), weights)
    config = {"fine_tune_type": "lora", "num_layers": num_layers, "lora_parameters": LORA}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fabricated training run: config.yaml and LoRA checkpoints at steps 10 and 20."""
    root = tmp_path_factory.mktemp("run")
    model = build_tiny_model(root / "base", seed=0)
    run = root / "run"
    for step in (10, 20):
        write_adapters(model, run / "checkpoints" / f"step_{step}", seed=step)
    (run / "checkpoints" / ".step_30.tmp").mkdir()  # a checkpoint being written: ignored
    config = f"model:\n  path: {model}\ndata:\n  template: chat\n  system_prompt: Think.\n"
    (run / "config.yaml").write_text(config)
    return run


def sampled_tokens(loaded: Any, text: str = "What is 2+2?") -> list[int]:
    traces: list[dict] = []
    settings = ChatSettings(temp=1.0, top_p=1.0, max_tokens=16)
    template = pick_template(loaded.tokenizer, None)
    session = ChatSession(
        loaded.model, loaded.tokenizer, settings=settings, template=template, trace=traces.append
    )
    mx.random.seed(0)
    "".join(session.reply(text))
    return traces[0]["generated"]


def last_logits(loaded: Any) -> mx.array:
    ids = loaded.tokenizer.encode("hello there")
    return loaded.model(mx.array(ids)[None])[0, -1]


def test_run_step_adapters_change_the_outputs(run_dir: Path) -> None:
    base = load_model_source(resolve_source(str(run_dir.parent / "base")))
    step10 = load_model_source(resolve_source(None, run=str(run_dir), step="10"))
    assert step10.source.adapter == run_dir / "checkpoints" / "step_10"
    assert step10.source.system_prompt == "Think." and step10.source.template == "chat"
    assert not mx.allclose(last_logits(base), last_logits(step10), atol=1e-3).item()
    assert sampled_tokens(base) != sampled_tokens(step10)


def test_latest_step_is_the_highest_and_steps_differ(run_dir: Path) -> None:
    latest = load_model_source(resolve_source(None, run=str(run_dir)))
    assert latest.source.adapter == run_dir / "checkpoints" / "step_20"
    step10 = load_model_source(resolve_source(None, run=str(run_dir), step=10))
    assert not mx.allclose(last_logits(latest), last_logits(step10), atol=1e-3).item()


def test_adapter_flag_loads_the_same_weights_as_the_run(run_dir: Path) -> None:
    adapter = run_dir / "checkpoints" / "step_20"
    direct = load_model_source(resolve_source(str(run_dir.parent / "base"), str(adapter)))
    via_run = load_model_source(resolve_source(None, run=str(run_dir), step="latest"))
    assert mx.allclose(last_logits(direct), last_logits(via_run)).item()


def test_full_weight_checkpoint_is_loaded_as_the_model(tmp_path: Path) -> None:
    run = tmp_path / "run"
    build_tiny_model(run / "checkpoints" / "step_5", seed=3)
    (run / "config.yaml").write_text("model:\n  path: does/not-matter\n")
    source = resolve_source(None, run=str(run))
    assert source.model == str(run / "checkpoints" / "step_5") and source.adapter is None
    loaded = load_model_source(source)
    assert context_limit(loaded.config) == 4096


def test_adapter_for_another_model_names_the_layer(tmp_path: Path, run_dir: Path) -> None:
    wider = build_tiny_model(tmp_path / "wider", hidden_size=128, intermediate_size=256)
    source = resolve_source(str(wider), str(run_dir / "checkpoints" / "step_10"))
    with pytest.raises(UserError) as info:
        load_model_source(source)
    message = str(info.value)
    assert "does not match model" in message and "step_10" in message
    assert "layer model.layers.0.mlp.down_proj: adapter shape (128, 4) does not" in message


def test_adapter_with_more_layers_than_the_model(tmp_path: Path) -> None:
    deep = build_tiny_model(tmp_path / "deep", num_hidden_layers=4)
    adapter = write_adapters(deep, tmp_path / "adapter", seed=1, num_layers=4)
    shallow = build_tiny_model(tmp_path / "shallow")
    with pytest.raises(UserError, match=r"layer model\.layers\.[23]\..*not an adapter parameter"):
        load_model_source(resolve_source(str(shallow), str(adapter)))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"model": "/no/such/model"}, "model directory not found: /no/such/model"),
        ({"model": None}, "--model is required"),
        ({"model": "builtin:huge"}, "unknown built-in model"),
        ({"model": "m", "adapter": "a", "run": "r"}, "either --adapter or --run"),
        ({"model": None, "run": "/no/such/run"}, "run directory /no/such/run does not exist"),
    ],
)
def test_bad_sources_are_user_errors(kwargs: dict, expected: str) -> None:
    with pytest.raises(UserError, match=expected.replace("-", r"\-").replace(".", r"\.")):
        resolve_source(**kwargs)


def test_bad_folders_and_steps(tmp_path: Path, run_dir: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json in model directory"):
        resolve_source(str(tmp_path / "empty"))
    with pytest.raises(UserError, match="not an adapter folder"):
        resolve_source(str(run_dir.parent / "base"), str(tmp_path / "empty"))
    with pytest.raises(UserError, match="available: 10, 20"):
        resolve_source(None, run=str(run_dir), step="15")
    with pytest.raises(UserError, match="step number or 'latest'"):
        resolve_source(None, run=str(run_dir), step="last")
    with pytest.raises(UserError, match="no checkpoints"):
        resolve_source(None, run=str(tmp_path / "empty"))


def test_chat_template_choice(tmp_path: Path) -> None:
    base = load_model_source(
        resolve_source(str(build_tiny_model(tmp_path / "b", chat_template=False)))
    )
    assert pick_template(base.tokenizer, None) == "r1"
    assert pick_template(base.tokenizer, "plain") == "plain"
    with pytest.raises(UserError, match="no chat template"):
        pick_template(base.tokenizer, "chat")
    with pytest.raises(UserError, match="unknown template"):
        pick_template(base.tokenizer, "alpaca")
