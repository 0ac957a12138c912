"""The math answer check: one time budget per completion, cached verdicts (timeouts too), a
warm and isolated sympy worker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlx_grpo.config import RewardSpec
from mlx_grpo.rewards import build_rewards, sandbox, score, warm_up
from mlx_grpo.rewards import math as m
from mlx_grpo.rewards.custom import Unscored

SLOW_A, SLOW_B = "(x+y+z+w+1)^{40}", "(x+y+z+w+2)^{40}"  # sympy expands for many seconds


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    m.VERDICTS._items.clear()


def test_a_slow_check_scores_zero_as_a_counted_timeout() -> None:
    [reward] = build_rewards([RewardSpec(name="math_correct", params={"timeout": 0.5})])
    completions = [f"<answer>{SLOW_A}</answer>", "<answer>4</answer>"]
    scores = score([reward], ["p", "p"], completions, [SLOW_B, "4"])
    assert scores.per_function["math_correct"].tolist() == [0.0, 1.0]
    assert scores.errors["math_correct"] == 1
    assert scores.outcomes["math_correct"] == {"timeout": 1}


def test_timeouts_are_cached_per_answer_and_gold() -> None:
    # A group of 8 identical slow answers costs one budget and one worker restart, not 8.
    before = sandbox.WORKER.timeouts
    group = [f"The answer is ${SLOW_A}$" for _ in range(8)]
    results = m.math_correct([""] * 8, group, [SLOW_B] * 8, timeout=0.5)
    assert all(isinstance(r, Unscored) and r.reason == "timeout" for r in results)
    assert sandbox.WORKER.timeouts == before + 1


def test_a_larger_budget_tries_again_after_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([None, True])  # the worker times out once, then answers
    calls = []

    def fake_equal(pred: str, gold: str, timeout: float) -> bool | None:
        calls.append(timeout)
        return next(answers)

    monkeypatch.setattr(sandbox.WORKER, "equal", fake_equal)
    assert isinstance(m.score_completion("<answer>x^2+2x+1</answer>", "(x+1)^2", 0.2), Unscored)
    assert isinstance(m.score_completion("<answer>x^2+2x+1</answer>", "(x+1)^2", 0.2), Unscored)
    assert len(calls) == 1  # the same budget does not ask again
    assert m.score_completion("<answer>x^2+2x+1</answer>", "(x+1)^2", 5.0) == 1.0
    assert len(calls) == 2


def test_verdicts_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    assert m.score_completion("<answer>\\sqrt{8}</answer>", "2\\sqrt{2}", 30.0) == 1.0
    monkeypatch.setattr(sandbox.WORKER, "equal", lambda *a: pytest.fail("asked again"))
    assert m.score_completion("so \\boxed{\\sqrt{8}}", "2\\sqrt{2}", 30.0) == 1.0


def test_extraction_and_normalization_count_against_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = m.normalize

    def slow_normalize(answer: str) -> str:
        time.sleep(0.2)
        return real(answer)

    monkeypatch.setattr(m, "normalize", slow_normalize)
    late = m.score_completion("<answer>12</answer>", "12", budget=0.1)
    assert isinstance(late, Unscored) and late.reason == "timeout"
    assert m.score_completion("<answer>13</answer>", "13", budget=5.0) == 1.0


def test_a_restart_does_not_eat_the_next_budget() -> None:
    # After a timeout the worker is replaced in the background; the next symbolic check
    # waits for it outside its budget and gets its whole budget.
    assert isinstance(m.score_completion(f"<answer>{SLOW_A}</answer>", SLOW_B, 0.3), Unscored)
    assert m.score_completion("<answer>\\sqrt{12}</answer>", "2\\sqrt{3}", 5.0) == 1.0


def test_warm_up_starts_the_worker_before_any_comparison() -> None:
    sandbox.WORKER.stop()
    assert sandbox.WORKER._proc is None
    warm_up(build_rewards([RewardSpec(name="math_correct", params={"timeout": 2.0})]))
    sandbox.WORKER.settle()
    proc = sandbox.WORKER._proc
    assert proc is not None and proc.poll() is None


def test_worker_ignores_a_sympy_py_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "was-imported"
    (tmp_path / "sympy.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    worker = sandbox.SympyWorker()
    try:
        assert worker.equal("\\sqrt{8}", "2\\sqrt{2}", timeout=30.0) is True
    finally:
        worker.stop()
    assert not marker.exists()


def test_a_restart_holds_up_only_checks_that_need_sympy() -> None:
    assert isinstance(m.score_completion(f"<answer>{SLOW_A}</answer>", SLOW_B, 0.3), Unscored)
    waited = sandbox.WORKER.waited_s
    assert m.score_completion("#### 72", "72", 1.0) == 1.0  # plain numbers: no worker needed
    assert sandbox.WORKER.waited_s == waited
    assert m.score_completion("<answer>\\sqrt{20}</answer>", "2\\sqrt{5}", 1.0) == 1.0


def test_identical_set_items_pair_off_without_sympy(monkeypatch: pytest.MonkeyPatch) -> None:
    items = [f"\\sqrt{{{k}}}+{k}x" for k in range(2, 34)]
    pred = "\\{" + ", ".join(reversed(items)) + "\\}"
    gold = "\\{" + ", ".join(items) + "\\}"
    monkeypatch.setattr(sandbox.WORKER, "equal", lambda *a: pytest.fail("sympy was asked"))
    assert m.score_completion(f"<answer>{pred}</answer>", gold, 1.0) == 1.0


def test_exit_while_the_worker_starts_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    worker = sandbox.SympyWorker()
    worker.start()  # in the background, as warm_up does
    worker.shutdown()  # what atexit does, possibly before the worker said "ready"
    worker.settle()
    assert not worker.broken and "failed to start" not in caplog.text
    assert worker._proc is None or worker._proc.poll() is not None
