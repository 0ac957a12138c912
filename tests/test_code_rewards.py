"""`code_tests` on hand-written completions: right code passes, each kind of bug fails."""

from __future__ import annotations

import pytest
from conftest import read_metrics, tiny_run_config, write_jsonl

from mlx_grpo.config import RewardSpec
from mlx_grpo.errors import UserError
from mlx_grpo.rewards import build_rewards, check_rows, code, programs, score

C_TESTS = ["add(2, 3) == 5", "add(-1, 1) == 0", "assert add(0, 0) == 0;"]
PY_TESTS = ["add(2, 3) == 5", "assert add(-1, 1) == 0", "add(0, 0) == 0"]


def run(completions: list[str], language: str, tests: list[str], **params: object) -> list[float]:
    n = len(completions)
    blank = [""] * n
    return code.code_tests(
        blank, completions, blank, language=[language] * n, tests=[tests] * n, **params
    )  # type: ignore[arg-type]


def test_c_correct_wrong_crash_loop_compile_error() -> None:
    good = "```c\nint add(int a, int b) { return a + b; }\n```"
    wrong = "```c\nint add(int a, int b) { return a - b; }\n```"  # passes add(0,0) only
    crash = "```c\nint add(int a, int b) { if (a) *(volatile int *)0 = 1; return b; }\n```"
    loop = "```c\nint add(int a, int b) { for (;;) {} }\n```"
    broken = "```c\nint add(int a, int b) { return a + ; }\n```"
    scores = run([good, wrong, crash, loop, broken, ""], "c", C_TESTS, timeout=2.0)
    assert scores[0] == 1.0
    assert scores[1] == pytest.approx(1 / 3)
    assert scores[2] == pytest.approx(1 / 3)  # add(0, 0) does not crash
    assert scores[3] == 0.0 and scores[4] == 0.0 and scores[5] == 0.0
    assert code.LAST_COUNTS["compile_error"] == 1 and code.LAST_COUNTS["passed"] == 1
    assert code.LAST_COUNTS["timeout"] == 1 and code.LAST_COUNTS["no_code"] == 1


def test_cpp_and_python() -> None:
    cpp = (
        "```cpp\n#include <vector>\n"
        "int add(int a, int b) { std::vector<int> v{a, b}; return v[0] + v[1]; }\n```"
    )
    assert run([cpp], "cpp", C_TESTS) == [1.0]
    good = "```python\ndef add(a, b):\n    return a + b\n```"
    off = "```python\ndef add(a, b):\n    return a + b + 1\n```"
    syntax = "```python\ndef add(a, b) return\n```"
    assert run([good, off, syntax], "python", PY_TESTS) == [1.0, 0.0, 0.0]
    assert code.LAST_COUNTS["compile_error"] == 1 and code.LAST_COUNTS["failed"] == 1


def test_forged_result_lines_do_not_count() -> None:
    forge = '```c\n#include <stdio.h>\nint add(int a, int b) { puts("x 0 1"); return 7; }\n```'
    assert run([forge], "c", C_TESTS) == [0.0]


def test_answers_that_fake_a_pass_fail() -> None:
    """The judge's own process decides: exiting early, overriding ==, printing lines or
    reading the harness's files never passes a test."""
    c_exit = "```c\n#include <unistd.h>\nint add(int a, int b) { _exit(0); }\n```"
    c_print = (
        "```c\n#include <stdio.h>\n#include <stdlib.h>\n"
        "int add(int a, int b) {\n"
        '  for (int i = 0; i < 3; i++) printf("x %d 1\\n", i);\n  exit(0);\n}\n```'
    )
    assert run([c_exit, c_print], "c", C_TESTS) == [0.0, 0.0]
    always = "    def __eq__(s, o): return True\n"
    eq = f"```python\nclass A:\n{always}def add(a, b):\n    return A()\n```"
    sub = f"```python\nclass I(int):\n{always}def add(a, b):\n    return I(9)\n```"
    leave = "```python\nimport os\nos._exit(0)\n```"
    peek = (
        "```python\nimport glob\nfor f in glob.glob('*'):\n    print(open(f).read())\n"
        "def add(a, b):\n    return 7\n```"
    )
    assert run([eq, sub, leave, peek], "python", PY_TESTS) == [0.0, 0.0, 0.0, 0.0]


