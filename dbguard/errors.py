"""The one exception hierarchy. Each class carries the exit code the CLI turns it into.

Findings are data, not exceptions: only conditions that stop dbguard itself live here.
"""

from __future__ import annotations


class DbguardError(Exception):
    """Base of every error dbguard raises on purpose. The message is shown to the user as is."""

    exit_code = 2


class UsageError(DbguardError):
    """Bad command-line usage or configuration (a broken policy, an unknown dialect...)."""

    exit_code = 2


class InputError(DbguardError):
    """A script that cannot be read or parsed at all: missing, empty, binary, not UTF-8, too large."""

    exit_code = 3


class ConnectionFailure(DbguardError):
    """The database or the sandbox cannot be reached or created."""

    exit_code = 4


class BackupFailure(DbguardError):
    """A backup or its verification failed; nothing was executed."""

    exit_code = 5


class JournalFailure(DbguardError):
    """The audit journal cannot be read, trusted or appended to; nothing more is executed."""

    exit_code = 5


class ExecutionFailure(DbguardError):
    """The script or the integrity gate failed; the transaction was rolled back and the rollback proved."""

    exit_code = 6


class OutcomeUnknown(DbguardError):
    """The rollback failed or the outcome of a commit is unknown: a person is needed."""

    exit_code = 7


EXIT_FINDINGS = 1
EXIT_INCOMPLETE = 8  # `verify`: a check did not finish (time budget, refused query); nothing is known of it
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in dbguard, reported in one line
EXIT_INTERRUPTED = 130
