"""Secrets at rest (webhook signing secrets): AES-256-GCM with a key kept outside the database.

The `whsec_` secrets must be readable by the box (it signs with them), so they cannot be
hashed like API keys. They are sealed with a 256-bit key from a file, by default
`data_dir/secret.key` (0600, created at first start; setting `secret_key_file` puts it
elsewhere, e.g. on another volume than the backups). A copied helpfaster.duckdb or a backup
of it alone reveals no secret. Losing the key file loses the secrets: rotate each webhook's
secret then. AES-GCM from `cryptography` (already a dependency): authenticated, so a
tampered value fails instead of signing with garbage; a fresh 96-bit nonce per value.

Sealed values read `hfenc1:<base64(nonce || ciphertext+tag)>`; anything else is a plaintext
value from before sealing, sealed in place at start (`seal_plaintext`).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from helpfaster_box.store.files import FILE_MODE, private_dir

PREFIX = "hfenc1:"
KEY_BYTES = 32
_AAD = b"helpfaster-box secret v1"


class SecretUnreadable(RuntimeError):
    """A sealed value cannot be opened with this key (another key file, or tampering)."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the secret key must be {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def load(cls, path: Path) -> SecretBox:
        """The key in `path` (base64, one line), created 0600 on first use."""
        if not path.exists():
            private_dir(path.parent)
            key = os.urandom(KEY_BYTES)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            except FileExistsError:  # another process made it first: use theirs
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(base64.b64encode(key).decode() + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
        try:
            key = base64.b64decode(path.read_text().strip(), validate=True)
        except ValueError:
            raise SecretUnreadable(f"{path} is not a base64 key") from None
        return cls(key)

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), _AAD)
        return PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, value: str) -> str:
        """The plaintext of a sealed value; a plaintext (not yet sealed) value as it is."""
        if not value.startswith(PREFIX):
            return value
        raw = base64.b64decode(value[len(PREFIX) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], _AAD).decode()
        except InvalidTag:
            raise SecretUnreadable(
                "a stored secret cannot be decrypted with the current secret key file; "
                "restore that file or rotate the webhook's secret"
            ) from None


def is_sealed(value: str | None) -> bool:
    return value is None or value.startswith(PREFIX)
