"""Every command that takes `--run` renders prompts exactly as the run's training did: its
template, system prompt and few-shot turns (issue: chat used the system prompt, generate and
eval used neither, none used the few-shot turns)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlx_grpo.config import load_config
from mlx_grpo.data.examples import build_examples
from mlx_grpo.infer.chat import ChatSession, ChatSettings
from mlx_grpo.models.loading import load_model_source
from mlx_grpo.models.resolve import resolve_source
from mlx_grpo.models.tiny import build_tiny_model

SHOT = {"user": "Ana has 9 pens and gives 5 away. How many now?", "assistant": "<answer>4</answer>"}
QUESTIONS = ["What is 2 + 3?", "What is 7 - 4?"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder with a full-weight checkpoint and a prompt format worth noticing."""
    root = tmp_path_factory.mktemp("fmt")
    model = build_tiny_model(root / "run" / "checkpoints" / "step_2", seed=0)
    data = {"train": "builtin:arithmetic", "template": "chat", "few_shot": [SHOT],
            "system_prompt": "Put the final number in <answer></answer> tags."}  # fmt: skip
    config = {"model": {"path": str(model)}, "data": data}
    (root / "run" / "config.yaml").write_text(yaml.safe_dump(config))
    return root / "run"


def training_ids(run: Path, tokenizer) -> list[list[int]]:  # noqa: ANN001
    """The token ids training builds for QUESTIONS from the run's own config."""
    cfg = load_config(run / "config.yaml", [])
    rows = [{"prompt": q, "answer": "0"} for q in QUESTIONS]
    return [e.ids for e in build_examples(rows, tokenizer, cfg.data, max_prompt_length=10**6)[0]]


def test_generate_run_encodes_prompts_as_training_did(run: Path, tmp_path: Path) -> None:
    from mlx_grpo.cli.generate_cmd import _encode

    loaded = load_model_source(resolve_source(None, run=str(run)))
    items = _encode(loaded, list(enumerate(QUESTIONS, 1)), "auto", None, tmp_path / "q.txt")
    assert [item.ids for item in items] == training_ids(run, loaded.tokenizer)
    text = loaded.tokenizer.decode(items[0].ids)
    assert "Put the final number" in text and SHOT["user"] in text


def test_eval_run_examples_are_training_prompts(run: Path, tmp_path: Path) -> None:
    from mlx_grpo.cli.eval_cmd import _examples

    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps({"prompt": q, "answer": "0"}) + "\n" for q in QUESTIONS))
    loaded = load_model_source(resolve_source(None, run=str(run)))
    examples = _examples(loaded, str(data), "test", None, "auto", None, 0)
    assert [e.ids for e in examples] == training_ids(run, loaded.tokenizer)


def test_flags_win_over_the_run_format(run: Path, tmp_path: Path) -> None:
    from mlx_grpo.cli.generate_cmd import _encode

    loaded = load_model_source(resolve_source(None, run=str(run)))
    [item] = _encode(loaded, [(1, QUESTIONS[0])], "auto", "Be brief.", tmp_path / "q.txt")
    text = loaded.tokenizer.decode(item.ids)
    assert "Be brief." in text and "Put the final number" not in text
    [plain] = _encode(loaded, [(1, QUESTIONS[0])], "plain", None, tmp_path / "q.txt")
    assert loaded.tokenizer.decode(plain.ids) == QUESTIONS[0]


def test_chat_session_starts_with_the_run_few_shot_turns(run: Path) -> None:
    loaded = load_model_source(resolve_source(None, run=str(run)))
    settings = ChatSettings(system=loaded.source.system_prompt, few_shot=[SHOT], max_tokens=4)
    session = ChatSession(loaded.model, loaded.tokenizer, settings=settings)
    roles = [m["role"] for m in session.messages([{"role": "user", "content": "hi"}])]
    assert roles == ["system", "user", "assistant", "user"]
    first = session.render(session.messages([{"role": "user", "content": QUESTIONS[0]}]))
    assert first == training_ids(run, loaded.tokenizer)[0]


def test_a_broken_few_shot_in_the_run_config_is_one_line(run: Path, tmp_path: Path) -> None:
    from mlx_grpo.errors import UserError
    from mlx_grpo.infer.prompting import prompt_config

    source = resolve_source(None, run=str(run))
    source.prompt["few_shot"] = [{"question": "no user/assistant keys"}]
    loaded = load_model_source(source)
    with pytest.raises(UserError, match="few_shot"):
        prompt_config(loaded.tokenizer, source)
