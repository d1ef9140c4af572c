"""What went wrong when the database cannot be used, in one line a person can act on.

A server that does not answer, a database that does not exist and a user the server
refuses are three different problems with three different fixes; each gets its own line
naming `[database] url` with its password hidden.

Example:
    >>> shown_url("postgres://carla:secreto@db.internal:5432/centralita")
    'postgres://carla:***@db.internal:5432/centralita'
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit


class DatabaseNotReady(RuntimeError):
    """The database cannot be used as it is: the message says why and what to do."""


def shown_url(url: str) -> str:
    """`url` with its password hidden, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def diagnose(url: str, exc: BaseException) -> DatabaseNotReady | None:
    """The line for a failure to connect to `url`, or None when it is something else."""
    chain = _chain(exc)
    names = {type(e).__name__ for e in chain}
    parts, shown = urlsplit(url), shown_url(url)
    if "InvalidCatalogNameError" in names:
        name = parts.path.lstrip("/")
        return DatabaseNotReady(
            f"database.url: the server has no database {name!r} ({shown}): create it "
            f"(createdb {name}), then run `centralita migrate`")
    if names & {"InvalidAuthorizationSpecificationError", "InvalidPasswordError"}:
        reason = next(str(e) for e in chain if type(e).__name__ in (
            "InvalidAuthorizationSpecificationError", "InvalidPasswordError"))
        return DatabaseNotReady(
            f"database.url: the server refused user {parts.username!r} ({shown}): "
            f"{reason}; check the user and password")
    if any(isinstance(e, (ConnectionError, TimeoutError, socket.gaierror)) for e in chain):
        where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        return DatabaseNotReady(
            f"database.url: no database server answers at {where} ({shown}): is "
            f"PostgreSQL running there, and reachable from this machine?")
    return None
