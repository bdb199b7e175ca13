"""`run`'s own parts (the job itself is `dbguard.pipeline.run`): steps (`steps`), one run per target
(`exclusive`), who blocks a lock (`blockers`), and each step's transaction, where dbguard decides COMMIT or
ROLLBACK and proves the rollback (`commit_or_rollback`)."""
