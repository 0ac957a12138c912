"""Dataset sources: local JSONL/JSON/Parquet, GSM8K/MATH gold answers, hub downloads, bad rows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

from mlx_grpo.data.sources import gold_answer, gold_from_gsm8k, gold_from_math, hub_rows, read_rows
from mlx_grpo.errors import UserError

GSM8K_ROWS = [
    {
        "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as "
        "many clips in May. How many clips did Natalia sell altogether in April and May?",
        "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = "
        "<<48+24=72>>72 clips altogether in April and May.\n#### 72",
    },
    {
        "question": "A shop sells 1,234 pens a week. How many in a week?",
        "answer": "It sells <<1234=1234>>1,234 pens.\n#### 1,234",
    },
]
MATH500_ROWS = [
    {
        "problem": "Compute $\\sin 60^\\circ$.",
        "solution": "We know that $\\sin 60^\\circ = \\boxed{\\frac{\\sqrt{3}}{2}}$.",
        "answer": "\\frac{\\sqrt{3}}{2}",
        "subject": "Precalculus",
        "level": 1,
        "unique_id": "test/precalculus/1.json",
    },
]
MATH_ROWS = [
    {
        "problem": "What is $\\left(\\frac{1}{2}\\right)^{2}$?",
        "level": "Level 1",
        "type": "Algebra",
        "solution": "Squaring gives $\\boxed{\\frac{1}{4}}$, and \\boxed{\\dfrac{1}{4}} again.",
    },
]


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_gold_from_gsm8k() -> None:
    assert gold_from_gsm8k(GSM8K_ROWS[0]["answer"]) == "72"
    assert gold_from_gsm8k("so\n#### 1,234,567") == "1234567"
    assert gold_from_gsm8k("#### $18.") == "18"
    with pytest.raises(ValueError):
        gold_from_gsm8k("no marker")


def test_gold_from_math() -> None:
    assert gold_from_math(MATH_ROWS[0]["solution"]) == "\\dfrac{1}{4}"
    assert gold_from_math("x = \\boxed{\\{1, \\frac{a}{b^{2}}\\}}.") == "\\{1, \\frac{a}{b^{2}}\\}"
    with pytest.raises(ValueError):
        gold_from_math("no box at all")


def test_gold_answer_autodetects() -> None:
    assert gold_answer(" 42 ") == "42"
    assert gold_answer("work\n#### 42") == "42"
    assert gold_answer("so $\\boxed{3}$") == "3"


def test_gsm8k_jsonl(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K_ROWS)
    rows = read_rows(path, prompt_field="question")
    assert [row["answer"] for row in rows] == ["72", "1234"]
    assert rows[0]["prompt"].startswith("Natalia sold clips")
    assert rows[0]["solution"] == GSM8K_ROWS[0]["answer"]  # the worked solution is kept
    assert "question" not in rows[0]


def test_math500_jsonl_keeps_extras(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "test.jsonl", MATH500_ROWS)
    (row,) = read_rows(path, prompt_field="problem")
    assert row["answer"] == "\\frac{\\sqrt{3}}{2}"
    assert row["subject"] == "Precalculus" and row["level"] == 1
    assert row["solution"] == MATH500_ROWS[0]["solution"]


def test_math_solution_field_json(tmp_path: Path) -> None:
    path = tmp_path / "math.json"
    path.write_text(json.dumps(MATH_ROWS, indent=2))
    (row,) = read_rows(path, prompt_field="problem", answer_field="solution")
    assert row["answer"] == "\\dfrac{1}{4}"
    path.write_text(json.dumps({"data": MATH_ROWS}))
    assert read_rows(path, prompt_field="problem", answer_field="solution") == [row]


def test_numbers_as_answers(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "n.jsonl", [{"prompt": "1+1?", "answer": 2}])
    assert read_rows(path) == [{"prompt": "1+1?", "answer": "2"}]


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "answer": "1"}\n\n   \n{"prompt": "b", "answer": "2"}\n')
    assert [row["prompt"] for row in read_rows(path)] == ["a", "b"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ['{"prompt": "a", "answer": "1"}', '{"prompt": "b", "answer": "2"}', "{not json"],
            r"d\.jsonl:3: not valid JSON",
        ),
        (
            ['{"prompt": "a", "answer": "1"}', '{"prompt": "b", "solution": "2"}'],
            r"d\.jsonl:2: missing field 'answer' \(this row has: 'prompt', 'solution'\)",
        ),
        (['{"prompt": "a", "answer": "  "}'], r"d\.jsonl:1: empty answer"),
        (['{"prompt": "a", "answer": null}'], r"d\.jsonl:1: empty answer"),
        (['{"prompt": "", "answer": "1"}'], r"d\.jsonl:1: empty prompt"),
        (['["a", "1"]'], r"d\.jsonl:1: expected a JSON object, got list"),
        (['{"prompt": "a", "answer": "work but no number ####"}'], r"d\.jsonl:1: empty answer"),
        (
            ['{"prompt": "a", "answer": "so \\\\boxed{"}'],
            r"d\.jsonl:1: cannot read the answer: no \\boxed",
        ),
    ],
)
def test_bad_jsonl_rows_name_file_and_line(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=message):
        read_rows(path)


def test_bad_json_files(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('[\n  {"prompt": "a", "answer": "1"},\n  {"prompt": "b"}\n]')
    with pytest.raises(UserError, match=r"d\.json \(item 1\): missing field 'answer'"):
        read_rows(path)
    path.write_text('[\n  {"prompt": "a",\n  oops\n]')
    with pytest.raises(UserError, match=r"d\.json:3: not valid JSON"):
        read_rows(path)
    path.write_text('"just a string"')
    with pytest.raises(UserError, match="expected a JSON list"):
        read_rows(path)


def test_missing_empty_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="dataset file not found"):
        read_rows(tmp_path / "nope.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(b'{"prompt": "a", "answer": "1"}\n\x89PNG\xff\x00\n')
    with pytest.raises(UserError, match=r"bin\.jsonl:2: not UTF-8 text"):
        read_rows(tmp_path / "bin.jsonl")
    (tmp_path / "text.parquet").write_text("prompt,answer\nwhat,1\n")
    with pytest.raises(UserError, match=r"text\.parquet: not a readable Parquet file"):
        read_rows(tmp_path / "text.parquet")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe[]")
    with pytest.raises(UserError, match="not UTF-8 text"):
        read_rows(tmp_path / "bin.json")
    (tmp_path / "data.jsonl").mkdir()
    with pytest.raises(UserError, match="is a folder, not a dataset file"):
        read_rows(tmp_path / "data.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(UserError, match="no rows found"):
        read_rows(tmp_path / "empty.jsonl")
    (tmp_path / "d.csv").write_text("prompt,answer\n")
    with pytest.raises(UserError, match=r"unsupported dataset file type '\.csv'.*\.jsonl"):
        read_rows(tmp_path / "d.csv")


def test_parquet_without_pyarrow_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    path = tmp_path / "train.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(UserError, match=r"train\.parquet: reading Parquet needs pyarrow"):
        read_rows(path)


def test_parquet_with_pyarrow(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(GSM8K_ROWS), path)
    rows = read_rows(path, prompt_field="question")
    assert [row["answer"] for row in rows] == ["72", "1234"]


def fake_hub(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path]) -> list[str]:
    """Serve repo files from local paths (the same files for every repo); return the names
    requested."""
    return fake_hub_repos(monkeypatch, {"*": files})


def fake_hub_repos(monkeypatch: pytest.MonkeyPatch, repos: dict[str, dict[str, Path]]) -> list[str]:
    """Serve each repo's files ("*": any repo) from local paths; return the names requested."""
    requested: list[str] = []

    def files_of(repo_id: str) -> dict[str, Path]:
        return repos.get(repo_id, repos.get("*", {}))

    def download(repo_id: str, filename: str, **kwargs: object) -> str:
        assert kwargs.get("repo_type") == "dataset"
        requested.append(f"{repo_id}/{filename}")
        return str(files_of(repo_id)[filename])

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda repo, **kw: list(files_of(repo)))
    return requested


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def math_lighteval_repo(tmp_path: Path) -> dict[str, Path]:
    """The layout of DigitalLearningGmbH/MATH-lighteval: the default config in data/, one
    folder per subject beside it (the same problems again)."""
    algebra = [{**MATH_ROWS[0], "problem": "Not from data/: " + MATH_ROWS[0]["problem"]}]
    return {
        "README.md": tmp_path,
        "data/train-00000-of-00001.parquet": write_parquet(tmp_path / "m1.parquet", MATH_ROWS),
        "data/test-00000-of-00001.parquet": write_parquet(tmp_path / "m2.parquet", MATH_ROWS),
        "algebra/train-00000-of-00001.parquet": write_parquet(tmp_path / "m3.parquet", algebra),
    }


