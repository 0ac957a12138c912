"""Datasets: JSONL rows, errors with file:line, prompt rendering, the resumable stream."""

from __future__ import annotations

import pytest
from conftest import write_jsonl
from mlx_lm import load

from mlx_grpo.config import DataConfig
from mlx_grpo.data import PromptStream, build_examples, read_jsonl
from mlx_grpo.errors import UserError


def test_rows_keep_extras_and_custom_fields(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"q": "1+1?", "a": 2, "level": 1}])
    rows = read_jsonl(path, "q", "a")
    assert rows == [{"prompt": "1+1?", "answer": "2", "level": 1}]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"prompt": "a", "answer": "1"}', "{not json"], r"d\.jsonl:2: not valid JSON"),
        (['{"prompt": "a"}'], r'd\.jsonl:1: missing field "answer" \(fields present: prompt\)'),
        (['{"prompt": "a", "answer": ""}'], r'd\.jsonl:1: field "answer" is empty'),
        (["[1, 2]"], r"d\.jsonl:1: each line must be a JSON object"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, lines, message):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=message):
        read_jsonl(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="dataset file not found"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_chat_template_system_prompt_and_long_prompts_dropped(tiny_model_dir):
    _, tok = load(str(tiny_model_dir))
    rows = [{"prompt": "short?", "answer": "1"}, {"prompt": "x" * 500, "answer": "2"}]
    cfg = DataConfig(train="unused", template="chat", system_prompt="Be brief.")
    examples, dropped = build_examples(rows, tok, cfg, max_prompt_length=100)
    assert dropped == 1 and len(examples) == 1
    text = examples[0].text
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert text.endswith("<|im_start|>assistant\n")
    assert examples[0].ids == list(tok.encode(text, add_special_tokens=False))


def test_all_prompts_too_long_is_an_error(tiny_model_dir):
    _, tok = load(str(tiny_model_dir))
    with pytest.raises(UserError, match="rollout.max_prompt_length"):
        build_examples([{"prompt": "y" * 50, "answer": "1"}], tok, DataConfig(train="x"), 10)


def test_stream_is_seeded_and_resumable():
    items = list(range(7))
    a = PromptStream(items, seed=3)
    first = a.next_batch(5)
    state = a.state()
    rest = a.next_batch(9)  # crosses into the next epoch
    b = PromptStream(items, seed=3)
    b.restore(state)
    assert b.next_batch(9) == rest
    assert sorted(first + rest[:2]) == items  # an epoch is a permutation
    assert PromptStream(items, seed=4).next_batch(7) != PromptStream(items, seed=3).next_batch(7)
