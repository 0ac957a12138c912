"""The sandbox of rewards that run code: privileges dropped first, then each limit holds."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mlx_grpo.rewards import jail

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX only")


def compile_c(source: str, folder: Path) -> Path:
    src, exe = folder / "prog.c", folder / "prog"
    src.write_text(source)
    subprocess.run(["cc", "-O0", "-o", str(exe), str(src)], check=True)
    exe.chmod(0o755)
    folder.chmod(0o755)
    return exe


def run_c(source: str, tmp_path: Path, **limits: float) -> jail.Finished:
    exe = compile_c(source, tmp_path)
    with jail.workdir() as cwd:
        shutil.copy(exe, cwd / "prog")  # pytest's tmp_path is not reachable by nobody
        return jail.run(["./prog"], cwd, jail.Limits(**limits))  # type: ignore[arg-type]


def test_privileges_dropped_when_root() -> None:
    with jail.workdir() as cwd:
        done = jail.run(["id", "-u"], cwd, jail.Limits())
    assert done.returncode == 0, done
    uid = int(done.stdout)
    if os.geteuid() == 0:
        assert uid != 0 and uid == jail.isolation().uid
    else:
        assert uid == os.geteuid()


@pytest.fixture(autouse=True)
def _unprivileged_first(request: pytest.FixtureRequest) -> None:
    """No hostile program runs unless the drop is verified in this very process."""
    if request.node.name != "test_privileges_dropped_when_root" and os.geteuid() == 0:
        with jail.workdir() as cwd:
            assert int(jail.run(["id", "-u"], cwd, jail.Limits()).stdout) != 0


def test_infinite_loop_and_orphans_are_killed(tmp_path: Path) -> None:
    source = """
    #include <unistd.h>
    int main(void) { if (fork() == 0) { setsid(); for (;;) {} } for (;;) {} }
    """
    exe = compile_c(source, tmp_path)
    with jail.workdir() as cwd:
        exe = Path(shutil.copy(exe, cwd / "orphan-maker"))
        done = jail.run(["./orphan-maker"], cwd, jail.Limits(wall_s=1.0))
    assert done.timed_out and done.returncode is None
    survivors = [p for p in Path("/proc").glob("[0-9]*") if _exe_is(p, exe)]
    for _ in range(50):  # namespace teardown finishes just after the kill
        if not survivors:
            break
        time.sleep(0.05)
        survivors = [p for p in survivors if _exe_is(p, exe)]
    if jail.isolation().namespaces:
        assert survivors == []
    for p in survivors:  # without a PID namespace a setsid orphan escapes the group
        os.kill(int(p.name), signal.SIGKILL)


def _exe_is(proc: Path, exe: Path) -> bool:
    try:
        return os.readlink(proc / "exe").startswith(str(exe))
    except OSError:
        return False


def test_ten_gigabyte_allocation_fails(tmp_path: Path) -> None:
    done = run_c(
        "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
        'int main(void) { char *p = malloc(10UL << 30); if (!p) { puts("null"); return 3; }'
        ' memset(p, 1, 10UL << 30); puts("got it"); return 0; }',
        tmp_path,
    )
    assert done.stdout.strip() == b"null" and done.returncode == 3


def test_one_gigabyte_write_stops_at_file_limit(tmp_path: Path) -> None:
    source = """
    #include <stdio.h>
    #include <fcntl.h>
    #include <unistd.h>
    int main(void) { static char buf[1 << 20]; long total = 0;
      int fd = open("big", O_WRONLY | O_CREAT, 0600);
      for (int i = 0; i < 1024; i++) { ssize_t n = write(fd, buf, sizeof buf);
        if (n <= 0) break; total += n; }
      printf("%ld\\n", total); return 0; }
    """
    done = run_c(source, tmp_path, file_mb=4)
    # killed by SIGXFSZ at the limit, or (signal ignored) writes fail there with EFBIG
    assert done.signal == signal.SIGXFSZ or int(done.stdout) <= 4 << 20


def test_endless_printing_is_capped(tmp_path: Path) -> None:
    source = '#include <stdio.h>\nint main(void) { for (;;) fputs("yes\\n", stdout); }'
    done = run_c(source, tmp_path, file_mb=2, output_bytes=1000)
    assert len(done.stdout) == 1000 and done.stdout.startswith(b"yes\n")
    assert done.timed_out or done.signal == signal.SIGXFSZ


def test_fork_bomb_is_capped(tmp_path: Path) -> None:
    source = """
    #include <stdio.h>
    #include <unistd.h>
    int main(void) { int made = 0; for (int i = 0; i < 200; i++) { pid_t p = fork();
      if (p == 0) { pause(); _exit(0); } if (p < 0) break; made++; }
      printf("%d\\n", made); fflush(stdout); return 0; }
    """
    done = run_c(source, tmp_path, processes=16, wall_s=3.0)
    assert int(done.stdout) < 16


def test_outside_writes_reads_and_rm_rf_of_home_fail(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("without root the program runs as this user and can reach its files")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("secret")
    home.chmod(0o700)
    source = f"""
    #include <stdio.h>
    #include <stdlib.h>
    int main(void) {{
      FILE *w = fopen("{tmp_path}/outside.txt", "w"); printf("write=%d\\n", w != NULL);
      FILE *r = fopen("{home}/.ssh/id_rsa", "r"); printf("read=%d\\n", r != NULL);
      system("rm -rf ~ {home}"); return 0; }}
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    done = run_c(source, bin_dir)
    assert b"write=0" in done.stdout and b"read=0" in done.stdout
    assert not (tmp_path / "outside.txt").exists()
    assert (home / ".ssh" / "id_rsa").read_text() == "secret"


