"""Every read of a script stops at the documented limit: regular files, devices, FIFOs and stdin alike.

These run the real `dbguard` process: before the bounded read, `dbguard check /dev/zero` read forever
(st_size is 0 for a device), so a hang here is the failure, and the timeout turns it into one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dbguard.inputs import MAX_SCRIPT_BYTES

HANG = 60  # seconds: far beyond what reading 16 MiB takes; only an unbounded read gets near it


def dbguard(*args: str, stdin: int = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dbguard", *args]
    return subprocess.run(command, stdin=stdin, capture_output=True, text=True, timeout=HANG)


def assert_too_large(result: subprocess.CompletedProcess[str], name: str) -> None:
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{name}: more than the 16 MiB dbguard reads; split the script" in result.stderr


def test_a_device_with_no_size_is_read_up_to_the_limit_only() -> None:
    assert_too_large(dbguard("check", "/dev/zero"), "/dev/zero")


def test_dry_run_reads_no_further_either() -> None:
    result = dbguard("dry-run", "/dev/zero", "--db", "sqlite:///nowhere.db")
    assert_too_large(result, "/dev/zero")


def test_stdin_is_read_up_to_the_limit_only() -> None:
    with open("/dev/zero", "rb") as zeros:
        assert_too_large(dbguard("check", "-", stdin=zeros.fileno()), "<stdin>")


def test_a_fifo_that_never_ends_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "endless.sql"
    os.mkfifo(fifo)
    written = []

    def writer() -> None:  # SQL, not NUL bytes: only the size can stop it
        chunk = b"SELECT 1;\n" * 10_000
        try:
            with open(fifo, "wb") as pipe:
                while True:
                    pipe.write(chunk)
                    written.append(len(chunk))
        except BrokenPipeError:  # the reader stopped, as it should
            pass

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    result = dbguard("check", str(fifo))
    thread.join(timeout=HANG)
    assert_too_large(result, str(fifo))
    assert not thread.is_alive()
    assert sum(written) > MAX_SCRIPT_BYTES


def test_a_fifo_under_the_limit_is_checked(tmp_path: Path) -> None:
    fifo = tmp_path / "short.sql"
    os.mkfifo(fifo)

    def writer() -> None:
        with open(fifo, "wb") as pipe:
            pipe.write(b"DELETE FROM stock;\n")

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    result = dbguard("check", str(fifo))
    thread.join(timeout=HANG)
    assert result.returncode == 1, result.stderr
    assert "ban-delete-without-where" in result.stdout


@pytest.mark.parametrize("extra", [0, 1])
def test_a_regular_file_at_and_over_the_limit(tmp_path: Path, extra: int) -> None:
    script = tmp_path / "big.sql"
    head = b"SELECT 1;\n-- "
    script.write_bytes(head + b"x" * (MAX_SCRIPT_BYTES - len(head) + extra))
    assert script.stat().st_size == MAX_SCRIPT_BYTES + extra
    result = dbguard("check", str(script), "--format", "json")
    if extra:
        assert result.returncode == 3
        assert f"{script}: 16.0 MiB is larger than the 16 MiB dbguard reads; split the script" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
