"""Commands as documentation writes them (`dbguard check "$f" --format sarif`), checked against the real CLI.

Used by the tests of the README and of the CI examples: a command, an option or a choice that the command
line no longer has makes them fail.
"""

from __future__ import annotations

import shlex
from typing import Any

import typer

from dbguard.cli import app
from dbguard.cli.base import CommandLineError

SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "!", "do", "then", "else", "if", "while", "until", "time"}


def dbguard_commands(shell: str) -> list[list[str]]:
    """The words of each `dbguard` simple command in a shell text, after `dbguard`."""
    commands = []
    for line in shell.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
        for at, word in enumerate(words):
            if word == "dbguard" and (at == 0 or words[at - 1] in SEPARATORS):
                rest = words[at + 1 :]
                end = next((n for n, w in enumerate(rest) if w in SEPARATORS or w[0] in "<>"), len(rest))
                commands.append(rest[:end])
    return commands


def problems_of(words: list[str]) -> list[str]:
    """What in `dbguard WORDS` the real command line refuses; [] when it parses.

    The words go through the real parser of the command they name (click's, inside typer), which checks
    every option, that an option's value is one of its choices, and the required arguments, without
    running the command. A word with a shell variable stands for some value: `x`."""
    command: Any = typer.main.get_command(app)
    path = ["dbguard"]
    words = ["x" if "$" in word else word for word in words]
    while getattr(command, "commands", None) is not None:  # a group: descend to the command named
        if not words or words[0].startswith("-"):
            if command.invoke_without_command:  # `dbguard backup --db URL`: the group is a command too
                break
            return [f"`{' '.join(path)}` is a group: name one of its commands"]
        name, words = words[0], words[1:]
        if name not in command.commands:
            return [f"`{' '.join(path)}` has no command {name!r}"]
        command, path = command.commands[name], [*path, name]
    try:
        command.make_context(" ".join(path), list(words))
    except CommandLineError as error:
        return [f"`{' '.join(path)}`: {' '.join(error.format_message().split())}"]
    return []
