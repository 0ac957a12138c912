"""`mlx-grpo sft`: the completion-only loss, learning, the run folder, resume, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import yaml
from conftest import read_metrics, write_jsonl

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
DEBUG_CONFIG = REPO / "configs" / "sft-debug.yaml"
TIMING_KEYS = {"step_s", "tokens_per_s", "peak_memory_gb"}
ROWS = [
    {"prompt": "What is 1 + 2?", "completion": "<answer>3</answer>"},
    {"prompt": "Add 10 and 20, then tell me the sum please", "completion": "The sum is 30."},
]


def _independent_nll(model, examples) -> tuple[float, int]:
    """Sum of -log p(token | everything before it) over completion tokens, in float64 NumPy."""
    total, count = 0.0, 0
    for ids, offset in examples:
        logits = np.array(model(mx.array([ids]))[0].astype(mx.float32), dtype=np.float64)
        top = logits.max(-1, keepdims=True)
        logp = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
        total -= sum(logp[t - 1, ids[t]] for t in range(offset, len(ids)))
        count += len(ids) - offset
    return total / count, count


def test_the_loss_is_the_nll_of_the_completion_given_grpos_prompt(tiny_model_dir):
    from mlx_lm import load

    from mlx_grpo.data.examples import build_examples
    from mlx_grpo.sft.batches import epoch_batches
    from mlx_grpo.sft.config import SftDataConfig
    from mlx_grpo.sft.data import encode_row
    from mlx_grpo.sft.loss import completion_nll

    model, tok = load(str(tiny_model_dir))
    cfg = SftDataConfig(template="chat", system_prompt="Be brief.")
    examples = [encode_row(tok, row, cfg) for row in ROWS]
    grpo_rows = [{"prompt": r["prompt"], "answer": "0"} for r in ROWS]
    grpo = build_examples(grpo_rows, tok, cfg.prompt_format(), 512)[0]
    for ex, prompt, row in zip(examples, grpo, ROWS):
        assert ex.ids[: ex.offset] == prompt.ids  # exactly the prompt ids GRPO samples after
        assert ex.ids[-1] == tok.eos_token_id
        assert tok.decode(ex.ids[ex.offset : -1]) == row["completion"]
    tokens, lengths = next(epoch_batches(examples, 2, 128, seed=0))
    expected, expected_count = _independent_nll(model, examples)
    for chunk in (64, 5):  # one chunk, and several
        loss, count = completion_nll(model, tokens, lengths, chunk)
        assert int(count.item()) == expected_count
        assert float(loss.item()) == pytest.approx(expected, rel=1e-4)
    everything, _ = _independent_nll(model, [(ex.ids, 1) for ex in examples])
    assert abs(everything - expected) > 1e-3  # the prompt tokens really are left out


def test_accumulated_micro_batches_equal_one_batch(tmp_path, tiny_model_dir):
    """Rows of different lengths in two micro-batches: token-weighted, the same update."""
    from mlx.utils import tree_flatten

    from mlx_grpo.sft.batches import epoch_batches
    from mlx_grpo.sft.config import sft_from_dict
    from mlx_grpo.sft.trainer import SftTrainer

    data = write_jsonl(tmp_path / "rows.jsonl", ROWS)
    cfg = sft_from_dict({"model": {"path": str(tiny_model_dir)}, "data": {"train": str(data)}})
    cfg.batch_size = 2
    trainer = SftTrainer(cfg, tmp_path / "run")
    one = list(epoch_batches(trainer.examples, 2, 128, seed=0))
    split = [next(epoch_batches([ex], 1, 128, seed=0)) for ex in trainer.examples]
    grads_one, loss_one, tokens_one = trainer.accumulate(one)
    grads_split, loss_split, tokens_split = trainer.accumulate(split)
    assert tokens_one == tokens_split and loss_one == pytest.approx(loss_split, rel=1e-5)
    for (name, a), (_, b) in zip(tree_flatten(grads_one), tree_flatten(grads_split)):
        assert np.allclose(np.array(a), np.array(b), rtol=1e-3, atol=1e-6), name


def test_chat_rows_train_like_prompt_rows(tiny_model_dir):
    from mlx_lm import load

    from mlx_grpo.sft.config import SftDataConfig
    from mlx_grpo.sft.data import encode_row, sft_row

    _, tok = load(str(tiny_model_dir))
    chat = {"messages": [{"role": "user", "content": "What is 1 + 2?"}]}
    chat["messages"].append({"role": "assistant", "content": "3"})
    for template in ("chat", "r1", "plain"):
        cfg = SftDataConfig(template=template)
        row = sft_row("x:1", chat, cfg)
        assert encode_row(tok, row, cfg) == encode_row(
            tok, {"prompt": "What is 1 + 2?", "completion": "3"}, cfg
        )


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory) -> Path:
    """The shipped debug config, run once through the CLI."""
    from mlx_grpo.cli.main import main

    out = tmp_path_factory.mktemp("sft")
    args = ["sft", "-c", str(DEBUG_CONFIG), "--set", f"logging.output_dir={out}"]
    assert main([*args, "--set", "logging.run_name=r"]) == 0
    return out / "r"


def test_sft_lowers_the_loss_through_the_cli(sft_run):
    metrics = read_metrics(sft_run)
    assert [m["step"] for m in metrics] == list(range(1, 31))
    first, last = metrics[0]["loss"], sum(m["loss"] for m in metrics[-5:]) / 5
    assert last < first / 3, (first, last)
    val = [m["val_loss"] for m in metrics if "val_loss" in m]
    assert len(val) == 6 and val[-1] < val[0] / 2, val  # eval_every 5 on 8 held-out rows
    for key in ("lr", "grad_norm", "tokens_per_s", "completion_tokens", "padding_frac"):
        assert key in metrics[-1], key


def test_the_sft_run_is_a_normal_run(sft_run, tmp_path, run_cli):
    """Checkpoints are GRPO's: full weights an ordinary model folder, `--run` for eval, convert."""
    from mlx_lm import load

    from mlx_grpo import rundir
    from mlx_grpo.models.loading import load_model_source
    from mlx_grpo.models.resolve import resolve_source

    step, checkpoint = rundir.pick_step(sft_run)
    assert (step, checkpoint.name) == (30, "step_30") and rundir.is_full_checkpoint(checkpoint)
    assert sorted(p.name for p in rundir.list_steps(sft_run).values()) == ["step_20", "step_30"]
    assert json.loads((checkpoint / rundir.TRAINER_STATE).read_text())["step"] == 30
    assert yaml.safe_load((sft_run / "config.yaml").read_text())["sft"]["max_length"] == 128
    loaded = load_model_source(resolve_source(None, None, str(sft_run), "latest"))
    trained, _ = load(str(checkpoint))
    ids = mx.array([[1, 5, 9, 14]])
    assert np.allclose(np.array(loaded.model(ids)), np.array(trained(ids)), atol=1e-5)
    base = load_model_source(resolve_source(None, None, str(sft_run), "base")).model
    assert not np.allclose(np.array(base(ids)), np.array(trained(ids)), atol=1e-3)
    problems = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "What is 2 + 2?", "answer": "4"}])
    out = tmp_path / "eval.json"
    args = ["--data", problems, "--max-tokens", "4", "--out", out]
    assert run_cli("eval", "--run", sft_run, *args) == 0
    assert json.loads(out.read_text())["problems"] == 1
    assert run_cli("convert", sft_run, tmp_path / "converted") == 0
    converted, _ = load(str(tmp_path / "converted"))
    assert np.allclose(np.array(converted(ids)), np.array(trained(ids)), atol=1e-4)


