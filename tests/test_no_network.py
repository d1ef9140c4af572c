"""No test reaches the network: pytest-socket, configured in pyproject.toml
(`--allow-hosts=127.0.0.1,::1,localhost` in `addopts`), lets a test connect only to loopback
— PostgreSQL on 127.0.0.1, the Telegram and Slack sandboxes, Dovecot, the SMTP servers.
These tests make sure the guard is on, so that it cannot silently disappear.

192.0.2.1 is TEST-NET-1 (RFC 5737), kept for documentation: nothing ever answers there.
Each test checks that the guard is in place before it tries, so even without the guard it
would fail without sending a packet.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from pytest_socket import SocketConnectBlockedError

TEST_NET = "192.0.2.1"

# pytest-socket warns as it refuses; here the refusal is what we want.
pytestmark = pytest.mark.filterwarnings("ignore:A test tried to use socket.socket.connect")


def guarded() -> bool:
    """Whether pytest-socket has replaced `connect` for this test (the real one is the C
    socket type's)."""
    return socket.socket.connect is not socket.SocketType.connect


def test_every_test_may_connect_only_to_loopback(pytestconfig: pytest.Config) -> None:
    allowed = pytestconfig.getoption("--allow-hosts") or ""
    assert set(allowed.split(",")) == {"127.0.0.1", "::1", "localhost"}
    assert guarded()


def test_a_connection_to_a_non_loopback_address_is_refused_before_it_is_tried() -> None:
    assert guarded(), "pytest-socket is off: not even trying a non-loopback address"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(SocketConnectBlockedError, match=TEST_NET):
        sock.connect((TEST_NET, 25))
    assert sock.fileno() == -1  # the guard closed it: it never connected


async def test_the_event_loop_meets_the_same_guard() -> None:
    # asyncio, asyncpg, httpx, aiohttp, aiosmtplib and aioimaplib all connect this way.
    assert guarded(), "pytest-socket is off: not even trying a non-loopback address"
    with pytest.raises(SocketConnectBlockedError, match=TEST_NET):
        await asyncio.wait_for(asyncio.open_connection(TEST_NET, 25), 5)


async def test_loopback_is_still_open() -> None:
    async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hola\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(hello, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for host in ("127.0.0.1", "localhost"):
            reader, writer = await asyncio.open_connection(host, port)
            assert await reader.readline() == b"hola\n"
            writer.close()
            await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
