"""What is trained: LoRA, DoRA, full, partial (last N layers), QLoRA; the reference policy."""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlx_grpo.config import LoraConfig, ModelConfig
from mlx_grpo.errors import UserError
from mlx_grpo.models.policy import adapter_config, adapters_disabled, frozen_copy, load_policy


def _trainable(model) -> list[str]:
    return [k for k, _ in tree_flatten(model.trainable_parameters())]


def _logits(model, ids=(1, 2, 3, 4)):
    return np.array(model(mx.array([list(ids)])))


def test_lora_trains_only_adapters_of_chosen_layers_and_keys(tiny_model_dir):
    lora = LoraConfig("lora", rank=4, num_layers=1, keys=["self_attn.q_proj", "self_attn.v_proj"])
    policy = load_policy(ModelConfig(path=str(tiny_model_dir)), lora)
    names = _trainable(policy.model)
    assert names and all(n.startswith("model.layers.1.self_attn.") for n in names)
    assert {n.rsplit(".", 1)[1] for n in names} == {"lora_a", "lora_b"}
    assert {n.split(".")[4] for n in names} == {"q_proj", "v_proj"}


def test_dora_adds_magnitudes(tiny_model_dir):
    policy = load_policy(ModelConfig(path=str(tiny_model_dir)), LoraConfig("dora", rank=2))
    assert any(n.endswith(".m") for n in _trainable(policy.model))


def test_partial_trains_whole_last_layers_only(tiny_model_dir):
    policy = load_policy(ModelConfig(path=str(tiny_model_dir)), LoraConfig("partial", num_layers=1))
    names = _trainable(policy.model)
    assert names and all(n.startswith("model.layers.1.") for n in names)
    assert any(n.endswith("mlp.down_proj.weight") for n in names)


def test_full_trains_everything(tiny_model_dir):
    policy = load_policy(ModelConfig(path=str(tiny_model_dir)), LoraConfig("full"))
    all_params = [k for k, _ in tree_flatten(policy.model.parameters())]
    assert sorted(_trainable(policy.model)) == sorted(all_params)


def test_qlora_quantizes_the_frozen_base(tiny_model_dir):
    model_cfg = ModelConfig(path=str(tiny_model_dir), quantize_bits=4, quantize_group_size=32)
    policy = load_policy(model_cfg, LoraConfig("lora", rank=4))
    params = dict(tree_flatten(policy.model.parameters()))
    assert any(k.endswith("q_proj.linear.scales") for k in params)
    assert params["model.layers.0.self_attn.q_proj.linear.weight"].dtype == mx.uint32
    assert all(k.endswith(("lora_a", "lora_b")) for k in _trainable(policy.model))


@pytest.mark.parametrize("kind", ["lora", "dora"])
def test_reference_is_the_base_model_with_adapters_off(tiny_model_dir, kind):
    base = load_policy(ModelConfig(path=str(tiny_model_dir)), LoraConfig("full")).model
    policy = load_policy(ModelConfig(path=str(tiny_model_dir)), LoraConfig(kind, rank=4))
    # move the adapters away from their zero-effect initialization
    for name, p in tree_flatten(policy.model.trainable_parameters()):
        if name.endswith(("lora_b", ".m")):
            policy.model.update(_set(name, p + 0.5))
    assert not np.allclose(_logits(policy.model), _logits(base), atol=1e-4)
    with adapters_disabled(policy.model):
        np.testing.assert_allclose(_logits(policy.model), _logits(base), atol=1e-5)
    assert not np.allclose(_logits(policy.model), _logits(base), atol=1e-4)  # restored


def _set(name: str, value):
    from mlx.utils import tree_unflatten

    return tree_unflatten([(name, value)])


def test_frozen_copy_does_not_follow_updates(tiny_model_dir):
    policy = load_policy(ModelConfig(path=str(tiny_model_dir)), LoraConfig("full"))
    ref = frozen_copy(policy.model)
    before = _logits(ref)
    w = policy.model.model.norm.weight
    policy.model.update(_set("model.norm.weight", w * 2.0))
    np.testing.assert_array_equal(_logits(ref), before)
    assert not _trainable(ref)


def test_saved_adapters_load_with_mlx_lm(tiny_model_dir, tmp_path):
    from mlx_lm import load

    policy = load_policy(ModelConfig(path=str(tiny_model_dir)), LoraConfig("lora", rank=4))
    for name, p in tree_flatten(policy.model.trainable_parameters()):
        policy.model.update(_set(name, p + 0.1))
    adapters = dict(tree_flatten(policy.model.trainable_parameters()))
    mx.save_safetensors(str(tmp_path / "adapters.safetensors"), adapters)
    (tmp_path / "adapter_config.json").write_text(json.dumps(adapter_config(policy)))
    loaded, _ = load(str(tiny_model_dir), adapter_path=str(tmp_path))
    np.testing.assert_allclose(_logits(loaded), _logits(policy.model), atol=1e-5)


def test_missing_model_directory_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="model directory not found"):
        load_policy(ModelConfig(path=str(tmp_path / "nope")), LoraConfig())
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        load_policy(ModelConfig(path=str(tmp_path / "empty")), LoraConfig())


def test_unmatched_lora_keys_are_a_user_error(tiny_model_dir):
    with pytest.raises(UserError, match="lora.keys"):
        load_policy(ModelConfig(path=str(tiny_model_dir)), LoraConfig(keys=["attn.nonexistent"]))


def test_trust_remote_code_is_a_real_switch(tiny_model_dir, monkeypatch, capsys):
    """Off by default, the refusal names the config key; on, it reaches the loader, warned."""
    import mlx_lm

    seen = []

    def refusing_load(spec, return_config, tokenizer_config):
        seen.append(tokenizer_config["trust_remote_code"])
        raise ValueError("this repo has custom code; pass trust_remote_code=True")

    monkeypatch.setattr(mlx_lm, "load", refusing_load)
    with pytest.raises(UserError, match="model.trust_remote_code: true"):
        load_policy(ModelConfig(path=str(tiny_model_dir)), LoraConfig())
    with pytest.raises(UserError):
        load_policy(ModelConfig(path=str(tiny_model_dir), trust_remote_code=True), LoraConfig())
    assert seen == [False, True]
    assert "trust_remote_code is on" in capsys.readouterr().err
