"""`mlx-grpo chat` driven as a person would: through a pseudo-terminal, a pipe, bad flags."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
from mlx_grpo.cli.main import main

from mlx_grpo.models.tiny import build_tiny_model

pytestmark = pytest.mark.e2e
CHAT = [sys.executable, "-m", "mlx_grpo.cli.main", "chat"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("cli") / "tiny", seed=0)


def spawn(*args: str) -> pexpect.spawn:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TERM": "xterm"}
    child = pexpect.spawn(
        CHAT[0],
        CHAT[1:] + list(args),
        env=env,
        timeout=60,
        encoding="utf-8",
        dimensions=(40, 160),
        # as from a terminal: SIGINT at its default action even when this suite was started
        # with it ignored (a shell's background job), so the Ctrl-C the test types arrives
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    child.expect(">>> ")
    return child


def turn(child: pexpect.spawn, line: str, expect: str = "tokens/s") -> None:
    child.sendline(line)
    child.expect(expect)
    child.expect(">>> ")


def read_trace(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@functools.lru_cache
def tokenizer(model: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model))


def test_conversation_system_reset_and_ctrl_d(model: Path, tmp_path: Path) -> None:
    decode = tokenizer(model).decode
    trace = tmp_path / "trace.jsonl"
    child = spawn(
        "--model", str(model), "--temp", "0", "--max-tokens", "6", "--trace-tokens", str(trace)
    )
    turn(child, "My name is Zed")
    turn(child, "What is my name?")
    turn(child, "/system Answer in French", "system prompt set")
    turn(child, "/reset", "conversation cleared")
    turn(child, "Who am I?")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    first, second, third = read_trace(trace)
    assert "My name is Zed" in decode(second["context"])  # history reaches the model
    assert second["reused"] == len(first["context"]) + len(first["generated"])
    assert "My name is Zed" not in decode(second["prefill"])  # ... without re-prefilling it
    assert "Zed" not in decode(third["context"])
    assert decode(third["context"]).startswith("<|im_start|>system\nAnswer in French<|im_end|>")


def test_ctrl_c_stops_the_answer_and_keeps_the_session(model: Path, tmp_path: Path) -> None:
    decode = tokenizer(model).decode
    trace = tmp_path / "trace.jsonl"
    args = ["--model", str(model), "--temp", "0", "--max-tokens", "100000"]
    child = spawn(*args, "--trace-tokens", str(trace))
    child.sendintr()  # Ctrl-C at the prompt: a fresh prompt, not an exit
    child.expect(">>> ")
    child.sendline("Tell me a long story")  # greedy: ~4000 tokens of gibberish, no EOS
    child.expect_exact("Tell me a long story\r\n")
    child.expect(r"\S")  # the answer has started streaming
    child.sendintr()
    child.expect(r"\[stopped\]")
    child.expect(">>> ")
    turn(child, "/max 4", "4 tokens")
    turn(child, "Shorter")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    stopped, after = read_trace(trace)
    assert stopped["finish"] == "interrupted" and 0 < len(stopped["generated"]) < 100000
    assert "Tell me a long story" in decode(after["context"])
    assert decode(stopped["generated"]) in decode(after["context"])  # partial answer kept
    assert after["reused"] >= len(stopped["context"])  # and the cache survived the stop
    assert len(after["generated"]) == 4


def test_mistyped_command_then_exit_is_a_clean_exit(model: Path) -> None:
    child = spawn("--model", str(model), "--temp", "0", "--max-tokens", "2")
    turn(child, "/tmep 0", "unknown command /tmep")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0  # the person saw the error and left normally


def test_piped_stdin_answers_each_line(model: Path, tmp_path: Path) -> None:
    decode = tokenizer(model).decode
    trace = tmp_path / "trace.jsonl"
    args = ["--model", str(model), "--temp", "0", "--max-tokens", "3", "--trace-tokens", str(trace)]
    done = subprocess.run(
        CHAT + args, input="first line\n/temp 0\nsecond line\n", capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout and "mlx-grpo chat" in done.stderr
    first, second = read_trace(trace)
    assert "first line" in decode(second["context"]) and second["reused"] > 0
    assert done.stdout.count("\n") >= 2


def test_piped_prompt_longer_than_context_fails_clearly(model: Path, tmp_path: Path) -> None:
    args = ["--model", str(model), "--max-context", "64", "--max-tokens", "3"]
    done = subprocess.run(
        CHAT + args, input="x" * 200 + "\nshort\n", capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "the prompt is" in done.stderr and "the context holds 64" in done.stderr
    assert "1 input line(s) failed" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_model_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["chat", "--model", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "model directory not found" in err and str(tmp_path / "nope") in err
    assert "Traceback" not in err


def test_mismatched_adapter_names_the_layer(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from test_chat_load import write_adapters

    adapter = write_adapters(model, tmp_path / "adapter", seed=1)
    wide = build_tiny_model(tmp_path / "wide", hidden_size=96, intermediate_size=192)
    assert main(["chat", "--model", str(wide), "--adapter", str(adapter)]) == 2
    err = capsys.readouterr().err
    assert "does not match model" in err and "layer model.layers.0." in err


def test_step_without_run_and_help(capsys: pytest.CaptureFixture) -> None:
    assert main(["chat", "--model", "x", "--step", "3"]) == 2
    assert "--step needs --run" in capsys.readouterr().err
    assert main(["chat", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Examples" in out and "--run" in out and "--adapter" in out
