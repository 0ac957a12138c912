"""`mlx-grpo eval` on code rows: code_tests judges (every hidden test must pass), pass@k from
n samples with the unbiased estimator, the code_block format rate; and the same through the
real CLI on `builtin:tiny-qwen2`."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from mlx_grpo.data.examples import Example
from mlx_grpo.data.tasks import generate_task
from mlx_grpo.infer import evaluate as ev
from mlx_grpo.rewards.code import code_tests
from mlx_grpo.rewards.code_format import code_block


def test_unbiased_pass_at_k_matches_its_definition() -> None:
    # 1 - C(n-c, k) / C(n, k): the chance that k of n samples drawn without replacement
    # include a correct one; checked against direct enumeration of the draws
    from itertools import combinations

    for n, c, k in [(5, 2, 2), (10, 3, 4), (6, 0, 3), (4, 4, 1), (7, 1, 7)]:
        draws = list(combinations([True] * c + [False] * (n - c), k))
        assert ev.pass_at_k(n, c, k) == pytest.approx(sum(map(any, draws)) / len(draws))
    assert ev.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert ev.pass_at_k_mean(4, [2, 0], 2) == pytest.approx((1 - 1 / math.comb(4, 2)) / 2)


def fenced(code: str) -> str:
    return f"```c\n{code}\n```"


def test_evaluate_judges_code_rows_by_all_hidden_tests(monkeypatch) -> None:
    rows = generate_task("c-functions", 2, seed=0, difficulty=1)
    examples = [Example(r["prompt"], r["prompt"], [1], r["answer"], {k: r[k] for k in
                ("language", "tests")}) for r in rows]  # fmt: skip
    right = [fenced(str(r["answer"])) for r in rows]
    # the first function with its body replaced by `return 0;`: passes some tests at most
    name = rows[0]["answer"].split("{")[0]
    partial = fenced(name + "{ return 0; }")
    partly = code_tests([""], [partial], [""], language=["c"], tests=[rows[0]["tests"]])[0]
    assert 0 < partly < 1  # partial credit in training, not solved in eval
    greedy = [right[0], partial]
    sampled = [right[0], right[0], partial, "no code"] + [partial, partial, "```c\n}", "x"]
    calls = iter([greedy, sampled])
    monkeypatch.setattr(ev, "_generate", lambda *a, **k: (next(calls), [5] * 8))
    judge = ev.correctness_reward(ev.correctness_name("auto", examples))
    words = SimpleNamespace(eos_token_ids={0}, encode=lambda s, **kw: s.split())
    result = ev.evaluate(None, words, examples, judge, samples=4, pass_ks=(2, 4),
                         format_reward=code_block)  # fmt: skip
    assert [row["correct"] for row in result.rows] == [True, False]
    assert result.summary["pass@1"] == 0.5
    assert result.summary["mean@4"] == pytest.approx(2 / 8)
    assert result.summary["pass@2"] == pytest.approx((1 - 1 / 6) / 2)  # c = 2 of n = 4, then 0
    assert result.summary["pass@4"] == pytest.approx(0.5)
    assert result.summary["format_rate"] == 1.0
    assert [row["sampled_correct"] for row in result.rows] == [2, 0]


def test_auto_judges() -> None:
    code_row = Example("p", "p", [1], "a", {"tests": ["1"]})
    math_row = Example("p", "p", [1], "4", {})
    assert ev.correctness_name("auto", [code_row]) == "code_tests"
    assert ev.correctness_name("auto", [math_row]) == "math_correct"
    assert ev.correctness_name("countdown", [code_row]) == "countdown"
    assert code_block([""] * 3, ["```c\nint x;\n```", "```\nint x;\n```", "int x;"], [""] * 3,
                      language=["c", "c", "c"]) == [1.0, 0.5, 0.0]  # fmt: skip


@pytest.mark.e2e
def test_eval_cli_reports_pass_at_k_on_c_functions(tmp_path, tiny_model_dir, run_cli, capsys):
    out = tmp_path / "eval.json"
    args = ["eval", "-m", tiny_model_dir, "--data", "builtin:c-functions", "--limit", "3",
            "--samples", "4", "--pass-k", "1,2,4", "--max-tokens", "6", "--out", out]  # fmt: skip
    assert run_cli(*args) == 0
    result = json.loads(out.read_text())
    assert {"pass@1", "pass@2", "pass@4", "mean@4", "format_rate"} <= result["summary"].keys()
    # random weights write no C that compiles: judged by code_tests, nothing is solved
    assert result["summary"]["pass@4"] == 0.0 and not any(r["correct"] for r in result["rows"])
    assert all(r["sampled_correct"] == 0 for r in result["rows"])
    assert "pass@4" in capsys.readouterr().out
    assert run_cli(*args[:-2], "--pass-k", "9") == 2
    assert "--pass-k: each k must be between 1 and --samples (4)" in capsys.readouterr().err
