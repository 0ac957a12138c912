"""MBPP and HumanEval as Python rows for `code_tests`: prompt, tests, entry point.

MBPP (`google-research-datasets/mbpp`; configs full and sanitized): the task text (`text`, or
`prompt` in sanitized) and its `test_list` asserts, which the prompt shows as in the MBPP
paper. Each assert becomes one test expression (parsed with `ast`, so `assert x == y, "msg"`
tests `x == y`, not a tuple that is always true); `test_setup_code` / `test_imports` run
first. The entry point is the function of the reference `code` the first test calls.

HumanEval (`openai/openai_humaneval`, split test): `test` defines `check(candidate)`; the row
has one test that runs it on the entry point, so loops, helpers and assert messages inside
`check` work unchanged (splitting its asserts into expressions would break on all of those).
Names the prompt defines and the answer lacks (imports, helper functions) are added first,
never replacing the answer's own. A problem passes when every assert in `check` holds.

A local file in either format (no `answer` column) is recognized by its columns
(`converter_for`), so a downloaded `mbpp.jsonl` or HumanEval `.jsonl` loads the same way.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from mlx_grpo.data.templates import render_code
from mlx_grpo.errors import UserError

MBPP_TESTS_INTRO = "Your code should pass these tests:"


def _field(row: dict[str, Any], names: tuple[str, ...], where: str, dataset: str) -> Any:
    """The first of `names` the row has, non-empty, or a UserError naming the row."""
    for name in names:
        if row.get(name) not in (None, "", []):
            return row[name]
    keys = ", ".join(map(repr, row)) or "none"
    wanted = " or ".join(map(repr, names))
    raise UserError(f"not a {dataset} row: no {wanted} (this row has: {keys})", where=where)


def _as_dict(row: Any, where: str, dataset: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise UserError(
            f"not a {dataset} row: expected an object, got {type(row).__name__}", where=where
        )
    return row


def assert_expression(line: str, where: str) -> str:
    """`assert EXPR[, msg]` (or a bare expression) as the expression EXPR."""
    try:
        tree = ast.parse(line.strip())
    except SyntaxError as exc:
        raise UserError(
            f"a test in 'test_list' is not valid Python ({exc.msg}): {line[:80]!r}", where=where
        ) from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], (ast.Assert, ast.Expr)):
        raise UserError(
            f"a test in 'test_list' is not one assert or expression: {line[:80]!r}", where=where
        )
    node = tree.body[0]
    return ast.unparse(node.test if isinstance(node, ast.Assert) else node.value)


def with_setup(expression: str, setup: str) -> str:
    """An expression that runs `setup` in the program's namespace, then tests `expression`."""
    return f"(exec({setup!r}, globals()), {expression})[1]" if setup.strip() else expression


def _entry_point(code: str, first_test: str) -> str | None:
    try:
        names = [n.name for n in ast.walk(ast.parse(code)) if isinstance(n, ast.FunctionDef)]
    except SyntaxError:
        names = []
    return next((name for name in names if f"{name}(" in first_test), None)


def mbpp_row(where: str, raw: Any) -> dict[str, Any]:
    """One MBPP row (full or sanitized) as a `code_tests` row."""
    row = _as_dict(raw, where, "MBPP")
    text = str(_field(row, ("text", "prompt"), where, "MBPP")).strip()
    code = str(_field(row, ("code",), where, "MBPP"))
    asserts = _field(row, ("test_list",), where, "MBPP")
    if not isinstance(asserts, list) or not all(isinstance(t, str) for t in asserts):
        raise UserError("MBPP field 'test_list' must be a list of assert lines", where=where)
    imports = row.get("test_imports") or []
    setup = "\n".join([*imports, str(row.get("test_setup_code") or "")]).strip()
    tests = [with_setup(assert_expression(t, where), setup) for t in asserts]
    task = f"{text}\n{MBPP_TESTS_INTRO}\n\n" + "\n".join(t.strip() for t in asserts)
    return {
        "prompt": render_code(task, "python"),
        "answer": code,
        "language": "python",
        "tests": tests,
        "entry_point": _entry_point(code, asserts[0]) or "",
        "task_id": row.get("task_id"),
    }


def humaneval_test(prompt: str, test: str, entry_point: str) -> str:
    """The one test of a HumanEval problem: the prompt's missing names, then `check(entry)`."""
    names = "_mlx_grpo_prompt_names"
    fill = f"[globals().setdefault(k, v) for k, v in {names}.items() if not k.startswith('__')]"
    run = f"exec({prompt!r}, {names} := {{}}), {fill}, exec({test!r}, globals())"
    return f"({run}, check({entry_point}))[-1] is None"


def humaneval_row(where: str, raw: Any) -> dict[str, Any]:
    """One HumanEval row as a `code_tests` row."""
    row = _as_dict(raw, where, "HumanEval")
    prompt = str(_field(row, ("prompt",), where, "HumanEval"))
    test = str(_field(row, ("test",), where, "HumanEval"))
    entry = str(_field(row, ("entry_point",), where, "HumanEval")).strip()
    if not entry.isidentifier():
        raise UserError(f"HumanEval field 'entry_point' is not a name: {entry[:40]!r}", where=where)
    if "def check(" not in test:
        raise UserError("HumanEval field 'test' defines no check(candidate) function", where=where)
    task = f"Complete this Python function:\n\n```python\n{prompt.rstrip()}\n```"
    return {
        "prompt": render_code(task, "python"),
        "answer": prompt + str(row.get("canonical_solution") or ""),
        "language": "python",
        "tests": [humaneval_test(prompt, test, entry)],
        "entry_point": entry,
        "task_id": row.get("task_id"),
    }


def converter_for(row: Any) -> Callable[[str, Any], dict[str, Any]] | None:
    """mbpp_row or humaneval_row when a raw row has that dataset's columns (and no answer)."""
    if not isinstance(row, dict) or "answer" in row:
        return None
    if {"code", "test_list"} <= row.keys() and ("text" in row or "prompt" in row):
        return mbpp_row
    if {"prompt", "test", "entry_point"} <= row.keys():
        return humaneval_row
    return None
