"""Output folders of `convert`: checked first, then written atomically (`rundir.atomic_folder`).

A conversion that fails half-way leaves nothing behind, and an existing output is only
replaced when the user asked for it with `--force`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlx_grpo.errors import UserError
from mlx_grpo.rundir import atomic_folder


def check_output(out: Path, force: bool, sources: tuple[Path, ...] = ()) -> None:
    """Refuse an output that exists (without force) or that would overwrite a source."""
    resolved = out.resolve()
    for src in sources:
        src_resolved = src.resolve()
        if resolved == src_resolved or resolved in src_resolved.parents:
            raise UserError(
                f"{out}: the output would overwrite the source {src}; choose another path"
            )
    if out.exists() and not force:
        raise UserError(f"{out}: output already exists; pass --force to replace it")
    if out.exists() and not out.is_dir():
        raise UserError(
            f"{out}: output exists and is not a folder; remove it or choose another path"
        )


@contextmanager
def staged_output(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temp folder beside `out`; on success it becomes `out`, on failure it is removed."""
    check_output(out, force)
    with atomic_folder(out) as staging:
        yield staging
