"""Datasets: JSONL rows, errors with file:line, prompt rendering, the resumable stream."""

from __future__ import annotations

import pytest
from conftest import write_jsonl
from mlx_lm import load

from mlx_grpo.config import DataConfig
from mlx_grpo.data.examples import PromptStream, build_examples, load_rows, split_rows
from mlx_grpo.errors import UserError


def _cfg(train, **kw) -> DataConfig:
    return DataConfig(train=str(train), **kw)


def test_rows_keep_extras_and_custom_fields(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"q": "1+1?", "a": 2, "level": 1}])
    rows = load_rows(_cfg(path, prompt_field="q", answer_field="a"), seed=0)
    assert rows == [{"prompt": "1+1?", "answer": "2", "level": 1}]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"prompt": "a", "answer": "1"}', "{not json"], r"d\.jsonl:2: not valid JSON"),
        (['{"prompt": "a"}'], r"d\.jsonl:1: missing field 'answer' \(this row has: 'prompt'\)"),
        (['{"prompt": "a", "answer": ""}'], r"d\.jsonl:1: empty answer"),
        (["[1, 2]"], r"d\.jsonl:1: expected a JSON object"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, lines, message):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=message):
        load_rows(_cfg(path), seed=0)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="dataset file not found"):
        load_rows(_cfg(tmp_path / "nope.jsonl"), seed=0)


def test_builtin_task_rows_are_seeded():
    cfg = _cfg("builtin:arithmetic", num_examples=20, difficulty=2)
    rows = load_rows(cfg, seed=5)
    assert len(rows) == 20 and rows == load_rows(cfg, seed=5)
    assert rows != load_rows(cfg, seed=6)
    with pytest.raises(UserError, match="unknown built-in task"):
        load_rows(_cfg("builtin:sudoku"), seed=0)


def test_hub_ids_go_to_the_hub_loader(monkeypatch):
    import mlx_grpo.data.examples as data

    seen = {}

    def fake_hub_rows(dataset_id, split, config, **fields):
        seen.update(id=dataset_id, split=split, config=config, **fields)
        return [{"prompt": "q", "answer": "1"}]

    monkeypatch.setattr(data, "hub_rows", fake_hub_rows)
    assert load_rows(_cfg("openai/gsm8k", split="test"), seed=0) == [{"prompt": "q", "answer": "1"}]
    assert seen == {
        "id": "openai/gsm8k",
        "split": "test",
        "config": None,
        "prompt_field": None,
        "answer_field": None,
    }


def test_eval_split_is_held_out_and_seeded():
    rows = [{"prompt": str(i), "answer": str(i)} for i in range(10)]
    train, held = split_rows(rows, 3, seed=1)
    assert len(held) == 3 and len(train) == 7
    assert {r["prompt"] for r in train}.isdisjoint(r["prompt"] for r in held)
    assert split_rows(rows, 3, seed=1) == (train, held)
    with pytest.raises(UserError, match="data.eval_size"):
        split_rows(rows, 10, seed=1)


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


def test_several_sources_are_concatenated(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p1", "answer": "1"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"question": "p2", "answer": "#### 2"}])
    rows = load_rows(DataConfig(train=[str(a)]), seed=0)
    rows += load_rows(_cfg(b, prompt_field="question"), seed=0)
    assert [r["prompt"] for r in rows] == ["p1", "p2"]
    mixed = load_rows(DataConfig(train=[str(a), "builtin:arithmetic"], num_examples=3), seed=0)
    assert len(mixed) == 4 and mixed[0]["prompt"] == "p1"


def test_custom_and_r1_templates(tiny_model_dir):
    _, tok = load(str(tiny_model_dir))
    rows = [{"prompt": "2+2?", "answer": "4"}]
    custom = DataConfig(train="x", template="custom", prompt_template="Q: {prompt}\nA:")
    assert build_examples(rows, tok, custom, 100)[0][0].text == "Q: 2+2?\nA:"
    r1 = build_examples(rows, tok, DataConfig(train="x", template="r1"), 1000)[0][0].text
    assert "<think>" in r1 and r1.rstrip().endswith("Assistant:") and "2+2?" in r1


def test_custom_template_needs_a_placeholder():
    from mlx_grpo.config import load_config

    with pytest.raises(UserError, match="data.prompt_template"):
        load_config(None, ["data.train=x", "data.template=custom", "data.prompt_template=hi"])


def test_few_shot_turns_go_through_the_chat_template(tiny_model_dir):
    from mlx_grpo.config import FewShot

    _, tok = load(str(tiny_model_dir))
    cfg = DataConfig(train="x", system_prompt="S", few_shot=[FewShot("1+1?", "<answer>2</answer>")])
    text = build_examples([{"prompt": "2+2?", "answer": "4"}], tok, cfg, 1000)[0][0].text
    assert text == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n1+1?<|im_end|>\n"
        "<|im_start|>assistant\n<answer>2</answer><|im_end|>\n"
        "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    )
