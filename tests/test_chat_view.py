"""ChatView: the reasoning block is shown under a header, hidden with /think off, raw when piped."""

from __future__ import annotations

import io
from types import SimpleNamespace

from mlx_grpo.cli.chat_view import ChatView
from rich.console import Console

from mlx_grpo.infer.chat import ChatSettings, TurnStats

PIECES = ["<thi", "nk>two plus", " two</think>", "The answer is 4."]


def render(interactive: bool, show_think: bool, pieces: list[str] = PIECES, opens=False) -> str:
    session = SimpleNamespace(settings=ChatSettings(show_think=show_think), context_limit=100)
    view = ChatView(session, interactive=interactive)  # type: ignore[arg-type]
    buffer = io.StringIO()
    view.out = view.info = Console(file=buffer, force_terminal=False, width=200)
    view.answer(iter(pieces), lambda: opens)
    return buffer.getvalue()


def test_reasoning_is_shown_under_a_header() -> None:
    out = render(interactive=True, show_think=True)
    assert out == "── thinking ──\ntwo plus two\n── answer ──\nThe answer is 4.\n"


def test_think_off_hides_the_reasoning() -> None:
    out = render(interactive=True, show_think=False)
    assert "two plus" not in out and "(thinking…)" in out and "The answer is 4." in out


def test_template_that_opens_the_think_block() -> None:
    out = render(True, True, ["two plus", " two</think>", "The answer is 4."], opens=True)
    assert out.startswith("── thinking ──\ntwo plus two\n── answer ──\n")


def test_piped_output_is_the_raw_text() -> None:
    assert render(interactive=False, show_think=True) == "".join(PIECES) + "\n"
    assert render(interactive=False, show_think=False) == "The answer is 4.\n"


def test_stats_warn_near_the_context_limit() -> None:
    session = SimpleNamespace(settings=ChatSettings(), context_limit=100)
    view = ChatView(session, interactive=True)  # type: ignore[arg-type]
    buffer = io.StringIO()
    view.info = Console(file=buffer, force_terminal=False, width=200)
    stats = TurnStats(reused=50, prefilled=10, generated=30, seconds=1.0, finish="stop")
    stats.context_used, stats.context_limit, stats.dropped_turns = 90, 100, 2
    view.stats(stats)
    out = buffer.getvalue()
    assert "30 tokens · 30.0 tokens/s · prefill 10 (+50 cached) · context 90/100" in out
    assert "dropped the 2 oldest turns" in out and "nearly full" in out
