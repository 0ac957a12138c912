"""The `mlx-grpo` command line (Typer + rich)."""