def test_hub_math500_preset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = write_jsonl(tmp_path / "test.jsonl", MATH500_ROWS)
    requested = fake_hub(monkeypatch, {"test.jsonl": local})
    rows = hub_rows("HuggingFaceH4/MATH-500", split="test")
    assert requested == ["HuggingFaceH4/MATH-500/test.jsonl"]
    assert rows[0]["prompt"] == "Compute $\\sin 60^\\circ$." and rows[0]["answer"] == (
        "\\frac{\\sqrt{3}}{2}"
    )


def test_hub_gsm8k_preset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "main/test-00000-of-00001.parquet"
    local = tmp_path / "test-00000-of-00001.parquet"
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(GSM8K_ROWS), local)
    except ImportError:
        local.write_bytes(b"PAR1")
    requested = fake_hub(monkeypatch, {name: local})
    try:
        rows = hub_rows("openai/gsm8k", split="test")
    except UserError as exc:  # no pyarrow here: the clear message, after the right download
        assert "reading Parquet needs pyarrow" in str(exc)
    else:
        assert [row["answer"] for row in rows] == ["72", "1234"]
    assert requested == [f"openai/gsm8k/{name}"]


def test_hub_other_dataset_lists_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train = write_jsonl(tmp_path / "a.jsonl", [{"q": "1+1?", "a": "2"}])
    test = write_jsonl(tmp_path / "b.jsonl", [{"q": "2+2?", "a": "4"}])
    files = {"README.md": tmp_path, "data/train-00000.jsonl": train, "data/test.jsonl": test}
    requested = fake_hub(monkeypatch, files)
    rows = hub_rows("someone/tiny", split="train", prompt_field="q", answer_field="a")
    assert rows == [{"prompt": "1+1?", "answer": "2"}]
    assert requested == ["someone/tiny/data/train-00000.jsonl"]
    with pytest.raises(UserError, match="found no 'validation' data files"):
        hub_rows("someone/tiny", split="validation", prompt_field="q", answer_field="a")


