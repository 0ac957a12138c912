"""`mlx-grpo chat`: talk to a base model, a model plus adapters of any checkpoint of a run, a
fused model or a 4-bit converted one. Flags are parsed here; the engine is `mlx_grpo.infer.chat`
and the terminal side `mlx_grpo.cli.chat_view`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import typer
from mlx_grpo.cli import model_flags

from mlx_grpo.errors import UserError

HELP = (
    "Talk to a model, multi-turn, with answers streamed as they are generated.\n\n"
    "The conversation goes through the model's chat template (base models without one get "
    "the R1-Zero template) and the KV cache is reused, so each turn only processes new text. "
    "<think> reasoning is shown dimmed (/think off hides it). Inside, /help lists the "
    "commands; Ctrl-C stops an answer, Ctrl-D leaves. With stdin piped, each line gets one "
    "answer on stdout.\n\n"
    "\b\nExamples:\n"
    "  mlx-grpo chat --model Qwen/Qwen2.5-0.5B-Instruct\n"
    "  mlx-grpo chat --run runs/gsm8k          (latest checkpoint)\n"
    "  mlx-grpo chat --run runs/gsm8k --step 200 --temp 0\n"
    "  mlx-grpo chat -m ./qwen-3b --adapter ./adapters --system 'Be brief.'\n"
    "  mlx-grpo chat -m ./fused-4bit --max-tokens 2048\n"
    "  echo 'What is 17 * 23?' | mlx-grpo chat -m ./fused"
)


def chat(
    model: str | None = model_flags.MODEL,
    adapter: Path | None = model_flags.ADAPTER,
    run: Path | None = model_flags.RUN,
    step: str = model_flags.STEP,
    system: str | None = typer.Option(None, "--system", help="System prompt."),
    temp: float = typer.Option(0.6, "--temp", min=0.0, help="Sampling temperature, 0 = greedy."),
    top_p: float = typer.Option(0.95, "--top-p", min=0.0, max=1.0, help="Nucleus sampling."),
    max_tokens: int = typer.Option(1024, "--max-tokens", min=1, help="Longest answer (tokens)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed, for repeatable answers."),
    template: str = typer.Option(
        "auto", "--template", help="auto | chat | r1 | plain (auto: the run's, else the model's)."
    ),
    max_context: int | None = typer.Option(
        None, "--max-context", min=16, help="Context limit in tokens (default: the model's)."
    ),
    think: bool = typer.Option(True, "--think/--no-think", help="Show <think> reasoning."),
    trace_tokens: Path | None = typer.Option(None, "--trace-tokens", hidden=True),
) -> None:
    """Talk to a model; see the examples below."""
    from mlx_grpo.cli.chat_view import ChatView, chat_loop

    from mlx_grpo.infer import chat as engine
    from mlx_grpo.infer.prompting import chosen_template, few_shot_turns
    from mlx_grpo.models import loading

    loaded = model_flags.load_from_flags(model, adapter, run, step)
    source = loaded.source
    chosen = chosen_template(loaded.tokenizer, source, template, conversation=True)
    settings = engine.ChatSettings(
        system=system if system is not None else _run_system(chosen, source),
        few_shot=[dataclasses.asdict(shot) for shot in few_shot_turns(source, chosen)],
        temp=temp,
        top_p=top_p,
        max_tokens=max_tokens,
        show_think=think,
    )
    session = engine.ChatSession(
        loaded.model,
        loaded.tokenizer,
        settings=settings,
        template=chosen,
        context_limit=max_context or loading.context_limit(loaded.config),
        trace=_tracer(trace_tokens),
    )
    _seed(seed)
    view = ChatView(session, interactive=sys.stdin.isatty())
    view.banner(source.label, chosen)
    try:
        failed = chat_loop(session, view)
    except KeyboardInterrupt as exc:
        raise typer.Abort() from exc
    if failed and not view.interactive:  # a person saw each error and went on; a script can't
        raise UserError(f"{failed} input line(s) failed (messages above)")


def _run_system(template: str, source: Any) -> str | None:
    """The run's system prompt, used with chat templates (R1-Zero brings its own preamble)."""
    return source.system_prompt if template == "chat" else None


def _seed(seed: int | None) -> None:
    if seed is not None:
        import mlx.core as mx

        mx.random.seed(seed)


def _tracer(path: Path | None) -> Any:
    """A debug hook writing each turn's token ids (cached, prefilled, generated) as JSON lines."""
    if path is None:
        return None

    def write(record: dict[str, Any]) -> None:
        with path.open("a") as file:
            file.write(json.dumps(record) + "\n")

    return write


def register(app: typer.Typer) -> None:
    """Add the `chat` command to the app."""
    app.command("chat", help=HELP, no_args_is_help=False)(chat)
