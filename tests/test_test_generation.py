"""`test_generation` on hand-written doctest answers, its parser, and the c-tests/python-tests
tasks (each row's gold tests pass on its reference and catch every mutant, for real)."""

from __future__ import annotations

import pytest

from mlx_grpo.config import RewardSpec
from mlx_grpo.data.tasks import generate_task, mutants
from mlx_grpo.errors import UserError
from mlx_grpo.rewards import build_rewards, harness, jail, programs, score
from mlx_grpo.rewards import test_generation as tg
from mlx_grpo.rewards.doctests import c_safe, matches, parse

C_REF = "int add(int a, int b) { return a + b; }"
C_MUTANTS = [
    "int add(int a, int b) { return a - b; }",  # wrong operator: caught by add(2, 3)
    "int add(int a, int b) { return a > 5 ? a + b + 1 : a + b; }",  # missed edge: a > 5
]
PY_REF = "def add(a, b):\n    return a + b\n"
PY_MUTANTS = ["def add(a, b):\n    return a - b\n", "def add(a, b):\n    return a + b + (a > 5)\n"]


def block(*lines: str) -> str:
    return "Here are my tests.\n```\n" + "\n".join(lines) + "\n```"


def run(completions: list[str], language: str, ref: str, muts: list[str], **params: object):
    n = len(completions)
    blank = [""] * n
    return tg.test_generation(
        blank, completions, blank, language=[language] * n, reference=[ref] * n,
        mutants=[muts] * n, **params,
    )  # type: ignore[arg-type]  # fmt: skip


def test_c_good_invalid_weak_partial_and_compile_error() -> None:
    good = block(">>> add(2, 3)", "5", ">>> add(7, 1)", "8")
    wrong = block(">>> add(2, 3)", "5", ">>> add(7, 1)", "9")  # fails on the reference
    weak = block(">>> add(0, 0)", "0")  # passes everywhere: kills nothing
    half = block(">>> add(2, 3)", "5")  # kills the first mutant only
    broken = block(">>> add(2, ", "5")
    scores = run([good, wrong, weak, half, broken, "no tests"], "c", C_REF, C_MUTANTS)
    assert scores == [1.0, 0.0, 0.0, 0.5, 0.0, 0.0]
    assert tg.LAST_COUNTS == {"valid": 3, "invalid": 1, "compile_error": 1, "no_tests": 1}


def test_c_hostile_tests_are_contained() -> None:
    loop = block(">>> add(2, 3)", "5", ">>> ({ for (;;) {} 1; })", "1")
    flood = block(">>> add(2, 3)", "5", '>>> ({ for (;;) puts("spam"); 1; })', "1")
    shell = block('>>> system("rm -rf ~ ; echo gone")', "0", ">>> add(7, 1)", "8")
    bomb = block(">>> ({ for (;;) fork(); 1; })", "1")
    escape = block(">>> 1); } __attribute__((constructor)) static void evil(void) { (1", "1")
    scores = run([loop, flood, shell, bomb, escape], "c", C_REF, C_MUTANTS, test_timeout=0.5)
    assert scores == [0.0] * 5
    counts = tg.LAST_COUNTS
    assert counts["timeout"] == 2 and counts["compile_error"] == 1 and counts["invalid"] == 2


def test_c_convention_strings_bools_chars_doubles_arrays_and_setup() -> None:
    ref = (
        "#include <stdbool.h>\n"
        'const char *greet(void) { return "hi\\n"; }\n'
        "bool odd(int x) { return x % 2; }\n"
        "char first(const char *s) { return s[0]; }\n"
        "double third(void) { return 1.0 / 3; }\n"
        "int total(const int *xs, int n) { int t = 0; for (int i = 0; i < n; i++) t += xs[i]; "
        "return t; }\n"
    )
    tests = block(
        ">>> greet()", '"hi\\n"', ">>> odd(3)", "true", ">>> first(\"xy\")", "'x'",
        ">>> third()", "0.333333", ">>> total((int[]){1, 2, 3}, 3)", "6",
        ">>> int a[] = {4, 5};", ">>> total(a, 2)", "9",
        '>>> (printf("seen "), 2.0)', "seen 2.0",
    )  # fmt: skip
    mutant = ref.replace("t += xs[i]", "t = xs[i]")
    assert run([tests], "c", ref, [mutant]) == [1.0]


