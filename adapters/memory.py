"""The in-process adapter: a channel that lives in memory, for tests, the benchmark and
`centralita simulate`.

Example:
    >>> adapter = MemoryAdapter(channel="telegram")
    >>> adapter.fail_next(TransientError("flood", retry_after=3))
    >>> len(adapter.sent)
    0
"""

from __future__ import annotations

import itertools
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from gateway.core.adapter import Port
from gateway.core.messages import DeliveryError, Inbound, Outbound, Receipt, TransientError

__all__ = ["MemoryAdapter", "TransientError"]


class MemoryAdapter:
    """Delivers into `sent`; `inject` plays a platform delivering a customer's message."""

    def __init__(self, channel: str = "memory", **_settings: Any) -> None:
        self.channel = channel
        self.sent: list[Outbound] = []
        self.port: Port | None = None
        self.after_send: Callable[[Outbound], None] | None = None
        self._failures: deque[DeliveryError] = deque()
        # platform ids: unique per adapter, like a platform's, without a uuid per send
        self._process = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)

    async def start(self, port: Port) -> None:
        self.port = port

    async def inject(self, inbound: Inbound) -> Any:
        """Hand a message to the gateway as the platform would; returns what it accepted."""
        if self.port is None:
            raise RuntimeError("the memory adapter was not started")
        return await self.port.receive(inbound)

    def fail_next(self, *errors: DeliveryError) -> None:
        """The next sends raise these errors, in order."""
        self._failures.extend(errors)

    async def send(self, message: Outbound) -> Receipt:
        if self._failures:
            raise self._failures.popleft()
        self.sent.append(message)
        if self.after_send is not None:
            self.after_send(message)
        return Receipt(platform_id=f"{self.channel}-{self._process}-{next(self._ids)}")

    async def stop(self) -> None:
        self.port = None
