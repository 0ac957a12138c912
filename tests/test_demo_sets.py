"""The demo's pieces that need no real model: the format instruction in the question, the
two held-out sets, the cold start's rows and config, and the before/after table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mlx_grpo.cli import demo as d
from mlx_grpo.cli.demo_cmd import results_table
from rich.console import Console

from mlx_grpo.config import DataConfig, load_config
from mlx_grpo.data.examples import render_prompt
from mlx_grpo.data.tasks import rephrased
from mlx_grpo.errors import UserError
from mlx_grpo.infer.held_out import held_out_rows
from mlx_grpo.sft.config import load_sft_config


def _tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def test_the_instruction_follows_the_question_and_is_the_same_one_every_time() -> None:
    cfg = DataConfig(template="plain", instruction=["Say A.", "Say B."])
    questions = [f"What is {i} plus 1?" for i in range(40)]
    texts = [render_prompt(None, q, cfg) for q in questions]
    assert texts == [render_prompt(None, q, cfg) for q in questions]
    assert all(t.startswith(q + " Say ") for t, q in zip(texts, questions))
    assert {t[-2] for t in texts} == {"A", "B"}  # both wordings are used
    assert render_prompt(None, "Q?", DataConfig(template="plain")) == "Q?"  # none: unchanged


def test_the_instruction_is_inside_the_user_turn_of_a_chat_template(tiny_model_dir) -> None:
    tok = _tokenizer(tiny_model_dir)
    text = render_prompt(tok, "Q?", DataConfig(instruction=["Use tags."]))
    user = tok.apply_chat_template([{"role": "user", "content": "Q? Use tags."}], tokenize=False,
                                   add_generation_prompt=True)  # fmt: skip
    assert text == user


@pytest.mark.parametrize("value", ['[""]', '["ok", "  "]', "[3]", '"not a list"'])
def test_a_bad_instruction_is_a_config_error(value: str) -> None:
    with pytest.raises(UserError, match="data.instruction"):
        load_config(None, ["data.train=builtin:arithmetic", f"data.instruction={value}"])
    with pytest.raises(UserError, match="data.instruction"):
        load_sft_config(None, ["data.train=rows.jsonl", f"data.instruction={value}"])


def test_the_demo_config_states_the_format_and_shows_no_example() -> None:
    cfg = load_config(d.DEFAULT_CONFIG, [])
    assert not cfg.data.few_shot and not cfg.data.system_prompt
    assert cfg.data.instruction and all("<answer>" in i for i in cfg.data.instruction)


def test_eval_sets_one_like_training_one_rephrased(tiny_model_dir) -> None:
    cfg = load_config(d.DEFAULT_CONFIG, ["data.eval_size=8"])
    sets = d.eval_sets(cfg, _tokenizer(tiny_model_dir))
    story, other = sets[d.LIKE_TRAINING], sets[d.REPHRASED]
    assert len(story) == len(other) == 8
    assert [e.prompt for e in story] == [r["prompt"] for r in held_out_rows(cfg)]
    assert all(any(i in e.text for i in cfg.data.instruction) for e in story)
    assert [e.prompt for e in other] == [r["prompt"] for r in rephrased.generate(8, cfg.seed)]
    for example in other:  # the question as the user wrote it: no training instruction added
        assert example.text.count("<answer>") == 1
        assert not any(i in example.text for i in cfg.data.instruction[1:])


def test_cold_start_rows_are_worked_right_and_never_held_out() -> None:
    cfg = load_config(d.DEFAULT_CONFIG, [])
    rows = d.cold_start_rows(cfg)
    held = {r["prompt"] for r in held_out_rows(cfg)}
    assert len(rows) == d.COLD_START_ROWS and not {r["prompt"] for r in rows} & held
    for row in rows:
        a, op, b, c = re.fullmatch(r"(\d+) ([+-]) (\d+) = (\d+)\n<answer>(\d+)</answer>",
                                   row["completion"]).groups()[:4]  # fmt: skip
        assert int(c) == (int(a) + int(b) if op == "+" else int(a) - int(b))
        assert row["completion"].endswith(f"<answer>{c}</answer>") and a in row["prompt"]


def test_the_cold_start_config_agrees_with_the_grpo_config(tmp_path: Path) -> None:
    cfg = load_config(d.DEFAULT_CONFIG, ["logging.run_name=x", "lora.rank=4"])
    rows = tmp_path / "x-sft" / "cold_start.jsonl"
    sft = load_sft_config(d.DEFAULT_SFT_CONFIG, d.sft_overrides(cfg, rows, 3))
    assert sft.data.instruction == cfg.data.instruction and sft.data.template == "chat"
    assert sft.model.path == cfg.model.path and sft.lora.rank == 4
    assert sft.data.train == str(rows) and sft.logging.run_name == "x-sft"
    assert sft.steps == 3 and sft.seed == cfg.seed
    assert load_sft_config(d.DEFAULT_SFT_CONFIG, d.sft_overrides(cfg, rows, None)).steps == 12


def test_the_table_shows_both_sets_with_n_and_every_metric() -> None:
    before = {
        d.LIKE_TRAINING: d.HeldOut(0.25, 0.5, 0.75, 64),
        d.REPHRASED: d.HeldOut(0, 0.0625, 0, 32),
    }
    after = {
        d.LIKE_TRAINING: d.HeldOut(0.5, 0.5, 1.0, 64),
        d.REPHRASED: d.HeldOut(0.4, 0.5, 0.9, 32),
    }
    console = Console(record=True, width=140)
    console.print(results_table(before, after))
    text = console.export_text()
    for needle in ("like training", "rephrased", " 64 ", " 32 ", "25.0%", "6.2%", "90.0%", "loose"):
        assert needle in text, needle
