"""MBPP and HumanEval from their hub files (written here in the datasets' real formats):
rows for `code_tests` whose reference solutions pass and whose wrong ones fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_sources import fake_hub_repos, write_parquet

from mlx_grpo.data.code_sets import assert_expression
from mlx_grpo.data.sources import hub_rows
from mlx_grpo.errors import UserError
from mlx_grpo.rewards import code

MBPP_FULL = [  # task_id, text, code, test_list, test_setup_code, challenge_test_list
    {
        "task_id": 11,
        "text": "Write a python function to remove first and last occurrence of a given "
        "character from the string.",
        "code": "def remove_Occ(s,ch): \r\n    i = s.find(ch)\r\n    if i >= 0:\r\n"
        "        s = s[:i] + s[i + 1:]\r\n    j = s.rfind(ch)\r\n    if j >= 0:\r\n"
        "        s = s[:j] + s[j + 1:]\r\n    return s ",
        "test_list": [
            'assert remove_Occ("banana","a") == "bnan"',
            'assert remove_Occ("abcda","a") == "bcd"',
            'assert remove_Occ("PHP","P") == "H", "both ends"',
        ],
        "test_setup_code": "",
        "challenge_test_list": [],
    },
    {
        "task_id": 12,
        "text": "Write a function to find the square root of the product of two numbers.",
        "code": "import math\r\ndef root_of_product(a, b):\r\n  return math.sqrt(a * b)",
        "test_list": ["assert isclose(root_of_product(2, 8), 4.0)"],
        "test_setup_code": "from math import isclose",
        "challenge_test_list": [],
    },
]
MBPP_SANITIZED = [  # source_file, task_id, prompt, code, test_imports, test_list
    {
        "source_file": "Benchmark Questions Verification V2.ipynb",
        "task_id": 2,
        "prompt": "Write a function to find the shared elements from the given two lists.",
        "code": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))",
        "test_imports": [],
        "test_list": ["assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))"],
    }
]
HUMANEVAL = [  # task_id, prompt, canonical_solution, test, entry_point
    {
        "task_id": "HumanEval/0",
        "prompt": "from typing import List\n\n\ndef _pairs(n: int):\n    return [(i, j) for i in "
        "range(n) for j in range(i + 1, n)]\n\n\ndef has_close_elements(numbers: List[float], "
        'threshold: float) -> bool:\n    """ Check if any two numbers are closer to each other '
        "than the threshold.\n    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)\n    False\n"
        '    """\n',
        "canonical_solution": "    return any(abs(numbers[i] - numbers[j]) < threshold\n"
        "               for i, j in _pairs(len(numbers)))\n",
        "test": "\n\nMETADATA = {\n    'author': 'jt',\n    'dataset': 'test'\n}\n\n\n"
        "def check(candidate):\n    assert candidate([1.0, 2.0, 3.9, 4.0], 0.3) == True\n"
        "    assert candidate([1.0, 2.0, 5.9, 4.0], 0.8) == False, 'far apart'\n"
        "    for t in (0.05, 0.5):\n        assert candidate([1.0, 1.0 + t / 2], t) == True\n",
        "entry_point": "has_close_elements",
    }
]


def run(rows: list[dict], answers: list[str]) -> list[float]:
    completions = [f"Here it is:\n```python\n{a}\n```" for a in answers]
    blank = [""] * len(rows)
    return code.code_tests(
        blank, completions, blank, language=[r["language"] for r in rows],
        tests=[r["tests"] for r in rows], timeout=5.0,
    )  # fmt: skip


def mbpp_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    files = {
        "full/test-00000-of-00001.parquet": write_parquet(tmp_path / "t.parquet", MBPP_FULL),
        "sanitized/test-00000-of-00001.parquet": write_parquet(
            tmp_path / "s.parquet", MBPP_SANITIZED
        ),
    }
    return fake_hub_repos(monkeypatch, {"google-research-datasets/mbpp": files})


def test_mbpp_full_rows_pass_with_their_code_and_fail_without(tmp_path, monkeypatch) -> None:
    requested = mbpp_hub(tmp_path, monkeypatch)
    rows = hub_rows("google-research-datasets/mbpp", "test")
    assert requested == ["google-research-datasets/mbpp/full/test-00000-of-00001.parquet"]
    first = rows[0]
    assert first["language"] == "python" and first["entry_point"] == "remove_Occ"
    assert (
        'remove_Occ("banana","a") == "bnan"' in first["prompt"] and "```python" in first["prompt"]
    )
    assert first["tests"][2] == "remove_Occ('PHP', 'P') == 'H'"  # the message is not the test
    assert run(rows, [r["answer"] for r in rows]) == [1.0, 1.0]
    wrong = "def remove_Occ(s, ch):\n    return s.replace(ch, '')"  # removes every one
    assert run(rows[:1], [wrong])[0] == pytest.approx(2 / 3)
    assert run(rows[1:], ["def root_of_product(a, b):\n    return a + b"]) == [0.0]


