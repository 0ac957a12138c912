"""Run one untrusted program (a compiler, or model-written code) in a throwaway sandbox.

Every call gets, whatever the program does:

- a fresh temporary directory as its working directory and HOME, removed afterwards;
- its own session and process group, killed as a group at the wall-clock limit; on Linux
  with user namespaces also its own PID namespace, so orphans that left the group die with
  it (the kernel kills a namespace's processes when its first process exits);
- rlimits set by `/bin/sh`'s `ulimit` before `exec`: CPU seconds, address space, file size,
  open files, processes, no core dumps; optionally a lower priority (`nice`), for the
  program and, on Linux, for its whole session's scheduling group (see `_nice_session`);
- stdin closed, stdout/stderr written to anonymous files (their growth stopped by the file
  size limit, what is read back capped at `Limits.output_bytes`), an environment of PATH,
  HOME, TMPDIR and LANG only;
- when the engine runs as root: the uid/gid of `nobody`, no supplementary groups;
- on Linux, when `unshare -U -n` works for that user: an empty network namespace.

`isolation()` probes once what this machine allows (never assumed); docs/code-rewards.md
says what holds on each OS.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
NAMESPACE_PREFIX = ("unshare", "-U", "-n", "-p", "-f", "--kill-child", "--")
PROBE_TIMEOUT_S = 10.0
# Model-written programs yield the CPU to compiles and the trainer. 10, not 19: with the
# session's autogroup at this nice too, 19 (a weight of 15 against 1024) starved legitimate
# programs into their time limit on a loaded machine; 10 (110) yields as much to the compiles
# of a hostile batch here (benchmarks/RESULTS.md, "Rewards that run code").
MODEL_NICENESS = 10


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed program."""

    wall_s: float = 5.0  # wall-clock seconds before the whole group is killed
    cpu_s: int = 5  # RLIMIT_CPU
    memory_mb: int = 512  # RLIMIT_AS
    file_mb: int = 16  # RLIMIT_FSIZE (stdout and stderr files included)
    open_files: int = 64  # RLIMIT_NOFILE
    processes: int = 32  # RLIMIT_NPROC (per sandbox under a user namespace)
    output_bytes: int = 64 * 1024  # stdout/stderr bytes read back
    nice: int = 0  # added niceness (0-19): model programs yield the CPU to compiles and the trainer


@dataclass(frozen=True)
class Isolation:
    """What this machine lets the sandbox do (see `isolation()`)."""

    uid: int | None  # the uid programs run as (None: the engine's own; it is not root)
    gid: int | None
    namespaces: bool  # own user, network and PID namespaces
    nproc_flag: str  # `ulimit` letter for RLIMIT_NPROC: dash says -p, bash -u
    sandbox_exec: bool  # macOS: sandbox-exec with a no-network profile


@dataclass(frozen=True)
class Finished:
    """How a sandboxed program ended."""

    returncode: int | None  # None when killed at the wall-clock limit
    timed_out: bool
    stdout: bytes
    stderr: bytes

    @property
    def signal(self) -> int | None:
        """The signal that ended the program (negative return codes), if any."""
        rc = self.returncode
        return -rc if rc is not None and rc < 0 else (rc - 128 if rc and rc > 128 else None)


MACOS_PROFILE = "(version 1)(allow default)(deny network*)"


def _nobody() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


def _identity() -> dict[str, object]:
    """Popen keyword arguments that drop root to nobody (nothing when not root)."""
    iso = isolation()
    if iso.uid is None:
        return {}
    return {"user": iso.uid, "group": iso.gid, "extra_groups": []}


