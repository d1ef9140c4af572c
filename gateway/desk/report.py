"""Service figures a support lead reads: how fast we answer, how often within the SLA, how
fast we resolve, how often the first answer settles it, what customers think of it.

Everything is about tickets *created* in [since, until), per channel and for all channels
together, from three queries (tickets, agents' public replies per ticket, surveys sent)
and Python's `statistics`.

Example:
    >>> rows = await service_report(since, until, sla=services.sla)       # doctest: +SKIP
    >>> rows[-1].channel, format_minutes(rows[-1].first_response_median)  # doctest: +SKIP
    ('all', '35 min')
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.functions import Count

from gateway.core.hours import BusinessHours
from gateway.services import SlaClock
from gateway.store.models import Message, OutboxItem, Ticket

ALL = "all"
DONE_STATUSES = ("resolved", "closed")
WAITING_STATUSES = ("open", "pending")


@dataclass(frozen=True)
class ChannelFigures:
    """One row of the report: a channel, or "all" of them.

    Times are in minutes (None: no data); `*_business` ones count only open hours (None
    when the report had no SLA clock or hours). Percentages are 0–100 (None: nothing to
    measure) and come with the counts they are made of.
    """

    channel: str
    tickets: int
    answered: int  # tickets with a first response
    first_response_median: float | None
    first_response_p90: float | None
    first_response_business_median: float | None
    first_response_business_p90: float | None
    sla_met: int  # answered by their due time
    sla_measured: int  # with a due time, answered or already past it
    sla_met_pct: float | None
    resolved: int  # resolved or closed
    resolution_median: float | None
    first_contact_resolved: int  # resolved with exactly one public answer from an agent
    first_contact_resolution_pct: float | None
    csat_average: float | None  # satisfaction 1–5
    csat_responses: int  # tickets with a score
    surveys_sent: int  # tickets sent a survey (or that answered one)
    csat_response_rate_pct: float | None
    unanswered: int  # open or pending, no first response yet


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p% of values at or below.

    >>> percentile([20, 50], 90), percentile(range(1, 11), 90), percentile([], 90)
    (50, 9, None)
    """
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _pct(part: int, whole: int) -> float | None:
    return 100 * part / whole if whole else None


def _minutes(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds() / 60)


@dataclass
class _Ticket:
    """What the report needs of one ticket, computed once."""

    channel: str
    response: float | None
    response_business: float | None
    sla: bool | None  # met, missed, or not measured
    resolution: float | None  # resolved or closed tickets only
    first_contact: bool | None  # resolved or closed tickets only
    score: int | None
    surveyed: bool
    unanswered: bool


def _figures(channel: str, tickets: list[_Ticket]) -> ChannelFigures:
    responses = [t.response for t in tickets if t.response is not None]
    business = [t.response_business for t in tickets if t.response_business is not None]
    measured = [t.sla for t in tickets if t.sla is not None]
    done = [t for t in tickets if t.resolution is not None]
    first_contact = sum(1 for t in done if t.first_contact)
    scores = [t.score for t in tickets if t.score is not None]
    surveyed = sum(1 for t in tickets if t.surveyed or t.score is not None)
    return ChannelFigures(
        channel=channel,
        tickets=len(tickets),
        answered=len(responses),
        first_response_median=_median(responses),
        first_response_p90=percentile(responses, 90),
        first_response_business_median=_median(business),
        first_response_business_p90=percentile(business, 90),
        sla_met=sum(measured),
        sla_measured=len(measured),
        sla_met_pct=_pct(sum(measured), len(measured)),
        resolved=len(done),
        resolution_median=_median([t.resolution for t in done if t.resolution is not None]),
        first_contact_resolved=first_contact,
        first_contact_resolution_pct=_pct(first_contact, len(done)),
        csat_average=statistics.fmean(scores) if scores else None,
        csat_responses=len(scores),
        surveys_sent=surveyed,
        csat_response_rate_pct=_pct(len(scores), surveyed),
        unanswered=sum(1 for t in tickets if t.unanswered),
    )