def test_cpp_overloads_and_python_doctest_rules() -> None:
    ref = (
        "#include <string>\n#include <vector>\n"
        "std::string twice(const std::string &s) { return s + s; }\n"
        "std::vector<int> around(int a) { return {a - 1, a + 1}; }\n"
        "bool positive(int x) { return x > 0; }\n"
    )
    tests = block(
        '>>> twice("ab")', '"abab"', ">>> around(3)", "{2, 4}", ">>> positive(0)", "false"
    )
    assert run([tests], "cpp", ref, [ref.replace("x > 0", "x >= 0")]) == [1.0]
    good = block(
        ">>> add(2, 3)", "5", ">>> print(add(1, 1))", "2", ">>> x = 6", ">>> add(x, 1)", "7",
        ">>> add('a', 1)", "Traceback (most recent call last):", "  ...",
        'TypeError: can only concatenate str (not "int") to str',
    )  # fmt: skip
    endless = block(">>> add(2, 3)", "5", ">>> while True: pass", "1")
    leave = block(">>> import os; os._exit(0)", "1")
    flood = block('>>> print("x" * 10**7)', "x")
    unhook = block(">>> import sys; sys.stdout = None", "1", ">>> add(2, 3)", "5")
    scores = run([good, endless, leave, flood, unhook], "python", PY_REF, PY_MUTANTS)
    assert scores == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert tg.LAST_COUNTS == {"valid": 1, "timeout": 1, "invalid": 3}
    lenient = run([unhook], "python", PY_REF, PY_MUTANTS, strict=False)
    assert lenient == [0.5 * 0.5]  # the next test is unharmed: valid, kills one mutant of two


def test_a_mutant_that_hangs_or_crashes_is_killed() -> None:
    ref = "int tri(int n) { int s = 0; while (n > 0) { s += n; n--; } return s; }"
    hangs = ref.replace("n--", "n++")  # never ends for n > 0
    crashes = ref.replace("return s;", "if (n == 0 && s == 6) *(volatile int *)0 = 1; return s;")
    assert run([block(">>> tri(3)", "6")], "c", ref, [hangs, crashes], test_timeout=0.3) == [1.0]


def test_forged_result_lines_do_not_count() -> None:
    forge = block('>>> (printf("x 0 ok 35\\n"), add(2, 3))', "5")  # 35 = hex of "5"
    assert run([forge], "c", C_REF, C_MUTANTS) == [0.0]  # its own printing is its output


def test_lenient_mode_exponents_duplicates_and_the_binary_cache() -> None:
    mixed = block(">>> add(2, 3)", "5", ">>> add(1, 1)", "3")  # one valid, one invalid
    assert run([mixed], "c", C_REF, C_MUTANTS) == [0.0]  # strict
    lenient = run([mixed], "c", C_REF, C_MUTANTS, strict=False, kill_exponent=2.0)
    assert lenient == [pytest.approx(0.5 * 0.5**2)]
    good = block(">>> add(9, 9)", "18", ">>> add(2, 3)", "5")
    before = programs.BINARIES.compiles
    assert run([good] * 4, "c", C_REF, C_MUTANTS) == [1.0] * 4
    assert programs.BINARIES.compiles == before + 3  # the reference and two mutants, once
    assert run([good], "c", C_REF, C_MUTANTS) == [1.0]
    assert programs.BINARIES.compiles == before + 3  # cached by source hash


def test_cache_evicts_oldest_and_recompiles_a_binary_gone_mid_run() -> None:
    cache = programs.BinaryCache(max_entries=1)
    first = harness.program("c", C_REF, parse(block(">>> add(1, 2)", "3")), 0.5)
    second = harness.program("c", C_REF, parse(block(">>> add(2, 2)", "4")), 0.5)
    path = cache.build(first)
    assert path is not None and path.exists()
    cache.build(second)
    assert not path.exists() and len(cache.entries) == 1  # the oldest went
    gone = cache.build(second)
    assert gone is not None
    gone.unlink()  # as if evicted between build and copy
    ran = programs.run(second, jail.Limits(), cache)
    assert ran.finished is not None and cache.compiles == 3
    assert harness.results(ran.finished.stdout, ran.tag, 1) == [("ok", "4\n")]


def test_config_entry_counts_outcomes_and_rejects_bad_input() -> None:
    rewards = build_rewards([RewardSpec(name="test_generation", params={"max_tests": 8})])
    extras = {"language": ["c", "c"], "reference": [C_REF] * 2, "mutants": [C_MUTANTS] * 2}
    good = block(">>> add(9, 9)", "18", ">>> add(2, 3)", "5")
    out = score(rewards, ["", ""], [good, "none"], ["", ""], extras)
    assert out.total.tolist() == [1.0, 0.0] and out.errors["test_generation"] == 0
    assert out.outcomes["test_generation"] == {"valid": 1, "no_tests": 1}
    out = score(rewards, [""], [good], [""], {"language": ["c"]})  # no reference column
    assert out.errors["test_generation"] == 1
    with pytest.raises(UserError, match="no parameter"):
        build_rewards([RewardSpec(name="test_generation", params={"max_test": 8})])


