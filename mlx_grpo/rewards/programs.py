"""Build and run sandboxed programs, with compiled binaries cached by source hash.

`BINARIES.build(program)` compiles a `harness.Program` once per distinct (command, sources)
in a `jail.workdir()` and keeps the binary in a private cache folder (removed at exit, oldest
entries dropped past `MAX_ENTRIES`; one evicted while a run copies it is compiled again); a
failed compile is cached too. Two threads asking for the same source wait on one compile.
`run(program, limits)` copies the binary (or, for Python, the files) into a fresh work dir
holding nothing else, writes the run's random tag there, and runs it in the jail. Sources
never sit beside a running program.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path
from typing import NamedTuple

from mlx_grpo.backend import physical_memory_mb
from mlx_grpo.errors import UserError
from mlx_grpo.rewards import jail
from mlx_grpo.rewards.harness import Program

COMPILE = jail.Limits(wall_s=30.0, cpu_s=20, memory_mb=2048, file_mb=64)
# Compiles are CPU-bound: at most 4 per core at once, however wide a reward's pool of runs.
COMPILE_SLOTS = threading.BoundedSemaphore(max(4, 4 * (os.cpu_count() or 1)))
MAX_ENTRIES = 4096  # binaries of about 20 KB


def pool_width(jobs: int, memory_mb: int) -> int:
    """How many answers a reward call handles at once: 4 per core at least, and up to one per
    answer, so that hostile answers, each holding its thread for its whole time limit, cannot
    starve the rest of a batch (their compiles still take `COMPILE_SLOTS`); never more
    programs than half the machine's memory holds with each at its memory limit."""
    floor = max(4, 4 * (os.cpu_count() or 1))
    return max(floor, min(jobs, physical_memory_mb() // 2 // max(memory_mb, 1)))


TOOLS = {"c": "cc", "cpp": "c++", "python": "python3"}  # looked up on the sandbox's PATH


@functools.cache
def tool_works(tool: str) -> bool:
    """Whether `tool --version` runs from the sandbox's PATH (on a Mac without the command
    line tools, /usr/bin/cc exists but only asks to install them)."""
    path = shutil.which(tool, path=jail.SAFE_PATH)
    if path is None:
        return False
    try:
        done = subprocess.run(
            [path, "--version"], capture_output=True, timeout=30, env={"PATH": jail.SAFE_PATH}
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def require_tool(language: str, reward: str) -> None:
    """A UserError, at config time, when `language`'s compiler or interpreter is missing."""
    tool = TOOLS[language]
    if not tool_works(tool):
        raise UserError(
            f"reward {reward}: {language} needs `{tool}` on {jail.SAFE_PATH}, and it is missing "
            "or does not run (install a compiler: the Xcode command line tools on a Mac, gcc "
            "on Linux)"
        )


class Ran(NamedTuple):
    """One run: how it ended (None: it did not compile) and the tag its lines carry."""

    finished: jail.Finished | None
    tag: str


class BinaryCache:
    """Compiled binaries by the hash of their compile command and sources (module doc)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.folder: Path | None = None
        self.entries: OrderedDict[str, Future[Path | None]] = OrderedDict()
        self.lock = threading.Lock()
        self.compiles = 0  # how many compiles ran (the rest were cache hits)

    def _folder(self) -> Path:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="mlx-grpo-bin-"))
            atexit.register(shutil.rmtree, self.folder, True)
        return self.folder

    def build(self, program: Program, fresh: bool = False) -> Path | None:
        """The binary of `program` (compiled now, or from the cache); None if it fails.
        `fresh`: compile again even if cached (its file was evicted while in use)."""
        assert program.compile is not None
        key = hashlib.sha256(repr((program.compile, sorted(program.files.items()))).encode())
        digest = key.hexdigest()
        with self.lock:
            if fresh:
                self.entries.pop(digest, None)
            future, mine = self.entries.get(digest), False
            if future is None:
                future, mine = Future(), True
                self.entries[digest] = future
                self.compiles += 1
                self._evict()
            self.entries.move_to_end(digest)
        if mine:
            try:
                future.set_result(self._compile(program, self._folder() / digest))
            except BaseException as exc:
                future.set_exception(exc)
        return future.result()

    def _compile(self, program: Program, target: Path) -> Path | None:
        with jail.workdir() as cwd:
            for name, text in program.files.items():
                (cwd / name).write_text(text)
            assert program.compile is not None
            with COMPILE_SLOTS:
                done = jail.run(program.compile, cwd, COMPILE)
            if done.returncode != 0 or not (cwd / "prog").is_file():
                return None
            shutil.copy(cwd / "prog", target)
        target.chmod(0o755)
        return target

    def _evict(self) -> None:
        while len(self.entries) > self.max_entries:
            _, old = self.entries.popitem(last=False)
            if old.done() and old.exception() is None and old.result() is not None:
                old.result().unlink(missing_ok=True)  # type: ignore[union-attr]


BINARIES = BinaryCache()


def run(program: Program, limits: jail.Limits, cache: BinaryCache = BINARIES) -> Ran:
    """Build (cached) and run `program` in a fresh sandbox; never raises for its sake."""
    tag = secrets.token_hex(8)
    binary = cache.build(program) if program.compile is not None else None
    if program.compile is not None and binary is None:
        return Ran(None, tag)
    with jail.workdir() as cwd:
        if binary is not None:
            try:
                shutil.copy(binary, cwd / "prog")
            except FileNotFoundError:  # evicted by another thread meanwhile
                binary = cache.build(program, fresh=True)
                if binary is None:
                    return Ran(None, tag)
                shutil.copy(binary, cwd / "prog")
        else:
            for name, text in program.files.items():
                (cwd / name).write_text(text)
        (cwd / "tag").write_text(tag)
        return Ran(jail.run(program.run, cwd, limits), tag)
