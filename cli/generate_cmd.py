"""`mlx-grpo generate`: batched, resumable generation over a file of prompts."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from mlx_grpo.cli import model_flags
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mlx_grpo.errors import UserError

HELP = (
    "Generate completions for every prompt in a file, k samples each, batched like the "
    "trainer's rollouts. Rows (prompt, completion, token counts, finish reason) are appended "
    "to --out as they finish; run the same command again to resume: rows already there are "
    "skipped.\n\n"
    "\b\nExamples:\n"
    "  mlx-grpo generate --run runs/gsm8k --prompts questions.txt --out answers.jsonl\n"
    "  mlx-grpo generate -m ./fused-4bit --prompts in.jsonl --out out.jsonl --samples 4 --temp 0.8"
    "\n  mlx-grpo generate --run runs/gsm8k -p train.jsonl -o sft.jsonl -k 8 --keep correct\n\n"
    "With --keep correct (rejection sampling), every completion is graded by --reward "
    "(repeatable), else the run's rewards, else math_correct against the prompts' \"answer\" "
    "column; --out gets only {prompt, completion, answer, reward} SFT rows whose weighted "
    "total is at least --threshold (default 1.0), each (prompt, completion) once. Every graded "
    "completion is recorded in OUT.graded.jsonl, which resumes the run."
)


def generate_command(
    model: str | None = model_flags.MODEL,
    adapter: Path | None = model_flags.ADAPTER,
    run: Path | None = model_flags.RUN,
    step: str = model_flags.STEP,
    prompts: Path = typer.Option(..., "--prompts", "-p", help=".txt (a line each) or .jsonl."),
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL (appended; resumable)."),
    samples: int = typer.Option(1, "--samples", "-k", min=1, help="Completions per prompt."),
    temp: float = typer.Option(0.7, "--temp", min=0.0, help="Temperature, 0 = greedy."),
    top_p: float = typer.Option(1.0, "--top-p", min=0.0, max=1.0, help="Nucleus sampling."),
    max_tokens: int = typer.Option(512, "--max-tokens", min=1, help="Longest completion."),
    template: str = typer.Option("auto", "--template", help="auto | chat | r1 | plain."),
    system: str | None = typer.Option(None, "--system", help="System prompt (chat template)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Prompts decoded at once."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    keep: str = typer.Option(
        "all", "--keep", help="all | correct: only completions graded >= --threshold."
    ),
    reward: list[str] = typer.Option(
        [],
        "--reward",
        metavar="NAME",
        help="Grade by this reward, repeatable (default: the run's, else math_correct).",
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", help="Lowest weighted reward total kept (default: 1.0)."
    ),
) -> None:
    """Generate completions for a file of prompts."""
    from mlx_grpo.infer import generation, rejection

    lines = generation.read_prompts(prompts)
    keeper = _keeper(prompts, lines, run, keep, reward, threshold, max_tokens)
    loaded = model_flags.load_from_flags(model, adapter, run, step)
    items = _encode(loaded, lines, template, system, prompts)
    done = rejection.resume(out, keeper) if keeper else generation.done_rows(out)
    todo = generation.pending(items, samples, done)
    console = Console(stderr=True)
    if not todo:
        console.print(f"nothing to do: all {len(items) * samples} rows are in {escape(str(out))}")
    else:
        sampling = _sampling(loaded.tokenizer, temp, top_p, max_tokens)
        batches = generation.generate_rows(
            loaded.model, loaded.tokenizer, todo, samples, sampling, batch_size
        )
        _write(console, out, batches, done, keeper, len(todo) * samples, seed)
    if keeper is not None:
        Console().print(_kept_table(keeper, len(items), out))


def _write(console, out, batches, done, keeper, total, seed) -> None:  # noqa: ANN001
    """Generate (seeded) and append the rows: all of them, or graded ones and those kept."""
    import mlx.core as mx

    from mlx_grpo.infer import generation, rejection

    mx.random.seed(seed)  # generate_rows is lazy: nothing is sampled before this
    with _progress(console) as progress:
        task = progress.add_task("generate", total=total)
        advance = lambda n: progress.advance(task, n)  # noqa: E731
        if keeper is None:
            written = generation.write_rows(out, batches, done, advance)
        else:
            written = rejection.write_graded(out, batches, done, keeper, advance)
    target = out if keeper is None else rejection.graded_path(out)
    console.print(f"wrote {written} rows to {escape(str(target))} ({len(done)} were already there)")


def _keeper(prompts, lines, run, keep, names, threshold, max_tokens):  # noqa: ANN001, ANN202
    """The rejection sampler for --keep correct (None for --keep all), checked before any
    model loads."""
    from mlx_grpo.infer import held_out, rejection

    if keep not in ("all", "correct"):
        raise UserError(f"--keep is all or correct, not {keep!r}", where="--keep")
    if keep == "all":
        if names or threshold is not None:
            raise UserError("--reward and --threshold grade for --keep correct; add it")
        return None
    if threshold is not None and not math.isfinite(threshold):
        raise UserError(f"--threshold must be a number, not {threshold}", where="--threshold")
    gold = rejection.read_gold(prompts, lines)
    has_answers = any(g.answer for g in gold.values())
    rewards = rejection.choose_rewards(held_out.run_config(run), names, has_answers)
    limit = rejection.DEFAULT_THRESHOLD if threshold is None else threshold
    return rejection.Keeper(rewards, limit, max_tokens, gold)


def _kept_table(keeper, prompts: int, out: Path) -> Table:  # noqa: ANN001
    from mlx_grpo.infer.rejection import summary

    names = " + ".join(f"{r.weight:g}*{r.name}" for r in keeper.rewards)
    table = Table(title=f"kept: total of {names} >= {keeper.threshold:g} -> {escape(str(out))}")
    table.add_column("")
    table.add_column("value", justify="right")
    for key, value in summary(keeper, prompts).items():
        table.add_row(key, f"{value:.3f}" if key == "kept rate" else str(int(value)))
    for name, count in keeper.errors.items():
        if count:
            table.add_row(f"{name} errors", str(count))
    return table


def _encode(loaded, lines, template, system, path):  # noqa: ANN001, ANN202
    from mlx_grpo.data.examples import encode_prompt, render_prompt
    from mlx_grpo.infer.generation import PromptItem
    from mlx_grpo.infer.prompting import prompt_config
    from mlx_grpo.models.loading import context_limit

    cfg = prompt_config(loaded.tokenizer, loaded.source, template, system, train=str(path))
    chosen = cfg.template
    limit = context_limit(loaded.config)
    items = []
    for number, text in lines:
        ids = encode_prompt(loaded.tokenizer, render_prompt(loaded.tokenizer, text, cfg), chosen)
        if len(ids) >= limit:
            raise UserError(
                f"prompt is {len(ids)} tokens; the model's context holds {limit}",
                where=f"{path}:{number}",
            )
        items.append(PromptItem(number, text, ids))
    return items


def _sampling(tokenizer, temp: float, top_p: float, max_tokens: int):  # noqa: ANN001, ANN202
    from mlx_grpo.config import RolloutConfig
    from mlx_grpo.train.rollout import sampling_from_config

    if temp == 0:
        cfg = RolloutConfig(max_completion_length=max_tokens)
        sampling = sampling_from_config(cfg, tokenizer)
        sampling.sampler = lambda logprobs: logprobs.argmax(axis=-1)
        return sampling
    cfg = RolloutConfig(temperature=temp, top_p=top_p, max_completion_length=max_tokens)
    return sampling_from_config(cfg, tokenizer)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]generate"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def register(app: typer.Typer) -> None:
    short = "Batched, resumable generation over a file of prompts."
    app.command("generate", help=HELP, short_help=short)(generate_command)
