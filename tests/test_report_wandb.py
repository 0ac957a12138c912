"""W&B reporter on real offline runs: the history, the sample table, the config, and one
W&B run id across `--resume`, read back from the run's own `.wandb` log file."""

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from wandb.proto import wandb_internal_pb2

from mlx_grpo.config import load_config
from mlx_grpo.report.callbacks import WandbReporter

BLOCK = 32768  # the .wandb file is a LevelDB-style log: 32 KiB blocks of chunked records


def wandb_records(path: Path) -> Iterator[Any]:
    """Every protobuf Record of an offline run's `.wandb` file, in order."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, chunk = 7, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # block trailer padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, size, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk += data[pos + 7 : pos + 7 + size]
        pos += 7 + size
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            yield record
            chunk = b""


def items(entries: Any) -> dict[str, Any]:
    """Key -> decoded JSON value of a record's items (a key may be given as nested parts)."""
    return {e.key or "/".join(e.nested_key): json.loads(e.value_json) for e in entries}


def finished_records(file: Path, wait_s: float = 60.0) -> list[Any]:
    """The records of a run's log once its `exit` record is there: wandb's writer process may
    still be flushing the file for a moment after `run.finish()` returns."""
    deadline = time.monotonic() + wait_s
    while True:
        records = list(wandb_records(file))
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        assert time.monotonic() < deadline, f"{file} has no exit record"
        time.sleep(0.2)


def offline_runs(run_dir: Path) -> list[dict[str, Any]]:
    """Per offline run folder: its run id, history rows and config keys."""
    out = []
    for file in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        run: dict[str, Any] = {"history": [], "config": {}}
        for rec in finished_records(file):
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                run["id"] = rec.run.run_id
                run["config"].update(items(rec.run.config.update))
            elif kind == "history":
                run["history"].append(items(rec.history.item))
        out.append(run)
    return out


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def test_offline_run_holds_trl_named_history_samples_and_config(
    tmp_path: Path, offline: None
) -> None:
    cfg = load_config(None, ["data.train=builtin:arithmetic", "steps=7"])
    run_dir = tmp_path / "my-run"
    reporter = WandbReporter(cfg, run_dir)
    reporter.on_log(None, {"step": 1, "reward_mean": 0.25, "kl": None})
    row = {"step": 2, "prompt": "1+1?", "completion": "<answer>2</answer>", "reward": 1.0}
    reporter.on_step_end(None, SimpleNamespace(samples=[row]))
    reporter.on_log(None, {"step": 2, "reward_mean": 0.75, "eval/pass@1": 0.5})
    reporter.on_train_end(None, None)
    [run] = offline_runs(run_dir)
    assert run["id"] == "my-run" and run["config"]["steps"] == 7
    rows = {r["_step"]: r for r in run["history"]}
    assert rows[1]["reward"] == 0.25 and "kl" not in rows[1]
    assert rows[2]["reward"] == 0.75 and rows[2]["eval/pass@1"] == 0.5
    assert rows[2]["completions/_type"] == "table-file" and rows[2]["completions/nrows"] == 1
    [table] = run_dir.glob("wandb/offline-run-*/files/media/table/completions_*.table.json")
    first_row = json.loads(table.read_text())["data"][0]
    assert [str(c) for c in first_row[:3]] == ["2", "1+1?", "<answer>2</answer>"]


def test_resume_continues_the_same_wandb_run(tmp_path: Path, offline: None) -> None:
    cfg = load_config(None, ["data.train=builtin:arithmetic", "steps=4"])
    run_dir = tmp_path / "run-a"
    for step in (1, 3):  # the first session, then the one `--resume` starts
        reporter = WandbReporter(cfg, run_dir)
        reporter.on_log(None, {"step": step, "reward_mean": step / 4})
        reporter.on_train_end(None, None)
    runs = offline_runs(run_dir)
    assert [r["id"] for r in runs] == ["run-a", "run-a"]
    assert [r["history"][0]["_step"] for r in runs] == [1, 3]


@pytest.mark.e2e
def test_train_cli_reports_to_tensorboard_and_wandb_across_resume(
    tmp_path: Path, tiny_model_dir: Path, run_cli: Any, offline: None
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from test_train_e2e import make_config

    config = make_config(
        tmp_path,
        str(tiny_model_dir),
        steps=4,
        checkpoint={"every": 2},
        logging={"report_to": ["tensorboard", "wandb"], "samples_every": 2},
    )
    assert run_cli("train", "-c", config, "--set", "steps=2") == 0
    run_dir = tmp_path / "runs" / "r"
    assert run_cli("train", "--resume", run_dir, "--set", "steps=4") == 0
    runs = offline_runs(run_dir)
    assert [r["id"] for r in runs] == ["r", "r"]
    steps = [row["_step"] for r in runs for row in r["history"]]
    assert steps == [1, 2, 3, 4]
    assert all("reward" in row for r in runs for row in r["history"])
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    assert sorted({e.step for e in acc.Scalars("reward")}) == [1, 2, 3, 4]
    assert [e.step for e in acc.Tensors("completions")] == [2, 4]
