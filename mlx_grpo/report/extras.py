"""Config-time checks for `logging.report_to`: known reporters, their packages installed."""

from __future__ import annotations

import importlib.util

from mlx_grpo.errors import UserError

REPORTERS: dict[str, str] = {"tensorboard": "tensorboard", "wandb": "wandb"}  # name -> module


def check_report_to(names: list[str]) -> None:
    """Raise a one-line UserError for an unknown reporter or one whose extra is missing."""
    for name in names:
        if name not in REPORTERS:
            known = ", ".join(REPORTERS)
            raise UserError(f"unknown reporter {name!r}; known: {known}", where="logging.report_to")
        if importlib.util.find_spec(REPORTERS[name]) is None:
            raise UserError(
                f"{name} is not installed: pip install 'mlx-grpo[{name}]'",
                where="logging.report_to",
            )
