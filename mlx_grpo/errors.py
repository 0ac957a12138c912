"""The one exception type for mistakes a user can fix (bad config, data, paths, flags).

The CLI prints a `UserError` as a single line and exits non-zero; anything else is a bug and
shows a traceback only with `--debug`.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with user input: the message names the file/line/key at fault and what is valid."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)
