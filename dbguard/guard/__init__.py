"""What dry-run and run share to execute a script and judge the result, so that a script that passes one
passes the other on the same data: the executor (`execute`), the integrity gate (`gate`) and the policy's
invariants (`invariants`)."""
