"""Generated function tasks with hidden tests: `builtin:c-functions`, `cpp-functions` and
`python-functions`.

Each row asks for one small function of `catalog.FAMILIES` (string, array, arithmetic and bit
manipulation; `difficulty` 1-4 picks the families of that level) with its exact signature and
two examples, and carries what `code_tests` needs: `language` and `tests`, boolean
expressions in that language whose expected values come from the family's Python reference,
so the hidden tests are right by construction. Every row tests the family's edge cases plus
random inputs. C arrays are passed as compound literals; results written in place are
checked inside a GNU statement expression (gcc and clang) in C and a lambda in C++.
`answer` is the reference solution. Same (n, seed, difficulty, language), same rows; the
first k rows do not depend on n.
"""

from __future__ import annotations

import random
from typing import Any

from mlx_grpo.data.tasks.catalog import FAMILIES, Args, Family
from mlx_grpo.data.templates import CODE_LANGUAGES, render_code

TESTS_PER_ROW = 8
EXAMPLES = 2
C_PARAMS = {"int": "int {}", "uint": "unsigned int {}", "ll": "long long {}", "char": "char {}",
            "str": "const char *{}", "buf": "char *{}", "arr": "const int *{}, int n",
            "mut_arr": "int *{}, int n"}  # fmt: skip
C_RETURNS = {"int": "int", "bool": "int", "uint": "unsigned int", "ll": "long long", "void": "void"}
PY_TYPES = {"int": "int", "uint": "int", "ll": "int", "char": "str", "str": "str", "buf": "str",
            "arr": "list[int]", "mut_arr": "list[int]"}  # fmt: skip
SUFFIX = {"uint": "u", "ll": "LL"}


# ---------------------------------------------------------------- signatures


def _mutated(family: Family) -> tuple[str, str]:
    """(name, kind) of the argument a void C function writes its result into."""
    return next(arg for arg in family.args if arg[1] in ("buf", "mut_arr"))


def c_signature(family: Family) -> str:
    params = ", ".join(C_PARAMS[kind].format(name) for name, kind in family.args)
    return f"{'int' if family.prefix else C_RETURNS[family.returns]} {family.name}({params})"


def py_signature(family: Family) -> str:
    params = ", ".join(f"{name}: {PY_TYPES[kind]}" for name, kind in family.args)
    returns = {"bool": "bool", "int": "int", "uint": "int", "ll": "int"}.get(family.returns)
    return f"def {family.name}({params}) -> {returns or PY_TYPES[_mutated(family)[1]]}"


# ---------------------------------------------------------------- literals


