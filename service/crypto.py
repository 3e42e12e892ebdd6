"""Secrets at rest: token digests and Fernet encryption keyed from SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def digest(token: str) -> str:
    """Return the SHA-256 hex digest used to look a token up without storing it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    """Compare two secrets in constant time."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _fernet(secret_key: str, purpose: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"steadfast:{purpose}".encode()
    ).derive(secret_key.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(secret_key: str, purpose: str, plaintext: str) -> str:
    """Encrypt `plaintext` with a key derived from SECRET_KEY for one purpose."""
    return _fernet(secret_key, purpose).encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(secret_key: str, purpose: str, ciphertext: str) -> str | None:
    """Decrypt, or return None when SECRET_KEY changed or the text was tampered with."""
    try:
        return _fernet(secret_key, purpose).decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        return None
