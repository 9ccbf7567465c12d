"""Schema state for every topic being archived, topics matched by a pattern included: a bounded cache.

Each topic infers its columns, or uses the fixed schema configured for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from consumer.schema import FixedColumns, SchemaPolicy, TopicSchema


class TopicSchemas:
    """Schema state per topic, for topics matched by a pattern too: a bounded cache.

    Topics with assigned partitions always stay; of the others, only the `idle_capacity` most
    recently used are kept (an evicted topic is seeded again from its files when it comes back).
    """

    def __init__(
        self, policy: SchemaPolicy, fixed: Mapping[str, FixedColumns] | None = None, idle_capacity: int = 64
    ) -> None:
        self._policy = policy
        self._fixed = dict(fixed or {})
        self._idle_capacity = idle_capacity
        self._schemas: dict[str, TopicSchema] = {}
        self._users: Counter[str] = Counter()

    def acquire(self, topic: str) -> TopicSchema:
        """The topic's schema, held until released as many times as it was acquired."""
        schema = self._schemas.pop(topic, None) or TopicSchema(topic, self._policy, self._fixed.get(topic))
        self._schemas[topic] = schema  # most recently used last
        self._users[topic] += 1
        return schema

    def release(self, topic: str) -> None:
        self._users[topic] -= 1
        if self._users[topic] <= 0:
            del self._users[topic]
        idle = [name for name in self._schemas if name not in self._users]
        for name in idle[: max(0, len(idle) - self._idle_capacity)]:
            del self._schemas[name]

    def __len__(self) -> int:
        return len(self._schemas)