def test_a_forked_leftover_does_not_stall_the_judge() -> None:
    """A process the answer forks keeps the result pipe open; the judge reads it once the
    test's child has exited, so a failed test is reported as failed, not as a timeout."""
    sleeper = (
        "```c\n#include <unistd.h>\n"
        "int add(int a, int b) { if (fork() == 0) sleep(30); return a - b; }\n```"
    )
    assert run([sleeper], "c", C_TESTS, timeout=5.0) == [pytest.approx(1 / 3)]
    assert code.LAST_COUNTS == {"failed": 1}


def test_equal_answers_share_one_compile() -> None:
    good = "```c\nint add(int a, int b) { return a + b + 0 * 17; }\n```"
    before = programs.BINARIES.compiles
    assert run([good], "c", C_TESTS) == [1.0] and run([good], "c", C_TESTS) == [1.0]
    assert programs.BINARIES.compiles == before + 1


def test_missing_compiler_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(programs, "tool_works", lambda tool: tool != "cc")
    with pytest.raises(UserError, match="needs `cc`"):
        build_rewards([RewardSpec(name="code_tests", params={"default_language": "c"})])
    rewards = build_rewards([RewardSpec(name="code_tests")])  # the rows decide
    check_rows(rewards, [{"language": "python"}, {"language": "cpp"}])
    with pytest.raises(UserError, match="needs `cc`"):
        check_rows(rewards, [{"language": "python"}, {}])  # no language: the default, c
    with pytest.raises(UserError, match="'fortran'"):
        check_rows(rewards, [{"language": "fortran"}])
    with pytest.raises(UserError, match="timeout must be"):
        build_rewards([RewardSpec(name="code_tests", params={"timeout": 0})])


def test_all_or_nothing_and_config_entry() -> None:
    wrong = "```c\nint add(int a, int b) { return a - b; }\n```"
    assert run([wrong], "c", C_TESTS, all_or_nothing=True) == [0.0]
    rewards = build_rewards([RewardSpec(name="code_tests", params={"default_language": "c"})])
    good = "```c\nint add(int a, int b) { return a + b; }\n```"
    out = score(rewards, [""], [good], [""], {"tests": [C_TESTS]})
    assert out.total.tolist() == [1.0] and out.errors["code_tests"] == 0
    assert out.outcomes["code_tests"] == {"passed": 1}
    with pytest.raises(UserError, match="no parameter"):
        build_rewards([RewardSpec(name="code_tests", params={"langauge": "c"})])


@pytest.mark.e2e
def test_train_cli_logs_code_reward_and_its_outcomes(tmp_path, run_cli) -> None:  # type: ignore[no-untyped-def]
    rows = [
        {
            "prompt": f"Write int add(int a, int b) in C ({i}).",
            "answer": "tests",
            "language": "c",
            "tests": ["add(1, 2) == 3"],
        }
        for i in range(4)
    ]
    data = {"train": str(write_jsonl(tmp_path / "t.jsonl", rows))}
    rewards = [{"name": "code_tests", "params": {"timeout": 2.0}}]
    assert run_cli("train", "--config", tiny_run_config(tmp_path, data, rewards)) == 0
    last = read_metrics(tmp_path / "runs" / "r")[-1]
    assert "rewards/code_tests/mean" in last and last["rewards/code_tests/errors"] == 0
    outcomes = ("passed", "failed", "timeout", "compile_error", "no_code")
    assert sum(last.get(f"rewards/code_tests/{k}", 0) for k in outcomes) == 8
