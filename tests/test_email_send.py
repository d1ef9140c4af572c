"""Email out, told as what the customer's mail server answers: SMTP delivery, AUTH and TLS.

Messages are handed by `send_smtp` to a real SMTP server (aiosmtpd on loopback,
`tests.smtp_servers`). Failures are injected by the server itself (451, 550…), by a port
nobody listens on, by a server that never speaks, by a wrong password and by an untrusted
certificate. What a delivered message looks like is in test_email_compose.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from gateway.core.messages import PermanentError, TransientError
from gateway.web.http import free_port
from tests.smtp_servers import (
    MARIA,
    Server,
    Servers,
    acknowledgement,
    deliver,
    mailbox,
    make_certificate,
    server_tls,
)


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    """Starts aiosmtpd servers on loopback (Controller keyword arguments as given)."""
    servers = Servers()
    yield servers.start
    servers.stop()


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    return start_server()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    return make_certificate(tmp_path_factory.mktemp("tls"))


# --- when the server says no -----------------------------------------------------------------


@pytest.mark.parametrize(("stage", "reply", "error", "shown"), [
    ("refuse_data", "451 4.3.0 try later", TransientError, "SMTP 451 4.3.0 try later"),
    ("refuse_rcpt", "450 4.2.1 mailbox busy", TransientError, "450 4.2.1 mailbox busy"),
    ("refuse_mail", "421 4.7.0 too many connections", TransientError, "421"),
    ("refuse_rcpt", "550 5.1.1 no such user", PermanentError, "550 5.1.1 no such user"),
    ("refuse_data", "554 5.7.1 message rejected as spam", PermanentError,
     "SMTP 554 5.7.1 message rejected as spam (from 127.0.0.1)"),
    ("refuse_mail", "553 5.7.1 sender not allowed", PermanentError, "553 5.7.1"),
])
async def test_the_server_answer_decides_whether_the_outbox_retries(
    server: Server, stage: str, reply: str, error: type[Exception], shown: str,
) -> None:
    setattr(server.mailroom, stage, reply)

    with pytest.raises(error) as failed:
        await deliver(acknowledgement(), mailbox(server.port))

    assert shown in failed.value.reason
    assert server.mailroom.envelopes == []


async def test_no_server_listening_is_a_transient_failure() -> None:
    port = free_port()  # nobody listens here: connection refused

    with pytest.raises(TransientError) as failed:
        await deliver(acknowledgement(), mailbox(port))

    assert f"127.0.0.1:{port}" in failed.value.reason


async def test_a_server_that_never_answers_times_out_as_a_transient_failure() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, says nothing until the client gives up
        writer.close()

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TransientError) as failed:
            await deliver(acknowledgement(),
                          mailbox(port, timeout=timedelta(milliseconds=300)))
    finally:
        listener.close()
    assert "did not answer in time" in failed.value.reason


async def test_a_server_that_hangs_up_at_once_is_a_transient_failure() -> None:
    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    listener = await asyncio.start_server(rude, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TransientError):
            await deliver(acknowledgement(), mailbox(port))
    finally:
        listener.close()


# --- SMTP AUTH -------------------------------------------------------------------------------


def _only_soporte(server, session, envelope, mechanism, auth_data) -> AuthResult:
    good = (isinstance(auth_data, LoginPassword) and auth_data.login == b"soporte"
            and auth_data.password == b"clave-correcta")
    # handled=False: aiosmtpd then answers 535 itself (by default a failed authenticator
    # is assumed to have answered, and the client waits for a reply that never comes).
    return AuthResult(success=good, handled=False)


# Plain AUTH on loopback, on purpose: aiosmtpd warns about it for every connection.
plain_auth = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def auth_server(start_server: Callable[..., Server]) -> Server:
    return start_server(authenticator=_only_soporte, auth_require_tls=False,
                        auth_required=True)


@plain_auth
async def test_with_the_right_password_the_mail_leaves(auth_server: Server) -> None:
    box = mailbox(auth_server.port, smtp_user="soporte", smtp_password="clave-correcta")
    await deliver(acknowledgement(), box)

    assert auth_server.mailroom.envelopes[0].rcpt_tos == [MARIA]


@plain_auth
async def test_a_wrong_password_is_permanent_and_never_shown(auth_server: Server) -> None:
    box = mailbox(auth_server.port, smtp_user="soporte", smtp_password="clave-vieja")

    with pytest.raises(PermanentError) as failed:
        await deliver(acknowledgement(), box)

    assert "535" in failed.value.reason
    assert "clave-vieja" not in failed.value.reason
    assert "clave-vieja" not in repr(failed.value.__cause__)
    assert auth_server.mailroom.envelopes == []


@plain_auth
async def test_without_credentials_a_server_requiring_auth_refuses_permanently(
    auth_server: Server,
) -> None:
    with pytest.raises(PermanentError) as failed:
        await deliver(acknowledgement(), mailbox(auth_server.port))

    assert "530" in failed.value.reason


# --- TLS ----------------------------------------------------------------------------------


@pytest.fixture
def starttls_server(start_server: Callable[..., Server],
                    certificate: tuple[Path, Path]) -> Server:
    return start_server(tls_context=server_tls(certificate), require_starttls=True)


async def test_a_self_signed_certificate_is_refused_and_retried_later(
    starttls_server: Server,
) -> None:
    box = mailbox(starttls_server.port, smtp_security="starttls")

    with pytest.raises(TransientError) as failed:
        await deliver(acknowledgement(), box)

    assert "certificate was refused" in failed.value.reason
    assert starttls_server.mailroom.envelopes == []


async def test_a_trusted_certificate_carries_the_mail_over_starttls(
    starttls_server: Server, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The machine trusts our test authority, as it would a real one: no setting needed.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    await deliver(acknowledgement(), mailbox(starttls_server.port, smtp_security="starttls"))

    assert starttls_server.mailroom.over_tls == [True]
    assert starttls_server.mailroom.mail()["Subject"] == "Re: Mi pedido no llegó [#1042]"


async def test_implicit_tls_checks_the_certificate_too(
    start_server: Callable[..., Server], certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tls = start_server(ssl_context=server_tls(certificate))
    box = mailbox(tls.port, smtp_security="tls")

    with pytest.raises(TransientError) as failed:
        await deliver(acknowledgement(), box)
    assert "certificate was refused" in failed.value.reason

    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    await deliver(acknowledgement(), box)
    assert tls.mailroom.over_tls == [True]


async def test_starttls_configured_but_not_offered_never_sends_in_clear(server: Server) -> None:
    with pytest.raises(TransientError) as failed:
        await deliver(acknowledgement(), mailbox(server.port, smtp_security="starttls"))

    assert "STARTTLS" in failed.value.reason
    assert server.mailroom.envelopes == []
