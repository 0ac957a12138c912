"""Programs that run a model's doctest-style tests against one implementation (C, C++, Python).

One program holds the implementation and all the tests. Its `main` runs each test in a forked
child (own process group, stdout a pipe, a time limit per test, output capped), then prints
one line per test: `TAG i STATUS HEX`, STATUS one of ok, crash, timeout, overflow, error, HEX
the bytes the test printed (ok only). TAG is random per run and reaches the program only
through a file that `main` reads and deletes before the first test; children wipe it, the
parent writes its lines with `write(2)` (no stdio buffer holds them) and on Linux makes
itself undumpable, so a test's code can neither read the tag nor reach the parent's stdout.
The sources are not in the directory a program runs in (binaries run from a cache; Python
deletes its files).

What a test prints (the convention the prompt states, `docs/code-rewards.md`):

- integers of any width, signed or not (`signed char`, `unsigned char` too): decimal, `-3`;
- `bool` / `_Bool`: `true`, `false` (Python: `True`, `False`);
- `char`: quoted and escaped, `'a'`, `'\\n'`;
- `float`, `double`, `long double`: the shortest text that reads back, `.0` added to whole
  numbers (`2.5`, `3.0`, as Python's `repr`);
- `char *`, `const char *`, `std::string`: quoted and escaped, `"hi\\n"`; a null pointer `NULL`;
- C++ only: `std::vector` and `std::pair` as `{1, 2, 3}`, anything else `std::cout <<` prints
  as it prints it;
- Python: `repr` of the value, as doctest does (`'hi'`, `[1, 2]`);

followed by a newline, after anything the test itself printed (doctest's rule). In C other
types do not compile. C tests may use C expressions C++ lacks (compound literals
`(int[]){1, 2}`), which is why C tests are compiled as C11 with `_Generic`, not as C++.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from mlx_grpo.rewards.doctests import Case

TEST_OUTPUT_CAP = 4096  # bytes one test may print before it counts as `overflow`


def output_bytes(n_tests: int) -> int:
    """Enough of a program's stdout to hold every result line (hex doubles the bytes)."""
    return n_tests * (2 * TEST_OUTPUT_CAP + 64) + 4096


STATUSES = ("ok", "crash", "timeout", "overflow", "error")

