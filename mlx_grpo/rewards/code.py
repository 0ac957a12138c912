"""`code_tests`: compile the model's function (C, C++ or Python) and run the row's hidden tests.

A row carries `language` ("c", "cpp" or "python"; rows without one use the
`default_language` parameter) and
`tests`, a list of boolean expressions in that language (a leading `assert` and trailing `;`
are dropped). The code is the last fenced block of the answer (or the whole answer when it
has none). The program prints one result line per test, each test in its own forked child
(C/C++) so a crash fails only that test. Every compile and run goes through `jail`.
Score: passed / tests (or 1/0 with `all_or_nothing`). Outcomes are counted per call in
`LAST_COUNTS`: passed, failed, timeout, compile_error, no_code.
"""

from __future__ import annotations

import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlx_grpo.rewards import jail

FENCE = "```"
COMPILERS = {"c": ("cc", "prog.c", ["-std=c11"]), "cpp": ("c++", "prog.cpp", ["-std=c++17"])}
LAST_COUNTS: dict[str, int] = {}
C_MAIN = """
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>
static int mlx_grpo_test(int i) {{ switch (i) {{ {cases} }} return 0; }}
int main(void) {{
  for (int i = 0; i < {n}; i++) {{
    fflush(stdout); pid_t p = fork();
    if (p == 0) _exit(mlx_grpo_test(i) ? 0 : 1);
    int st = 1; if (p > 0) waitpid(p, &st, 0);
    printf("{tag} %d %d\\n", i, p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }}
  return 0;
}}
"""
PY_MAIN = """
import sys
ns = {{}}
try:
    exec(compile(open("prog.py").read(), "prog.py", "exec"), ns)
except SyntaxError:
    sys.exit(97)
for i, test in enumerate({tests!r}):
    try:
        ok = bool(eval(test, ns))
    except BaseException:
        ok = False
    print("{tag}", i, int(ok), flush=True)
"""


def extract_code(completion: str) -> str | None:
    """The last fenced block (linear scan of lines), else the whole text when it is not empty."""
    blocks, current = [], None
    for line in completion.splitlines():
        if line.strip().startswith(FENCE):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    code = blocks[-1] if blocks else completion
    return code if code.strip() else None


def _clean_test(test: str) -> str:
    test = test.strip().removesuffix(";").strip()
    return test.removeprefix("assert ").strip()


def _program(language: str, code: str, tests: list[str], tag: str) -> tuple[str, str]:
    if language == "python":
        return "prog.py", code
    cases = " ".join(f"case {i}: return ({t});" for i, t in enumerate(tests))
    return COMPILERS[language][1], code + "\n" + C_MAIN.format(cases=cases, n=len(tests), tag=tag)


def _run_one(language: str, code: str, tests: list[str], limits: jail.Limits) -> tuple[float, str]:
    tag = secrets.token_hex(8)
    name, source = _program(language, code, tests, tag)
    with jail.workdir() as cwd:
        (cwd / name).write_text(source)
        if language == "python":
            (cwd / "main.py").write_text(PY_MAIN.format(tests=tests, tag=tag))
            done = jail.run(["python3", "main.py"], cwd, limits)
            if done.returncode == 97:
                return 0.0, "compile_error"
        else:
            compiler, _, flags = COMPILERS[language]
            build = jail.run([compiler, *flags, "-O1", "-o", "prog", name, "-lm"], cwd, COMPILE)
            if build.returncode != 0 or not (cwd / "prog").exists():
                return 0.0, "compile_error"
            done = jail.run(["./prog"], cwd, limits)
    passed = _passed(done.stdout, tag, len(tests))
    kind = "timeout" if done.timed_out else "passed" if passed == len(tests) else "failed"
    return passed / max(len(tests), 1), kind


def _passed(stdout: bytes, tag: str, n: int) -> int:
    seen: dict[int, bool] = {}
    for line in stdout.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == tag and parts[1].isdigit() and int(parts[1]) < n:
            seen.setdefault(int(parts[1]), parts[2] == "1")
    return sum(seen.values())


COMPILE = jail.Limits(wall_s=30.0, cpu_s=20, memory_mb=2048, file_mb=64)


def code_tests(
    prompts: list[str],
    completions: list[str],
    answers: list[str],
    default_language: str = "c",
    all_or_nothing: bool = False,
    timeout: float = 5.0,
    memory_mb: int = 512,
    **extras: Any,
) -> list[float]:
    """Fraction of each row's hidden tests the completion's code passes (see module doc)."""
    limits = jail.Limits(
        wall_s=timeout,
        cpu_s=max(1, int(timeout + 1)),
        memory_mb=memory_mb,
        nice=jail.MODEL_NICENESS,
    )
    langs = extras.get("language") or [None] * len(completions)  # the row's column
    rows = extras.get("tests") or [[]] * len(completions)
    jobs: dict[tuple[str, str, tuple[str, ...]], Any] = {}
    keys: list[tuple[str, str, tuple[str, ...]] | None] = []
    with ThreadPoolExecutor(max_workers=max(4, 4 * (os.cpu_count() or 1))) as pool:  # waits
        for completion, lang, tests in zip(completions, langs, rows, strict=True):
            code, lang = extract_code(completion), lang or default_language
            key = None if code is None else (lang, code, tuple(_clean_test(t) for t in tests))
            if key is not None and key not in jobs:  # duplicate answers run once
                jobs[key] = pool.submit(_run_one, lang, code, list(key[2]), limits)
            keys.append(key)
        results = [("no_code", 0.0) if k is None else jobs[k].result()[::-1] for k in keys]
    LAST_COUNTS.clear()
    for kind, _ in results:
        LAST_COUNTS[kind] = LAST_COUNTS.get(kind, 0) + 1
    if all_or_nothing:
        return [1.0 if kind == "passed" else 0.0 for kind, _ in results]
    return [value for _, value in results]


code_tests.outcome_counts = LAST_COUNTS  # type: ignore[attr-defined]  # read by rewards.score
code_tests.default_timeout = 600.0  # type: ignore[attr-defined]  # a whole batch of programs
