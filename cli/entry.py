"""The `mlx-grpo` console script: a light first module, so that Ctrl-C at any moment (even
while the CLI and MLX are still importing) ends as one "interrupted" line and exit code 130."""

from __future__ import annotations

import sys


def run() -> int:
    """Import and run the CLI; a Ctrl-C before the CLI's own handling starts is handled here."""
    try:
        from mlx_grpo.cli.main import main

        return main()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
