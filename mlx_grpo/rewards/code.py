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

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlx_grpo.errors import UserError
from mlx_grpo.rewards import jail, programs
from mlx_grpo.rewards.doctests import fenced_blocks
from mlx_grpo.rewards.harness import Program

FENCE = "```"
COMPILERS = {"c": ("cc", "prog.c", ["-std=c11"]), "cpp": ("c++", "prog.cpp", ["-std=c++17"])}
LAST_COUNTS: dict[str, int] = {}
# The judge never trusts the model's process: each test runs in a forked child with its
# stdout and stderr on /dev/null, and a pass is an 8-byte random nonce the child writes to a
# pipe after the test expression came out true (an answer that calls `_exit(0)` or prints
# result lines proves nothing); the pipe is read once the child has exited, without waiting
# on processes the answer forked. The run's tag comes from the file `tag` (programs.run writes
# it, so the binary holds no secret and is cached by source hash), read and removed first.
C_MAIN = """
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
static int mlx_grpo_test(int i) {{ switch (i) {{ {cases} }} return 0; }}
static void mlx_grpo_child(int i, int fd, uint64_t nonce, char *tag) {{
  memset(tag, 0, 64);
  int null = open("/dev/null", O_WRONLY);
  dup2(null, 1); dup2(null, 2);
  if (mlx_grpo_test(i)) (void)!write(fd, &nonce, sizeof nonce);
  _exit(0);
}}
int main(void) {{
  char tag[64] = {{0}};
  int tf = open("tag", O_RDONLY);
  if (tf < 0 || read(tf, tag, 32) <= 0) return 3;
  close(tf); unlink("tag");
  int rnd = open("/dev/urandom", O_RDONLY);
  for (int i = 0; i < {n}; i++) {{
    uint64_t nonce = 0, got = 0; int fd[2];
    if (rnd < 0 || read(rnd, &nonce, sizeof nonce) != sizeof nonce || pipe(fd)) return 4;
    fflush(stdout); pid_t p = fork();
    if (p == 0) {{ close(fd[0]); mlx_grpo_child(i, fd[1], nonce, tag); }}
    close(fd[1]);
    int st = 1; if (p > 0) waitpid(p, &st, 0);
    fcntl(fd[0], F_SETFL, O_NONBLOCK);  /* a forked leftover may hold the pipe open */
    ssize_t k = p > 0 ? read(fd[0], &got, sizeof got) : 0;
    close(fd[0]);
    printf("%s %d %d\\n", tag, i, k == sizeof got && got == nonce);
  }}
  return 0;
}}
"""
PY_MAIN = """
import ast, os, sys
PLAIN = (int, float, complex, str, bytes, bool, type(None))


def plain(x):
    if type(x) in PLAIN:
        return True
    if type(x) in (list, tuple, set, frozenset):
        return all(plain(v) for v in x)
    return type(x) is dict and all(plain(k) and plain(v) for k, v in x.items())


def holds(test, ns):
    tree = ast.parse(test, mode="eval").body
    if isinstance(tree, ast.Compare) and len(tree.ops) == 1 and isinstance(tree.ops[0], ast.Eq):
        sides = [eval(compile(ast.Expression(e), "test", "eval"), ns)
                 for e in (tree.left, tree.comparators[0])]
        return all(plain(v) for v in sides) and sides[0] == sides[1]
    return eval(test, ns) is True


def child(test, fd, nonce):
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1); os.dup2(null, 2)
    ns = {{"__name__": "__main__"}}
    try:
        exec(compile(open("prog.py").read(), "prog.py", "exec"), ns)
        ok = holds(test, ns)
    except BaseException:
        ok = False
    if ok is True:
        os.write(fd, nonce)
    os._exit(0)


def main():
    with open("tag") as f:
        tag = f.read().strip()
    os.remove("tag")
    try:
        compile(open("prog.py").read(), "prog.py", "exec")
    except (SyntaxError, ValueError):
        sys.exit(97)
    for i, test in enumerate({tests!r}):
        nonce, (r, w) = os.urandom(8), os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            tag = None
            child(test, w, nonce)
        os.close(w)
        os.waitpid(pid, 0)
        os.set_blocking(r, False)  # a forked leftover may hold the pipe open
        try:
            got = os.read(r, 8)
        except BlockingIOError:
            got = b""
        os.close(r)
        print(tag, i, int(got == nonce), flush=True)


main()
"""


def extract_code(completion: str) -> str | None:
    """The last fenced block (linear scan of lines), else the whole text when it is not empty."""
    blocks = fenced_blocks(completion)
    code = blocks[-1] if blocks else completion
    return code if code.strip() else None


def _clean_test(test: str) -> str:
    test = test.strip().removesuffix(";").strip()
    return test.removeprefix("assert ").strip()


def _program(language: str, code: str, tests: list[str]) -> Program:
    """What to build and run; no secret in it, so equal answers share one binary."""
    if language == "python":
        files = {"prog.py": code, "main.py": PY_MAIN.format(tests=tests)}
        return Program(files, None, ("python3", "main.py"))
    compiler, name, flags = COMPILERS[language]
    cases = " ".join(f"case {i}: return ({t});" for i, t in enumerate(tests))
    source = code + "\n" + C_MAIN.format(cases=cases, n=len(tests))
    build = (compiler, *flags, "-O1", "-o", "prog", name, "-lm")
    return Program({name: source}, build, ("./prog",))


def _run_one(language: str, code: str, tests: list[str], limits: jail.Limits) -> tuple[float, str]:
    ran = programs.run(_program(language, code, tests), limits)
    done = ran.finished
    if done is None or (language == "python" and done.returncode == 97):
        return 0.0, "compile_error"
    passed = _passed(done.stdout, ran.tag, len(tests))
    kind = "timeout" if done.timed_out else "passed" if passed == len(tests) else "failed"
    return passed / max(len(tests), 1), kind


def _passed(stdout: bytes, tag: str, n: int) -> int:
    seen: dict[int, bool] = {}
    for line in stdout.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == tag and parts[1].isdigit() and int(parts[1]) < n:
            seen.setdefault(int(parts[1]), parts[2] == "1")
    return sum(seen.values())


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
    width = programs.pool_width(len(completions), memory_mb)
    with ThreadPoolExecutor(max_workers=width) as pool:  # waits for every job
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


def check_params(params: dict[str, Any]) -> None:
    """Config-time checks: limits in range, a known default language whose tool runs."""
    for name in ("timeout", "memory_mb"):
        value = params.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise UserError(f"reward code_tests: {name} must be a number > 0, not {value!r}")
    language = params.get("default_language", "c")
    if language not in programs.TOOLS:
        raise UserError(
            f"reward code_tests: default_language must be one of {', '.join(programs.TOOLS)}, "
            f"not {language!r}"
        )
    if "default_language" in params:  # otherwise the rows' languages decide (check_rows)
        programs.require_tool(language, "code_tests")


def check_rows(rows: list[dict[str, Any]], params: dict[str, Any]) -> None:
    """Before the model loads: every row's language is known and its tool runs."""
    default = params.get("default_language", "c")
    for language in sorted({str(row.get("language") or default) for row in rows}):
        if language not in programs.TOOLS:
            raise UserError(
                f"reward code_tests: a row's language is {language!r}; "
                f"use one of {', '.join(programs.TOOLS)}"
            )
        programs.require_tool(language, "code_tests")


code_tests.check_params = check_params  # type: ignore[attr-defined]  # library.bind_params
code_tests.check_rows = check_rows  # type: ignore[attr-defined]  # rewards.check_rows
