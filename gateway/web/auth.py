"""Admins: password hashes, signed session cookies and CSRF tokens — stdlib only.

Passwords are hashed with scrypt (random salt, n=2**14, r=8, p=1). A session is a cookie
holding the admin's name, her session version and an expiry, signed with HMAC-SHA256
under a secret kept in the database (created on first use); the signed-in check compares
the version with the admin's row, so raising it (signing out, a new password) or removing
the admin ends every cookie she has. The CSRF token of a session is derived from the
cookie, so a form without the right token is refused.

Example:
    >>> stored = hash_password("correct horse")
    >>> check_password("correct horse", stored), check_password("wrong", stored)
    (True, False)
    >>> verify_password("correct horse", None)   # an unknown user: one scrypt all the same
    False
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import NamedTuple

SESSION_SECONDS = 8 * 3600
_N, _R, _P = 2 ** 14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    salt_text, digest_text = (base64.b64encode(v).decode() for v in (salt, digest))
    return f"scrypt${_N}${_R}${_P}${salt_text}${digest_text}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), dklen=32)
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


def _random_text(size: int) -> str:
    return base64.b64encode(secrets.token_bytes(size)).decode()


# Checked in place of an unknown user's hash: the same scrypt work, and no password
# matches its random digest.
_NOBODY = f"scrypt${_N}${_R}${_P}${_random_text(16)}${_random_text(32)}"


def verify_password(password: str, stored: str | None) -> bool:
    """`check_password` against `stored`, or — for an unknown user (None) — against a hash
    no password matches, so that both cost one scrypt and time tells nothing."""
    matches = check_password(password, stored if stored is not None else _NOBODY)
    return matches and stored is not None


def _sign(secret: bytes, text: str) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


class Session(NamedTuple):
    """What a valid session cookie says: who, and which of her session versions."""

    username: str
    version: int


def session_cookie(secret: bytes, username: str, version: int,
                   now: float | None = None) -> str:
    """A signed session for `username` at session `version`, valid SESSION_SECONDS."""
    expires = int((now or time.time()) + SESSION_SECONDS)
    body = base64.urlsafe_b64encode(f"{username}|{version}|{expires}".encode()).decode()
    return f"{body}.{_sign(secret, body)}"


def read_session(secret: bytes, cookie: str | None, now: float | None = None
                 ) -> Session | None:
    """The session a cookie carries, or None (forged, expired, malformed). Whether that
    session version is still the admin's is for the caller to check."""
    if not cookie or "." not in cookie:
        return None
    body, signature = cookie.rsplit(".", 1)
    if not hmac.compare_digest(signature, _sign(secret, body)):
        return None
    try:
        username, version, expires = base64.urlsafe_b64decode(body).decode().rsplit("|", 2)
        if int(expires) <= (now or time.time()):
            return None
        return Session(username, int(version))
    except (ValueError, UnicodeDecodeError):
        return None


def csrf_token(secret: bytes, cookie: str) -> str:
    """The CSRF token forms of this session must carry."""
    return _sign(secret, "csrf:" + cookie)[:40]


def csrf_ok(secret: bytes, cookie: str | None, token: str | None) -> bool:
    return bool(cookie and token) and hmac.compare_digest(csrf_token(secret, cookie or ""),
                                                          token or "")
