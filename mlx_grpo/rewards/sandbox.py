"""Run sympy answer comparisons in a worker process under a time limit.

sympy can spend minutes (or gigabytes) inside one call on adversarial model output, and a
thread cannot be interrupted there; `signal.alarm` only works in the main thread and not on
Windows. So comparisons go to one persistent worker (`python -c ...`, JSON lines over its
stdin/stdout). If an answer does not come back in time the worker is killed, the comparison
counts as "not equal", and a fresh worker starts on the next call. On Linux the worker's
address space is capped too (`MAX_WORKER_BYTES`), so a blow-up ends in MemoryError, not swap.

Worker start-up (importing sympy, about a second) is not counted against the time limit.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from collections import OrderedDict
from pathlib import Path

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 60.0
MAX_WORKER_BYTES = 4 * 1024**3
CACHE_SIZE = 4096
_WORKER_CODE = "from mlx_grpo.rewards.sandbox import serve; serve()"


def serve() -> None:
    """Worker main loop: read [pred, gold] lines, answer true/false lines."""
    _cap_memory()
    from mlx_grpo.rewards.latex import sympy_equal

    print("ready", flush=True)
    for line in sys.stdin:
        try:
            pred, gold = json.loads(line)
            result = bool(sympy_equal(pred, gold))
        except (Exception, MemoryError, RecursionError):
            result = False
        print(json.dumps(result), flush=True)


def _cap_memory() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MAX_WORKER_BYTES, MAX_WORKER_BYTES))
    except (ImportError, ValueError, OSError):
        pass  # Windows has no `resource`; macOS refuses RLIMIT_AS: the time limit still holds


class SympyWorker:
    """A restartable worker process with a per-call time limit and a small result cache."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], bool] = OrderedDict()
        self.timeouts = 0
        self.broken = False

    def equal(self, pred: str, gold: str, timeout: float) -> bool | None:
        """sympy equality of two normalized answers; None when it ran out of time."""
        key = (pred, gold)
        with self._lock:
            if self.broken:
                return None
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            result = self._ask(key, timeout)
            if result is not None:
                self._cache[key] = result
                if len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
            return result

    def start(self) -> None:
        """Start the worker now (e.g. before the first training step), not on first use."""
        with self._lock:
            self._ensure_started()

    def _ask(self, key: tuple[str, str], timeout: float) -> bool | None:
        try:
            proc = self._ensure_started()
        except RuntimeError as exc:
            self.broken = True  # do not wait STARTUP_TIMEOUT_S again on every call
            logger.error("%s; symbolic answers now count as not equal", exc)
            return None
        try:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(list(key)) + "\n")
            proc.stdin.flush()
            line = self._lines.get(timeout=max(timeout, 0.001))
        except (OSError, queue.Empty):
            line = None
        if line is None:  # timed out, or the worker died (e.g. out of memory)
            self.timeouts += 1
            self.stop()
            return None
        return line.strip() == "true"

    def _ensure_started(self) -> subprocess.Popen[str]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self.stop()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # so the worker imports this copy
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self._proc, self._lines = proc, queue.Queue()
        threading.Thread(target=_pump, args=(proc, self._lines), daemon=True).start()
        try:
            ready = self._lines.get(timeout=STARTUP_TIMEOUT_S)
        except queue.Empty:
            ready = None
        if ready is None or ready.strip() != "ready":
            self.stop()
            raise RuntimeError(
                "the answer-checking worker process failed to start (run `python -c "
                f'"{_WORKER_CODE}"` to see why)'
            )
        return proc

    def stop(self) -> None:
        """Kill the worker (a new one starts on the next call)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    """Reader thread: forward the worker's stdout lines; None marks its exit."""
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.put(line)
    except (OSError, ValueError):
        pass
    lines.put(None)


WORKER = SympyWorker()
atexit.register(WORKER.stop)
