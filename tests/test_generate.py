"""`mlx-grpo generate`: batched generation over a prompt file, resumable."""

from __future__ import annotations

import json

from conftest import write_jsonl


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_generates_k_samples_per_prompt_and_resumes(tmp_path, tiny_model_dir, run_cli):
    prompts = tmp_path / "in.txt"
    prompts.write_text("first question\n\nsecond question\nthird\n")
    out = tmp_path / "out.jsonl"
    args = [
        "generate",
        "-m",
        tiny_model_dir,
        "--prompts",
        prompts,
        "--out",
        out,
        "--samples",
        "2",
        "--max-tokens",
        "6",
        "--batch-size",
        "2",
    ]
    assert run_cli(*args) == 0
    rows = _rows(out)
    assert sorted((r["id"], r["sample"]) for r in rows) == [
        (1, 0),
        (1, 1),
        (3, 0),
        (3, 1),
        (4, 0),
        (4, 1),
    ]
    for r in rows:
        assert r["completion_tokens"] <= 6 and r["prompt_tokens"] > 0
        assert r["finish_reason"] in ("stop", "length")
    # a crash mid-file: keep two complete rows and half of the third
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:2]) + lines[2][:15])
    assert run_cli(*args) == 0
    again = _rows(out)
    assert len(again) == 6
    assert again[:2] == rows[:2]  # rows already there are kept, not redone
    assert sorted((r["id"], r["sample"]) for r in again) == sorted(
        (r["id"], r["sample"]) for r in rows
    )


def test_jsonl_prompts(tmp_path, tiny_model_dir, run_cli):
    prompts = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "a"}, {"prompt": "b"}])
    out = tmp_path / "out.jsonl"
    assert (
        run_cli(
            "generate",
            "-m",
            tiny_model_dir,
            "-p",
            prompts,
            "-o",
            out,
            "--max-tokens",
            "3",
            "--temp",
            "0",
        )
        == 0
    )
    rows = _rows(out)
    assert [r["prompt"] for r in rows] == ["a", "b"]


def test_bad_prompt_files(tmp_path, tiny_model_dir, run_cli, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert run_cli("generate", "-m", tiny_model_dir, "-p", empty, "-o", tmp_path / "o") == 2
    assert "has no prompts" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"text": "no prompt"}\n')
    assert run_cli("generate", "-m", tiny_model_dir, "-p", bad, "-o", tmp_path / "o") == 2
    assert 'bad.jsonl:2: each line needs a string field "prompt"' in capsys.readouterr().err
    long = tmp_path / "long.txt"
    long.write_text("short\n" + "x" * 5000 + "\n")
    assert run_cli("generate", "-m", tiny_model_dir, "-p", long, "-o", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "long.txt:2: prompt is" in err and "context holds 4096" in err
    assert not (tmp_path / "o").exists()
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b'{"prompt": "ok"}\n\xff\xfe\x00\x9c binary\n')
    assert run_cli("generate", "-m", tiny_model_dir, "-p", garbage, "-o", tmp_path / "o") == 2
    assert "garbage.jsonl:2: not UTF-8 text" in capsys.readouterr().err


def test_out_file_not_ours_is_refused_untouched(tmp_path, tiny_model_dir, run_cli, capsys):
    prompts = tmp_path / "in.txt"
    prompts.write_text("a question\n")
    notes = tmp_path / "notes.txt"
    text = "my notes\nline two, not JSON\n"
    notes.write_text(text)
    args = ["generate", "-m", tiny_model_dir, "-p", prompts, "--max-tokens", "2"]
    assert run_cli(*args, "-o", notes) == 2
    assert "line 1 is not a row written by mlx-grpo generate" in capsys.readouterr().err
    assert notes.read_text() == text  # nothing deleted or added
    other_jsonl = tmp_path / "other.jsonl"
    other_jsonl.write_text('{"a": 1}\n')
    assert run_cli(*args, "-o", other_jsonl) == 2
    assert other_jsonl.read_text() == '{"a": 1}\n'
