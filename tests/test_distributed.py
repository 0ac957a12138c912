"""Data-parallel training on two local ranks (`mlx.launch -n 2 --backend ring`), for real.

The launches use MLX's own launcher and ring backend on this machine; when the ring cannot
start, these tests fail (the worker and the trainer refuse a world that is not 2 ranks, and
`mlx.launch` exits 0 whatever its ranks do, so every check reads what the ranks wrote).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import yaml
from conftest import read_metrics, write_jsonl

from mlx_grpo.errors import UserError
from mlx_grpo.train.distributed import World, check_divides, global_advantages, rank_seed
from mlx_grpo.train.observed import Observed, merge

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
WORKER = Path(__file__).with_name("distributed_worker.py")
TIMING_KEYS = {"rollout_s", "reward_s", "batch_s", "update_s", "rollout_tokens_per_s"}
TIMING_KEYS |= {"peak_memory_gb"}


def free_port() -> int:
    """A port for the ring, so that two launches on this machine never meet (rank r listens
    on port + r)."""
    while True:
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


def launch(*command: str | Path, **kwargs) -> subprocess.Popen:
    """Two local ranks over the ring backend, as a user starts them."""
    ring = ["-n", "2", "--backend", "ring", "--starting-port", str(free_port())]
    cmd = [BIN / "mlx.launch", *ring, "--", *command]
    return subprocess.Popen(
        [str(c) for c in cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        **kwargs,
    )


def finish(proc: subprocess.Popen, limit: float = 400) -> str:
    out, err = proc.communicate(timeout=limit)
    return out + err


REWARD_FILE = """
def varied(prompts, completions, answers, **extras):
    return [float(sum(map(ord, c)) % 5) for c in completions]
