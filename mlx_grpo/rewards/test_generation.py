"""`test_generation`: the model writes doctest-style tests for given code; pay valid tests that
catch the row's mutants.

A row carries `language` ("c", "cpp" or "python"; else the `default_language` parameter),
`reference` (the right implementation, as source) and `mutants` (buggy variants of it). The
answer's tests are `>>> expression` lines each followed by the text it prints (`doctests`).
Each distinct (implementation, tests) pair is one sandboxed program that runs every test in
its own forked child (`harness`, `programs`); binaries are cached by source hash and a group's
duplicate answers run once; programs run concurrently in threads, every reference first,
each answer's mutants as soon as its reference run ends.

A test is valid when it passes on the reference. A mutant is killed when some valid test
fails on it (a wrong value, a crash, a timeout). The score is

    valid_fraction ** valid_exponent * killed_fraction ** kill_exponent

and with `strict` (the default) a single invalid test scores the answer 0 (the mutants are
then not run). A row with no mutants has killed_fraction 1. Each completion's outcome is
counted in `LAST_COUNTS` (`rewards/test_generation/<outcome>` in the metrics): valid (every
test passes on the reference), invalid (some test fails there), timeout (some test, or the
program, ran past its time limit there), compile_error (the tests do not compile with the
reference, or a C/C++ test line reaches outside its function), no_tests.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any, NamedTuple

from mlx_grpo.errors import UserError
from mlx_grpo.rewards import harness, jail, programs
from mlx_grpo.rewards.doctests import Case, c_safe, matches, parse
from mlx_grpo.rewards.harness import program, results

LANGUAGES = ("c", "cpp", "python")
POSITIVE = ("timeout", "test_timeout", "memory_mb", "max_tests")
NON_NEGATIVE = ("valid_exponent", "kill_exponent", "workers")
LAST_COUNTS: dict[str, int] = {}
Key = tuple[str, str, tuple[Case, ...]]
Row = tuple[str, str, list[str]]  # language, reference, mutants


class Settings(NamedTuple):
    limits: jail.Limits
    test_s: float
    strict: bool
    valid_exponent: float
    kill_exponent: float


class Verdict(NamedTuple):
    """Which tests passed on one implementation, and whether it compiled / timed out."""

    passed: tuple[bool, ...]
    compiled: bool
    timed_out: bool


def _judge(key: Key, settings: Settings) -> Verdict:
    language, impl, cases = key
    ran = programs.run(program(language, impl, list(cases), settings.test_s), settings.limits)
    if ran.finished is None or (language == "python" and ran.finished.returncode == 97):
        return Verdict((False,) * len(cases), False, False)
    found = results(ran.finished.stdout, ran.tag, len(cases))
    passed = tuple(
        r is not None and r[0] == "ok" and matches(r[1], c.expected)
        for r, c in zip(found, cases, strict=True)
    )
    slow = ran.finished.timed_out or any(r is not None and r[0] == "timeout" for r in found)
    return Verdict(passed, True, slow)


def _safe(language: str, cases: list[Case]) -> bool:
    if language == "python":
        return True
    return all(c_safe(c.source) and all(c_safe(s) for s in c.setup) for c in cases)


class Batch:
    """One call's programs: distinct (implementation, tests) keys, each run once."""

    def __init__(self, pool: ThreadPoolExecutor, settings: Settings) -> None:
        self.pool, self.settings = pool, settings
        self.jobs: dict[Key, Future[Verdict]] = {}

    def submit(self, key: Key) -> Future[Verdict]:
        if key not in self.jobs:
            self.jobs[key] = self.pool.submit(_judge, key, self.settings)
        return self.jobs[key]


def _outcome(verdict: Verdict) -> str:
    if not verdict.compiled:
        return "compile_error"
    if all(verdict.passed):
        return "valid"
    return "timeout" if verdict.timed_out else "invalid"


class Pending(NamedTuple):
    """A completion whose valid tests now run on the mutants."""

    outcome: str
    valid_fraction: float
    mutants: list[Future[Verdict]]


def _early(row: Row, cases: list[Case]) -> Pending | None:
    """The outcome of an answer that needs no program (no tests, an unsafe C/C++ line)."""
    if not cases:
        return Pending("no_tests", 0.0, [])
    if not _safe(row[0], cases):
        return Pending("compile_error", 0.0, [])
    return None


