"""Signed tokens for unsubscribe, confirmation, preferences and feedback links: HMAC-SHA256 with a secret
kept in $DIGEST_HOME."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from datetime import datetime
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


def rotate(config: Config) -> None:
    """Replace the signing secret: every link signed so far (unsubscribe, confirmation, preferences,
    feedback) stops working."""
    config.path("secret.key").unlink(missing_ok=True)
    secret(config)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def sign(config: Config, purpose: str, email: str, issued: int | None = None) -> str:
    """A URL-safe token binding ``email`` to ``purpose`` (``unsubscribe``, ``confirm``, ``csrf``).

    With ``issued`` (Unix seconds) the token also carries, and signs, when it was made.
    """
    stamp = "" if issued is None else f":{issued}"
    mac = hmac.new(secret(config), f"{purpose}:{email.lower()}{stamp}".encode(), hashlib.sha256).digest()
    middle = "" if issued is None else f"{_b64(str(issued).encode())}."
    return f"{_b64(email.encode())}.{middle}{_b64(mac[:24])}"


def _open(config: Config, purpose: str, token: str) -> tuple[str, int | None]:
    """The address and issue time a token was signed with; raises :class:`BadToken` otherwise."""
    parts = token.strip().split(".")
    try:
        email = _unb64(parts[0])
        issued = int(_unb64(parts[1])) if len(parts) == 3 else None
    except (ValueError, UnicodeDecodeError, IndexError):
        raise BadToken("expected a digest link token, found something else") from None
    if len(parts) not in (2, 3) or not hmac.compare_digest(sign(config, purpose, email, issued), token.strip()):
        raise BadToken(f"this {purpose} link is not valid (wrong signature)")
    return email, issued


def verify(config: Config, purpose: str, token: str) -> str:
    """The address a token was signed for; raises :class:`BadToken` otherwise."""
    return _open(config, purpose, token)[0]


def sign_expiring(config: Config, purpose: str, email: str) -> str:
    """A token that carries when it was made, so it can expire and be revoked (confirmation, preferences,
    feedback links)."""
    return sign(config, purpose, email, int(time.time()))


def verify_expiring(
    config: Config, purpose: str, token: str, ttl: float, expired: str = "this link has expired"
) -> tuple[str, int]:
    """The address and issue time of a ``purpose`` token not older than ``ttl`` seconds; else
    :class:`BadToken`, saying ``expired`` when it is too old."""
    email, issued = _open(config, purpose, token)
    if issued is None or time.time() - issued > ttl:
        raise BadToken(expired)
    return email, issued


def sign_confirmation(config: Config, email: str) -> str:
    """A double opt-in token: it carries when it was made, so it can expire and be superseded."""
    return sign_expiring(config, "confirm", email)


def verify_confirmation(config: Config, token: str, ttl: float) -> tuple[str, int]:
    """The address and issue time of a confirmation token not older than ``ttl`` seconds."""
    return verify_expiring(config, "confirm", token, ttl, "this confirmation link has expired; please subscribe again")


def epoch(timestamp: str | None) -> int:
    """Unix seconds of a store timestamp (``YYYY-MM-DDTHH:MM:SSZ``); 0 when there is none."""
    if not timestamp:
        return 0
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())