def test_mbpp_sanitized_config(tmp_path, monkeypatch) -> None:
    mbpp_hub(tmp_path, monkeypatch)
    rows = hub_rows("google-research-datasets/mbpp", "test", "sanitized")
    assert rows[0]["entry_point"] == "similar_elements" and rows[0]["task_id"] == 2
    assert run(rows, [rows[0]["answer"]]) == [1.0]
    assert run(rows, ["def similar_elements(a, b):\n    return ()"]) == [0.0]


def test_humaneval_check_runs_on_the_entry_point(tmp_path, monkeypatch) -> None:
    files = {"openai_humaneval/test-00000-of-00001.parquet": write_parquet(
        tmp_path / "h.parquet", HUMANEVAL)}  # fmt: skip
    fake_hub_repos(monkeypatch, {"openai/openai_humaneval": files})
    rows = hub_rows("openai/openai_humaneval", "test")
    row = rows[0]
    assert row["entry_point"] == "has_close_elements" and len(row["tests"]) == 1
    assert "def has_close_elements(" in row["prompt"]
    assert run(rows, [row["answer"]]) == [1.0]  # uses the prompt's helper and import
    # only the function, no `List` import, no helper: the prompt's names fill in
    bare = (
        "def has_close_elements(numbers, threshold):\n"
        "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) "
        "for b in numbers[i + 1:])"
    )
    strict = bare.replace("< threshold", "< threshold / 2")  # fails one assert of check
    assert run(rows * 3, [bare, strict, "def check(candidate):\n    pass"]) == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("dataset", "split", "row", "message"),
    [
        ("google-research-datasets/mbpp", "test", {"task_id": 1, "text": "t", "code": "x"},
         "not a MBPP row: no 'test_list'"),
        ("google-research-datasets/mbpp", "test",
         {"task_id": 1, "text": "t", "code": "x", "test_list": ["assert f(1) =="]},
         "test in .test_list. is not valid Python"),
        ("openai/openai_humaneval", "test",
         {"task_id": "H/1", "prompt": "def f():\n", "test": "assert True", "entry_point": "f"},
         "defines no check"),
        ("openai/openai_humaneval", "test",
         {"task_id": "H/1", "prompt": "def f():\n", "test": "def check(c): pass",
          "entry_point": "f()"}, "'entry_point' is not a name"),
    ],
)  # fmt: skip
def test_broken_rows_name_the_file_row_and_field(
    tmp_path, monkeypatch, dataset, split, row, message
) -> None:
    name = "full/test-00000-of-00001.parquet" if "mbpp" in dataset else (
        "openai_humaneval/test-00000-of-00001.parquet")  # fmt: skip
    good = MBPP_FULL[0] if "mbpp" in dataset else HUMANEVAL[0]
    path = write_parquet(tmp_path / "bad.parquet", [good, {**{k: None for k in good}, **row}])
    fake_hub_repos(monkeypatch, {dataset: {name: path}})
    with pytest.raises(UserError, match=message) as info:
        hub_rows(dataset, split)
    assert f"{path} (row 1)" in str(info.value)


def test_assert_expression() -> None:
    assert assert_expression("assert f(1) == 2, 'msg'", "w") == "f(1) == 2"
    assert assert_expression("f(1) == 2", "w") == "f(1) == 2"
    with pytest.raises(UserError, match="not one assert"):
        assert_expression("x = 1", "w")


def test_local_files_in_the_datasets_formats_load_as_code_rows(tmp_path) -> None:
    from conftest import write_jsonl

    from mlx_grpo.data.sources import read_rows

    mbpp = read_rows(write_jsonl(tmp_path / "mbpp.jsonl", MBPP_FULL))
    humaneval = read_rows(write_jsonl(tmp_path / "HumanEval.jsonl", HUMANEVAL))
    assert [r["entry_point"] for r in mbpp + humaneval] == [
        "remove_Occ", "root_of_product", "has_close_elements"]  # fmt: skip
    assert run(mbpp + humaneval, [r["answer"] for r in mbpp + humaneval]) == [1.0] * 3
    broken = write_jsonl(tmp_path / "bad.jsonl", [MBPP_FULL[0], {**MBPP_FULL[0], "test_list": "x"}])
    with pytest.raises(UserError, match=r"bad.jsonl:2: MBPP field 'test_list' must be a list"):
        read_rows(broken)
