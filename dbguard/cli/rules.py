"""`dbguard rules list` and `dbguard rules explain`."""

from __future__ import annotations

import difflib

import typer
from rich.console import Console
from rich.table import Table

from dbguard.cli.base import Guarded, app, policy_from
from dbguard.config import discover
from dbguard.dialects import Dialect
from dbguard.errors import UsageError
from dbguard.policy.policy import Policy
from dbguard.registry import Rule, all_rules

rules_app = typer.Typer(cls=Guarded, help="List and explain the safety rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@rules_app.command("list")
def rules_list(
    policy: str | None = typer.Option(
        None, "--policy", "-p", envvar="DBGUARD_POLICY", help="Show severities as this policy sets them."
    ),
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table (as in the README)."),
) -> None:
    """List every rule with its severity, dialects and summary.

    Example:

    \b
        dbguard rules list --policy policies/strict.toml
    """
    chosen = policy_from(policy, discover())
    if markdown:
        typer.echo(rules_markdown(chosen), nl=False)
        return
    table = Table("rule", "severity", "dialects", "summary", box=None, pad_edge=False)
    for rule in sorted(all_rules().values(), key=lambda r: r.id):
        table.add_row(rule.id, chosen.severity_of(rule.id).value, _where(rule), rule.summary)
    Console(highlight=False, width=max(120, Console().width)).print(table)


@rules_app.command("explain")
def rules_explain(rule_id: str = typer.Argument(..., help="A rule id, as `dbguard rules list` shows.")) -> None:
    """Explain one rule: the problem, a bad example and the safer way.

    Example:

    \b
        dbguard rules explain ban-delete-without-where
    """
    rule = all_rules().get(rule_id)
    if rule is None:
        close = difflib.get_close_matches(rule_id, all_rules(), n=1)
        hint = f"; did you mean {close[0]}?" if close else "; see `dbguard rules list`"
        raise UsageError(f"unknown rule {rule_id!r}{hint}")
    typer.echo(f"{rule.id} ({rule.severity.value}, {_where(rule)})\n{rule.summary}\n\n{rule.doc}")


def rules_markdown(policy: Policy) -> str:
    lines = ["| rule | default severity | dialects | what it catches |", "|---|---|---|---|"]
    for rule in sorted(all_rules().values(), key=lambda r: r.id):
        lines.append(f"| `{rule.id}` | {policy.severity_of(rule.id).value} | {_where(rule)} | {rule.summary} |")
    return "\n".join(lines) + "\n"


def _where(rule: Rule) -> str:
    dialects = "all" if rule.dialects == frozenset(Dialect) else ", ".join(sorted(d.value for d in rule.dialects))
    return f"{dialects} (dry-run)" if rule.stage == "dry-run" else dialects
