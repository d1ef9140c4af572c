"""Claiming due rows, written once for the outbox and the scheduler: the database is the
queue.

In one transaction: the oldest rows that are due (or whose claim's lease ran out, so a
crashed process's work comes back) are selected — with `FOR UPDATE SKIP LOCKED` on
PostgreSQL, so several gateway processes share the work and never take the same row —
then marked claimed with a lease and one more attempt.

A process that stops before doing what it claimed gives it back (`release`): pending
again at once, for another process or the next start, instead of after the lease.

Example:
    >>> ids = await claim_due(OutboxItem, due="next_attempt_at", claimed="sending",
    ...                       now=now, lease=timedelta(minutes=2), limit=50)  # doctest: +SKIP
    >>> await release(OutboxItem, claimed="sending", now=now,
    ...               leases={ids[0]: now + timedelta(minutes=2)})          # doctest: +SKIP
    1
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.expressions import F, Q
from tortoise.models import Model
from tortoise.transactions import in_transaction


async def claim_due(model: type[Model], *, due: str, claimed: str, now: datetime,
                    lease: timedelta, limit: int, order: str = "id",
                    **among: Any) -> list[int]:
    """Claim up to `limit` due rows of `model`; their ids, in `order`.

    A row is due when its status is "pending" and its `due` time has come, or when its
    status is `claimed` and its lease ran out. `among` narrows the rows (e.g.
    `channel__in=[…]`, `id__in=[…]`).
    """
    ready = Q(status="pending", **{f"{due}__lte": now}) | Q(status=claimed,
                                                            lease_until__lte=now)
    async with in_transaction():
        query = model.filter(ready, **among).order_by(order).limit(limit)
        if connections.get("default").capabilities.dialect == "postgres":
            # tortoise drops FOR UPDATE from values()/values_list(): fetch rows.
            query = query.select_for_update(skip_locked=True)
        ids = [row.pk for row in await query.only("id")]
        if ids:
            await model.filter(id__in=ids).update(
                status=claimed, lease_until=now + lease, attempts=F("attempts") + 1)
    return ids


async def release(model: type[Model], *, claimed: str, now: datetime,
                  leases: Mapping[int, datetime]) -> int:
    """Give back rows this process claimed and did not do, `leases` being row id → the
    lease it holds: "pending" again, due as they were, the attempt not counted. A row
    whose lease ran out is left alone (another process may have claimed it since: its
    lease would then end later than ours). Returns how many rows were released."""
    by_lease: dict[datetime, list[int]] = defaultdict(list)
    for row_id, until in leases.items():
        if until > now:
            by_lease[until].append(row_id)
    released = 0
    async with in_transaction():
        for until, ids in by_lease.items():
            released += await model.filter(
                id__in=ids, status=claimed, lease_until__gt=now, lease_until__lte=until,
            ).update(status="pending", lease_until=None, attempts=F("attempts") - 1)
    return released
