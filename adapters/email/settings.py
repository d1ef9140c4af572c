"""Settings of the email channel: `[channels.email]` and one `[[channels.email.mailboxes]]`
per support address (soporte@, ventas@…), each with its own IMAP and SMTP server.

Example (settings.toml):

    [channels.email]
    token_secret = ""                 # or CENTRALITA_CHANNELS__EMAIL__TOKEN_SECRET
    [[channels.email.mailboxes]]
    name = "soporte"
    address = "soporte@example.com"
    imap_host = "imap.example.com"
    imap_user = "soporte@example.com"
    imap_password = "…"
    smtp_host = "smtp.example.com"
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.settings import Duration

ADDRESS = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")


class MailboxSettings(BaseModel):
    """One support address: where mail is read (IMAP) and how answers leave (SMTP)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    address: str
    display_name: str = ""            # shown in From: "Soporte Ejemplo <soporte@…>"
    # IMAP (aioimaplib has no STARTTLS: implicit TLS on 993, or plain on a trusted network)
    imap_host: str
    imap_port: int = Field(993, ge=1, le=65535)
    imap_tls: bool = True
    imap_user: str
    imap_password: str = ""
    folder: str = "INBOX"
    move_to: str = ""                 # move processed mail here ("" = leave it, mark seen)
    idle: bool = True                 # IMAP IDLE when the server offers it, else polling
    poll_interval: Duration = timedelta(seconds=60)
    idle_renew: Duration = timedelta(minutes=25)  # RFC 2177: re-issue before 29 minutes
    # SMTP
    smtp_host: str
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_user: str = ""
    smtp_password: str = ""
    timeout: Duration = timedelta(seconds=30)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not ADDRESS.fullmatch(value):
            raise ValueError("expected an email address like soporte@example.com")
        return value.lower()

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]


class EmailSettings(BaseModel):
    """The email channel as a whole."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    mailboxes: list[MailboxSettings] = Field(default_factory=list)
    # The tag in subjects; {number} is the ticket number. Replies naming it join the
    # ticket only when the sender takes part in it.
    subject_tag: str = "[#{number}]"
    # Secret for reply addresses (soporte+t1042.<token>@…); empty = no token addresses.
    token_secret: str = ""
    import_days: int = Field(30, ge=0)  # first sync of a mailbox: how far back to import
    reconnect_max: Duration = timedelta(minutes=5)  # longest wait between reconnections
    # A mail larger than this is not downloaded: its headers make the ticket and the
    # whole mail is recorded on it as a file left on the server (25 MB is Gmail's limit).
    max_message_bytes: int = Field(25 * 1024 * 1024, ge=1024)

    @field_validator("subject_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if value.count("{number}") != 1:
            raise ValueError("must contain {number} once, e.g. '[#{number}]'")
        return value

    @model_validator(mode="after")
    def _unique(self) -> EmailSettings:
        names = [m.name for m in self.mailboxes]
        if len(set(names)) != len(names):
            raise ValueError("mailboxes: each mailbox needs its own name")
        return self

    def mailbox(self, name: str) -> MailboxSettings:
        """The mailbox called `name`, else the first one (replies leave from where the
        customer wrote)."""
        for box in self.mailboxes:
            if box.name == name:
                return box
        return self.mailboxes[0]

    def tag_pattern(self) -> re.Pattern[str]:
        """A regex finding the tag in a subject; group 1 is the number."""
        before, after = self.subject_tag.split("{number}")
        return re.compile(re.escape(before) + r"(\d{1,9})" + re.escape(after))