def _probe(argv: Sequence[str], uid: int | None, gid: int | None) -> bool:
    ids: dict[str, object] = {} if uid is None else {"user": uid, "group": gid, "extra_groups": []}
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            env={"PATH": SAFE_PATH},
            cwd="/",
            **ids,  # type: ignore[arg-type]
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@functools.cache
def isolation() -> Isolation:
    """Probe once: privilege drop, namespaces, the shell's process-limit flag."""
    uid, gid = _nobody() if os.geteuid() == 0 else (None, None)
    linux = sys.platform.startswith("linux")
    namespaces = linux and bool(shutil.which("unshare", path=SAFE_PATH))
    namespaces = namespaces and _probe([*NAMESPACE_PREFIX, "true"], uid, gid)
    nproc = "p" if _probe(["/bin/sh", "-c", "ulimit -p 4096"], uid, gid) else "u"
    macos = sys.platform == "darwin" and bool(shutil.which("sandbox-exec", path=SAFE_PATH))
    return Isolation(uid, gid, namespaces, nproc, macos)


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A fresh directory the sandboxed user owns; removed (by us) afterwards."""
    path = Path(tempfile.mkdtemp(prefix="mlx-grpo-run-"))
    try:
        iso = isolation()
        if iso.uid is not None:
            os.chown(path, iso.uid, iso.gid if iso.gid is not None else -1)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _shell_limits(limits: Limits, nproc_flag: str) -> str:
    values = {
        "c": 0,
        "t": limits.cpu_s,
        "v": limits.memory_mb * 1024,  # KiB
        "f": limits.file_mb * 2048,  # 512-byte blocks
        "n": limits.open_files,
        nproc_flag: limits.processes,
    }
    ulimits = " && ".join(f"ulimit -{flag} {value}" for flag, value in values.items())
    niced = f"nice -n {int(limits.nice)} " if limits.nice > 0 else ""
    return f'{ulimits} && exec {niced}"$@"'


def command(argv: Sequence[str], limits: Limits) -> list[str]:
    """The full command line: namespaces (or sandbox-exec), then ulimit, then the program."""
    iso = isolation()
    prefix: list[str] = list(NAMESPACE_PREFIX) if iso.namespaces else []
    if iso.sandbox_exec:
        prefix = ["sandbox-exec", "-p", MACOS_PROFILE]
    script = _shell_limits(limits, iso.nproc_flag)
    return [*prefix, "/bin/sh", "-c", script, "sh", *argv]


def _env(home: Path) -> dict[str, str]:
    return {"PATH": SAFE_PATH, "HOME": str(home), "TMPDIR": str(home), "LANG": "C"}


def _read(stream: IO[bytes], cap: int) -> bytes:
    stream.seek(0)
    return stream.read(cap)


def run(argv: Sequence[str], cwd: Path, limits: Limits) -> Finished:
    """Run `argv` in `cwd` (a `workdir()`) under `limits`; never raises for the program's sake."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            command(argv, limits),
            cwd=cwd,
            env=_env(cwd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            **_identity(),  # type: ignore[arg-type]
        )
        if limits.nice > 0:
            _nice_session(proc.pid, limits.nice)
        timed_out = _wait(proc, limits.wall_s)
        cap = limits.output_bytes
        return Finished(
            None if timed_out else proc.returncode,
            timed_out,
            _read(out, cap),
            _read(err, cap),
        )


def _nice_session(pid: int, nice: int) -> None:
    """Lower the CPU weight of the program's session: its Linux autogroup (best effort).

    With autogroups on (`/proc/sys/kernel/sched_autogroup_enabled`, the default on most
    distributions) the scheduler shares the CPU between sessions first and only then between
    a session's processes. `start_new_session` gives each program a session, hence its own
    group at weight nice 0, so the process's own `nice` yields nothing to the compiles and
    the trainer, which sit in other groups: six spinning programs made compiles 6x slower.
    Setting the group's nice (sched(7), "The autogroup feature") restores the yield. Root
    may do it freely; other users at most ten times a second (the kernel answers EAGAIN),
    and a program left at its group's default still has every other limit. No file on
    macOS, and none without autogroups: nothing to do.
    """
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(str(int(nice)))


def _wait(proc: subprocess.Popen[bytes], wall_s: float) -> bool:
    """Wait up to `wall_s`; then kill the whole group. True when it had to be killed."""
    try:
        proc.wait(timeout=wall_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of a program that exited, too
    proc.wait()
    return timed_out
