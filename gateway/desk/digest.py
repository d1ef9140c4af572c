"""The after-hours digest: at opening time, the tickets that arrived while we were closed,
oldest first, for the agents' room (once per opening, also after a restart).

Example:
    >>> out = await after_hours_digest(services, now)        # doctest: +SKIP
    >>> out.text.splitlines()[0]                               # doctest: +SKIP
    'Buenos días. Mientras estábamos cerrados llegó 1 solicitud:'
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from gateway.core.messages import Outbound
from gateway.desk import notices
from gateway.services import Services
from gateway.store.models import Ticket
from gateway.store.state import load_state, save_state

log = logging.getLogger("centralita.desk")


async def after_hours_digest(services: Services, now: datetime) -> Outbound | None:
    """The digest if we are open and tickets arrived while closed since the last one
    (queued for the console, or logged without one); None when there is nothing to say."""
    hours = services.hours
    if not hours.is_open(now):
        return None
    state = await load_state("scheduler", "digest")
    last = datetime.fromisoformat(state["at"]) if state.get("at") else None
    since = last or now - timedelta(days=7)
    arrived = await Ticket.filter(created_at__gte=since, created_at__lte=now).order_by(
        "created_at").values("number", "subject", "channel", "created_at", "status")
    closed_arrivals = [t for t in arrived if not hours.is_open(t["created_at"])]
    await save_state("scheduler", "digest", {"at": now.isoformat()}, now)
    if not closed_arrivals:
        return None
    agents = services.settings.agents
    console = agents.console or "agents"
    subject, text = await notices.render(services, None, "digest", console, now, "",
                                         locale=services.console_locale,
                                         tickets=closed_arrivals)
    out = Outbound(channel=console, recipient=agents.channel, text=text, subject=subject,
                   audience="agents", kind="digest", automatic=True)
    if notices.has_console(services):
        await notices.queue(None, out, now)
    else:
        log.info("agents: %s", text)
    return out
