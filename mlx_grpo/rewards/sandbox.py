"""Run sympy answer comparisons in a worker process under a time limit.

sympy can spend minutes (or gigabytes) inside one call on adversarial model output, and a
thread cannot be interrupted there; `signal.alarm` only works in the main thread and not on
Windows. So comparisons go to one persistent worker (`python -I -c ...`, JSON lines over its
stdin/stdout). If an answer does not come back in time the worker is killed, the call returns
None (the caller counts a timeout), and a fresh worker starts at once in the background, so
the restart overlaps the next checks instead of eating their budget. On Linux the worker's
address space is capped too (`MAX_WORKER_BYTES`), so a blow-up ends in MemoryError, not swap.

The worker runs isolated (`-I`): the current directory, PYTHON* variables and the user's site
customisations are not seen, so a `sympy.py` in the working directory is never imported; the
folders holding this package and sympy are handed to it explicitly. `start()` launches it in
the background when a trainer starts (importing sympy takes a second or two); start-up is
never counted against a comparison's time limit.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 60.0
MAX_WORKER_BYTES = 4 * 1024**3
_WORKER_CODE = (
    "import sys; sys.path += [p for p in sys.argv[1:] if p not in sys.path]; "
    "from mlx_grpo.rewards.sandbox import serve; serve()"
)


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


def _import_roots() -> list[str]:
    """Folders the isolated worker needs on sys.path: this package's and sympy's."""
    roots = [str(Path(__file__).resolve().parents[2])]
    for name in ("sympy", "mpmath"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            roots.append(str(Path(spec.origin).resolve().parents[1]))
    return list(dict.fromkeys(roots))


class SympyWorker:
    """A restartable worker process with a per-call time limit."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self.timeouts = 0
        self.broken = False
        self.waited_s = 0.0  # total time `ready()` waited for a worker to start
        self.closed = False  # set at exit: no new worker, and a start cut short is no error
        self._settled = threading.Event()  # cleared while a background start is under way
        self._settled.set()

    def equal(self, pred: str, gold: str, timeout: float) -> bool | None:
        """sympy equality of two normalized answers; None when it ran out of time (False,
        logged once, when no worker can start)."""
        with self._lock:
            if self.broken:
                return False
            return self._ask((pred, gold), timeout)

    def start(self) -> None:
        """Start the worker in the background now (e.g. when a trainer starts), so the first
        symbolic comparison does not wait for it; a no-op when it is already running."""
        self._settled.clear()
        threading.Thread(target=self._start_locked, daemon=True, name="sympy start").start()

    def settle(self) -> None:
        """Wait for a background start under way (so a caller's time budget starts after it)."""
        self._settled.wait(STARTUP_TIMEOUT_S)

    def ready(self) -> float:
        """Make sure a worker is running (waiting for a start under way, or starting one);
        returns the seconds this waited, which callers leave out of their time budget."""
        start = time.monotonic()
        self.settle()
        with self._lock:
            if not self.broken:
                self._try_start()
        waited = time.monotonic() - start
        self.waited_s += waited
        return waited

    def _start_locked(self) -> None:
        try:
            with self._lock:
                if not self.broken:
                    self._try_start()
        finally:
            self._settled.set()

    def _try_start(self) -> subprocess.Popen[str] | None:
        if self.closed:
            return None
        try:
            return self._ensure_started()
        except RuntimeError as exc:
            if self.closed:  # the process is exiting and killed a worker still starting
                return None
            self.broken = True  # do not wait STARTUP_TIMEOUT_S again on every call
            logger.error("%s; symbolic answers now count as not equal", exc)
            return None

    def _ask(self, key: tuple[str, str], timeout: float) -> bool | None:
        proc = self._try_start()
        if proc is None:
            return False
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
            self.start()  # the replacement loads while other answers are checked
            return None
        return line.strip() == "true"

    def _ensure_started(self) -> subprocess.Popen[str]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self.stop()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _WORKER_CODE, *_import_roots()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._proc, self._lines = proc, queue.Queue()
        threading.Thread(target=_pump, args=(proc, self._lines), daemon=True).start()
        try:
            ready = self._lines.get(timeout=STARTUP_TIMEOUT_S)
        except queue.Empty:
            ready = None
        if ready is None or ready.strip() != "ready" or self.closed:
            self.stop()
            raise RuntimeError(
                "the answer-checking worker process failed to start (run `python -c "
                '"from mlx_grpo.rewards.sandbox import serve; serve()"` to see why)'
            )
        return proc

    def shutdown(self) -> None:
        """At exit: kill the worker, even one still starting, and start no other."""
        self.closed = True
        self.stop()

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
atexit.register(WORKER.shutdown)
