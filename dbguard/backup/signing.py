"""Manifest signatures: HMAC-SHA256 with a key kept outside the backup store.

What the signature protects against: someone who can write the store but cannot read the key (another
user of a shared backup volume, a copy of the store elsewhere, a job with write access to it) cannot
change a manifest (its row counts and hashes, the dump's sha256, VERIFIED) or forge one without
dbguard refusing it. What it does not protect against: whoever can read the key can sign anything;
deleting a whole backup, or putting back an older signed manifest of the same backup (say, from before
a verification FAILED), is not detected.

The key is 32 random bytes, written as 64 hex digits to a file of mode 0600, created the first time a
manifest is signed: DBGUARD_MANIFEST_KEY (a path), else $XDG_CONFIG_HOME/dbguard/manifest.key, else
~/.config/dbguard/manifest.key. A manifest names its key by an id (a hash of the key); the key itself is
never printed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from dbguard.errors import BackupFailure, UsageError

KEY_ENV = "DBGUARD_MANIFEST_KEY"
SIGNATURE, KEY_ID = "manifest_hmac_sha256", "manifest_key_id"
_WHERE_KEYS_GO = f"point {KEY_ENV} (or --manifest-key, or manifest_key in the config file) at it"
_KEY_BYTES = 32


def default_key_path() -> Path:
    """$DBGUARD_MANIFEST_KEY, else dbguard/manifest.key in $XDG_CONFIG_HOME (default ~/.config)."""
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "dbguard" / "manifest.key"


class ManifestKey:
    """The signing key at `path`, read (or, to sign, created) on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._secret: bytes | None = None

    def sign(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body` with the key's id and the signature over both added."""
        secret = self._load() or self._create()
        signed = {**body, KEY_ID: _key_id(secret)}
        return {**signed, SIGNATURE: _hmac(secret, signed)}

    def check(self, body: dict[str, Any], where: str) -> dict[str, Any]:
        """`body` without its key id and signature, once they prove it was written with this key, unchanged.

        Raises BackupFailure for an unsigned manifest, one signed with another key, an edited one, or when
        there is no key to check with."""
        if SIGNATURE not in body:
            raise BackupFailure(f"manifest {where} is not signed, so it is not trusted (an older dbguard wrote "
                                "it with a plain sha256, which whoever edits it can recompute): take a new "
                                "backup")  # fmt: skip
        claimed = body.pop(SIGNATURE)
        secret = self._load()
        if secret is None:
            raise BackupFailure(f"cannot check manifest {where}: there is no manifest key at {self.path}; copy the "
                                f"key the backups were signed with there, or {_WHERE_KEYS_GO}")  # fmt: skip
        if body.get(KEY_ID) != _key_id(secret):
            raise BackupFailure(f"manifest {where} was signed with another key (key id {body.get(KEY_ID)}; the key "
                                f"at {self.path} has id {_key_id(secret)}): find the key the backup was taken with "
                                f"and {_WHERE_KEYS_GO}")  # fmt: skip
        if not isinstance(claimed, str) or not hmac.compare_digest(claimed, _hmac(secret, body)):
            raise BackupFailure(f"manifest {where} was edited after it was written (its signature does not match)")
        del body[KEY_ID]
        return body

    def _load(self) -> bytes | None:
        if self._secret is None:
            self._secret = self._read()
        return self._secret

    def _read(self) -> bytes | None:
        try:
            with self.path.open("rb") as handle:
                mode = os.fstat(handle.fileno()).st_mode
                text = handle.read(200)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise UsageError(f"cannot read the manifest key {self.path}: {error.strerror}") from None
        if stat.S_IMODE(mode) & 0o077:
            raise UsageError(f"the manifest key {self.path} can be read by other users (mode "
                             f"{stat.S_IMODE(mode):04o}): chmod 600 {self.path}")  # fmt: skip
        try:
            secret = bytes.fromhex(text.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            secret = b""
        if len(secret) != _KEY_BYTES:
            raise UsageError(f"{self.path} is not a dbguard manifest key ({_KEY_BYTES * 2} hex digits)")
        return secret

    def _create(self) -> bytes:
        secret = secrets.token_bytes(_KEY_BYTES)
        temporary = self.path.with_name(f".{self.path.name}.new-{os.getpid()}")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secret.hex() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temporary, self.path)  # unlike a rename, never replaces a key another dbguard just made
        except FileExistsError:
            pass
        except OSError as error:
            raise UsageError(f"cannot create the manifest key {self.path}: {error.strerror}") from None
        finally:
            temporary.unlink(missing_ok=True)
        self._secret = self._read()  # another dbguard's key, if it made one first
        if self._secret is None:
            raise UsageError(f"cannot create the manifest key {self.path}: it vanished as it was made")
        return self._secret


def _key_id(secret: bytes) -> str:
    return hashlib.sha256(b"dbguard manifest key id\0" + secret).hexdigest()[:16]


def _hmac(secret: bytes, body: dict[str, Any]) -> str:
    return hmac.new(secret, json.dumps(body, sort_keys=True).encode(), hashlib.sha256).hexdigest()