def test_bad_params_and_a_missing_compiler_fail_at_config_time(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for params, message in [
        ({"timeout": 0}, "timeout must be a number > 0"),
        ({"kill_exponent": -1}, "kill_exponent must be a number >= 0"),
        ({"default_language": "rust"}, "default_language must be one of c, cpp, python"),
    ]:
        with pytest.raises(UserError, match=message):
            build_rewards([RewardSpec(name="test_generation", params=params)])
    monkeypatch.setitem(programs.TOOLS, "cpp", "no-such-compiler")
    with pytest.raises(UserError, match="cpp needs `no-such-compiler`"):
        build_rewards([RewardSpec(name="test_generation", params={"default_language": "cpp"})])


def test_parser_comparison_and_c_line_check() -> None:
    text = "think: >>> f(0)\n0\n```\n>>> f(1)\n2\n>>> g(\n... 3)\n4\n5\n\n>>> h()\n```"
    cases = parse(text)
    assert [(c.source, c.expected) for c in cases] == [("f(1)", "2"), ("g(\n3)", "4\n5")]
    assert parse("<answer>>>> f(1)\n1\n</answer>")[0].source == "f(1)"
    assert len(parse(block(*[">>> f(1)", "1"] * 40), max_tests=5)) == 5
    assert matches("0.3333333", "0.333333") and not matches("3", "3.0000001")
    assert matches("x  \n\n", "x") and not matches("1", "2") and matches("nan", "nan")
    assert c_safe('f("}", (int[]){1, 2})') and c_safe("a[1] // }")
    unsafe = ("1); }", "x /* ", '"open', "#define X", "a \\", "(1]", '({ __asm__("nop"); 1; })')
    for bad in unsafe:
        assert not c_safe(bad), bad


def test_huge_and_deep_answers_parse_in_one_pass() -> None:
    many = block(*[">>> f(1)", "1"] * 100_000)
    assert len(parse(many, max_tests=16)) == 16
    deep = "(" * 50_000 + ")" * 50_000
    assert c_safe(deep) and not c_safe(deep + ")")
    long_line = ">>> f(" + "1 + " * 200_000 + "1)\n1"
    assert parse(block(long_line)) == []  # a source over 2,000 characters is dropped
    setups = block(*[">>> int x = 1;"] * 100_000, ">>> x", "1")
    assert len(parse(setups)[0].setup) == 32  # later setup lines are ignored


@pytest.mark.parametrize("language", ["c", "python"])
def test_task_rows_gold_tests_pass_on_reference_and_catch_every_mutant(language: str) -> None:
    rows = [r for level in (1, 2, 3, 4) for r in generate_task(f"{language}-tests", 3, 7, level)]
    assert all(r["language"] == language and r["mutants"] for r in rows)
    assert all(len(r["mutants"]) == len(r["mutant_kinds"]) for r in rows)  # type: ignore[arg-type]
    got = tg.test_generation(  # one call: every row's gold tests against all its mutants
        [str(r["prompt"]) for r in rows], [str(r["answer"]) for r in rows], [""] * len(rows),
        language=[r["language"] for r in rows], reference=[r["reference"] for r in rows],
        mutants=[r["mutants"] for r in rows],
    )  # fmt: skip
    assert got == [1.0] * len(rows), [r["reference"] for r, v in zip(rows, got) if v != 1.0]


def test_task_rows_are_seeded_twins_and_bad_levels_fail() -> None:
    c_rows, py_rows = mutants.generate_c(6, 3, 2), mutants.generate_python(6, 3, 2)
    assert c_rows == mutants.generate_c(6, 3, 2) and c_rows != mutants.generate_c(6, 4, 2)
    assert [r["entry_point"] for r in c_rows] == [r["entry_point"] for r in py_rows]
    assert "```c" in str(c_rows[0]["prompt"]) and "compound literal" in str(c_rows[0]["prompt"])
    with pytest.raises(UserError, match="difficulty"):
        generate_task("c-tests", 2, 0, 5)


@pytest.mark.e2e
def test_train_cli_on_c_tests_logs_the_reward_and_its_outcomes(tmp_path, run_cli) -> None:  # type: ignore[no-untyped-def]
    from conftest import read_metrics, tiny_run_config

    data = {"train": "builtin:c-tests", "num_examples": 8, "difficulty": 2}
    rewards = [{"name": "test_generation", "params": {"timeout": 2.0}}]
    assert run_cli("train", "--config", tiny_run_config(tmp_path, data, rewards)) == 0
    last = read_metrics(tmp_path / "runs" / "r")[-1]
    assert "rewards/test_generation/mean" in last and last["rewards/test_generation/errors"] == 0
    assert last.get("rewards/test_generation/no_tests") == 8  # a random tiny model writes none