async def service_report(since: datetime, until: datetime, *, channel: str | None = None,
                         hours: BusinessHours | None = None, sla: SlaClock | None = None
                         ) -> list[ChannelFigures]:
    """The figures for tickets created in [since, until): one row per channel (by name),
    then "all" (always last; with no tickets it is the only row, with tickets=0).

    First-response times are also given in business minutes with `sla` (each channel's
    own SLA clock: business or calendar time) or, without it, `hours`. A ticket
    unanswered and past its due time at `until` misses its SLA; one still within it is not
    counted yet. Medians are `statistics.median`; p90 is nearest-rank.
    """
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    # SQLite compares datetimes as text: bounds in UTC, as `created_at` is stored.
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    period: dict[str, Any] = {"created_at__gte": since, "created_at__lt": until}
    if channel is not None:
        period["channel"] = channel
    rows = await Ticket.filter(**period).order_by("id").values(
        "id", "channel", "status", "created_at", "first_response_due", "first_response_at",
        "resolved_at", "closed_at", "satisfaction")
    if not rows:
        return [_figures(ALL, [])]
    related = {f"ticket__{key}": value for key, value in period.items()}
    replies: dict[int, int] = {
        r["ticket_id"]: r["n"] for r in await Message.filter(
            **related, direction="out", author_kind="agent", visibility="public",
            ticket__status__in=DONE_STATUSES,
        ).annotate(n=Count("id")).group_by("ticket_id").values("ticket_id", "n")}
    surveyed = set(await OutboxItem.filter(**related, kind="survey", status="sent").distinct(
    ).values_list("ticket_id", flat=True))

    def business(row: dict[str, Any], end: datetime) -> float | None:
        if sla is not None:
            return sla.elapsed_minutes(row["channel"], row["created_at"], end)
        if hours is not None:
            return hours.business_minutes_between(row["created_at"], end)
        return None

    tickets: list[_Ticket] = []
    for row in rows:
        created, answered = row["created_at"], row["first_response_at"]
        due, done = row["first_response_due"], row["status"] in DONE_STATUSES
        if due is None:
            met = None
        elif answered is not None:
            met = answered <= due
        else:
            met = False if due < until else None
        finished = row["resolved_at"] or row["closed_at"]
        tickets.append(_Ticket(
            channel=row["channel"],
            response=_minutes(created, answered) if answered else None,
            response_business=business(row, answered) if answered else None,
            sla=met,
            resolution=_minutes(created, finished) if done and finished else None,
            first_contact=replies.get(row["id"], 0) == 1 if done else None,
            score=row["satisfaction"],
            surveyed=row["id"] in surveyed,
            unanswered=row["status"] in WAITING_STATUSES and answered is None,
        ))
    channels = sorted({t.channel for t in tickets})
    return [_figures(c, [t for t in tickets if t.channel == c]) for c in channels] + [
        _figures(ALL, tickets)]


_UNITS = {"es": ("min", "h", "d"), "en": ("min", "h", "d")}


def format_minutes(m: float | None, lang: str = "es") -> str:
    """A duration in minutes as a support lead reads it.

    >>> [format_minutes(x) for x in (45, 200, 3120, 0.2, None)]
    ['45 min', '3 h 20 min', '2 d 4 h', '<1 min', '—']
    """
    if m is None or not math.isfinite(m):
        return "—"
    minute, hour, day = _UNITS.get(lang, _UNITS["es"])
    m = max(0.0, m)
    whole = round(m)
    if whole == 0:
        return f"<1 {minute}" if m > 0 else f"0 {minute}"
    if whole < 60:
        return f"{whole} {minute}"
    if whole < 24 * 60:
        h, rest = divmod(whole, 60)
        return f"{h} {hour}" + (f" {rest} {minute}" if rest else "")
    d, h = divmod(round(m / 60), 24)
    return f"{d} {day}" + (f" {h} {hour}" if h else "")
