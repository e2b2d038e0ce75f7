"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

The signed content is ``f"{msg_id}.{timestamp}.{body}"``, HMAC-SHA256 keyed with
the base64-decoded part of the ``whsec_`` secret. While a secret is being
rotated both the old and the new one sign, space-separated in one header, so a
receiver holding either secret accepts the message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets

PREFIX = "whsec_"
SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes


def new_secret() -> str:
    return PREFIX + base64.b64encode(_secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret (tolerates missing base64 padding)."""
    raw = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret is not whsec_ followed by base64") from None
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = msg_id.encode() + b"." + str(int(timestamp)).encode() + b"." + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, one signature per active secret."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
    }
