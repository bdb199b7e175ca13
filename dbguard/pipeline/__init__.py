"""The three jobs, side by side in pipeline order; each one a function the CLI calls.

- `check.check_text`: parse the script and run the policy's rules (offline);
- `dryrun.dry_run`: the script on a scoped copy of the target in a sandbox, measured and judged;
- `run.run_script`: check, dry-run, the plan, then each step under guard on the target itself, journaled.
  Where each step decides COMMIT or ROLLBACK: `dbguard.run.commit_or_rollback`.
"""
