"""Child processes that never outlive dbguard.

Every program dbguard starts (pg_dump, pg_restore, initdb, pg_ctl ...) goes through `started`, or `run`
which waits for it, so that:

- on Linux the child asks the kernel, between fork and exec, to be sent SIGKILL when dbguard goes
  (PR_SET_PDEATHSIG): even a SIGKILL of dbguard, which runs no cleanup at all, takes its children
  along. The request is made after the switch to another OS user (`user=`), since the kernel forgets
  it whenever the credentials change; CPython's _posixsubprocess calls setgroups, setregid and
  setreuid before the preexec hook;
- on every other way out (an error, Ctrl-C's KeyboardInterrupt, the SystemExit that SIGTERM raises,
  see signals.py) a child still running is sent SIGTERM, given STOP_GRACE seconds to clean up (pg_dump
  and pg_restore cancel their server query), then SIGKILL, and reaped.

A server a child starts on purpose (the postmaster that `pg_ctl start` forks and detaches) is not a
child of dbguard: the code that started it stops it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from dbguard.errors import ConnectionFailure
from dbguard.sandbox.signals import signals_deferred
from dbguard.targets.url import scrub_libpq_environment

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
File = int | IO[Any] | None  # what Popen takes for stdout and stderr


def _resolve_prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up once here: the hook that calls it runs in the child between fork and
    exec, where it should do as little as possible (preexec_fn is documented as unsafe with threads)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_prctl = _resolve_prctl()


def _die_with(parent: int) -> Callable[[], None]:
    """The preexec hook, run in the child between fork and exec: let SIGINT and SIGTERM through again
    (Popen runs with them held back in dbguard, and exec keeps the mask), and have the kernel SIGKILL this
    child when `parent` (dbguard's thread that forked it) exits."""
    prctl = _prctl

    def hook() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        if prctl is None:
            return
        if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # dbguard died before the request took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


@contextmanager
def started(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    cwd: Path | None = None,
    stdout: File = subprocess.DEVNULL,
    stderr: File = subprocess.PIPE,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a program (stdin empty; `env` over os.environ less the libpq variables that could steer it; as
    OS user `user`, with that user's groups only); it is stopped and reaped when the block ends, however it
    ends (see `stop`).

    Raises ConnectionFailure when the program cannot be started."""
    argv = [str(arg) for arg in args]
    process: subprocess.Popen[bytes] | None = None
    try:
        # Held back during Popen: a SIGTERM handled inside fork() runs its handler in an at-fork callback,
        # whose exception Python ignores, and the signal was lost (the child then ran to its end).
        try:
            with signals_deferred():
                process = subprocess.Popen(
                    argv,
                    env={**scrub_libpq_environment(), **(env or {})},  # no inherited PG* variable steers it
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    cwd=cwd,
                    user=user,
                    group=_primary_group(user),
                    extra_groups=[] if user else None,
                    preexec_fn=_die_with(os.getpid()),
                )
        except OSError as error:
            raise ConnectionFailure(f"cannot run {argv[0]}: {error.strerror or error}") from None
        yield process
    finally:
        if process is not None:
            stop(process)


def run(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a program to its end, with its stdout and stderr captured as text (bytes that are not UTF-8
    replaced). A program killed by a signal has a negative returncode (see `killed_by`).

    Raises ConnectionFailure when it cannot be started or runs past `timeout` seconds (it is stopped)."""
    with started(args, env=env, user=user, cwd=cwd, stdout=subprocess.PIPE) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ConnectionFailure(f"{Path(str(args[0])).name} did not finish within {timeout:g} s") from None
    return subprocess.CompletedProcess(process.args, process.returncode, _text(out), _text(err))


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, up to STOP_GRACE seconds, then SIGKILL; reaped either way. Ctrl-C and SIGTERM are held
    back meanwhile: a second Ctrl-C must not cut this short and leave the child running."""
    with signals_deferred():
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def killed_by(returncode: int) -> str | None:
    """The name of the signal that ended a child ("SIGKILL"), or None when it exited by itself."""
    if returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _primary_group(user: str | None) -> int | None:
    if user is None:
        return None
    import pwd

    return pwd.getpwnam(user).pw_gid


def _text(data: bytes | None) -> str:
    return data.decode("utf-8", errors="replace") if data else ""
