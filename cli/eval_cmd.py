"""`mlx-grpo eval`: accuracy, format compliance, length and emergence metrics on a dataset."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from mlx_grpo.cli import model_flags
from rich.console import Console
from rich.markup import escape
from rich.table import Table

HELP = (
    "Measure a model on a dataset: greedy pass@1, and with --samples k also pass@k and mean@k "
    "(sampled at --temp), format compliance, mean length and the emergence metrics "
    "(think rate and length, self-correction rate, answer rate). Prints a table and writes "
    "a JSON file with every completion.\n\n"
    "\b\nExamples:\n"
    "  mlx-grpo eval -m Qwen/Qwen2.5-0.5B-Instruct --data openai/gsm8k --split test --limit 200\n"
    "  mlx-grpo eval --run runs/gsm8k --data openai/gsm8k --split test --samples 8\n"
    "  mlx-grpo eval --run runs/demo --data held-out --temp 0      (the demo's 'after')\n"
    "  mlx-grpo eval --run runs/demo --step base --data held-out   (its 'before')\n"
    "  mlx-grpo eval -m builtin:tiny-qwen2 --data builtin:arithmetic --limit 32\n"
    "  mlx-grpo eval -m ./model --data test.jsonl --reward countdown --template r1\n"
    "  mlx-grpo eval --run runs/code --data builtin:c-functions --samples 10 --pass-k 1,5,10\n\n"
    "Code rows (hidden `tests`: builtin:c-functions, MBPP, HumanEval) are judged by code_tests: "
    "solved only when every test passes; pass@k is Chen et al.'s unbiased estimator from the "
    "--samples n completions per problem."
)


def eval_command(
    model: str | None = model_flags.MODEL,
    adapter: Path | None = model_flags.ADAPTER,
    run: Path | None = model_flags.RUN,
    step: str = model_flags.STEP,
    data: str = typer.Option(
        ..., "--data", "-d", help="File, hub dataset id, builtin:<task>, or held-out (--run's)."
    ),
    split: str = typer.Option("test", "--split", help="Hub split."),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="First n problems only."),
    samples: int = typer.Option(1, "--samples", "-k", min=1, help="Samples for pass@k/mean@k."),
    pass_k: str | None = typer.Option(
        None, "--pass-k", help="Comma-separated k for pass@k from the samples [default: k = n]."
    ),
    temp: float = typer.Option(1.0, "--temp", min=0.0, help="Temperature of the k samples."),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", min=1, help="Longest completion [default: the run's, else 512]."
    ),
    template: str = typer.Option("auto", "--template", help="auto | chat | r1 | plain."),
    system: str | None = typer.Option(None, "--system", help="System prompt (chat template)."),
    reward: str = typer.Option(
        "auto",
        "--reward",
        help="What counts as correct, with the run's params for it (auto: code_tests for rows "
        "with hidden tests, else math_correct).",
    ),
    format_reward: str = typer.Option(
        "auto",
        "--format-reward",
        help="Format check (auto: code_block for code rows, answer_tag if the run used it).",
    ),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Prompts decoded at once."),
    out: Path | None = typer.Option(None, "--out", "-o", help="JSON results file."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
) -> None:
    """Evaluate a model on a dataset."""
    import mlx.core as mx

    from mlx_grpo.infer import held_out
    from mlx_grpo.infer.evaluate import AUTO, evaluate

    run_cfg = held_out.run_config(run)
    ks = _pass_ks(pass_k, samples)
    if reward != AUTO:  # a wrong name fails before the model loads
        _judges(run_cfg, reward, format_reward, [])
    rows = held_out.held_out_questions(run_cfg) if data == held_out.HELD_OUT else None
    loaded = model_flags.load_from_flags(model, adapter, run, step)
    examples = _examples(loaded, data, split, limit, template, system, seed, rows)
    correctness, fmt = _judges(run_cfg, reward, format_reward, examples)
    mx.random.seed(seed)
    rollout = _rollout(temp, max_tokens, run_cfg)
    console = Console()
    with console.status(f"evaluating {len(examples)} problems"):
        result = evaluate(
            loaded.model,
            loaded.tokenizer,
            examples,
            correctness,
            samples=samples,
            rollout=rollout,
            batch_size=batch_size,
            format_reward=fmt,
            pass_ks=ks,
        )
    console.print(_table(result.summary, loaded.source.label, data, len(examples)))
    path = out or Path("evals") / f"eval-{time.strftime('%Y%m%d-%H%M%S')}.json"
    _write(path, loaded.source.label, data, result)
    console.print(f"results: {escape(str(path))}")


def _pass_ks(flag: str | None, samples: int) -> tuple[int, ...]:
    """--pass-k "1,5,10" as numbers, each between 1 and --samples."""
    from mlx_grpo.errors import UserError

    if not flag:
        return ()
    try:
        ks = tuple(int(part) for part in flag.split(","))
    except ValueError:
        raise UserError(f"expected numbers like 1,5,10, not {flag!r}", where="--pass-k") from None
    if any(not 1 <= k <= samples for k in ks):
        raise UserError(f"each k must be between 1 and --samples ({samples})", where="--pass-k")
    return ks


def _judges(run_cfg: Any, reward: str, format_flag: str, examples: list[Any]) -> tuple[Any, Any]:
    """(correctness, format) rewards; code rows default to code_tests and code_block."""
    from mlx_grpo.infer import held_out
    from mlx_grpo.infer.evaluate import AUTO, correctness_name, correctness_reward, is_code
    from mlx_grpo.rewards import resolve_reward

    name = correctness_name(reward, examples)
    correctness = correctness_reward(name, held_out.reward_params(run_cfg, name))
    code_rows = format_flag == AUTO and is_code(examples)
    fmt_name = "code_block" if code_rows else held_out.format_reward_name(run_cfg, format_flag)
    return correctness, resolve_reward(fmt_name)


def _examples(
    loaded: Any,
    data: str,
    split: str,
    limit: int | None,
    template: str,
    system: str | None,
    seed: int,
    rows: list[dict] | None = None,
) -> list[Any]:
    from mlx_grpo.data.examples import build_examples, load_rows
    from mlx_grpo.infer.prompting import prompt_config

    cfg = prompt_config(
        loaded.tokenizer,
        loaded.source,
        template,
        system,
        train=data,
        split=split,
        num_examples=limit or 200,
    )
    rows = (load_rows(cfg, seed) if rows is None else rows)[:limit]
    return build_examples(rows, loaded.tokenizer, cfg, max_prompt_length=10**9)[0]


def _rollout(temp: float, max_tokens: int | None, run_cfg: Any) -> Any:
    """Sampling for the k samples; with --run, its completion length and stop strings."""
    from mlx_grpo.config import RolloutConfig

    base = run_cfg.rollout if run_cfg else RolloutConfig(max_completion_length=512)
    return RolloutConfig(
        temperature=max(temp, 1e-6),
        max_completion_length=max_tokens or base.max_completion_length,
        stop=base.stop,
    )


def _table(summary: dict[str, float], label: str, data: str, n: int) -> Table:
    table = Table(title=f"{label} on {data} ({n} problems)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value:.3f}" if "rate" in key or "@" in key else f"{value:.1f}")
    return table


def _write(path: Path, label: str, data: str, result: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": label,
        "data": data,
        "problems": result.problems,
        "samples": result.samples,
        "summary": result.summary,
        "rows": result.rows,
    }
    path.write_text(json.dumps(payload, indent=2))


def register(app: typer.Typer) -> None:
    short = "Accuracy, format and emergence metrics on a dataset."
    app.command("eval", help=HELP, short_help=short)(eval_command)