POSIX_HEADERS = """#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
"""
C_SHOW = r"""#include <stdbool.h>
#include <math.h>
static void mlxg_esc(char c, char quote) {
  unsigned char u = (unsigned char)c;
  if (c == '\\' || c == quote) printf("\\%c", c);
  else if (c == '\n') fputs("\\n", stdout);
  else if (c == '\t') fputs("\\t", stdout);
  else if (c == '\r') fputs("\\r", stdout);
  else if (u < 32 || u >= 127) printf("\\x%02x", u);
  else putchar(c);
}
static void mlxg_show_bool(bool v) { fputs(v ? "true" : "false", stdout); }
static void mlxg_show_char(char c) { putchar('\''); mlxg_esc(c, '\''); putchar('\''); }
static void mlxg_show_ll(long long v) { printf("%lld", v); }
static void mlxg_show_ull(unsigned long long v) { printf("%llu", v); }
static void mlxg_show_double(double v) {
  char buf[64];
  if (isnan(v)) { fputs("nan", stdout); return; }
  if (isinf(v)) { fputs(v < 0 ? "-inf" : "inf", stdout); return; }
  for (int p = 1; p <= 17; p++) {
    snprintf(buf, sizeof buf, "%.*g", p, v);
    if (strtod(buf, 0) == v) break;
  }
  fputs(buf, stdout);
  if (!strpbrk(buf, ".e")) fputs(".0", stdout);
}
static void mlxg_show_str(const char *s) {
  if (!s) { fputs("NULL", stdout); return; }
  putchar('"');
  for (; *s; s++) mlxg_esc(*s, '"');
  putchar('"');
}
"""
C_DISPATCH = r"""#define MLXG_SHOW(x) _Generic((x), bool: mlxg_show_bool, char: mlxg_show_char, \
  signed char: mlxg_show_ll, short: mlxg_show_ll, int: mlxg_show_ll, long: mlxg_show_ll, \
  long long: mlxg_show_ll, unsigned char: mlxg_show_ull, unsigned short: mlxg_show_ull, \
  unsigned int: mlxg_show_ull, unsigned long: mlxg_show_ull, unsigned long long: mlxg_show_ull, \
  float: mlxg_show_double, double: mlxg_show_double, long double: mlxg_show_double, \
  char *: mlxg_show_str, const char *: mlxg_show_str)(x)
"""
CPP_SHOW = r"""#include <cstddef>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
static void mlxg_show(bool v) { fputs(v ? "true" : "false", stdout); }
static void mlxg_show(char c) { putchar('\''); mlxg_esc(c, '\''); putchar('\''); }
static void mlxg_show(long long v) { printf("%lld", v); }
static void mlxg_show(unsigned long long v) { printf("%llu", v); }
static void mlxg_show(signed char v) { mlxg_show((long long)v); }
static void mlxg_show(short v) { mlxg_show((long long)v); }
static void mlxg_show(int v) { mlxg_show((long long)v); }
static void mlxg_show(long v) { mlxg_show((long long)v); }
static void mlxg_show(unsigned char v) { mlxg_show((unsigned long long)v); }
static void mlxg_show(unsigned short v) { mlxg_show((unsigned long long)v); }
static void mlxg_show(unsigned int v) { mlxg_show((unsigned long long)v); }
static void mlxg_show(unsigned long v) { mlxg_show((unsigned long long)v); }
static void mlxg_show(double v) { mlxg_show_double(v); }
static void mlxg_show(float v) { mlxg_show_double(v); }
static void mlxg_show(long double v) { mlxg_show_double((double)v); }
static void mlxg_show(const char *s) { mlxg_show_str(s); }
static void mlxg_show(char *s) { mlxg_show_str(s); }
static void mlxg_show(std::nullptr_t) { fputs("NULL", stdout); }
static void mlxg_show(const std::string &s) {
  putchar('"');
  for (char c : s) mlxg_esc(c, '"');
  putchar('"');
}
static void mlxg_show(std::string_view s) { mlxg_show(std::string(s)); }
template <class T> static auto mlxg_show(const T &v) -> decltype(std::cout << v, void()) {
  std::cout << v;
  std::cout.flush();
}
template <class A, class B> static void mlxg_show(const std::pair<A, B> &p) {
  putchar('{'); mlxg_show(p.first); fputs(", ", stdout); mlxg_show(p.second); putchar('}');
}
template <class T> static void mlxg_show(const std::vector<T> &v) {
  putchar('{');
  for (std::size_t i = 0; i < v.size(); i++) { if (i) fputs(", ", stdout); mlxg_show(v[i]); }
  putchar('}');
}
#define MLXG_SHOW(x) mlxg_show(x)
"""
# The runner: C that also compiles as C++. {n} tests, {test_ms} ms each, {cap} bytes each.
C_MAIN = r"""
typedef void (*mlxg_fn)(void);
static mlxg_fn mlxg_tests[] = {{ {names} }};
static double mlxg_now(void) {{
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9;
}}
static const char *mlxg_collect(int fd, pid_t pid, unsigned char *buf, size_t *len) {{
  double deadline = mlxg_now() + {test_ms} / 1000.0;
  for (;;) {{
    int left = (int)((deadline - mlxg_now()) * 1000);
    if (left <= 0) return "timeout";
    struct pollfd p = {{ fd, POLLIN, 0 }};
    if (poll(&p, 1, left) <= 0) continue;
    ssize_t got = read(fd, buf + *len, {cap} - *len);
    if (got <= 0) return "ok";
    *len += (size_t)got;
    if (*len >= {cap}) return "overflow";
  }}
}}
static void mlxg_child(int i, int fd, char *tag) {{
  setpgid(0, 0);
  memset(tag, 0, 64);
  dup2(fd, 1); close(fd);
  mlxg_tests[i]();
  fflush(stdout);
  _exit(0);
}}
int main(void) {{
  char tag[64] = {{0}};
  static unsigned char buf[{cap}];
  static char line[2 * {cap} + 160];
  int tf = open("tag", O_RDONLY);
  if (tf < 0 || read(tf, tag, 32) <= 0) return 3;
  close(tf); unlink("tag");
#ifdef __linux__
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
  for (int i = 0; i < {n}; i++) {{
    int fd[2]; size_t len = 0; const char *status = "error"; int st = 0;
    fflush(stdout);
    pid_t pid = pipe(fd) == 0 ? fork() : -1;
    if (pid == 0) {{ close(fd[0]); mlxg_child(i, fd[1], tag); }}
    if (pid > 0) {{
      close(fd[1]);
      status = mlxg_collect(fd[0], pid, buf, &len);
      close(fd[0]);
      if (strcmp(status, "ok")) {{ kill(-pid, SIGKILL); kill(pid, SIGKILL); }}
      waitpid(pid, &st, 0);
      if (!strcmp(status, "ok") && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) status = "crash";
    }}
    int k = snprintf(line, sizeof line, "%s %d %s ", tag, i, status);
    if (strcmp(status, "ok")) len = 0;  /* only what passing runs printed matters */
    for (size_t j = 0; j < len; j++) k += snprintf(line + k, 3, "%02x", buf[j]);
    line[k++] = '\n';
    if (write(1, line, (size_t)k) < 0) return 4;
  }}
  return 0;
}}
"""
PY_HARNESS = r"""
import json, os, select, signal, sys, time, traceback

def child(ns, setup, source, w):
    os.setpgid(0, 0)
    os.dup2(w, 1)
    os.close(w)
    sys.stdout = open(1, "w", closefd=False)
    try:
        try:
            for line in setup:
                exec(compile(line + "\n", "<setup>", "exec"), ns)
            exec(compile(source + "\n", "<test>", "single"), ns)
        except BaseException as exc:
            print("Traceback (most recent call last):")
            print(traceback.format_exception_only(type(exc), exc)[-1], end="")
        sys.stdout.flush()
    finally:  # whatever the test did to sys or print, this child never returns
        os._exit(0)

def collect(r, pid, test_s, cap):
    data, deadline = b"", time.monotonic() + test_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", data
        if not select.select([r], [], [], left)[0]:
            continue
        got = os.read(r, cap - len(data))
        if not got:
            return "ok", data
        data += got
        if len(data) >= cap:
            return "overflow", data

def run(ns, i, setup, source, spec, tag):
    r, w = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        child(ns, setup, source, w)
    os.close(w)
    status, data = collect(r, pid, spec["test_s"], spec["cap"])
    os.close(r)
    if status != "ok":
        for target in (-pid, pid):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError:
                pass
    _, st = os.waitpid(pid, 0)
    if status == "ok" and not (os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0):
        status = "crash"
    data = data if status == "ok" else b""
    os.write(1, f"{tag} {i} {status} {data.hex()}\n".encode())

def main():
    with open("tag") as f:
        tag = f.read().strip()
    with open("tests.json") as f:
        spec = json.load(f)
    with open("impl.py") as f:
        impl = f.read()
    for name in ("tag", "tests.json", "impl.py", "harness.py"):
        os.remove(name)
    try:
        import ctypes
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    except Exception:
        pass
    ns = {"__name__": "__main__"}
    try:
        exec(compile(impl, "impl.py", "exec"), ns)
    except BaseException:
        sys.exit(97)
    for i, (setup, source) in enumerate(spec["tests"]):
        run(ns, i, setup, source, spec, tag)

main()
"""


