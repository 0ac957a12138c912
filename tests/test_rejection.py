"""`mlx-grpo generate --keep correct`: rejection sampling into deduplicated SFT rows."""

from __future__ import annotations

import json

from conftest import write_jsonl

# Scores known from the completion text alone: 0, 1 or 2, the sum of its code points mod 3.
REWARD_FILE = """
def mod3(prompts, completions, answers, **extras):
    return [float(sum(map(ord, c)) % 3) for c in completions]
"""


def mod3(text):
    return sum(map(ord, text)) % 3


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def _setup(tmp_path, prompts):
    (tmp_path / "mod3.py").write_text(REWARD_FILE)
    return write_jsonl(tmp_path / "in.jsonl", prompts)


def _args(tiny_model_dir, tmp_path, prompts, out, *extra):
    reward = f"{tmp_path / 'mod3.py'}:mod3"
    return ["generate", "-m", tiny_model_dir, "-p", prompts, "-o", out, "--max-tokens", "5",
            "--keep", "correct", "--reward", reward, *extra]  # fmt: skip


def test_keeps_only_rows_at_or_above_the_threshold_and_resumes(tmp_path, tiny_model_dir, run_cli):
    prompts = _setup(tmp_path, [{"prompt": f"question {i}", "answer": str(i)} for i in range(3)])
    out = tmp_path / "kept.jsonl"
    args = _args(tiny_model_dir, tmp_path, prompts, out, "-k", "6", "--temp", "1.0")
    assert run_cli(*args, "--threshold", "1") == 0
    graded = _rows(tmp_path / "kept.graded.jsonl")
    assert len(graded) == 18  # every completion is recorded, kept or not
    want = {(g["prompt"], g["completion"]) for g in graded if mod3(g["completion"]) >= 1}
    assert 0 < len(want) < 18  # the test means something: some rows pass, some do not
    kept = _rows(out)
    assert {(k["prompt"], k["completion"]) for k in kept} == want
    assert len(kept) == len(want)  # each (prompt, completion) once
    for row in kept:
        assert set(row) == {"prompt", "completion", "answer", "reward"}
        assert row["reward"] == mod3(row["completion"])
        assert row["answer"] == row["prompt"].split()[1]  # the prompt as written, its answer
    # rerun: nothing generated, nothing duplicated; a higher threshold re-filters the record
    assert run_cli(*args, "--threshold", "1") == 0
    assert _rows(out) == kept and len(_rows(tmp_path / "kept.graded.jsonl")) == 18
    assert run_cli(*args, "--threshold", "2") == 0
    assert _rows(out) == [k for k in kept if k["reward"] == 2]


def test_a_crash_between_the_two_files_is_repaired_on_resume(tmp_path, tiny_model_dir, run_cli):
    prompts = _setup(tmp_path, [{"prompt": f"q{i}", "answer": "1"} for i in range(4)])
    out = tmp_path / "kept.jsonl"
    args = _args(tiny_model_dir, tmp_path, prompts, out, "-k", "3", "--batch-size", "1")
    assert run_cli(*args) == 0
    kept, record = _rows(out), tmp_path / "kept.graded.jsonl"
    lines = record.read_text().splitlines(keepends=True)
    record.write_text("".join(lines[:5]) + lines[5][:20])  # killed mid-write of the record
    out.write_text("".join(json.dumps(k) + "\n" for k in kept[:1]) + '{"prompt": "q')
    assert run_cli(*args) == 0
    again = _rows(out)
    assert len(_rows(record)) == 12
    assert len(again) == len({(k["prompt"], k["completion"]) for k in again})  # no duplicates
    assert {(k["prompt"], k["completion"]) for k in kept[:1]} <= {
        (k["prompt"], k["completion"]) for k in again
    }
    graded = _rows(record)
    assert len(again) == len({(g["prompt"], g["completion"]) for g in graded if g["reward"] >= 1})


def test_duplicates_are_written_once(tmp_path, tiny_model_dir, run_cli):
    # greedy: all 4 samples of a prompt are the same text, and a repeated prompt repeats them
    prompts = _setup(tmp_path, [{"prompt": "same", "answer": "1"}] * 2 + [{"prompt": "other"}])
    out = tmp_path / "kept.jsonl"
    args = _args(tiny_model_dir, tmp_path, prompts, out, "-k", "4", "--temp", "0")
    assert run_cli(*args, "--threshold", "0") == 0  # everything passes
    assert len(_rows(tmp_path / "kept.graded.jsonl")) == 12
    kept = _rows(out)
    assert sorted(k["prompt"] for k in kept) == ["other", "same"]
    assert [k["answer"] for k in kept if k["prompt"] == "other"] == [""]


