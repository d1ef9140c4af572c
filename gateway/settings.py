"""Settings: `settings.toml`, overridable from the environment, checked at start-up.

Every key has a type; a wrong or missing one stops start-up with `SettingsError`, whose
message names the key and what is expected. Environment variables override any key:
`CENTRALITA_HOURS__TIMEZONE=Europe/Madrid` sets `[hours] timezone`. Secrets are never
written in the file: a `…_env` key names the environment variable that holds them.

Example:
    >>> s = load_settings("settings.toml")          # doctest: +SKIP
    >>> s.hours.timezone                             # doctest: +SKIP
    'America/Santiago'
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as EnvSourceError

from gateway.core.hours import BusinessHours, HoursError

Locale = Literal["es", "en"]
M = TypeVar("M", bound=BaseModel)
PRIORITIES = ("low", "normal", "high", "urgent")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|d|h|m|s)")  # ms before m


class SettingsError(Exception):
    """A setting is wrong or missing; the message names the key and what is expected."""


def parse_duration(value: Any) -> timedelta:
    """`"4h"`, `"90m"`, `"1h30m"`, `"2d"`, `"10s"`, or a number of seconds → timedelta.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        parts = _DURATION.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            unit = {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
            return timedelta(seconds=sum(float(n) * unit[u] for n, u in parts))
    raise ValueError(f"expected a duration like '30s', '15m', '4h', '2d' or '1h30m', got {value!r}")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
REPLY_NAME = re.compile(r"[a-z0-9_-]{1,32}")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySettings(Section):
    name: str = "Soporte"
    default_locale: Locale = "es"
    data_dir: Path = Path("data")
    ticket_start: int = Field(1001, ge=1)


class DatabaseSettings(Section):
    url: str = "sqlite://data/centralita.sqlite3"

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not re.match(r"^(sqlite|postgres|postgresql|asyncpg)://", url):
            raise ValueError(
                "expected 'sqlite://path/to/file.sqlite3' or "
                "'postgres://user@host:5432/dbname', got " + repr(url)
            )
        return url


class HttpSettings(Section):
    listen: str = "127.0.0.1:8080"
    public_url: str = ""
    max_body: int = Field(1024 * 1024, ge=1024)  # bytes of one request's body; more → 413
    signin_attempts: int = Field(10, ge=1)  # wrong passwords a minute from one address
    signin_attempts_per_user: int = Field(30, ge=1)  # … for one user name, all addresses

    @field_validator("public_url")
    @classmethod
    def _absolute(cls, url: str) -> str:
        # Telegram's webhook and the survey links in emails are built from it.
        if url and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
            raise ValueError("expected '' or an address like 'https://soporte.example.com', "
                             f"got {url!r}")
        return url


class HoursSettings(Section):
    timezone: str = "America/Santiago"
    week: dict[str, str] = Field(
        default_factory=lambda: {d: "09:00-19:00" for d in ("mon", "tue", "wed", "thu", "fri")}
    )
    holidays: str = ""
    holidays_subdiv: str = ""
    closed: list[str] = Field(default_factory=list)

    def build(self) -> BusinessHours:
        return BusinessHours.parse(
            timezone=self.timezone,
            week=self.week,
            holidays=self.holidays,
            holidays_subdiv=self.holidays_subdiv,
            closed=self.closed,
            key_prefix="hours",
        )


class SlaSettings(Section):
    first_response: dict[str, int] = Field(
        default_factory=lambda: {"email": 60, "telegram": 15, "slack": 15}
    )
    resolution: dict[str, int] = Field(
        default_factory=lambda: {"email": 1440, "telegram": 480, "slack": 480}
    )
    business: dict[str, bool] = Field(
        default_factory=lambda: {"email": True, "telegram": True, "slack": True}
    )
    default_first_response: int = Field(60, ge=1)
    default_resolution: int = Field(1440, ge=1)
    priority_factor: dict[Literal["low", "normal", "high", "urgent"], float] = Field(
        default_factory=lambda: {"low": 2.0, "normal": 1.0, "high": 0.5, "urgent": 0.25}
    )


class AutoreplySettings(Section):
    enabled: bool = True
    window: Duration = timedelta(minutes=10)


class SchedulerSettings(Section):
    """Time-based work: keeping customers informed, SLA warnings, follow-ups, closing."""

    progress_every: Duration = timedelta(hours=4)   # business time without news → update
    progress_max: int = Field(3, ge=0)               # at most this many updates in a row
    sla_warn_at: float = Field(0.8, gt=0, lt=1)      # warn agents at this share of a target
    survey_delay: Duration = timedelta(hours=1)      # after the resolution message
    follow_up_after: Duration = timedelta(days=2)    # the "is everything still fine?" check-in
    close_after: Duration = timedelta(days=7)        # resolved without reply → closed
    pending_reminder: Duration = timedelta(days=2)   # waiting on the customer → a reminder
    pending_resolve_after: Duration = timedelta(days=5)  # still no answer → resolved
    tick: Duration = timedelta(seconds=5)            # how often due work is looked for
    batch: int = Field(200, ge=1, le=5000)           # actions claimed per look
    lease: Duration = timedelta(minutes=2)           # a claimed action comes back after this


class OutboxSettings(Section):
    batch: int = Field(50, ge=1, le=1000)
    max_attempts: int = Field(10, ge=1)
    backoff_base: Duration = timedelta(seconds=10)
    backoff_max: Duration = timedelta(hours=1)
    lease: Duration = timedelta(minutes=2)
    poll_interval: Duration = timedelta(seconds=1)
    rate: dict[str, float] = Field(
        default_factory=lambda: {"telegram": 30.0, "slack": 1.0, "email": 5.0}
    )
    stop_timeout: Duration = timedelta(seconds=5)  # at stop, sends on the wire get this long

    @field_validator("stop_timeout")
    @classmethod
    def _bounded_stop(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= timedelta(minutes=5):
            raise ValueError(f"expected a duration above 0 and up to '5m', like '5s', "
                             f"got {value.total_seconds():g} seconds")
        return value


class AttachmentSettings(Section):
    store: Literal["disk", "db"] = "disk"
    max_bytes: int = Field(20 * 1024 * 1024, ge=0)
    dir: Path | None = None


class AgentsSettings(Section):
    """The agents' console: where notices go, who counts as an agent or an admin there,
    which room each ticket goes to, and the console's language."""

    console: str = ""                  # the adapter agents work in (e.g. "slack"); "" = log
    channel: str = ""                  # the default agents' room there, e.g. "C0AGENTS"
    # Agents' room per customer channel, mailbox or tag; `channel` otherwise.
    # Keys: "telegram", "email", "email:ventas" (a mailbox), "tag:billing".
    routes: dict[str, str] = Field(default_factory=dict)
    members: list[str] = Field(default_factory=list)  # console ids who are agents anywhere
    admins: list[str] = Field(default_factory=list)   # console ids who may edit texts there
    note_prefix: str = "//"
    undo_seconds: int = Field(10, ge=0)
    locale: Locale | None = None       # the console's language; default_locale when unset

    def rooms(self) -> set[str]:
        """Every agents' room: members of any of them are agents."""
        return {room for room in (self.channel, *self.routes.values()) if room}


class RespondersSettings(Section):
    order: list[str] = Field(default_factory=lambda: [
        "mirror", "followups", "commands", "survey", "relay", "autoreply", "agents"])


class Settings(BaseSettings):
    """The whole configuration; one typed section per table of settings.toml."""

    model_config = SettingsConfigDict(
        env_prefix="CENTRALITA_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    hours: HoursSettings = Field(default_factory=HoursSettings)
    sla: SlaSettings = Field(default_factory=SlaSettings)
    autoreply: AutoreplySettings = Field(default_factory=AutoreplySettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    attachments: AttachmentSettings = Field(default_factory=AttachmentSettings)
    agents: AgentsSettings = Field(default_factory=AgentsSettings)
    responders: RespondersSettings = Field(default_factory=RespondersSettings)
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Canned replies agents send with `/ticket reply N name`: name → {"es": …, "en": …}.
    replies: dict[str, dict[str, str]] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file (which arrives as init kwargs).
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _hours_make_sense(self) -> Settings:
        try:
            self.hours.build()
        except HoursError as exc:
            raise ValueError(str(exc)) from exc
        return self

    @model_validator(mode="after")
    def _replies_make_sense(self) -> Settings:
        from gateway.texts.engine import TemplateEngine, TemplateError

        engine = TemplateEngine(default_locale=self.gateway.default_locale,
                                timezone=self.hours.timezone)
        for name, texts in self.replies.items():
            if not REPLY_NAME.fullmatch(name):
                raise ValueError(f"replies.{name}: a reply's name is 1-32 lowercase letters, "
                                 "digits, '_' or '-' (agents type it after /ticket reply N)")
            if not texts or set(texts) - {"es", "en"}:
                raise ValueError(f"replies.{name}: expected its text in \"es\" and/or "
                                 f"\"en\", got {sorted(texts) or 'nothing'}")
            for locale, text in texts.items():
                try:
                    engine.validate("", text, locale=locale)
                except TemplateError as exc:
                    raise ValueError(f"replies.{name}.{locale}: {exc}") from None
        return self

    @property
    def attachments_dir(self) -> Path:
        return self.attachments.dir or self.gateway.data_dir / "attachments"


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown setting (is it misspelled, or in the wrong [table]?)"
    if error["type"] == "missing":
        return f"{key}: required setting is missing"
    if msg.startswith(("hours.", "replies.")) or not error["loc"]:
        return msg
    shown = error.get("input")
    shown = "" if isinstance(shown, dict | list) or ", got " in msg else f", got {shown!r}"
    return f"{key}: {msg}{shown}"


def default_settings_path() -> Path:
    return Path(os.environ.get("CENTRALITA_SETTINGS", "settings.toml"))


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read settings.toml (or `path`), apply the environment, check every key.

    Raises SettingsError with one line per problem, each naming its key.
    """
    path = Path(path) if path is not None else default_settings_path()
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    elif path != default_settings_path() or "CENTRALITA_SETTINGS" in os.environ:
        raise SettingsError(f"{path}: settings file not found")
    for section, values in overrides.items():
        merged = dict(data.get(section, {}))
        merged.update(values)
        data[section] = merged
    try:
        return Settings(**data)
    except EnvSourceError as exc:  # a CENTRALITA_… list or table value that is not JSON
        raise SettingsError(f"environment: {exc}: CENTRALITA_<TABLE>__<KEY> lists and tables "
                            "are written as JSON, e.g. '[\"2026-12-24\"]'") from None
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        raise SettingsError(f"{path}: " + ("\n  ".join(lines) if len(lines) == 1 else
                            "\n  " + "\n  ".join(lines))) from None


def channel_settings(settings: Settings, channel: str, model: type[M]) -> M:
    """An adapter's typed settings from `[channels.<channel>]`, checked like the rest.

    Example: `channel_settings(settings, "email", EmailSettings)`; a mistake raises
    SettingsError naming the key, e.g. `channels.email.mailboxes.0.imap_port: …`.
    """
    try:
        return model(**settings.channels.get(channel, {}))
    except ValidationError as exc:
        lines = [_describe({**e, "loc": ("channels", channel, *e["loc"])}) for e in exc.errors()]
        raise SettingsError("\n  ".join(lines)) from None
