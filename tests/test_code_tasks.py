"""`builtin:c-functions` and its C++/Python twins: every family's reference solution passes
its hidden tests through the real `code_tests` reward, planted bugs fail them."""

from __future__ import annotations

import pytest

from mlx_grpo.data.tasks import generate_task
from mlx_grpo.data.tasks.catalog import FAMILIES
from mlx_grpo.data.tasks.functions import c_string, c_test
from mlx_grpo.rewards import code


def one_row_per_family(language: str) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for level in (1, 2, 3, 4):
        for row in generate_task(f"{language}-functions", 150, seed=1, difficulty=level):
            rows.setdefault(str(row["entry_point"]), row)
    return rows


def score(rows: list[dict], answers: list[str], language: str) -> list[float]:
    completions = [f"```{language}\n{answer}\n```" for answer in answers]
    blank = [""] * len(rows)
    return code.code_tests(
        blank,
        completions,
        blank,
        language=[r["language"] for r in rows],
        tests=[r["tests"] for r in rows],
        timeout=5.0,
    )


@pytest.mark.parametrize("language", ["c", "python"])
def test_every_family_reference_passes_its_hidden_tests(language: str) -> None:
    rows = one_row_per_family(language)
    assert sorted(rows) == sorted(f.name for f in FAMILIES)  # every family is drawn
    picked = list(rows.values())
    scores = score(picked, [str(r["answer"]) for r in picked], language)
    failed = [r["entry_point"] for r, s in zip(picked, scores) if s != 1.0]
    assert failed == [] and {"passed": len(picked)} == code.LAST_COUNTS


def test_cpp_references_pass_with_arrays_strings_and_in_place_results() -> None:
    rows = one_row_per_family("cpp")
    names = ["rotate_left", "remove_duplicates", "reverse_string", "sum_array", "parse_int",
             "power_mod", "reverse_bits", "count_char"]  # fmt: skip
    picked = [rows[name] for name in names]
    assert any(t.startswith("[]{") for r in picked for t in r["tests"])  # lambda form
    assert score(picked, [str(r["answer"]) for r in picked], "cpp") == [1.0] * len(names)


C_BUGS = {  # family -> a plausible wrong solution
    "is_prime": "int is_prime(int n) { if (n < 2) return 0;\n"
    "  for (int d = 2; d < n / d; d++) if (n % d == 0) return 0; return 1; }",
    "binary_gap": "int binary_gap(unsigned int x) { int best = 0, z = 0;\n"
    "  for (; x; x >>= 1) { if (x & 1u) { if (z > best) best = z; z = 0; } else z++; }\n"
    "  return best; }",
    "parse_int": "int parse_int(const char *s) { int v = 0; while (*s == ' ') s++;\n"
    "  if (*s == '-' || *s == '+') s++;\n"
    "  while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0'); return v; }",
    "sum_to_n": "int sum_to_n(int n) { return n * (n + 1) / 2; }",
    "remove_duplicates": "int remove_duplicates(int *a, int n) { return n; }",
    "reverse_string": "void reverse_string(char *s) { (void)s; }",
}


def test_planted_bugs_fail_their_hidden_tests() -> None:
    rows = one_row_per_family("c")
    picked = [rows[name] for name in C_BUGS]
    scores = score(picked, list(C_BUGS.values()), "c")
    assert all(s < 1.0 for s in scores), dict(zip(C_BUGS, scores))
    assert {"failed": len(C_BUGS)} == code.LAST_COUNTS
    py = one_row_per_family("python")["count_words"]
    wrong = "def count_words(s: str) -> int:\n    return len(s.split(' '))"
    assert score([py], [wrong], "python")[0] < 1.0


@pytest.mark.parametrize("language", ["c", "cpp", "python"])
def test_rows_carry_what_code_tests_reads(language: str) -> None:
    rows = generate_task(f"{language}-functions", 40, seed=0, difficulty=3)
    assert {r["language"] for r in rows} == {language}
    assert all(len(r["tests"]) >= 8 and r["entry_point"] in r["prompt"] for r in rows)
    assert all(f"```{language}" in r["prompt"] for r in rows)
    assert all(r["difficulty"] == 3 for r in rows)
    hidden = {t for r in rows for t in r["tests"]}
    assert len(hidden) > 100  # random inputs per row, not one fixed list
    levels = {lvl: {r["entry_point"] for r in generate_task("c-functions", 60, 0, lvl)}
              for lvl in (1, 4)}  # fmt: skip
    assert not levels[1] & levels[4]


def test_same_tasks_in_every_language() -> None:
    c, py = (generate_task(f"{lang}-functions", 20, 5, 2) for lang in ("c", "python"))
    assert [r["entry_point"] for r in c] == [r["entry_point"] for r in py]


def test_literals_escape_what_c_needs() -> None:
    assert c_string('say "hi"\\') == '"say \\"hi\\"\\\\"'
    assert c_string("a\nb") == '"a\\012b"'
    family = next(f for f in FAMILIES if f.name == "sum_array")
    assert c_test(family, ([],), 0) == "sum_array((const int[1]){0}, 0) == 0"


def test_mac_code_config_rows_score_fully_with_their_references() -> None:
    from pathlib import Path

    from mlx_grpo.config import load_config
    from mlx_grpo.data.examples import load_rows
    from mlx_grpo.data.templates import CODE_SYSTEM
    from mlx_grpo.rewards import build_rewards
    from mlx_grpo.rewards import score as score_all

    cfg = load_config(Path(__file__).parents[1] / "configs" / "code-c-qwen2.5-1.5b.yaml")
    assert cfg.data.system_prompt == CODE_SYSTEM and cfg.logging.eval_reward == "code_tests"
    rows = load_rows(cfg.data, cfg.seed)[:6]
    assert len(load_rows(cfg.data, cfg.seed)) == cfg.data.num_examples
    right = [f"Sure.\n```c\n{r['answer']}\n```" for r in rows]
    extras = {key: [r[key] for r in rows] for key in ("language", "tests")}
    out = score_all(build_rewards(cfg.rewards), [""] * 6, right, [""] * 6, extras)
    assert out.per_function["code_tests"].tolist() == [1.0] * 6
    assert out.per_function["code_block"].tolist() == [1.0] * 6
    assert out.outcomes["code_tests"] == {"passed": 6}


@pytest.mark.e2e
def test_train_cli_on_c_functions_logs_the_reward_and_its_outcomes(tmp_path, run_cli) -> None:  # type: ignore[no-untyped-def]
    from conftest import read_metrics, tiny_run_config

    data = {"train": "builtin:c-functions", "num_examples": 12, "difficulty": 2}
    data |= {"template": "plain", "eval_size": 2}
    rewards = [
        {"name": "code_tests", "params": {"timeout": 2.0}},
        {"name": "code_block", "weight": 0.1},
    ]
    evals = {"eval_every": 2, "eval_limit": 2, "eval_reward": "code_tests"}
    assert run_cli("train", "--config", tiny_run_config(tmp_path, data, rewards, **evals)) == 0
    metrics = read_metrics(tmp_path / "runs" / "r")
    assert [m["step"] for m in metrics] == [1, 2]
    for line in metrics:
        assert line["rewards/code_tests/errors"] == 0 and "rewards/code_tests/mean" in line
        assert "rewards/code_block/mean" in line
        outcomes = ("passed", "failed", "timeout", "compile_error", "no_code")
        assert sum(line.get(f"rewards/code_tests/{k}", 0) for k in outcomes) == 8
    assert metrics[1]["eval/pass@1"] == 0.0 and "eval/format_rate" in metrics[1]
