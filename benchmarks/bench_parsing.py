"""Time of every parser that reads model output on the adversarial inputs of
tests/test_linear_parsing.py (which checks their results): the slowest call per function.

Before the linear-time rewrite the issue's answers took 1 s to minutes each, growing
exponentially with the word count; the target is under 50 ms per call (100k-character inputs).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_linear_parsing import (  # noqa: E402
    FORM_NEAR_MISSES,
    HOSTILE_TEXT,
    ISSUE_ANSWERS,
    PUMPED,
)

from mlx_grpo.infer import emergence  # noqa: E402
from mlx_grpo.rewards import basic, countdown, format, forms, math  # noqa: E402

ANSWERS = ISSUE_ANSWERS + PUMPED
TEXTS = HOSTILE_TEXT + PUMPED
CASES: dict[str, tuple[Callable[[str], object], list[str]]] = {
    "math.normalize": (math.normalize, ANSWERS),
    "math.parse_number": (math.parse_number, ANSWERS),
    "math.extract_answer": (lambda t: math.extract_answer(f"<answer>{t}</answer>"), ANSWERS),
    "format.strict_score": (format.strict_score, TEXTS),
    "format.filled_answer_tags": (format.filled_answer_tags, TEXTS),
    "countdown.extract_expression": (countdown.extract_expression, TEXTS),
    "basic.last_number": (basic.last_number, TEXTS),
    "forms.exact_number_text": (forms.exact_number_text, FORM_NEAR_MISSES),
    "forms.based_number": (forms.based_number, FORM_NEAR_MISSES),
    "forms.inequality_as_interval": (forms.inequality_as_interval, FORM_NEAR_MISSES),
    "forms.split_matrix": (forms.split_matrix, FORM_NEAR_MISSES),
    "emergence.emergence_metrics": (lambda t: emergence.emergence_metrics([t], len), TEXTS),
}


def slowest(fn: Callable[[str], object], inputs: list[str], repeats: int = 3) -> float:
    """The slowest input's best-of-`repeats` time, in seconds."""
    worst = 0.0
    for text in inputs:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            fn(text)
            best = min(best, time.perf_counter() - start)
        worst = max(worst, best)
    return worst


def main() -> None:
    print("| parser | inputs | slowest call (ms) |")
    print("| --- | ---: | ---: |")
    for name, (fn, inputs) in CASES.items():
        print(f"| `{name}` | {len(inputs)} | {slowest(fn, inputs) * 1e3:.2f} |")


if __name__ == "__main__":
    main()
