"""Signed tokens for unsubscribe and confirmation links: HMAC-SHA256 with a secret kept in $DIGEST_HOME."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from digest.config import Config
from digest.errors import DigestError


class BadToken(DigestError):
    """A token that is malformed, forged or meant for something else."""


def secret(config: Config) -> bytes:
    """The signing secret, created (mode 0600) on first use."""
    path: Path = config.path("secret.key")
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(config: Config, purpose: str, email: str) -> str:
    """A URL-safe token binding ``email`` to ``purpose`` (``unsubscribe`` or ``confirm``)."""
    mac = hmac.new(secret(config), f"{purpose}:{email.lower()}".encode(), hashlib.sha256).digest()
    return f"{_b64(email.encode())}.{_b64(mac[:24])}"


def verify(config: Config, purpose: str, token: str) -> str:
    """The address a token was signed for; raises :class:`BadToken` otherwise."""
    try:
        encoded, _ = token.strip().split(".", 1)
        email = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise BadToken("expected a digest link token, found something else") from None
    if not hmac.compare_digest(sign(config, purpose, email), token.strip()):
        raise BadToken(f"this {purpose} link is not valid (wrong signature)")
    return email
