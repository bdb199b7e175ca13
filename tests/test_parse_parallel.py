"""A large PostgreSQL script is parsed in two halves, one in a forked child: the result is exactly the
serial one, a failed child changes nothing, and the child never outlives dbguard."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbguard.dialects import Dialect
from dbguard.sql import forked, parse


def _script(statements: int, broken_at: int | None = None) -> str:
    parts = ["\\set ON_ERROR_STOP on\n", "-- dbguard: allow ban-drop-table reason=\"fixture\"\n"]
    for n in range(statements):
        kind = n % 6
        if n == broken_at:
            parts.append("UPDATE stock SET qty = WHERE id = 1;\n")  # a syntax error: the halves fall back
        elif kind == 0:
            parts.append(f'UPDATE "Lager-Übersicht" SET qty = qty - 1 WHERE id = {n}; -- ré-équilibrage\n')
        elif kind == 1:
            parts.append(f"DO $$ BEGIN UPDATE stock SET qty = 0 WHERE id = {n}; END $$;\n")
        elif kind == 2:
            parts.append(f"/* 在庫 */ DELETE FROM reservations WHERE expires_at < now() - interval '{n} days';\n")
        elif kind == 3:
            parts.append(f"ALTER TABLE stock ADD COLUMN c{n} integer NOT NULL DEFAULT 0;\n")
        elif kind == 4:
            parts.append(f"CREATE INDEX CONCURRENTLY i{n} ON stock (qty);\n\n\n")
        else:
            parts.append(f"CREATE FUNCTION f{n}() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT {n}; END;\n")
    parts.append("SELECT 1")  # the last statement without its semicolon
    return "".join(parts)


@pytest.mark.parametrize("broken_at", [None, 10, 1500])
def test_the_halves_give_exactly_the_serial_parse(broken_at: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _script(2400, broken_at)
    assert forked.available()
    children = []
    monkeypatch.setattr(forked, "in_child", lambda work, real=forked.in_child: children.append(1) or real(work))
    halves = parse.parse_script(text, Dialect.POSTGRES, "big.sql")
    assert len(children) == (1 if broken_at is None else 0)  # a script that does not parse is parsed serially
    monkeypatch.setattr(parse, "PARALLEL_MIN_STATEMENTS", 10**9)
    serial = parse.parse_script(text, Dialect.POSTGRES, "big.sql")
    assert halves == serial
    assert len(serial.statements) > 2400
    broken = [s for s in serial.statements if "qty = WHERE" in s.text]
    assert len(broken) == (broken_at is not None) and all(s.parse_error for s in broken)


def test_a_failing_child_gives_none_and_is_reaped() -> None:
    def boom() -> int:
        raise RuntimeError("in the child")

    def killed() -> int:
        os.kill(os.getpid(), signal.SIGKILL)
        return 1

    for work in (boom, killed):
        with forked.in_child(work) as result:
            assert result() is None
    with forked.in_child(lambda: {"half": 2}) as result:
        assert result() == {"half": 2}


def test_the_child_dies_with_its_parent(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    program = f"""
import os, time
from dbguard.sql import forked
def work():
    open({str(pid_file)!r}, "w").write(str(os.getpid()))
    time.sleep(600)
with forked.in_child(work) as result:
    result()
"""
    parent = subprocess.Popen([sys.executable, "-c", program])
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pid_file.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        parent.kill()
        parent.wait()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie (init reaps it) is dead