def test_math_correct_by_default_against_the_answer_column(tmp_path, tiny_model_dir, run_cli):
    prompts = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "2+2?", "answer": 4}])
    out = tmp_path / "kept.jsonl"
    args = ["generate", "-m", tiny_model_dir, "-p", prompts, "-o", out, "--max-tokens", "3",
            "-k", "2", "--keep", "correct"]  # fmt: skip
    assert run_cli(*args) == 0
    graded = _rows(tmp_path / "kept.graded.jsonl")
    assert [set(g["rewards"]) for g in graded] == [{"math_correct"}] * 2
    assert all(g["answer"] == "4" for g in graded)
    assert len(_rows(out)) == len({g["completion"] for g in graded if g["reward"] >= 1.0})


def test_nothing_to_grade_by_is_one_clear_error(tmp_path, tiny_model_dir, run_cli, capsys):
    txt = tmp_path / "in.txt"
    txt.write_text("a question\n")
    out = tmp_path / "kept.jsonl"
    base = ["generate", "-m", tiny_model_dir, "-p", txt, "-o", out, "--max-tokens", "2"]
    assert run_cli(*base, "--keep", "correct") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nothing to grade by" in err and '"answer"' in err
    assert run_cli(*base, "--keep", "correct", "--reward", "math_correct") == 2
    assert "math_correct compares with gold answers" in capsys.readouterr().err
    nothing = write_jsonl(tmp_path / "no-answers.jsonl", [{"prompt": "x"}])
    assert run_cli(*base[:4], nothing, *base[5:], "--keep", "correct") == 2
    assert "nothing to grade by" in capsys.readouterr().err
    assert run_cli(*base, "--threshold", "1") == 2
    assert "--keep correct" in capsys.readouterr().err
    assert run_cli(*base, "--keep", "correct", "--reward", "r1_format", "--threshold", "nan") == 2
    assert "--threshold must be a number, not nan" in capsys.readouterr().err
    assert run_cli(*base, "--keep", "best") == 2
    assert "--keep is all or correct" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "kept.graded.jsonl").exists()


def test_an_out_file_not_ours_is_refused_untouched(tmp_path, tiny_model_dir, run_cli, capsys):
    prompts = _setup(tmp_path, [{"prompt": "q", "answer": "1"}])
    plain = tmp_path / "answers.jsonl"  # a plain generate output is not a kept-rows file
    assert run_cli("generate", "-m", tiny_model_dir, "-p", prompts, "-o", plain,
                   "--max-tokens", "2") == 0  # fmt: skip
    before = plain.read_text()
    assert run_cli(*_args(tiny_model_dir, tmp_path, prompts, plain)) == 2
    assert "line 1 is not a row kept by mlx-grpo generate" in capsys.readouterr().err
    assert plain.read_text() == before
    fields = ("prompt", "completion", "answer", "reward")
    lone = write_jsonl(tmp_path / "sft.jsonl", [dict.fromkeys(fields, "x")])
    text = lone.read_text()
    assert run_cli(*_args(tiny_model_dir, tmp_path, prompts, lone)) == 2
    assert "sft.graded.jsonl (the record of its graded completions) does not" in (
        capsys.readouterr().err
    )
    assert lone.read_text() == text


def test_other_rewards_on_resume_are_refused(tmp_path, tiny_model_dir, run_cli, capsys):
    prompts = _setup(tmp_path, [{"prompt": "q", "answer": "1"}])
    out = tmp_path / "kept.jsonl"
    assert run_cli(*_args(tiny_model_dir, tmp_path, prompts, out)) == 0
    kept = out.read_text()
    args = ["generate", "-m", tiny_model_dir, "-p", prompts, "-o", out, "--keep", "correct"]
    assert run_cli(*args) == 2
    assert "graded by rewards [mod3], this command grades by [math_correct]" in (
        capsys.readouterr().err
    )
    assert out.read_text() == kept


def test_a_runs_rewards_and_params_grade_by_default():
    from mlx_grpo.config import RewardSpec, TrainConfig
    from mlx_grpo.infer.rejection import Gold, Keeper, choose_rewards

    cfg = TrainConfig(
        rewards=[
            RewardSpec("exact_number", weight=2.0),
            RewardSpec("overlong", weight=0.5, params={"cache_length": 2}),
        ]
    )
    rewards = choose_rewards(cfg, [], has_answers=True)
    assert [(r.name, r.weight) for r in rewards] == [("exact_number", 2.0), ("overlong", 0.5)]
    keeper = Keeper(rewards, 2.0, max_tokens=10, gold={1: Gold("q", "7")})
    rows = [{"id": 1, "prompt": "q", "completion": c, "completion_tokens": n}
            for c, n in (("7", 3), ("8", 3), ("7", 10))]  # fmt: skip
    keeper.grade(rows)
    kept = keeper.keep(rows)
    # 7 is right (2 x 1); at 10 of 10 tokens overlong costs 0.5 x -1 (cache_length 2)
    assert [r["reward"] for r in rows] == [2.0, 0.0, 1.5]
    assert kept == [{"prompt": "q", "completion": "7", "answer": "7", "reward": 2.0}]
    (named,) = choose_rewards(cfg, ["overlong"], has_answers=False)  # the run's params kept
    assert named.weight == 1.0 and named.fn.keywords == {"cache_length": 2}
