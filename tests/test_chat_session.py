"""ChatSession: history through the template, KV-cache reuse, context limits, Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlx.core as mx
import pytest
from mlx_grpo.cli.chat_view import ThinkSplitter

from mlx_grpo.data.templates import R1_ZERO_TEMPLATE, render_r1, render_r1_conversation
from mlx_grpo.errors import UserError
from mlx_grpo.infer.chat import (
    ChatSession,
    ChatSettings,
    is_command,
    run_command,
)
from mlx_grpo.models.loading import (
    load_model_source,
    pick_template,
)
from mlx_grpo.models.resolve import resolve_source
from mlx_grpo.models.tiny import build_tiny_model


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = build_tiny_model(tmp_path_factory.mktemp("chat") / "tiny", seed=0)
    return load_model_source(resolve_source(str(path)))


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = build_tiny_model(tmp_path_factory.mktemp("base") / "tiny", chat_template=False)
    return load_model_source(resolve_source(str(path)))


def make_session(
    loaded: Any, traces: list | None = None, context_limit: int = 4096, **settings: Any
) -> ChatSession:
    """A session with greedy, short answers unless told otherwise."""
    return ChatSession(
        loaded.model,
        loaded.tokenizer,
        settings=ChatSettings(**{"temp": 0.0, "max_tokens": 8, **settings}),
        template=pick_template(loaded.tokenizer, None),
        context_limit=context_limit,
        trace=traces.append if traces is not None else None,
    )


def say(session: ChatSession, text: str, seed: int | None = None) -> str:
    if seed is not None:
        mx.random.seed(seed)
    return "".join(session.reply(text))


def cache_offsets(session: ChatSession) -> set[int]:
    return {layer.offset for layer in session._cache}


def test_history_and_system_prompt_reach_the_model(chat_model: Any) -> None:
    traces: list[dict] = []
    session = make_session(chat_model, traces, system="You are Bob.")
    say(session, "My name is Zed")
    say(session, "What is my name?")
    context = chat_model.tokenizer.decode(traces[1]["context"])
    assert "My name is Zed" in context and "What is my name?" in context
    assert context.count("You are Bob.") == 1
    assert context.startswith("<|im_start|>system\nYou are Bob.<|im_end|>\n<|im_start|>user\n")
    roles = [m["role"] for m in session.messages()]
    assert roles == ["system", "user", "assistant", "user", "assistant"]


def test_second_turn_prefills_only_the_new_tokens(chat_model: Any) -> None:
    traces: list[dict] = []
    session = make_session(chat_model, traces)
    say(session, "My name is Zed")
    cached = session.cached_tokens
    assert cached == traces[0]["context"] + traces[0]["generated"]
    say(session, "What is my name?")
    assert traces[1]["reused"] == len(cached) == session.last.reused
    new_text = chat_model.tokenizer.decode(traces[1]["prefill"])
    assert new_text == "<|im_end|>\n<|im_start|>user\nWhat is my name?<|im_end|>\n" + (
        "<|im_start|>assistant\n"
    )
    assert session.last.prefilled == len(traces[1]["prefill"])


def test_warm_second_turn_equals_cold_run_greedy(chat_model: Any) -> None:
    warm_trace: list[dict] = []
    warm = make_session(chat_model, warm_trace, max_tokens=12)
    say(warm, "My name is Zed")
    say(warm, "What is my name?")
    cold_trace: list[dict] = []
    cold = make_session(chat_model, cold_trace, max_tokens=12)
    cold.history = warm.history[:2]
    say(cold, "What is my name?")
    assert cold_trace[0]["reused"] == 0 and warm_trace[1]["reused"] > 0
    assert cold_trace[0]["context"] == warm_trace[1]["context"]
    assert cold_trace[0]["generated"] == warm_trace[1]["generated"]


def test_diverging_template_trims_cache_and_matches_cold_run(chat_model: Any) -> None:
    """Sampled random bytes do not survive decode/encode, so the cache must be trimmed."""
    warm_trace: list[dict] = []
    warm = make_session(chat_model, warm_trace, temp=1.0, top_p=1.0, max_tokens=20)
    say(warm, "My name is Zed", seed=1)
    cached = len(warm.cached_tokens)
    say(warm, "What is my name?", seed=2)
    assert 0 < warm_trace[1]["reused"] < cached
    cold_trace: list[dict] = []
    cold = make_session(chat_model, cold_trace, temp=1.0, top_p=1.0, max_tokens=20)
    cold.history = warm.history[:2]
    say(cold, "What is my name?", seed=2)
    assert cold_trace[0]["context"] == warm_trace[1]["context"]
    assert cold_trace[0]["generated"] == warm_trace[1]["generated"]


def test_stopping_an_answer_keeps_a_consistent_cache(chat_model: Any) -> None:
    session = make_session(chat_model, max_tokens=500)
    pieces = session.reply("Tell me a long story")
    for _ in range(5):
        next(pieces)
    pieces.close()  # what the view does after Ctrl-C
    assert session.last.finish == "interrupted"
    assert 0 < session.last.generated < 500
    assert session.history[-1]["role"] == "assistant"
    assert cache_offsets(session) == {len(session.cached_tokens)}
    say(session, "Go on")
    assert session.last.reused > 0 and session.last.finish == "length"
    assert cache_offsets(session) == {len(session.cached_tokens)}


class InterruptingModel:
    """Delegates to a model and raises KeyboardInterrupt (as Ctrl-C would) on call `at`."""

    def __init__(self, model: Any, at: int) -> None:
        self.model, self.layers, self.at, self.calls = model, model.layers, at, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        out = self.model(*args, **kwargs)
        if self.calls == self.at:
            mx.eval(out)
            raise KeyboardInterrupt
        return out


def test_ctrl_c_inside_generation_then_next_turn_matches_cold(chat_model: Any) -> None:
    session = make_session(chat_model, max_tokens=50)
    session.model = InterruptingModel(chat_model.model, at=6)
    say(session, "Tell me a long story")
    assert session.last.finish == "interrupted"
    assert cache_offsets(session) == {len(session.cached_tokens)}
    session.model = chat_model.model
    traces: list[dict] = []
    session.trace = traces.append
    say(session, "Shorter please")
    cold_trace: list[dict] = []
    cold = make_session(chat_model, cold_trace, max_tokens=50)
    cold.history = session.history[:2]
    say(cold, "Shorter please")
    assert traces[0]["context"] == cold_trace[0]["context"]
    assert traces[0]["generated"] == cold_trace[0]["generated"]


def test_full_context_drops_oldest_turns_with_notice(chat_model: Any) -> None:
    session = make_session(chat_model, context_limit=130, system="Be brief.", max_tokens=10)
    for i in range(4):
        say(session, f"question number {i}")
    assert session.last.dropped_turns >= 1
    assert session.messages()[0] == {"role": "system", "content": "Be brief."}
    assert session.history[0]["content"] != "question number 0"
    assert session.last.context_used <= 130
    assert session.last.near_limit


def test_prompt_longer_than_context_is_a_clear_error(chat_model: Any) -> None:
    session = make_session(chat_model, context_limit=64)
    say(session, "hi")
    before = list(session.history)
    with pytest.raises(UserError, match="the prompt is .* tokens but the context holds 64"):
        say(session, "x" * 100)
    assert session.history == before
    say(session, "hello")
    assert session.last.finish == "length"


def test_reset_forgets_history_but_keeps_system(chat_model: Any) -> None:
    traces: list[dict] = []
    session = make_session(chat_model, traces, system="Sys")
    say(session, "My name is Zed")
    assert run_command(session, "/reset").message == "conversation cleared"
    say(session, "Who am I?")
    context = chat_model.tokenizer.decode(traces[-1]["context"])
    assert "Zed" not in context and "Sys" in context


def test_base_model_uses_r1_template_and_appends_turns(base_model: Any) -> None:
    traces: list[dict] = []
    session = make_session(base_model, traces)
    assert session.template == "r1"
    say(session, "What is 2+2")
    assert base_model.tokenizer.decode(traces[0]["context"]) == render_r1("What is 2+2")
    say(session, "And 3+3")
    assert base_model.tokenizer.decode(traces[1]["prefill"]) == " User: And 3+3. Assistant:"
    assert traces[1]["reused"] == len(traces[0]["context"]) + len(traces[0]["generated"])


def test_r1_templates() -> None:
    assert R1_ZERO_TEMPLATE.endswith("User: {prompt}. Assistant:")
    assert render_r1("Q?").endswith("</answer>. User: Q?. Assistant:")
    two = render_r1_conversation(
        [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": " <think>x</think>"},
            {"role": "user", "content": "b"},
        ]
    )
    assert two == render_r1("a") + " <think>x</think> User: b. Assistant:"
    assert render_r1_conversation([{"role": "system", "content": "S"}]) == "S"


def test_think_splitter_handles_tags_split_across_pieces() -> None:
    splitter = ThinkSplitter()
    pieces = []
    for text in ["a<th", "ink>b</thi", "nk>c", "<"]:
        pieces += splitter.feed(text)
    pieces += splitter.flush()
    assert pieces == [
        ("answer", "a"),
        ("open", "<think>"),
        ("think", "b"),
        ("close", "</think>"),
        ("answer", "c"),
        ("answer", "<"),
    ]
    assert ThinkSplitter(inside=True).feed("r</think>") == [("think", "r"), ("close", "</think>")]


def test_slash_commands_change_settings(chat_model: Any, tmp_path: Path) -> None:
    session = make_session(chat_model)
    assert run_command(session, "/temp 0.3").message == "temperature 0.3"
    assert session.settings.temp == 0.3
    assert run_command(session, "/temp hot").error
    assert run_command(session, "/max 5").message.endswith("5 tokens")
    assert session.settings.max_tokens == 5
    assert run_command(session, "/max -1").error
    run_command(session, "/think off")
    assert session.settings.show_think is False
    assert run_command(session, "/think maybe").error
    run_command(session, "/system Talk like a pirate")
    assert session.settings.system == "Talk like a pirate"
    assert "pirate" in run_command(session, "/system").message
    run_command(session, "/system none")
    assert session.settings.system is None
    assert "/save" in run_command(session, "/help").message
    assert run_command(session, "/exit").exit
    assert run_command(session, "/nope").error
    assert is_command("/reset") and not is_command("//not a command")


def test_save_writes_the_conversation_as_json(chat_model: Any, tmp_path: Path) -> None:
    session = make_session(chat_model, system="S")
    say(session, "hello")
    target = tmp_path / "chat.json"
    assert not run_command(session, f"/save {target}").error
    saved = json.loads(target.read_text())
    assert [m["role"] for m in saved["messages"]] == ["system", "user", "assistant"]
    assert saved["messages"][1]["content"] == "hello"
    assert saved["settings"]["max_tokens"] == 8
    assert run_command(session, f"/save {tmp_path / 'missing' / 'x.json'}").error
