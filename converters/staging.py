"""Atomic output folders: write into a hidden temp folder, rename it into place at the end.

A conversion that fails half-way leaves nothing behind, and an existing output is only
replaced when the user asked for it with `--force`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlx_grpo.errors import UserError


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
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap_into_place(staging, out)


def _swap_into_place(staging: Path, out: Path) -> None:
    """Rename `staging` to `out`, moving an existing `out` aside first and deleting it after."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{staging.name.rsplit('-', 1)[-1]}")
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
