"""Signals turned into exceptions, so that `finally` blocks (removing a sandbox) run on SIGTERM too.

Python's default SIGTERM action kills the process on the spot, skipping every `finally`. A handler that
raises SystemExit unwinds the stack like Ctrl-C's KeyboardInterrupt does.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGTERM_EXIT_CODE = 128 + signal.SIGTERM  # 143, what a shell reports for a process ended by SIGTERM


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(SIGTERM_EXIT_CODE)


def interruption(error: BaseException) -> str | None:
    """The signal that `error` unwinds the stack for: "SIGINT" (Ctrl-C: KeyboardInterrupt), "SIGTERM" (the
    SystemExit that `install_sigterm_handler` raises), or None for any other error."""
    if isinstance(error, KeyboardInterrupt):
        return "SIGINT"
    if isinstance(error, SystemExit) and error.code == SIGTERM_EXIT_CODE:
        return "SIGTERM"
    return None


def install_sigterm_handler() -> None:
    """Make SIGTERM raise SystemExit(143) in the main thread (no-op outside it: Python only allows
    signal handlers there)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_system_exit)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs (cleanup that a second Ctrl-C must not cut
    short); a signal that arrives meanwhile is delivered when the block ends."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