def test_hub_math_lighteval_reads_the_default_config(tmp_path, monkeypatch) -> None:
    requested = fake_hub(monkeypatch, math_lighteval_repo(tmp_path))
    rows = hub_rows("DigitalLearningGmbH/MATH-lighteval")
    assert requested == ["DigitalLearningGmbH/MATH-lighteval/data/train-00000-of-00001.parquet"]
    assert [row["answer"] for row in rows] == ["\\dfrac{1}{4}"]
    assert rows[0]["prompt"] == MATH_ROWS[0]["problem"] and rows[0]["level"] == "Level 1"
    assert rows[0]["solution"] == MATH_ROWS[0]["solution"]
    by_subject = hub_rows("DigitalLearningGmbH/MATH-lighteval", config="algebra")
    assert by_subject[0]["prompt"].startswith("Not from data/")


def test_hub_several_configs_without_a_default_is_an_error(tmp_path, monkeypatch) -> None:
    one = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "1+1?", "answer": "2"}])
    fake_hub(monkeypatch, {"main/train.jsonl": one, "socratic/train.jsonl": one})
    with pytest.raises(UserError, match=r"several configs \(main, socratic\).*data.hub_config"):
        hub_rows("someone/two-configs")
    assert len(hub_rows("someone/two-configs", config="main")) == 1


def test_h100_config_trains_on_gsm8k_and_math_as_published(tmp_path, monkeypatch) -> None:
    """configs/qwen2.5-3b-h100.yaml's two hub datasets, in their hub layouts, give rows whose
    right answers its rewards score fully."""
    from mlx_grpo.config import load_config
    from mlx_grpo.data.examples import load_rows
    from mlx_grpo.rewards import build_rewards, score

    gsm8k = {"main/train-00000-of-00001.parquet": write_parquet(tmp_path / "g.parquet", GSM8K_ROWS)}
    fake_hub_repos(
        monkeypatch,
        {
            "openai/gsm8k": gsm8k,
            "DigitalLearningGmbH/MATH-lighteval": math_lighteval_repo(tmp_path),
        },
    )
    cfg = load_config(Path(__file__).parents[1] / "configs" / "qwen2.5-3b-h100.yaml")
    rows = load_rows(cfg.data, cfg.seed)
    assert [row["answer"] for row in rows] == ["72", "1234", "\\dfrac{1}{4}"]
    right = [f"<think>so</think> <answer>{row['answer']}</answer>" for row in rows]
    scores = score(
        build_rewards(cfg.rewards), [r["prompt"] for r in rows], right, [r["answer"] for r in rows]
    )
    assert scores.per_function["math_correct"].tolist() == [1.0, 1.0, 1.0]
    assert scores.per_function["r1_format"].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "error",
    [
        OfflineModeIsEnabled("offline mode is enabled"),
        LocalEntryNotFoundError("cannot find the requested files in the local cache"),
        ConnectionError("Name or service not known"),
    ],
)
def test_hub_offline_is_a_clear_user_error(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def download(*args: object, **kwargs: object) -> str:
        raise error

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    with pytest.raises(
        UserError,
        match=r"cannot reach the Hugging Face hub to fetch "
        r"HuggingFaceH4/MATH-500; download it and pass a local file",
    ):
        hub_rows("HuggingFaceH4/MATH-500", split="test")


def test_hub_listing_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    # the transport huggingface_hub really uses: httpx2 for hub 2.x, httpx for 1.x
    name = "httpx2" if importlib.util.find_spec("httpx2") else "httpx"
    transport = importlib.import_module(name)

    def listing(*args: object, **kwargs: object) -> list[str]:
        raise transport.ConnectError("connection refused")

    monkeypatch.setattr(huggingface_hub, "list_repo_files", listing)
    with pytest.raises(UserError, match="cannot reach the Hugging Face hub to fetch someone/x"):
        hub_rows("someone/x")
