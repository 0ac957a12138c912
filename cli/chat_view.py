"""The terminal side of `mlx-grpo chat`: streaming output, the reasoning block, the loop.

`ThinkSplitter` cuts streamed text at `<think>` / `</think>` (also when a tag arrives in
pieces). `ChatView` prints: in a terminal, reasoning is dimmed under a header and can be
hidden; when stdin is piped, answers go to stdout as plain text, one per input line, and
everything else to stderr. `chat_loop` reads lines (with readline editing when
interactive), runs slash commands and answers; Ctrl-C stops an answer, Ctrl-D leaves.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.markup import escape

from mlx_grpo.errors import UserError
from mlx_grpo.infer.chat import ChatSession, TurnStats, is_command, run_command

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
PROMPT = ">>> "  # plain: colour codes confuse libedit's line editing on macOS


class ThinkSplitter:
    """Split streamed text into ("think" | "answer" | "open" | "close", text) pieces."""

    def __init__(self, inside: bool = False) -> None:
        self.inside = inside
        self._buffer = ""

    def feed(self, text: str) -> list[tuple[str, str]]:
        """Pieces that are certain so far; a possible partial tag is held back."""
        self._buffer += text
        pieces: list[tuple[str, str]] = []
        while True:
            tag = THINK_CLOSE if self.inside else THINK_OPEN
            at = self._buffer.find(tag)
            if at < 0:
                break
            self._add(pieces, self._buffer[:at])
            pieces.append(("close" if self.inside else "open", tag))
            self.inside = not self.inside
            self._buffer = self._buffer[at + len(tag) :]
        hold = _partial_suffix(self._buffer, THINK_CLOSE if self.inside else THINK_OPEN)
        self._add(pieces, self._buffer[: len(self._buffer) - hold])
        self._buffer = self._buffer[len(self._buffer) - hold :]
        return pieces

    def flush(self) -> list[tuple[str, str]]:
        """Whatever is still held back, at the end of an answer."""
        pieces: list[tuple[str, str]] = []
        self._add(pieces, self._buffer)
        self._buffer = ""
        return pieces

    def _add(self, pieces: list[tuple[str, str]], text: str) -> None:
        if text:
            pieces.append(("think" if self.inside else "answer", text))


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that is a beginning of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ChatView:
    """Everything the user sees; `interactive` picks styled terminal or plain piped output."""

    def __init__(self, session: ChatSession, interactive: bool) -> None:
        self.session = session
        self.interactive = interactive
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self.info = self.out if interactive else self.err

    def banner(self, label: str, template: str) -> None:
        limit = self.session.context_limit
        where = f"{escape(label)} · template {escape(template)} · context {limit}"
        self.info.print(f"[bold]mlx-grpo chat[/] · {where}")
        if self.interactive:
            self.info.print("[dim]/help for commands · Ctrl-C stops an answer · Ctrl-D exits[/]")

    def notice(self, text: str, *, error: bool = False) -> None:
        style = "red" if error else "cyan"
        self.info.print(text, style=style, markup=False)

    def answer(self, pieces: Iterator[str], opens_in_think: Callable[[], bool]) -> None:
        """Stream one answer; the think state is read once the first text has arrived."""
        splitter: ThinkSplitter | None = None
        for text in pieces:
            if splitter is None:
                splitter = ThinkSplitter(inside=opens_in_think())
                if splitter.inside:
                    self._piece("open", THINK_OPEN)
            for kind, chunk in splitter.feed(text):
                self._piece(kind, chunk)
        for kind, chunk in splitter.flush() if splitter else []:
            self._piece(kind, chunk)
        self.out.print()

    def _piece(self, kind: str, text: str) -> None:
        show = self.session.settings.show_think
        if kind == "answer":
            self.out.print(text, end="", markup=False)
        elif not self.interactive:
            if show:
                self.out.print(text, end="", markup=False)
        elif kind == "open":
            self.out.print("── thinking ──" if show else "(thinking…)", style="dim", end="\n")
        elif kind == "close" and show:
            self.out.print("\n── answer ──", style="dim")
        elif kind == "think" and show:
            self.out.print(text, end="", style="dim italic", markup=False)

    def stats(self, stats: TurnStats) -> None:
        if stats.dropped_turns:
            n = stats.dropped_turns
            self.notice(f"dropped the {n} oldest turn{'s' * (n > 1)} to fit the context")
        if stats.finish == "interrupted":
            self.info.print("[stopped]", style="yellow", markup=False)
        line = (
            f"{stats.generated} tokens · {stats.tokens_per_second:.1f} tokens/s · "
            f"prefill {stats.prefilled} (+{stats.reused} cached) · "
            f"context {stats.context_used}/{stats.context_limit}"
        )
        self.info.print(line, style="dim", markup=False)
        if stats.near_limit:
            self.info.print(
                "[yellow]warning:[/] the context is nearly full; the oldest turns will be "
                "dropped to make room (/reset starts over)"
            )


def read_line(interactive: bool) -> str:
    """One line from the user: readline-edited prompt in a terminal, raw line from a pipe."""
    if interactive:
        import readline  # noqa: F401  (arrow keys and history for input())

        return input(PROMPT)
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\n")


def chat_loop(session: ChatSession, view: ChatView) -> int:
    """Read, answer, repeat until Ctrl-D or /exit; returns how many lines failed."""
    failed = 0
    while True:
        try:
            line = read_line(view.interactive)
        except EOFError:
            if view.interactive:
                view.out.print()
            return failed
        except KeyboardInterrupt:
            view.out.print()
            continue
        if not line.strip():
            continue
        if is_command(line):
            result = run_command(session, line)
            view.notice(result.message, error=result.error)
            failed += result.error
            if result.exit:
                return failed
            continue
        failed += not respond(session, view, line.removeprefix("/"))


def respond(session: ChatSession, view: ChatView, text: str) -> bool:
    """Answer one message; Ctrl-C stops the answer (and, when piped, the whole program)."""
    pieces = session.reply(text)
    try:
        view.answer(pieces, lambda: session.opens_in_think)
    except UserError as exc:
        view.notice(f"error: {exc}", error=True)
        return False
    except KeyboardInterrupt:
        pieces.close()
        view.out.print()
    if session.last is not None:
        view.stats(session.last)
        if session.last.finish == "interrupted" and not view.interactive:
            raise KeyboardInterrupt
    return True
