"""`model.init_from`: a run starts from an earlier run's weights (R1's SFT warm start)."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import pytest
import yaml
from test_train_e2e import make_config

from mlx_grpo.config import load_config
from mlx_grpo.errors import UserError
from mlx_grpo.models.fastmath import use_fast_swiglu
from mlx_grpo.models.init_from import adapters_at
from mlx_grpo.models.loading import load_model_source
from mlx_grpo.models.resolve import ModelSource
from mlx_grpo.train.trainer import Trainer

LORA = {"fine_tune_type": "lora", "rank": 4}
IDS = mx.array([[1, 5, 9, 13, 17, 21]])


def _start_run(tmp_path: Path, model: Path, run_cli, lora: dict, steps: int = 6) -> Path:
    """A short run with a high learning rate: weights clearly away from the base."""
    folder = tmp_path / "start"
    folder.mkdir()
    config = make_config(
        folder, str(model), steps=steps, lora=lora, optimizer={"learning_rate": 3e-2}
    )
    assert run_cli("train", "-c", config) == 0
    return folder / "runs" / "r"


def _trainer(tmp_path: Path, model: Path, init_from: Path, lora: dict, **extra) -> Trainer:
    config = make_config(tmp_path, str(model), steps=2, lora=lora, **extra)
    cfg = yaml.safe_load(config.read_text())
    cfg["model"]["init_from"] = str(init_from)
    parity = tmp_path / "parity.py"  # a reward that splits every group: updates happen
    parity.write_text(
        "def odd(p, completions, a, **e):\n    return [i % 2 for i in range(len(completions))]\n"
    )
    cfg["rewards"] = [{"name": f"{parity}:odd"}]
    config.write_text(yaml.safe_dump(cfg))
    return Trainer(load_config(config, []), tmp_path / "runs" / "next")


def _logits(model) -> mx.array:
    model.eval()
    return model(IDS)


@pytest.fixture(scope="module")
def lora_start(tmp_path_factory, tiny_model_dir) -> Path:
    from mlx_grpo.cli.main import main

    def run_cli(*args):
        return main([str(a) for a in args])

    return _start_run(tmp_path_factory.mktemp("lora"), tiny_model_dir, run_cli, LORA)


def test_adapters_start_exactly_where_the_run_ended(tmp_path, tiny_model_dir, lora_start):
    trainer = _trainer(tmp_path, tiny_model_dir, lora_start, LORA)
    step = lora_start / "checkpoints" / "step_6"
    loaded = load_model_source(ModelSource(model=str(tiny_model_dir), adapter=step))
    assert mx.array_equal(_logits(trainer.policy.model), _logits(loaded.model))
    base = load_model_source(ModelSource(model=str(tiny_model_dir)))
    assert not mx.allclose(_logits(trainer.policy.model), _logits(base.model), atol=1e-3)


def test_the_kl_reference_is_the_starting_model_not_the_base(tmp_path, tiny_model_dir, lora_start):
    trainer = _trainer(tmp_path, tiny_model_dir, lora_start, LORA, objective={"beta": 0.1})
    start = _logits(trainer.policy.model)
    step = trainer.train_step()
    assert step.metrics["kl"] is not None and step.metrics["kl"] < 1e-5  # policy == reference
    changed = _logits(trainer.policy.model)
    assert not mx.allclose(changed, start, atol=1e-4)  # the update moved the adapters
    with adapters_at(trainer.policy.model, trainer.start_adapters):
        assert mx.allclose(_logits(trainer.policy.model), start, atol=1e-6)
    assert mx.array_equal(_logits(trainer.policy.model), changed)  # restored afterwards
    # Against the bare base (what the reference would be without init_from), kl is large.
    trainer.start_adapters = None
    assert trainer.train_step().metrics["kl"] > 1e-3


def test_full_weights_start_from_the_checkpoint(tmp_path, tiny_model_dir, run_cli):
    full = {"fine_tune_type": "full"}
    start = _start_run(tmp_path, tiny_model_dir, run_cli, full, steps=2)
    trainer = _trainer(tmp_path, tiny_model_dir, start / "checkpoints" / "step_2", full)
    from mlx_lm import load

    model, _ = load(str(start / "checkpoints" / "step_2"))
    use_fast_swiglu(model)  # the same forward as the trainer's model: the weights are compared
    assert mx.array_equal(_logits(trainer.policy.model), _logits(model))
    assert trainer.ref_model is None or mx.array_equal(_logits(trainer.ref_model), _logits(model))


@pytest.mark.parametrize(
    ("lora", "where", "message"),
    [
        ({"fine_tune_type": "lora", "rank": 8}, "lora", r"rank 4, this run 8; set lora.rank: 4"),
        ({"fine_tune_type": "full"}, "lora", r"holds adapters; continue them with lora"),
        (LORA, "missing", r"model\.init_from: not found"),
        (LORA, "other-base", r"were trained on .*; set model\.path"),
    ],
)
def test_a_start_that_does_not_fit_is_one_clear_line(
    tmp_path, tiny_model_dir, lora_start, lora, where, message
):
    init, model = lora_start, tiny_model_dir
    if where == "missing":
        init = tmp_path / "nope"
    if where == "other-base":
        model = tmp_path / "copy"
        import shutil

        shutil.copytree(tiny_model_dir, model)
    with pytest.raises(UserError, match=message):
        _trainer(tmp_path, model, init, lora)


def test_sft_starts_from_a_run_too(tmp_path, run_cli, monkeypatch) -> None:
    """`mlx-grpo sft` honours model.init_from as train does (e.g. SFT after an earlier SFT)."""
    import shutil

    from mlx_lm import load

    from mlx_grpo.sft.config import load_sft_config
    from mlx_grpo.sft.trainer import SftTrainer

    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    config = "configs/sft-debug.yaml"
    assert run_cli("sft", "-c", config, "--set", "steps=4", "--set", "logging.run_name=a") == 0
    cfg = load_sft_config(config, ["model.init_from=runs/a", "logging.run_name=b"])
    trainer = SftTrainer(cfg, tmp_path / "runs" / "b")
    model, _ = load("runs/a/checkpoints/step_4")
    use_fast_swiglu(model)  # the same forward as the trainer's model: the weights are compared
    assert mx.array_equal(_logits(trainer.policy.model), _logits(model))
