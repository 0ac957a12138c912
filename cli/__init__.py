"""The `mlx-grpo` command: Typer commands (`*_cmd.py`), the rich views (live progress, chat)
and the demo's steps. Command modules import the engine inside the command functions, so
`mlx-grpo --help` loads none of NumPy, SymPy, mlx-lm or transformers."""
