"""Real mail servers on loopback for the email tests: Dovecot (IMAP) and aiosmtpd (SMTP).

Dovecot comes from Debian's `dovecot-imapd` (`.ci/run` installs it); it is started with a
throw-away configuration and a passwd-file user, on a free port, in a temporary directory.
When it is not installed the IMAP tests are skipped with that reason (or fail, under
CENTRALITA_REQUIRE_DOVECOT=1, which `.ci/run` sets).

Example:
    >>> server = Dovecot(); server.start()                 # doctest: +SKIP
    >>> await server.append(raw_mail)                              # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aioimaplib import IMAP4
from aiosmtpd.controller import Controller

from gateway.web.http import free_port

USER = "soporte@example.test"
SALES = "ventas@example.test"
PASSWORD = "secret"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/run/state
instance_name = dovecot-test-{port}
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


def dovecot_missing() -> str | None:
    """Why Dovecot cannot run here, or None."""
    if not Path(DOVECOT).exists():
        return "Dovecot is not installed (apt-get install dovecot-imapd)"
    return None


class Dovecot:
    """A Dovecot IMAP server of our own, with two mailboxes, `USER` and `SALES`, both with
    `PASSWORD`."""

    def __init__(self) -> None:
        # Its own directory, readable by Dovecot's unprivileged processes (pytest's
        # tmp_path sits under 0700 directories they cannot enter).
        self.root = Path(tempfile.mkdtemp(prefix="centralita-dovecot-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.config = self.root / "dovecot.conf"

    def start(self) -> None:
        d = self.root
        (d / "run").mkdir(parents=True, exist_ok=True)
        (d / "mail").mkdir(exist_ok=True)
        root = os.geteuid() == 0
        uid, gid = (65534, 65534) if root else (os.getuid(), os.getgid())
        (d / "users").write_text("".join(f"{user}:{{PLAIN}}{PASSWORD}::::::\n"
                                         for user in (USER, SALES)))
        if root:
            os.chown(d / "mail", uid, gid)
        me = os.environ.get("USER", "root")
        self.config.write_text(CONFIG.format(
            d=d, port=self.port, uid=uid, gid=gid,
            internal="dovecot" if root else me, internal_group="dovecot" if root else me,
            login="dovenull" if root else me))
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(self.config)],
                                        start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("dovecot exited: " + self.log())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("dovecot did not start listening: " + self.log())

    def log(self) -> str:
        path = self.root / "dovecot.log"
        err = b""
        if self.process is not None and self.process.stderr is not None and \
                self.process.poll() is not None:
            err = self.process.stderr.read() or b""
        return (path.read_text(errors="replace") if path.exists() else "") + err.decode()

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def kick(self, user: str = USER) -> None:
        """Drop every IMAP connection of `user`, as a server restart would."""
        subprocess.run([DOVEADM, "-c", str(self.config), "kick", user], check=True,
                       capture_output=True, timeout=10)

    async def client(self, user: str = USER) -> IMAP4:
        client = IMAP4(host="127.0.0.1", port=self.port, timeout=10)
        await client.wait_hello_from_server()
        response = await client.login(user, PASSWORD)
        assert response.result == "OK", f"login refused: {response} {self.log()}"
        return client

    async def append(self, raw: bytes, folder: str = "INBOX",
                     date: datetime | None = None, user: str = USER) -> None:
        """Put a mail in `user`'s mailbox, as the customer's mail server would (`date`:
        when it arrived, for old mail)."""
        client = await self.client(user)
        try:
            response = await client.append(raw, mailbox=folder, date=date)
            assert response.result == "OK", response
        finally:
            await client.logout()

    async def create_folder(self, name: str) -> None:
        client = await self.client()
        try:
            await client.create(name)
        finally:
            await client.logout()

    async def count(self, folder: str = "INBOX") -> int:
        client = await self.client()
        try:
            response = await client.select(folder)
            for line in response.lines:
                if line.endswith(b"EXISTS"):
                    return int(line.split()[0])
            return 0
        finally:
            await client.logout()


class SmtpSink:
    """An SMTP server that keeps what it receives; `reply` makes it refuse (e.g. 451)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[EmailMessage] = []
        self.reply: str | None = None
        self.arrived = asyncio.Event()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd hook
        if self.reply:
            return self.reply
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.received.append(message)  # type: ignore[arg-type]
        self.arrived.set()
        return "250 OK"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


async def eventually(check, within: float = 15.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Wait until `await check()` (or `check()`) is truthy; returns its value."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {within} s: {check}")
        await asyncio.sleep(interval)