def c_string(text: str) -> str:
    """A C string literal (printable ASCII kept, the rest as octal escapes)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\{ord(ch) & 0xFF:03o}")
    return '"' + "".join(out) + '"'


def c_scalar(kind: str, value: Any) -> str:
    if kind == "char":
        return str(ord(value))  # the character's code: no quoting pitfalls
    if kind == "str":
        return c_string(value)
    if kind == "bool":
        return str(int(value))
    return f"{int(value)}{SUFFIX.get(kind, '')}"


def _c_items(values: list[int]) -> str:
    return ", ".join(map(str, values)) or "0"


def _contents(var: str, kind: str, value: Any) -> str:
    """A C condition: array or string `var` holds `value`."""
    if kind == "buf":
        checks = [f"{var}[{i}] == {ord(ch)}" for i, ch in enumerate(value)]
        return " && ".join([*checks, f"{var}[{len(value)}] == 0"])
    return " && ".join(f"{var}[{i}] == {v}" for i, v in enumerate(value)) or "1"


# ---------------------------------------------------------------- tests


def c_test(family: Family, args: Args, expected: Any, cpp: bool = False) -> str:
    """One boolean C (or C++) expression that holds when `family.name(args)` is right."""
    decls, call_args = [], []
    for (name, kind), value in zip(family.args, args, strict=True):
        size = f"[{max(1, len(value))}]" if kind in ("arr", "mut_arr") else ""
        if kind == "arr" and not cpp:
            call_args += [f"(const int{size}){{{_c_items(value)}}}", str(len(value))]
        elif kind in ("arr", "mut_arr"):
            const = "const " if kind == "arr" else ""
            decls.append(f"{const}int {name}_{size} = {{{_c_items(value)}}};")
            call_args += [f"{name}_", str(len(value))]
        elif kind == "buf":
            decls.append(f"char {name}_[] = {c_string(value)};")
            call_args.append(f"{name}_")
        else:
            call_args.append(c_scalar(kind, value))
    call = f"{family.name}({', '.join(call_args)})"
    check = _c_check(family, call, expected)
    if not decls:
        return check
    body = " ".join(decls)
    return f"[]{{ {body} return {check}; }}()" if cpp else f"({{ {body} {check}; }})"


def _c_check(family: Family, call: str, expected: Any) -> str:
    if family.returns != "void":
        return f"{call} == {c_scalar(family.returns, expected)}"
    name, kind = _mutated(family)
    if family.prefix:
        return f"{call} == {len(expected)} && {_contents(name + '_', kind, expected)}"
    return f"({call}, {_contents(name + '_', kind, expected)})"


def py_test(family: Family, args: Args, expected: Any) -> str:
    return f"{family.name}({', '.join(map(repr, args))}) == {expected!r}"


def render_test(family: Family, args: Args, language: str) -> str:
    expected = family.ref(*args)
    if language == "python":
        return py_test(family, args, expected)
    return c_test(family, args, expected, cpp=language == "cpp")


# ---------------------------------------------------------------- prompts


def _example(family: Family, args: Args, language: str) -> str:
    """How one example reads in the prompt (C: plain values; the result after `->`)."""
    expected = family.ref(*args)
    if language == "python":
        return f"{family.name}({', '.join(map(repr, args))}) returns {expected!r}"
    shown = []
    for (_, kind), value in zip(family.args, args, strict=True):
        if kind in ("arr", "mut_arr"):
            shown += ["{" + ", ".join(map(str, value)) + "}", str(len(value))]
        else:
            literal = {"char": repr, "buf": c_string}.get(kind)
            shown.append(literal(value) if literal else c_scalar(kind, value))
    call = f"{family.name}({', '.join(shown)})"
    if family.returns != "void":
        return f"{call} returns {c_scalar(family.returns, expected)}"
    name, kind = _mutated(family)
    after = c_string(expected) if kind == "buf" else "{" + ", ".join(map(str, expected)) + "}"
    if family.prefix:
        return f"{call} returns {len(expected)} and leaves {name} starting with {after}"
    return f"after {call}, {name} is {after}"


def task_text(family: Family, language: str, examples: list[Args]) -> str:
    c_like = language != "python"
    signature = c_signature(family) if c_like else py_signature(family) + ":"
    doc = (family.c_doc or family.doc) if c_like else family.doc
    if family.returns == "bool":
        doc += " Return 1 if so, 0 if not." if c_like else " Return True or False."
    lines = [f"Write a {CODE_LANGUAGES[language]} function with this exact signature", "",
             f"    {signature}", "", f"that {doc}", "", "Examples:"]  # fmt: skip
    lines += [f"    {_example(family, args, language)}" for args in examples]
    return "\n".join(lines)


# ---------------------------------------------------------------- rows


def _cases(rng: random.Random, family: Family) -> list[Args]:
    """The family's edge cases, then distinct random inputs up to TESTS_PER_ROW."""
    cases = list(family.edges)
    for _ in range(50):
        if len(cases) >= max(TESTS_PER_ROW, len(family.edges) + 2):
            break
        args = family.draw(rng)
        if args not in cases:
            cases.append(args)
    return cases


def _examples(rng: random.Random, family: Family) -> list[Args]:
    """EXAMPLES random inputs, with different results where a few draws find them."""
    chosen: list[Args] = []
    for _ in range(12):
        args = family.draw(rng)
        if all(family.ref(*args) != family.ref(*seen) for seen in chosen):
            chosen.append(args)
        if len(chosen) == EXAMPLES:
            return chosen
    return (chosen + [family.draw(rng) for _ in range(EXAMPLES)])[:EXAMPLES]


def _row(rng: random.Random, families: list[Family], language: str) -> dict[str, object]:
    family = rng.choice(families)
    cases = _cases(rng, family)
    examples = _examples(rng, family)
    prompt = render_code(task_text(family, language, examples), language)
    answer = family.c_src if language != "python" else reference_python(family)
    return {
        "prompt": prompt,
        "answer": answer,
        "language": language,
        "tests": [render_test(family, args, language) for args in cases],
        "entry_point": family.name,
        "category": family.category,
    }


def reference_python(family: Family) -> str:
    """The family's Python reference as source text (its gold answer in Python)."""
    import inspect

    return inspect.getsource(family.ref).strip()


def generate(
    n: int, seed: int, difficulty: int = 1, language: str = "c"
) -> list[dict[str, object]]:
    """`n` function tasks of `difficulty` in `language` (c, cpp or python)."""
    families = [f for f in FAMILIES if f.level == difficulty]
    if not families:
        raise ValueError(f"difficulty must be one of 1-4, not {difficulty}")
    rng = random.Random(f"functions-{seed}-{difficulty}")  # same tasks in every language
    return [{**_row(rng, families, language), "difficulty": difficulty} for _ in range(n)]