def _config(tmp_path: Path, **keys) -> list[str]:
    out = ["-c", str(DEBUG_CONFIG), "--set", f"logging.output_dir={tmp_path / 'runs'}"]
    sets = {"logging.run_name": "r", **keys}
    return out + [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]


def _strip(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in TIMING_KEYS} for m in metrics]


def test_resume_reproduces_the_uninterrupted_run(tmp_path, run_cli):
    args = _config(
        tmp_path,
        steps=6,
        **{"checkpoint.every": 3, "lora.fine_tune_type": "lora", "lora.dropout": 0.1},
        **{"optimizer.gradient_accumulation_steps": 2},
    )
    assert run_cli("sft", *args) == 0
    run = tmp_path / "runs" / "r"
    full = read_metrics(run)
    shutil.rmtree(run / "checkpoints" / "step_6")  # as if killed after step 5
    assert run_cli("sft", "--resume", run) == 0
    resumed = read_metrics(run)
    assert [m["step"] for m in resumed] == list(range(1, 7))
    assert _strip(resumed) == _strip(full)
    aside = (run / "metrics.after-step-3.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in aside] == [4, 5, 6]  # set aside, not deleted
    # LoRA adapters in mlx-lm's format, and `--run` loads exactly them
    from mlx_lm import load

    from mlx_grpo import rundir
    from mlx_grpo.models.loading import load_model_source
    from mlx_grpo.models.resolve import resolve_model_path, resolve_source

    checkpoint = run / "checkpoints" / "step_6"
    base = resolve_model_path(rundir.recorded_base_model(checkpoint))  # builtin:tiny-qwen2
    adapted, _ = load(base, adapter_path=str(checkpoint))
    loaded = load_model_source(resolve_source(None, None, str(run), "latest")).model
    ids = mx.array([[1, 5, 9, 14]])
    assert np.allclose(np.array(loaded(ids)), np.array(adapted(ids)), atol=1e-5)


def test_ctrl_c_checkpoints_and_says_how_to_resume(tmp_path):
    run = tmp_path / "runs" / "r"
    command = [sys.executable, "-m", "mlx_grpo.cli.main", "sft", *_config(tmp_path, steps=5000)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (run / "metrics.jsonl").exists() and len(read_metrics(run)) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    done = read_metrics(run)[-1]["step"]
    assert done < 5000 and (run / "checkpoints" / f"step_{done}" / "trainer_state.json").is_file()
    assert f"mlx-grpo sft --resume {run}" in " ".join(out.split())


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_a_row_without_completion_is_one_line(tmp_path, run_cli, capsys):
    data = write_jsonl(tmp_path / "rows.jsonl", [ROWS[0], {"prompt": "What is 3 + 3?"}])
    assert run_cli("sft", *_config(tmp_path, **{"data.train": data})) == 2
    err = _one_error_line(capsys)
    assert f"{data}:2" in err and "missing field 'completion'" in err
    assert not (tmp_path / "runs").exists()  # nothing was written


def test_a_chat_row_that_does_not_end_with_an_answer_is_one_line(tmp_path, run_cli, capsys):
    rows = [ROWS[0], {"messages": [{"role": "user", "content": "hi"}]}]
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    assert run_cli("sft", *_config(tmp_path, **{"data.train": data})) == 2
    err = _one_error_line(capsys)
    assert f"{data}:2" in err and "must end with an assistant message" in err


def test_an_unknown_key_is_one_line_with_a_suggestion(tmp_path, run_cli, capsys):
    assert run_cli("sft", *_config(tmp_path, **{"sft.max_lenght": 64})) == 2
    assert "did you mean 'max_length'" in _one_error_line(capsys)
    config = tmp_path / "typo.yaml"
    config.write_text("data:\n  train: x.jsonl\n  completion_feild: answer\n")
    assert run_cli("sft", "-c", config) == 2
    err = _one_error_line(capsys)
    assert f"{config}:3" in err and "did you mean 'completion_field'" in err
    assert not (tmp_path / "runs").exists()


def test_bad_combinations_are_refused_before_loading(tmp_path, run_cli, capsys):
    assert run_cli("sft", *_config(tmp_path, **{"data.train": "builtin:arithmetic"})) == 2
    assert "built-in tasks have no completions" in _one_error_line(capsys)
    assert run_cli("sft", *_config(tmp_path, **{"data.eval_size": 0})) == 2
    assert "logging.eval_every: needs held-out rows" in _one_error_line(capsys)
    assert run_cli("sft", *_config(tmp_path, batch_size=6, **{"data.eval_size": 44})) == 2
    assert "4 training rows cannot fill a micro-batch of 6" in _one_error_line(capsys)


def test_train_and_sft_refuse_to_resume_each_others_runs(sft_run, tmp_path, run_cli, capsys):
    assert run_cli("train", "--resume", sft_run) == 2
    assert f"mlx-grpo sft --resume {sft_run}" in _one_error_line(capsys)
    grpo = tmp_path / "grpo"
    grpo.mkdir()
    (grpo / "config.yaml").write_text(yaml.safe_dump({"rollout": {"group_size": 4}}))
    assert run_cli("sft", "--resume", grpo) == 2
    assert "not an SFT run" in _one_error_line(capsys)


def test_batches_bucket_by_length_cover_every_row_and_resume():
    """mlx-lm's length bucketing; each epoch trains every row (the longest too); a restored
    cursor continues with exactly the batches an uninterrupted stream gives."""
    from mlx_grpo.sft.batches import BatchStream
    from mlx_grpo.sft.data import SftExample

    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 200, size=23)
    examples = [SftExample([i + 1] * int(n), 1) for i, n in enumerate(lengths)]
    stream = BatchStream(examples, 4, 256, seed=3)
    epoch = [stream.next_batch() for _ in range(stream.batches_per_epoch)]
    seen = {int(tokens[r, 0].item()) - 1 for tokens, _ in epoch for r in range(4)}
    assert seen == set(range(23)) and stream.epoch == 0  # 6 batches: 23 rows + 1 repeat
    padding = sum(t.size - int(n[:, 1].sum().item()) for t, n in epoch) / sum(
        t.size for t, _ in epoch
    )
    shuffled = np.append(lengths, lengths[0])[rng.permutation(24)].reshape(6, 4)
    widths = 1 + 32 * -(-shuffled.max(1) // 32)  # random batches, padded the same way
    unsorted = 1 - shuffled.sum() / (4 * widths.sum())
    assert padding < 0.7 * unsorted, (padding, unsorted)  # similar lengths share a batch
    later = [stream.next_batch() for _ in range(3)]  # into the next epoch
    restored = BatchStream(examples, 4, 256, seed=3)
    restored.restore({"epoch": 1, "index": 0})
    for (a, la), (b, lb) in zip(later, [restored.next_batch() for _ in range(3)]):
        assert np.array_equal(np.array(a), np.array(b)) and np.array_equal(
            np.array(la), np.array(lb)
        )


def test_rows_load_from_json_and_parquet_files(tmp_path):
    from mlx_grpo.sft.config import SftDataConfig
    from mlx_grpo.sft.data import load_sft_rows

    chat = {
        "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    }
    renamed = {"question": "1+1?", "solution": "2"}
    (tmp_path / "rows.json").write_text(json.dumps([chat, chat]))
    rows = load_sft_rows(SftDataConfig(train=str(tmp_path / "rows.json")))
    assert rows[0] == {"messages": chat["messages"][:1], "completion": "4"}
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist([renamed]), tmp_path / "rows.parquet")
    cfg = SftDataConfig(
        train=str(tmp_path / "rows.parquet"), prompt_field="question", completion_field="solution"
    )
    assert load_sft_rows(cfg) == [{"prompt": "1+1?", "completion": "2"}]


def test_plot_draws_the_sft_curves(sft_run, tmp_path, run_cli):
    from mlx_grpo.report.plot import SFT_PANELS, panels_for, series

    data = series(sft_run)
    assert panels_for({"r": data}) == SFT_PANELS
    assert len(data["val_loss"][0]) == 6 and min(data["step_s"][1]) > 0  # its own step time
    assert run_cli("plot", sft_run, "--out", tmp_path / "sft.png") == 0
    assert (tmp_path / "sft.png").stat().st_size > 10_000
