"""Admins: password hashes, signed session cookies and CSRF tokens — stdlib only.

Passwords are hashed with scrypt (random salt, n=2**14, r=8, p=1). A session is a cookie
holding the admin's name and an expiry, signed with HMAC-SHA256 under a secret kept in
the database (created on first use); the CSRF token of a session is derived from it, so a
form without the right token is refused.

Example:
    >>> stored = hash_password("correct horse")
    >>> check_password("correct horse", stored), check_password("wrong", stored)
    (True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

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


def _sign(secret: bytes, text: str) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def session_cookie(secret: bytes, username: str, now: float | None = None) -> str:
    """A signed session for `username`, valid SESSION_SECONDS."""
    expires = int((now or time.time()) + SESSION_SECONDS)
    body = base64.urlsafe_b64encode(f"{username}|{expires}".encode()).decode()
    return f"{body}.{_sign(secret, body)}"


def session_user(secret: bytes, cookie: str | None, now: float | None = None) -> str | None:
    """The admin a cookie belongs to, or None (forged, expired, malformed)."""
    if not cookie or "." not in cookie:
        return None
    body, signature = cookie.rsplit(".", 1)
    if not hmac.compare_digest(signature, _sign(secret, body)):
        return None
    try:
        username, expires = base64.urlsafe_b64decode(body).decode().rsplit("|", 1)
    except (ValueError, UnicodeDecodeError):
        return None
    return username if int(expires) > (now or time.time()) else None


def csrf_token(secret: bytes, cookie: str) -> str:
    """The CSRF token forms of this session must carry."""
    return _sign(secret, "csrf:" + cookie)[:40]


def csrf_ok(secret: bytes, cookie: str | None, token: str | None) -> bool:
    return bool(cookie and token) and hmac.compare_digest(csrf_token(secret, cookie or ""),
                                                          token or "")
