"""Entry point of the `mlx-grpo` command: builds the Typer app and turns errors into one line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import typer
from mlx_grpo.cli import (
    chat_cmd,
    convert_cmd,
    demo_cmd,
    eval_cmd,
    generate_cmd,
    info_cmd,
    plan_cmd,
    plot_cmd,
    runs_cmd,
    sft_cmd,
    train_cmd,
)
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperOption

from mlx_grpo import backend
from mlx_grpo.blas import maybe_reexec
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
    """Add every sub-command once (main() may run many times in one process, e.g. in tests)."""
    if _state.get("registered"):
        return
    _state["registered"] = True
    commands = (
        demo_cmd,
        train_cmd,
        sft_cmd,
        plan_cmd,
        eval_cmd,
        chat_cmd,
        generate_cmd,
        convert_cmd,
    )
    for module in (*commands, info_cmd, runs_cmd, plot_cmd):
        module.register(app)
    for command in app.registered_commands:
        command.callback = _interruptible(command.callback)


class Interrupted(Exception):
    """Ctrl-C inside a command (typer would turn it into a silent exit 130)."""


def _interruptible(fn: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """The command, with Ctrl-C (e.g. while a model loads) raised as `Interrupted`."""
    if fn is None:
        return None

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt as exc:
            raise Interrupted from exc

    return command


def _backend_ready() -> bool:
    """Warn when two MLX backends are installed; one error line when MLX cannot load."""
    installed = backend.installed_backends()
    warning = backend.backend_conflict(installed)
    if warning:
        _say("[yellow]warning:[/]", warning)
    message = backend.backend_error(sys.platform, backend.import_mlx(), installed)
    if message:
        _say("[bold red]error:[/]", message)
    return not message


def _say(label: str, text: object) -> None:
    """One line on stderr: a styled label, then the text verbatim (brackets are not markup)."""
    err_console.print(f"{label} {escape(str(text))}", highlight=False, soft_wrap=True)


def _debug_first(args: list[str]) -> list[str]:
    """`--debug` works anywhere before `--`: `mlx-grpo train -c x.yaml --debug` too."""
    cut = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:cut]:
        return args
    return ["--debug", *(a for i, a in enumerate(args) if a != "--debug" or i >= cut)]


def _conventional_help() -> None:
    """Help in the usual Unix form. Typer writes `<bool>` beside on/off flags as if they took
    a value, and a usage line like `{src} [out]`: flags show no type, and arguments read
    `SRC [OUT]` (required bare, optional in brackets, in capitals)."""
    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    def usage_name(self: TyperArgument) -> str:
        name = self.display_name_raw.upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
    TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]


_conventional_help()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; user errors become one red line and exit code 2."""
    from typer._click.exceptions import ClickException

    if argv is None:  # a real command line (not a call from Python): maybe restart with OpenBLAS
        maybe_reexec(sys.argv)
    if not _backend_ready():
        return 2
    _register_commands()
    args = _debug_first(list(sys.argv[1:] if argv is None else argv))
    try:
        result = app(args=args, standalone_mode=False)
    except UserError as exc:
        if _state["debug"]:
            raise
        _say("[bold red]error:[/]", exc)
        return 2
    except ClickException as exc:  # usage errors: bad flags, missing arguments
        exc.show()
        return exc.exit_code
    except (KeyboardInterrupt, Interrupted, typer.Abort):
        err_console.print("[yellow]interrupted[/]")
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
