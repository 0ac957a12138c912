"""The CLI's help and global flags read as a user expects, on every command."""

from __future__ import annotations

import pytest
from mlx_grpo.cli.main import main

COMMANDS = ["demo", "train", "plan", "eval", "chat", "generate", "convert", "info", "runs", "plot"]


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_show_no_value_type(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "--help" in out and "<bool>" not in out  # on/off flags take no value


def test_usage_line_names_arguments_in_capitals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", "--help"]) == 0
    usage = capsys.readouterr().out.split("Usage:")[1].splitlines()[0]
    assert usage.split()[1:] == ["convert", "[OPTIONS]", "SRC", "[OUT]"]  # [0]: the program


def test_debug_after_the_subcommand_shows_the_traceback(tmp_path) -> None:
    missing = str(tmp_path / "nope.yaml")
    assert main(["train", "-c", missing]) == 2  # without --debug: one line, exit 2
    from mlx_grpo.errors import UserError

    with pytest.raises(UserError, match="config file not found"):
        main(["train", "-c", missing, "--debug"])


def test_ctrl_c_before_the_cli_is_ready_is_interrupted_130(monkeypatch, capsys) -> None:
    """The console script's first module catches a Ctrl-C that lands while the CLI (and MLX)
    are still importing, before main()'s own handler exists."""
    from mlx_grpo.cli import entry
    from mlx_grpo.cli import main as cli_main

    def interrupted_while_importing() -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "main", interrupted_while_importing)
    assert entry.run() == 130
    err = capsys.readouterr().err
    assert err.strip() == "interrupted" and "Traceback" not in err


def test_ctrl_c_while_the_model_loads_is_interrupted_130(
    tmp_path, tiny_model_dir, monkeypatch, capsys
) -> None:
    """typer turns a KeyboardInterrupt inside a command into a silent exit 130; ours says so."""
    from test_train_e2e import make_config

    from mlx_grpo.models import init_from

    def interrupted_while_loading(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(init_from, "load_policy", interrupted_while_loading)
    assert main(["train", "-c", str(make_config(tmp_path, str(tiny_model_dir)))]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err
