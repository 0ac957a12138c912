"""Built-in generated tasks: datasets that need no download, seeded and reproducible.

A config names one as `builtin:arithmetic` or `builtin:countdown` (the lead's data module
decides the spelling); `generate_task(name, n, seed, difficulty)` returns its rows, each
{"prompt": question, "answer": gold answer, ...extras}.

| task             | rows carry                                  | reward that checks it |
|------------------|---------------------------------------------|-----------------------|
| arithmetic       | prompt, answer, difficulty                  | math_correct          |
| countdown        | prompt, answer, numbers, target             | countdown             |
| c-functions      | prompt, answer (reference), language, tests | code_tests            |
| cpp-functions    | the same functions in C++                   | code_tests            |
| python-functions | the same functions in Python                | code_tests            |
| c-tests          | prompt, answer (tests), language, reference, mutants | test_generation |
| python-tests     | the same functions in Python                | test_generation       |
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from mlx_grpo.data.tasks import arithmetic, countdown, functions, mutants
from mlx_grpo.errors import UserError

TASKS: dict[str, Callable[..., list[dict[str, object]]]] = {
    "arithmetic": arithmetic.generate,
    "countdown": countdown.generate,
    "c-functions": functools.partial(functions.generate, language="c"),
    "cpp-functions": functools.partial(functions.generate, language="cpp"),
    "python-functions": functools.partial(functions.generate, language="python"),
    "c-tests": mutants.generate_c,
    "python-tests": mutants.generate_python,
}
DIFFICULTIES = (1, 2, 3, 4)


def generate_task(name: str, n: int, seed: int, difficulty: int = 1) -> list[dict[str, object]]:
    """Rows of the built-in task `name`; UserError for an unknown task or level."""
    if name not in TASKS:
        raise UserError(f"unknown built-in task {name!r}; choose one of: {', '.join(TASKS)}")
    if difficulty not in DIFFICULTIES:
        raise UserError(f"difficulty must be one of {list(DIFFICULTIES)}, not {difficulty!r}")
    if n < 0:
        raise UserError(f"number of rows must be >= 0, not {n}")
    return TASKS[name](n, seed, difficulty)
