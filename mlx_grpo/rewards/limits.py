"""A wall-clock limit on every reward call, built-in or custom, sync or async.

`TimeLimited(fn, limit)` runs each call of a reward in its own daemon thread and waits at most
`limit` seconds for it (None: no limit). An `async def` reward is awaited inside that thread under
`asyncio.wait_for`, so a slow network call is cancelled when the time is up. A blocking sync
function cannot be stopped from outside (Python has no way to kill a thread), so past its limit
it is left to finish in the background: the call raises `RewardTimeout`, its completions score
0, and while that call is still running the reward is not called again (each later call times
out at once, counted, so one stuck function can never pile up threads or stall a step).

The main thread only waits on the worker thread, so Ctrl-C works during a reward call: the
training loop's first Ctrl-C is noticed at the end of the step (at most `limit` later), the
second stops at once.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

DEFAULT_LIMIT_S = 60.0  # one call of a reward, over a whole batch of completions
GRACE_S = 0.5  # past the limit, time for a cancelled coroutine's clean-up to run


class RewardTimeout(Exception):
    """A reward call ran past its time limit (or an earlier call of it still runs)."""


class TimeLimited:
    """Call `fn` with a wall-clock limit of `limit` seconds per call (see the module doc)."""

    def __init__(self, fn: Callable[..., Any], limit: float | None = DEFAULT_LIMIT_S) -> None:
        self.fn, self.limit = fn, limit
        self._busy: threading.Thread | None = None
        self._busy_since = 0.0
        self.warned: set[str] = set()  # kinds of problem already logged (custom.call_safely)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._busy is not None and self._busy.is_alive():
            waited = time.monotonic() - self._busy_since
            raise RewardTimeout(f"an earlier call is still running ({waited:.0f} s so far)")
        box: dict[str, Any] = {}
        thread = threading.Thread(
            target=self._run, args=(box, args, kwargs), daemon=True, name="reward call"
        )
        thread.start()
        thread.join(None if self.limit is None else self.limit + GRACE_S)  # Ctrl-C interrupts
        if thread.is_alive():
            self._busy, self._busy_since = thread, time.monotonic()
            raise RewardTimeout(f"did not return within its {self.limit:g} s limit")
        if "error" in box:
            raise box["error"]
        return box["result"]

    def _run(self, box: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            result = self.fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = asyncio.run(_wait_for(result, self.limit))
            box["result"] = result
        except asyncio.TimeoutError:
            box["error"] = RewardTimeout(f"did not return within its {self.limit:g} s limit")
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc


async def _wait_for(awaitable: Any, limit: float | None) -> Any:
    return await asyncio.wait_for(awaitable, limit)
