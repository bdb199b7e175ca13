"""Peer review of a script: sign-offs bound to its sha256 (`approvals`) and what `run` requires of them."""