def test_network_connect_fails_where_supported(tmp_path: Path) -> None:
    if not jail.isolation().namespaces:
        pytest.skip("no user/network namespaces here")
    source = """
    #include <stdio.h>
    #include <arpa/inet.h>
    #include <sys/socket.h>
    int main(void) { int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = {0};
      a.sin_family = AF_INET; a.sin_port = htons(53); inet_pton(AF_INET, "1.1.1.1", &a.sin_addr);
      printf("%d\\n", connect(s, (struct sockaddr *)&a, sizeof a)); return 0; }
    """
    assert run_c(source, tmp_path).stdout.strip() == b"-1"


def test_environment_is_scrubbed_and_dir_removed() -> None:
    os.environ["MLX_GRPO_SECRET"] = "x"
    try:
        with jail.workdir() as cwd:
            done = jail.run(["env"], cwd, jail.Limits())
    finally:
        del os.environ["MLX_GRPO_SECRET"]
    names = {line.split(b"=")[0] for line in done.stdout.splitlines()}
    assert b"MLX_GRPO_SECRET" not in names and b"PATH" in names
    assert not cwd.exists()


def test_programs_can_run_at_a_lower_priority() -> None:
    with jail.workdir() as cwd:
        done = jail.run(["nice"], cwd, jail.Limits(nice=jail.MODEL_NICENESS))
    want = min(19, os.nice(0) + jail.MODEL_NICENESS)  # added to ours; it tops out at 19
    assert done.returncode == 0 and int(done.stdout) == want


AUTOGROUPS = Path("/proc/sys/kernel/sched_autogroup_enabled")


@pytest.mark.skipif(
    not AUTOGROUPS.exists() or AUTOGROUPS.read_text().strip() != "1" or os.geteuid() != 0,
    reason="Linux autogroups off, or not root (the kernel rate-limits other users)",
)
def test_a_lowered_program_lowers_its_whole_session_group() -> None:
    """Each program's own session is its own autogroup: its nice must be lowered too."""
    script = "sleep 0.3; cat /proc/self/autogroup"  # read after the parent has set it
    with jail.workdir() as cwd:
        low = jail.run(["/bin/sh", "-c", script], cwd, jail.Limits(nice=jail.MODEL_NICENESS))
        plain = jail.run(["/bin/sh", "-c", script], cwd, jail.Limits())
    assert low.returncode == 0 and low.stdout.decode().split()[-1] == str(jail.MODEL_NICENESS)
    assert plain.returncode == 0 and plain.stdout.decode().split()[-1] == "0"
    assert low.stdout.split()[0] != plain.stdout.split()[0]  # each program its own group


def test_pool_width_lets_a_batch_outlast_its_hostile_answers(monkeypatch) -> None:
    """As many programs at once as answers, within half the memory at each one's limit."""
    from mlx_grpo.rewards import programs

    floor = max(4, 4 * (os.cpu_count() or 1))
    monkeypatch.setattr(programs, "physical_memory_mb", lambda: 24 * 1024)
    assert programs.pool_width(64, 512) == max(floor, 24)  # memory bounds it
    assert programs.pool_width(20, 512) == max(floor, 20)  # one per answer
    assert programs.pool_width(1, 512) == floor  # never below 4 per core
    monkeypatch.setattr(programs, "physical_memory_mb", lambda: 2048)
    assert programs.pool_width(64, 512) == floor
