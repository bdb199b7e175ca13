"""Run one function in a forked child, on the machine's other core, and take back its pickled result.

For `check` of a large PostgreSQL script: the parser's own cost (libpg_query's tree made into Python
objects) is most of the time, and halves of a script parse independently. The child:

- is forked, not spawned: it starts in a millisecond with everything already imported;
- asks the kernel to SIGKILL it when dbguard goes (PR_SET_PDEATHSIG), and is killed and reaped on every
  way out of the parent (an error, Ctrl-C): it never outlives dbguard;
- writes its result to a pipe and leaves with os._exit, running none of the parent's exit handlers.

Any failure in the child (an exception, a signal, a result that does not unpickle) gives None: the caller
then does the work itself, so the result never depends on whether the fork worked.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def available() -> bool:
    """Forking is safe only with one thread (a lock another thread holds would stay held in the child)."""
    return hasattr(os, "fork") and (os.cpu_count() or 1) > 1 and threading.active_count() == 1


@contextmanager
def in_child(work: Callable[[], T]) -> Iterator[Callable[[], T | None]]:
    """Start `work()` in a forked child; inside the block, call the yielded function to wait for its result
    (None if the child failed). On leaving the block the child is gone, whatever happened."""
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; coverage does not follow a fork
        _child(read_end, write_end, parent, work)
    os.close(write_end)
    reaped = False

    def outcome() -> T | None:
        nonlocal reaped
        with os.fdopen(read_end, "rb", closefd=False) as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        reaped = True
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            return None
        try:
            result: T = pickle.loads(data)
            return result
        except Exception:
            return None

    try:
        yield outcome
    finally:
        os.close(read_end)
        if not reaped:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _child(read_end: int, write_end: int, parent: int, work: Callable[[], object]) -> None:  # pragma: no cover
    code = 1
    try:
        os.close(read_end)
        _die_with(parent)
        data = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(data)
        code = 0
    except BaseException:  # anything, Ctrl-C included: the parent does the work itself
        pass
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