class Program(NamedTuple):
    """What to build and run: files to write, the compile command (None: nothing to compile)
    and the command that runs it."""

    files: dict[str, str]
    compile: tuple[str, ...] | None
    run: tuple[str, ...]


def _statement(line: str) -> str:
    line = line.strip()
    return line if line.endswith((";", "}")) else line + ";"


def _c_tests(cases: list[Case]) -> str:
    bodies = []
    for i, case in enumerate(cases):
        setup = "\n".join(_statement(s) for s in case.setup)
        bodies.append(
            f"static void mlxg_t{i}(void) {{\n{setup}\nMLXG_SHOW(\n{case.source}\n);\n"
            "putchar('\\n');\n}\n"
        )
    return "".join(bodies)


def c_program(language: str, impl: str, cases: list[Case], test_s: float) -> Program:
    """A C (`c`) or C++ (`cpp`) program running `cases` against `impl` (see module doc)."""
    show = C_SHOW + (C_DISPATCH if language == "c" else CPP_SHOW)
    names = ", ".join(f"mlxg_t{i}" for i in range(len(cases)))
    main = C_MAIN.format(names=names, n=len(cases), test_ms=int(test_s * 1000), cap=TEST_OUTPUT_CAP)
    source = POSIX_HEADERS + show + '#line 1 "impl"\n' + impl + "\n" + _c_tests(cases) + main
    if language == "c":
        flags = ("-std=c11", "-O1", "-w", "-o", "prog", "prog.c", "-lm")
        return Program({"prog.c": source}, ("cc", *flags), ("./prog",))
    flags = ("-std=c++17", "-O1", "-w", "-o", "prog", "prog.cpp", "-lm")
    return Program({"prog.cpp": source}, ("c++", *flags), ("./prog",))


def python_program(impl: str, cases: list[Case], test_s: float) -> Program:
    """A Python program running `cases` against `impl` in forked children."""
    spec = {"tests": [[list(c.setup), c.source] for c in cases], "test_s": test_s}
    spec["cap"] = TEST_OUTPUT_CAP
    files = {"harness.py": PY_HARNESS, "impl.py": impl, "tests.json": json.dumps(spec)}
    return Program(files, None, ("python3", "-I", "harness.py"))


def program(language: str, impl: str, cases: list[Case], test_s: float) -> Program:
    """The program for `language` ("c", "cpp" or "python")."""
    if language == "python":
        return python_program(impl, cases, test_s)
    return c_program(language, impl, cases, test_s)


def results(stdout: bytes, tag: str, n: int) -> list[tuple[str, str] | None]:
    """(status, printed text) per test from the tagged lines; None where a test has none."""
    found: list[tuple[str, str] | None] = [None] * n
    for line in stdout.decode("ascii", errors="replace").splitlines():
        parts = line.split(" ")
        if len(parts) != 4 or parts[0] != tag or not parts[1].isdigit():
            continue
        i, status, data = int(parts[1]), parts[2], parts[3]
        if i >= n or status not in STATUSES or found[i] is not None:
            continue
        try:
            found[i] = (status, bytes.fromhex(data).decode(errors="replace"))
        except ValueError:
            continue
    return found