"""


def write_config(tmp_path: Path, model: Path, **changes) -> Path:
    (tmp_path / "toy_reward.py").write_text(REWARD_FILE)
    rows = [
        {"prompt": f"What is {a} + {b}?", "answer": str(a + b)} for a in range(4) for b in range(4)
    ]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    cfg = {
        "model": {"path": str(model)},
        "lora": {"fine_tune_type": "lora", "rank": 4},
        "rollout": {"group_size": 4, "max_completion_length": 8},
        "objective": {"beta": 0.04, "num_iterations": 2, "loss_type": "dapo"},
        "optimizer": {"learning_rate": 1e-2},
        "data": {"train": str(data)},
        "rewards": [{"name": f"{tmp_path / 'toy_reward.py'}:varied"}, {"name": "exact_number"}],
        "logging": {"output_dir": str(tmp_path / "runs"), "run_name": None, "samples_every": 2},
        "checkpoint": {"every": 2},
        "steps": 4,
        "batch_size": 4,
        **changes,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _strip(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in TIMING_KEYS} for m in metrics]


# ----------------------------------------------------------------------------- gradients


def test_two_ranks_give_the_one_process_loss_and_gradient(tmp_path, tiny_model_dir):
    """2 ranks x B/2 groups vs 1 rank x B on fixed rollouts, every loss_type, batch scaling,
    dropped groups, a rank left with no group, gradient accumulation (tests/distributed_worker)."""
    out = tmp_path / "grads.json"
    log = finish(launch(sys.executable, WORKER, "grads", tiny_model_dir, out))
    assert out.is_file(), log
    result = json.loads(out.read_text())
    assert result["world_size"] == 2
    cases = result["cases"]
    assert {"grpo", "dr_grpo", "dapo", "bnpo", "dapo_scale_batch"} <= cases.keys()
    for name, case in cases.items():
        assert case["max_grad_diff"] <= 1e-4 * case["max_grad"], name
        assert abs(case["loss"] - case["loss_one_process"]) <= 1e-5, name
        assert case["max_grad"] > 0, name  # a gradient that is really there


# ----------------------------------------------------------------------------- a real run


def test_two_rank_run_writes_one_run_and_resumes_exactly(tmp_path, tiny_model_dir, run_cli):
    config = write_config(tmp_path, tiny_model_dir)
    log = finish(launch(BIN / "mlx-grpo", "train", "-c", config))
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1, (runs, log)  # one run directory, though the name is a timestamp
    run = runs[0]
    full = read_metrics(run)
    assert [m["step"] for m in full] == [1, 2, 3, 4], log
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_2", "step_4"]
    state = json.loads((run / "checkpoints" / "step_4" / "trainer_state.json").read_text())
    assert state["world_size"] == 2
    # the metrics describe all B x G = 16 completions, not one rank's 8
    assert all(m["completion_length/min"] >= 1 for m in full)
    assert all(m["updates"] == 2 for m in full), full  # groups varied: every step trained
    samples = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
    assert sorted({s["step"] for s in samples}) == [2, 4]  # rank 0's rows, written once

    # Ctrl-C reaching one rank only: both stop after the same step, rank 0 checkpoints it
    proc = launch(BIN / "mlx-grpo", "train", "-c", config, "--set", "logging.run_name=b")
    other = tmp_path / "runs" / "b"
    wait_for(
        lambda: len(read_metrics(other)) >= 1 if (other / "metrics.jsonl").exists() else False, proc
    )
    os.kill(rank_pid(proc.pid, 1), signal.SIGINT)
    log = finish(proc)
    stopped = [m["step"] for m in read_metrics(other)]
    assert stopped and stopped[-1] < 4, log
    assert f"stopped at step {stopped[-1]}" in log, log
    assert (other / "checkpoints" / f"step_{stopped[-1]}" / "trainer_state.json").is_file()
    assert not list((other / "checkpoints").glob(".*partial*"))

    # resumed on 2 ranks, it finishes exactly as the uninterrupted run did
    log = finish(launch(BIN / "mlx-grpo", "train", "--resume", other))
    assert _strip(read_metrics(other)) == _strip(full), log

    # resuming with another number of ranks is allowed and said
    shutil.rmtree(other / "checkpoints" / "step_4")
    proc = subprocess.run(
        [str(BIN / "mlx-grpo"), "train", "--resume", str(other)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "written by 2 rank(s), resuming with 1" in proc.stderr
    assert [m["step"] for m in read_metrics(other)] == [1, 2, 3, 4]


def wait_for(ready, proc: subprocess.Popen, limit: float = 300) -> None:
    """Poll until `ready()` (or the launch ended, or `limit` seconds)."""
    deadline = time.monotonic() + limit
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, finish(proc)
        time.sleep(0.3)


def test_killing_one_rank_stops_the_other_and_keeps_the_checkpoint(tmp_path, tiny_model_dir):
    config = write_config(tmp_path, tiny_model_dir, steps=200, checkpoint={"every": 2})
    proc = launch(BIN / "mlx-grpo", "train", "-c", config)
    wait_for(lambda: bool(list((tmp_path / "runs").glob("*/checkpoints/step_2"))), proc)
    first = next((tmp_path / "runs").glob("*/checkpoints/step_2"))
    rank1 = rank_pid(proc.pid, 1)
    os.kill(rank1, signal.SIGKILL)
    log = finish(proc, limit=120)  # the other rank stops on its own, well before 200 steps
    assert "rank 0: lost contact with the other ranks" in log or "rank 0: stopped by" in log, log
    assert "--resume" in log
    run = first.parent.parent
    steps = [m["step"] for m in read_metrics(run)]
    assert steps and steps[-1] < 200
    assert not list((run / "checkpoints").glob(".*partial*"))  # no half-written checkpoint
    newest = max((run / "checkpoints").iterdir(), key=lambda p: int(p.name.split("_")[1]))
    assert json.loads((newest / "trainer_state.json").read_text())["step"] >= 2
    assert mx.load(str(newest / "adapters.safetensors"))


def rank_pid(launcher: int, rank: int) -> int:
    """The pid of one rank `mlx.launch` started (its child, with MLX_RANK set)."""
    for _ in range(100):
        for child in _children(launcher):
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            if f"MLX_RANK={rank}".encode() in environ:
                return child
        time.sleep(0.1)
    raise AssertionError(f"no rank {rank} under {launcher}")


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


# ----------------------------------------------------------------------------- one process


def test_a_world_of_one_calls_no_collective(tmp_path, tiny_model_dir, run_cli, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a collective was called in a single-process run")

    for name in ("all_sum", "all_max", "all_gather", "all_min", "send", "recv"):
        monkeypatch.setattr(mx.distributed, name, refuse)
    config = write_config(tmp_path, tiny_model_dir, steps=2)
    assert run_cli("train", "-c", config, "--set", "objective.scale_rewards=batch") == 0
    assert len(read_metrics(next((tmp_path / "runs").iterdir()))) == 2
    world = World()
    assert world.sum([1.0, 2.0]).tolist() == [1.0, 2.0] and world.any(True)
    assert world.gather_json({"a": 1}) == [{"a": 1}] and world.from_main("x") == "x"
    grads = {"w": mx.ones(3)}
    assert world.sum_grads(grads) is grads
    rewards = np.array([0.0, 1.0, 1.0, 3.0])  # batch std 1.258 (Bessel), over all 4
    assert np.allclose(
        global_advantages(world, rewards, 2, "batch")[:2], [-0.3973, 0.3973], atol=1e-4
    )


def test_a_batch_that_does_not_split_is_refused():
    with pytest.raises(UserError, match="batch_size: 3 prompts do not split over 2 ranks"):
        check_divides(3, 4, 1, 2)
    with pytest.raises(UserError, match="gradient_accumulation_steps"):
        check_divides(4, 1, 4, 2)  # 2 rollouts per rank cannot make 4 micro-batches
    check_divides(4, 4, 2, 2)


def test_ranks_sample_differently_and_rank_0_keeps_the_single_process_seed():
    assert rank_seed(123, 0) == 123
    assert len({rank_seed(123, r) for r in range(8)}) == 8


def test_observations_merge_like_one_batch():
    def part(total, lengths, seconds, peak):
        return Observed(
            total=total,
            per_function={"f": total},
            errors={"f": 1},
            outcomes={"f": {"timeout": 1}},
            lengths=lengths,
            truncated=[False] * len(total),
            informative=[True],
            sums={"kl_sum": 2.0},
            losses=[0.5, 0.25],
            tokens=4.0,
            rollout_tokens=sum(lengths),
            rollout_s=seconds,
            times={"update_s": seconds},
            peak_memory=peak,
        )

    merged = merge([part([1.0, 0.0], [3, 4], 2.0, 5.0), part([0.5, 0.5], [1, 2], 3.0, 7.0)])
    assert merged.total == [1.0, 0.0, 0.5, 0.5] and merged.lengths == [3, 4, 1, 2]
    assert merged.errors == {"f": 2} and merged.outcomes == {"f": {"timeout": 2}}
    assert merged.losses == [1.0, 0.5] and merged.sums == {"kl_sum": 4.0}
    assert merged.rollout_s == 3.0 and merged.peak_memory == 7.0 and merged.tokens == 8.0


def test_plan_takes_the_number_of_ranks(run_cli, capsys):
    from mlx_grpo.config import load_config
    from mlx_grpo.plan import memory as planner
    from mlx_grpo.plan.architecture import read_architecture

    h100 = Path(__file__).parents[1] / "configs" / "qwen2.5-3b-h100.yaml"
    args = ("plan", "-c", h100, "--device", "h100-80gb", "--set", "batch_size=64")
    assert run_cli(*args, "--ranks", "8") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "8 ranks: global batch 64 prompts x 12 = 768 rollouts" in out
    assert "each device takes 8 x 12" in out and "6,171.9 MB of gradients" in out
    # per device, 64 prompts over 8 ranks is the one-GPU config's 8 prompts
    cfg = load_config(h100, ["batch_size=64"])
    arch = read_architecture(cfg.model.path)
    one = planner.plan(load_config(h100), arch, None, 128).total
    assert planner.plan(planner.per_rank(cfg, 8), arch, None, 128).total == one
    # a batch that does not split: one line, exit 2, nothing planned
    assert run_cli("plan", "-c", h100, "--ranks", "3") == 2
    err = capsys.readouterr().err
    assert "8 prompts do not split over 3 ranks" in err and "Traceback" not in err
