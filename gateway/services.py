"""What responders and the pipeline share: settings, hours, the SLA clock, templates, time.

Example:
    >>> services = Services.from_settings(Settings())            # doctest: +SKIP
    >>> services.sla.first_response_due("email", "normal", now)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway.core.adapter import Capabilities, ChannelRegistry
from gateway.core.clock import Clock, SystemClock
from gateway.core.hours import BusinessHours
from gateway.settings import Settings, SlaSettings
from gateway.store import bulk
from gateway.store.models import Template, Ticket
from gateway.texts.engine import TemplateEngine, TemplateSource


class SlaClock:
    """Due times from the channel and priority, in business or calendar time.

    >>> # email, normal priority, 60 business minutes, written Sunday 22:30 → Monday 10:00
    """

    def __init__(self, settings: SlaSettings, hours: BusinessHours) -> None:
        self.settings = settings
        self.hours = hours
        # Messages stored together share one instant: compute each due time once.
        self._business_add = functools.lru_cache(maxsize=1024)(hours.add_business_minutes)

    def _minutes(self, table: dict[str, int], default: int, channel: str, priority: str) -> float:
        factor = self.settings.priority_factor.get(priority, 1.0)  # type: ignore[call-overload]
        return table.get(channel, default) * factor

    def first_response_minutes(self, channel: str, priority: str = "normal") -> float:
        return self._minutes(
            self.settings.first_response, self.settings.default_first_response, channel, priority
        )

    def add(self, channel: str, start: datetime, minutes: float) -> datetime:
        if self.settings.business.get(channel, True):
            return self._business_add(start, minutes)
        return (start + timedelta(minutes=minutes)).astimezone(self.hours.tz)

    def elapsed_minutes(self, channel: str, start: datetime, end: datetime) -> float:
        """How much of the SLA a wait from `start` to `end` used."""
        if self.settings.business.get(channel, True):
            return self.hours.business_minutes_between(start, end)
        return max(0.0, (end - start).total_seconds() / 60)

    def share_used_at(self, channel: str, start: datetime, due: datetime,
                      share: float) -> datetime:
        """When `share` of the target from `start` to `due` is used, counted as the
        target counts (business minutes: a Sunday-night ticket due Monday 9:15 reaches
        80 % at 9:12, not at 7:06)."""
        return self.add(channel, start, self.elapsed_minutes(channel, start, due) * share)

    def first_response_due(self, channel: str, priority: str, start: datetime) -> datetime:
        return self.add(channel, start, self.first_response_minutes(channel, priority))

    def resolution_due(self, channel: str, priority: str, start: datetime) -> datetime:
        minutes = self._minutes(
            self.settings.resolution, self.settings.default_resolution, channel, priority
        )
        return self.add(channel, start, minutes)


class DbTemplateStore:
    """Admin-edited templates from the database, newest version wins.

    Versions are only ever added (a revert is a new version), so the highest id tells
    whether anything changed: `refresh()` costs one small query and reloads only then.
    """

    def __init__(self) -> None:
        self._stamp: int | None = -1
        self._current: dict[tuple[str, str, str], TemplateSource] = {}

    async def refresh(self) -> None:
        stamp = await bulk.maximum(Template, "id")
        if stamp == self._stamp:
            return
        current: dict[tuple[str, str, str], TemplateSource] = {}
        for row in await Template.all().order_by("version"):
            current[(row.key, row.locale, row.channel)] = TemplateSource(
                key=row.key, locale=row.locale, channel=row.channel,
                subject=row.subject, body=row.body, version=row.version,
            )
        self._current, self._stamp = current, stamp

    async def current(self, key: str, locale: str, channel: str) -> TemplateSource | None:
        return self._current.get((key, locale, channel))


@dataclass(eq=False)  # hashed by identity: `opening` caches per instance
class Services:
    """The shared pieces, built once from settings."""

    settings: Settings
    hours: BusinessHours
    sla: SlaClock
    templates: TemplateEngine
    store: DbTemplateStore
    clock: Clock = field(default_factory=SystemClock)
    # What each channel can show (subjects, buttons, status commands).
    capabilities: ChannelRegistry = field(default_factory=ChannelRegistry)
    _summaries: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None,
                      channels: Mapping[str, Capabilities] | None = None) -> Services:
        hours = settings.hours.build()
        store = DbTemplateStore()
        registry = ChannelRegistry(channels)
        return cls(settings=settings, hours=hours, sla=SlaClock(settings.sla, hours),
                   templates=TemplateEngine(default_locale=settings.gateway.default_locale,
                                            timezone=settings.hours.timezone, store=store,
                                            capabilities=registry),
                   store=store, clock=clock or SystemClock(), capabilities=registry)

    def shows_subject(self, channel: str) -> bool:
        return self.capabilities(channel).subjects

    @property
    def console_locale(self) -> str:
        """The language of the agents' console texts."""
        return self.settings.agents.locale or self.settings.gateway.default_locale

    def hours_summary(self, locale: str) -> str:
        """The readable weekly schedule (hours never change while running)."""
        if locale not in self._summaries:
            self._summaries[locale] = self.hours.summary(locale)
        return self._summaries[locale]

    def locale_for(self, wanted: str | None) -> str:
        return wanted if wanted in ("es", "en") else self.settings.gateway.default_locale

    def status_command(self, channel: str, locale: str) -> str:
        configured = self.settings.channels.get(channel, {}).get("status_command")
        if isinstance(configured, str):
            return configured
        return self.capabilities(channel).status_commands.get(locale, "")

    @functools.lru_cache(maxsize=256)  # noqa: B019 (one Services per process)
    def opening(self, now: datetime) -> tuple[bool, datetime | None]:
        """(open at `now`?, next opening if closed), cached: a batch shares its instant."""
        open_now = self.hours.is_open(now)
        return open_now, None if open_now else self.hours.next_opening(now)

    def template_context(
        self, ticket: Ticket | None, *, customer_name: str, now: datetime,
        channel: str | None = None, locale: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """The variables every template sees (see TemplateEngine.variables).

        With no ticket (a greeting, a status list) the ticket variables are empty and
        `channel`/`locale` say where and in which language.
        """
        if ticket is None:
            ticket = Ticket(number=0, subject="", channel=channel or "", status="",
                            priority="normal", locale=self.locale_for(locale))
            ticket.first_response_due = None
        open_now, next_opening = self.opening(now)
        first = customer_name.split()[0] if customer_name.strip() else ""
        context: dict[str, Any] = {
            "company": self.settings.gateway.name,
            "customer": {"name": customer_name, "first_name": first},
            "ticket": {
                "number": ticket.number,
                "subject": ticket.subject,
                "channel": ticket.channel,
                "status": ticket.status,
                "priority": ticket.priority,
                "assignee": ticket.assignee or "",
                "url": "",
            },
            "channel": ticket.channel,
            "open_now": open_now,
            "hours": self.hours_summary(ticket.locale),
            "next_opening": next_opening,
            "due_at": ticket.first_response_due or self.sla.first_response_due(
                ticket.channel, ticket.priority, now
            ),
            "sla_minutes": round(self.sla.first_response_minutes(ticket.channel, ticket.priority)),
            "status_command": self.status_command(ticket.channel, ticket.locale),
            "agent": {"name": ""},
            "score": None,
            "text": "",
            "reason": "",
            "tickets": [],
        }
        context.update(extra)
        return context