def _after_reference(batch: Batch, row: Row, cases: list[Case], verdict: Verdict) -> Pending:
    """Judge the tests on the reference; start the mutants' runs if they are to count."""
    language, _, mutants = row
    outcome = _outcome(verdict)
    valid = tuple(c for c, ok in zip(cases, verdict.passed, strict=True) if ok)
    if not valid or (batch.settings.strict and outcome != "valid"):
        return Pending(outcome, 0.0, [])
    runs = [batch.submit((language, m, valid)) for m in mutants]
    return Pending(outcome, len(valid) / len(cases), runs)


def _start_all(batch: Batch, rows: list[Row], parsed: list[list[Case]]) -> list[Pending]:
    """Every reference run starts at once; each answer's mutants start as its reference ends."""
    started: list[Pending | None] = [_early(row, cases) for row, cases in zip(rows, parsed)]
    waiting: dict[Future[Verdict], list[int]] = {}
    for i, (row, cases) in enumerate(zip(rows, parsed, strict=True)):
        if started[i] is None:
            waiting.setdefault(batch.submit((row[0], row[1], tuple(cases))), []).append(i)
    for future in as_completed(waiting):
        for i in waiting[future]:
            started[i] = _after_reference(batch, rows[i], parsed[i], future.result())
    return [p for p in started if p is not None]


def _finish(pending: Pending, settings: Settings, n_mutants: int) -> float:
    if pending.valid_fraction == 0.0:
        return 0.0
    killed = sum(not all(f.result().passed) and f.result().compiled for f in pending.mutants)
    kill_fraction = killed / n_mutants if n_mutants else 1.0
    return pending.valid_fraction**settings.valid_exponent * kill_fraction**settings.kill_exponent


def _rows(n: int, default_language: str, extras: dict[str, Any]) -> list[Row]:
    langs = extras.get("language") or [None] * n
    refs, mutants = extras.get("reference"), extras.get("mutants") or [[]] * n
    if refs is None:
        raise ValueError("test_generation needs a `reference` column (the right implementation)")
    rows = []
    for lang, ref, muts in zip(langs, refs, mutants, strict=True):
        lang = lang or default_language
        if lang not in LANGUAGES or not isinstance(ref, str):
            raise ValueError(f"test_generation: language {lang!r} / reference {type(ref).__name__}")
        rows.append((lang, ref, [str(m) for m in muts or []]))
    return rows


def test_generation(
    prompts: list[str],
    completions: list[str],
    answers: list[str],
    default_language: str = "c",
    timeout: float = 5.0,
    test_timeout: float = 0.5,
    memory_mb: int = 512,
    max_tests: int = 16,
    strict: bool = True,
    valid_exponent: float = 1.0,
    kill_exponent: float = 1.0,
    workers: int = 0,
    **extras: Any,
) -> list[float]:
    """Valid fraction x mutants killed for each completion's doctest lines (module doc)."""
    rows = _rows(len(completions), default_language, extras)
    limits = jail.Limits(
        wall_s=timeout,
        cpu_s=max(1, int(timeout + 1)),
        memory_mb=memory_mb,
        nice=jail.MODEL_NICENESS,
        output_bytes=harness.output_bytes(max_tests),
    )
    settings = Settings(limits, test_timeout, strict, valid_exponent, kill_exponent)
    width = workers or max(4, 4 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=width) as pool:
        batch = Batch(pool, settings)
        started = _start_all(batch, rows, [parse(c, max_tests) for c in completions])
        scores = [_finish(p, settings, len(row[2])) for p, row in zip(started, rows)]
    LAST_COUNTS.clear()
    for pending in started:
        LAST_COUNTS[pending.outcome] = LAST_COUNTS.get(pending.outcome, 0) + 1
    return scores


def check_params(params: dict[str, Any]) -> None:
    """Config-time checks: numbers in range, a known default language whose tool is installed."""
    for name, value in params.items():
        low = 0 if name in POSITIVE else None if name not in NON_NEGATIVE else -1
        if low is not None and (not isinstance(value, (int, float)) or value <= low):
            bound = "> 0" if low == 0 else ">= 0"
            raise UserError(
                f"reward test_generation: {name} must be a number {bound}, not {value!r}"
            )
    language = params.get("default_language", "c")
    if language not in LANGUAGES:
        raise UserError(
            f"reward test_generation: default_language must be one of {', '.join(LANGUAGES)}, "
            f"not {language!r}"
        )
    programs.require_tool(language, "test_generation")


test_generation.check_params = check_params  # type: ignore[attr-defined]  # library.bind_params
test_generation.outcome_counts = LAST_COUNTS  # type: ignore[attr-defined]  # read by rewards.score
test_generation.default_timeout = 600.0  # type: ignore[attr-defined]  # a whole batch of programs
