"""Child processes never outlive dbguard: real processes, real signals.

A helper Python process stands in for dbguard: it starts a child through `dbguard.sandbox.children`,
reports the child's pid, and is then killed or interrupted by the test.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbguard.errors import ConnectionFailure
from dbguard.sandbox import children

ROOT = Path(__file__).parent.parent
SLEEPER = ["sleep", "300"]
# A child that ignores SIGTERM, as a wedged tool might: only SIGKILL ends it.
STUBBORN = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(300)"]  # fmt: skip
HELPER = """
import os, subprocess, sys, time
from dbguard.sandbox import children
from dbguard.sandbox.signals import install_sigterm_handler

install_sigterm_handler()
children.STOP_GRACE = 0.5
args, user = sys.argv[1:-1], sys.argv[-1] or None
plain = subprocess.Popen(["sleep", "300"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # the control
process = None
try:
    with children.started(args, user=user, stdout=subprocess.PIPE) as process:
        if args[0] != "sleep":
            process.stdout.readline()  # the child is ready
        print(process.pid, plain.pid, flush=True)
        time.sleep(300)
except BaseException as error:
    # After the block: is the child still there, even as a zombie (not reaped)?
    print(type(error).__name__, os.path.exists(f"/proc/{process.pid}"), process.returncode, flush=True)
    raise
"""


def start_helper(args: list[str], user: str | None = None) -> tuple[subprocess.Popen[str], int, int]:
    """The helper, and the pids of its guarded child and of its plain (unguarded) child."""
    helper = subprocess.Popen([sys.executable, "-c", HELPER, *args, user or ""], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert helper.stdout is not None
    line = helper.stdout.readline()
    if not line:
        helper.wait()
        pytest.fail(f"the helper did not start its child: {helper.stderr.read() if helper.stderr else ''}")
    guarded, plain = map(int, line.split())
    return helper, guarded, plain


def started_at(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot: with the pid, it names one process), or None when
    no such process runs; a zombie (killed, not yet reaped by its parent) does not run."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def running(pid: int) -> bool:
    return started_at(pid) is not None


def wait_until_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running(pid):
            return True
        time.sleep(0.01)
    return False


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def owner(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def server_user() -> str:
    if os.geteuid() != 0:
        pytest.skip("switching to another OS user needs root")
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        pytest.skip("no postgres OS user")


@pytest.mark.parametrize("as_other_user", [False, True], ids=["same-user", "as-postgres"])
def test_a_child_dies_when_dbguard_is_killed_with_sigkill(as_other_user: bool) -> None:
    """SIGKILL runs no cleanup: the kernel's parent-death signal ends the child. As another OS user too:
    the request is made after the user switch, which would otherwise cancel it."""
    user = server_user() if as_other_user else None
    helper, guarded, plain = start_helper(SLEEPER, user)
    try:
        if user is not None:
            assert owner(guarded) == pwd.getpwnam(user).pw_uid
        assert running(guarded) and running(plain)
        helper.kill()
        helper.wait(timeout=10)
        assert wait_until_gone(guarded), "the guarded child outlived its SIGKILLed parent"
        assert running(plain), "the control: an unguarded child survives its parent's SIGKILL"
    finally:
        helper.kill()
        helper.wait()
        kill_quietly(guarded)
        kill_quietly(plain)


@pytest.mark.parametrize(
    ("how", "exit_code", "raised"),
    [(signal.SIGTERM, 143, "SystemExit"), (signal.SIGINT, -signal.SIGINT, "KeyboardInterrupt")],
    ids=["sigterm", "ctrl-c"],
)
def test_sigterm_and_ctrl_c_stop_and_reap_the_child(how: signal.Signals, exit_code: int, raised: str) -> None:
    helper, guarded, plain = start_helper(SLEEPER)
    try:
        helper.send_signal(how)
        out, err = helper.communicate(timeout=30)
        assert helper.returncode == exit_code, err
        # Reaped before the helper exited: not even a zombie was left.
        assert out.split() == [raised, "False", str(-signal.SIGTERM)], (out, err)
        assert not running(guarded)
    finally:
        helper.kill()
        helper.wait()
        kill_quietly(guarded)
        kill_quietly(plain)


def test_a_child_that_ignores_sigterm_gets_sigkill() -> None:
    helper, guarded, plain = start_helper(STUBBORN)
    try:
        helper.send_signal(signal.SIGTERM)
        out, err = helper.communicate(timeout=30)
        assert helper.returncode == 143, err
        assert out.split() == ["SystemExit", "False", str(-signal.SIGKILL)], (out, err)
    finally:
        helper.kill()
        helper.wait()
        kill_quietly(guarded)
        kill_quietly(plain)


def test_an_error_inside_the_block_stops_the_child() -> None:
    with pytest.raises(RuntimeError), children.started(SLEEPER) as process:
        assert process.poll() is None
        raise RuntimeError("something failed while the child ran")
    assert process.returncode == -signal.SIGTERM
    assert not Path(f"/proc/{process.pid}").exists()


def test_run_captures_output_and_names_a_killing_signal() -> None:
    result = children.run(["sh", "-c", "echo out; echo err >&2; exit 3"], env={"DBGUARD_CHILD_TEST": "x"})
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert children.run(["sh", "-c", 'printf %s "$DBGUARD_CHILD_TEST"'], env={"DBGUARD_CHILD_TEST": "x"}).stdout == "x"
    killed = children.run(["sh", "-c", "kill -KILL $$"])
    assert children.killed_by(killed.returncode) == "SIGKILL"
    assert children.killed_by(0) is None and children.killed_by(1) is None


def test_run_stops_a_child_that_overruns_its_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionFailure, match=r"sleep did not finish within 0.2 s"):
        children.run(SLEEPER, timeout=0.2)
    assert time.monotonic() - started < 30


def test_a_missing_program_is_a_one_line_tool_failure(tmp_path: Path) -> None:
    with pytest.raises(ConnectionFailure, match=rf"cannot run {tmp_path}/nope: No such file or directory"):
        children.run([tmp_path / "nope"])


def test_a_child_starts_with_sigint_and_sigterm_deliverable() -> None:
    """Popen runs with the two held back in dbguard (a signal inside fork() was lost); exec keeps a
    process's signal mask, so the child must have them let through again."""
    from dbguard.sandbox import children

    result = children.run(["grep", "^SigBlk", "/proc/self/status"])
    blocked = int(result.stdout.split()[1], 16)
    assert not blocked & (1 << (signal.SIGINT - 1)) and not blocked & (1 << (signal.SIGTERM - 1)), result.stdout
