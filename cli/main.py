"""Entry point of the `mlx-grpo` command: builds the Typer app and turns errors into one line."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from mlx_grpo.errors import UserError

app = typer.Typer(
    name="mlx-grpo",
    help="Teach small language models to reason with GRPO, natively in MLX.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """Teach small language models to reason with GRPO, natively in MLX."""
    _state["debug"] = debug


def _register_commands() -> None:
    from mlx_grpo.cli import chat_cmd, train_cmd

    train_cmd.register(app)
    chat_cmd.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one red line and exit code 2."""
    _register_commands()
    _state["debug"] = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        app(args=argv, standalone_mode=False)
    except UserError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    except typer.Abort:
        err_console.print("[yellow]aborted[/]")
        return 130
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
