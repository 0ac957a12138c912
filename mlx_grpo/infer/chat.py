"""The chat engine behind `mlx-grpo chat`: the conversation and its KV cache.

Two parts, no terminal code (that lives in `cli/chat_view.py`; loading in `models/`):

- `ChatSession`: the message history, rendered through the tokenizer's chat template (or the
  R1-Zero template for base models) on every turn. The tokens already in the KV cache are
  compared with the freshly rendered history; only the part after their common prefix is
  prefilled, and the cache is trimmed where they diverge (a template may render an earlier
  answer differently from the tokens that were sampled). When the history no longer fits in
  the context, the oldest turns are dropped.
- Slash commands (`run_command`): pure functions of a session and a line of text.

An answer stopped with Ctrl-C stays in the history as far as it got; the cache keeps the
tokens it had processed, minus one for safety (the next turn re-prefills it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlx_grpo.data.templates import render_plain_conversation, render_r1_conversation
from mlx_grpo.errors import UserError

STOP_STRINGS = {"chat": (), "r1": ("</answer>",), "plain": ()}
NEAR_LIMIT = 0.85

# ----------------------------------------------------------------------------- session


@dataclass
class ChatSettings:
    """What the user can change during a session (sampling, length, display)."""

    system: str | None = None
    few_shot: list[dict[str, str]] = field(default_factory=list)  # the run's worked examples
    temp: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 1024
    show_think: bool = True


@dataclass
class TurnStats:
    """What one answer cost: reused/prefilled/generated tokens, time, context use."""

    reused: int
    prefilled: int
    generated: int = 0
    seconds: float = 0.0
    context_used: int = 0
    context_limit: int = 0
    dropped_turns: int = 0
    finish: str = "interrupted"

    @property
    def tokens_per_second(self) -> float:
        return self.generated / self.seconds if self.seconds > 0 else 0.0

    @property
    def near_limit(self) -> bool:
        return self.context_used >= NEAR_LIMIT * self.context_limit


@dataclass
class _Turn:
    """Bookkeeping of the answer being generated."""

    full: list[int]
    budget: int
    stats: TurnStats
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    started: float = field(default_factory=time.perf_counter)


class ChatSession:
    """A multi-turn conversation with one model and one KV cache reused across turns."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        settings: ChatSettings | None = None,
        template: str = "chat",
        context_limit: int = 4096,
        trace: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.settings = settings or ChatSettings()
        self.template = template
        self.context_limit = context_limit
        self.trace = trace
        self.history: list[dict[str, str]] = []
        self.last: TurnStats | None = None
        self.opens_in_think = False
        self._cache = self._fresh_cache()
        self._cached: list[int] = []

    def _fresh_cache(self) -> list[Any]:
        from mlx_lm.models.cache import make_prompt_cache

        return make_prompt_cache(self.model)

    @property
    def cached_tokens(self) -> list[int]:
        """The tokens whose keys and values the KV cache holds, in order."""
        return list(self._cached)

    def messages(self, history: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
        """The system prompt (once, first), the run's few-shot turns (never dropped) and the
        history, as chat-template messages."""
        system = [{"role": "system", "content": self.settings.system}]
        shots = [
            {"role": role, "content": shot[role]}
            for shot in self.settings.few_shot
            for role in ("user", "assistant")
        ]
        turns = self.history if history is None else history
        return (system if self.settings.system else []) + shots + turns

    def render(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of `messages` followed by the start of the assistant's answer."""
        if self.template == "chat":
            ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
            return list(ids)
        render = render_r1_conversation if self.template == "r1" else render_plain_conversation
        return list(self.tokenizer.encode(render(messages)))

    def reset(self) -> None:
        """Forget the conversation (the cache is trimmed lazily on the next turn)."""
        self.history = []

    def reply(self, text: str) -> Iterator[str]:
        """Answer `text`, yielding decoded text as it is generated; stats land in `last`.

        Raises UserError (before yielding) when `text` cannot fit in the context.
        """
        user = {"role": "user", "content": text}
        full, history, dropped = self._fit(user)
        self.history = history + [user]
        reused = self._reuse_prefix(full)
        self.opens_in_think = self._opens_in_think(full)
        budget = min(self.settings.max_tokens, self.context_limit - len(full))
        stats = TurnStats(reused, len(full) - reused, dropped_turns=dropped)
        turn = _Turn(full, budget, stats)
        try:
            yield from self._generate(turn)
        except (KeyboardInterrupt, GeneratorExit):  # Ctrl-C here, or the reader gave up
            turn.stats.finish = "interrupted"
        finally:
            self._commit(turn)

    def _fit(self, user: dict[str, str]) -> tuple[list[int], list[dict[str, str]], int]:
        """Render history + `user`, dropping the oldest turns until an answer fits."""
        history, dropped = list(self.history), 0
        while True:
            full = self.render(self.messages(history + [user]))
            room = self.context_limit - len(full)
            if room >= self.settings.max_tokens or len(history) < 2:
                break
            history, dropped = history[2:], dropped + 1
        if room < 1:
            raise UserError(
                f"the prompt is {len(full)} tokens but the context holds {self.context_limit}; "
                "send something shorter (or /reset)"
            )
        return full, history, dropped

    def _reuse_prefix(self, full: list[int]) -> int:
        """Trim the cache to its common prefix with `full`; return how many tokens it keeps."""
        from mlx_lm.models.cache import can_trim_prompt_cache, trim_prompt_cache
        from mlx_lm.utils import common_prefix_len

        keep = min(common_prefix_len(self._cached, full), len(full) - 1)
        extra = len(self._cached) - keep
        if extra > 0 and can_trim_prompt_cache(self._cache):
            trim_prompt_cache(self._cache, extra)
        elif extra > 0:
            self._cache, keep = self._fresh_cache(), 0
        self._cached = self._cached[:keep]
        return keep

    def _opens_in_think(self, full: list[int]) -> bool:
        """Whether the template already opened a `<think>` block for the answer."""
        tail = self.tokenizer.decode(full[-4:]).rstrip()
        return tail.endswith("<think>")

    def _generate(self, turn: _Turn) -> Iterator[str]:
        """Sample the answer token by token, prefilling only the uncached suffix."""
        import mlx.core as mx
        from mlx_lm.generate import generate_step, generation_stream, wired_limit
        from mlx_lm.sample_utils import make_sampler

        sampler = make_sampler(self.settings.temp, self.settings.top_p)
        prompt = mx.array(turn.full[turn.stats.reused :])
        with wired_limit(self.model, [generation_stream]):
            steps = generate_step(
                prompt,
                self.model,
                max_tokens=turn.budget,
                sampler=sampler,
                prompt_cache=self._cache,
            )
            yield from self._decode(turn, steps)
            steps.close()

    def _decode(self, turn: _Turn, steps: Iterator[tuple[int, Any]]) -> Iterator[str]:
        """Stream text until EOS, a stop string (R1: `</answer>`) or the token budget."""
        detokenizer, eos = self.tokenizer.detokenizer, self.tokenizer.eos_token_ids
        turn.stats.finish = "length"
        for token, _ in steps:
            if not turn.tokens:
                turn.started = time.perf_counter()
            turn.tokens.append(token)
            if token in eos:
                turn.stats.finish = "stop"
                break
            detokenizer.add_token(token)
            yield from self._emit(turn, detokenizer.last_segment)
            if any(stop in turn.text[-64:] for stop in STOP_STRINGS[self.template]):
                turn.stats.finish = "stop"
                break
        detokenizer.finalize()
        yield from self._emit(turn, detokenizer.last_segment)

    @staticmethod
    def _emit(turn: _Turn, segment: str) -> Iterator[str]:
        if segment:
            turn.text += segment
            yield segment

    def _commit(self, turn: _Turn) -> None:
        """Record the answer (even a partial one) and make the cache bookkeeping exact."""
        eos = self.tokenizer.eos_token_ids
        answer = self.tokenizer.decode([t for t in turn.tokens if t not in eos])
        self.history.append({"role": "assistant", "content": answer})
        fed = turn.full + turn.tokens
        self._cached = fed[: self._settle_cache(len(fed), turn.stats.finish == "interrupted")]
        stats = turn.stats
        stats.generated = len(turn.tokens)
        stats.seconds = time.perf_counter() - turn.started
        stats.context_used, stats.context_limit = len(fed), self.context_limit
        self.last = stats
        if self.trace is not None:
            record = {"context": turn.full, "reused": stats.reused, "generated": turn.tokens}
            self.trace({**record, "prefill": turn.full[stats.reused :], "finish": stats.finish})

    def _settle_cache(self, fed: int, interrupted: bool) -> int:
        """Make every cache layer hold the same number of tokens; return that number.

        After Ctrl-C, layers may disagree (the interrupt can land between layers), so all are
        trimmed to the shortest, less one token whose values might not have been written.
        """
        from mlx_lm.models.cache import can_trim_prompt_cache

        if not can_trim_prompt_cache(self._cache):
            if interrupted:
                self._cache = self._fresh_cache()
                return 0
            return fed
        keep = min([fed] + [layer.offset for layer in self._cache])
        keep = max(keep - 1, 0) if interrupted else keep
        for layer in self._cache:
            layer.trim(layer.offset - keep)
        return keep

    def transcript(self) -> dict[str, Any]:
        """The conversation and settings as a JSON-ready dict (what `/save` writes)."""
        settings = asdict(self.settings)
        return {"template": self.template, "settings": settings, "messages": self.messages()}


# ----------------------------------------------------------------------------- commands

HELP = """\
/reset          forget the conversation (keeps the system prompt)
/system TEXT    set the system prompt (/system alone shows it, /system none clears it)
/temp X         sampling temperature (0 = greedy)
/max N          answer length limit in tokens
/think on|off   show or hide <think> ... </think> reasoning
/save FILE      write the conversation to FILE as JSON
/help           this list
/exit           leave (Ctrl-D works too); Ctrl-C stops an answer
Start a message with // to send text that begins with a slash."""


@dataclass
class CommandResult:
    """What a slash command tells the user, and whether the session should end."""

    message: str
    error: bool = False
    exit: bool = False


def is_command(line: str) -> bool:
    """A line starting with one slash is a command; `//text` is a message `/text`."""
    return line.startswith("/") and not line.startswith("//")


def run_command(session: ChatSession, line: str) -> CommandResult:
    """Apply one slash command to the session."""
    name, _, arg = line.strip().partition(" ")
    handler = COMMANDS.get(name.lower())
    if handler is None:
        return CommandResult(f"unknown command {name}; /help lists the commands", error=True)
    return handler(session, arg.strip())


def _reset(session: ChatSession, arg: str) -> CommandResult:
    session.reset()
    return CommandResult("conversation cleared")


def _system(session: ChatSession, arg: str) -> CommandResult:
    if not arg:
        current = session.settings.system
        return CommandResult(f"system prompt: {current}" if current else "no system prompt")
    session.settings.system = None if arg.lower() == "none" else arg
    return CommandResult("system prompt cleared" if arg.lower() == "none" else "system prompt set")


def _temp(session: ChatSession, arg: str) -> CommandResult:
    try:
        value = float(arg)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 5.0:
        return CommandResult(f"/temp takes a number from 0 to 5, not {arg!r}", error=True)
    session.settings.temp = value
    return CommandResult(f"temperature {value:g}")


def _max(session: ChatSession, arg: str) -> CommandResult:
    if not arg.isdigit() or int(arg) < 1:
        return CommandResult(f"/max takes a positive whole number, not {arg!r}", error=True)
    session.settings.max_tokens = int(arg)
    return CommandResult(f"answers limited to {int(arg)} tokens")


def _think(session: ChatSession, arg: str) -> CommandResult:
    if arg.lower() not in ("on", "off"):
        return CommandResult("/think takes on or off", error=True)
    session.settings.show_think = arg.lower() == "on"
    return CommandResult(f"reasoning {'shown' if session.settings.show_think else 'hidden'}")


def _save(session: ChatSession, arg: str) -> CommandResult:
    if not arg:
        return CommandResult("/save needs a file name, e.g. /save chat.json", error=True)
    path = Path(arg).expanduser()
    try:
        path.write_text(json.dumps(session.transcript(), indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        return CommandResult(f"could not write {path}: {exc.strerror}", error=True)
    return CommandResult(f"saved {len(session.history)} messages to {path}")


def _help(session: ChatSession, arg: str) -> CommandResult:
    return CommandResult(HELP)


def _exit(session: ChatSession, arg: str) -> CommandResult:
    return CommandResult("bye", exit=True)


COMMANDS: dict[str, Callable[[ChatSession, str], CommandResult]] = {
    "/reset": _reset,
    "/system": _system,
    "/temp": _temp,
    "/max": _max,
    "/think": _think,
    "/save": _save,
    "/help": _help,
    "/exit": _exit,
    "/quit": _exit,
}
