"""TopicSchemas: one schema state per topic, a bounded cache of idle ones, fixed schemas per topic."""

from __future__ import annotations

from consumer.schema import FixedColumns, Kind, SchemaPolicy, TopicSchema
from consumer.topic_schemas import TopicSchemas

EAGER = SchemaPolicy(min_key_count=1, min_key_frequency=0.0)


class TestTopicSchemas:
    def test_acquire_returns_the_same_state(self) -> None:
        """A topic's schema is shared by every acquirer."""
        schemas = TopicSchemas(EAGER)
        first = schemas.acquire("t")
        first.register("a", Kind.INT64)
        assert schemas.acquire("t") is first
        assert len(schemas) == 1

    def test_new_schema_uses_the_policy(self) -> None:
        """A fresh topic schema applies the cache's policy."""
        schemas = TopicSchemas(SchemaPolicy(max_columns=1, min_key_count=1, min_key_frequency=0.0))
        topic = schemas.acquire("t")
        topic.observe([{"a": 1, "b": 1}])
        topic.register("a", Kind.INT64)
        assert topic.topic == "t"
        assert not topic.promotable("b")

    def test_idle_topics_beyond_capacity_are_evicted_oldest_first(self) -> None:
        """Of released topics only the idle_capacity most recently used stay."""
        schemas = TopicSchemas(EAGER, idle_capacity=2)
        used: dict[str, TopicSchema] = {}
        for name in ("a", "b", "c"):
            used[name] = schemas.acquire(name)
            schemas.release(name)
        assert len(schemas) == 2
        assert schemas.acquire("b") is used["b"]
        assert schemas.acquire("c") is used["c"]
        assert schemas.acquire("a") is not used["a"]

    def test_held_topics_are_never_evicted(self) -> None:
        """A topic still acquired survives any number of idle ones."""
        schemas = TopicSchemas(EAGER, idle_capacity=0)
        held = schemas.acquire("held")
        for name in ("x", "y", "z"):
            schemas.acquire(name)
            schemas.release(name)
        assert len(schemas) == 1
        assert schemas.acquire("held") is held

    def test_topic_stays_until_released_as_often_as_acquired(self) -> None:
        """Two acquisitions need two releases before the topic becomes idle."""
        schemas = TopicSchemas(EAGER, idle_capacity=0)
        first = schemas.acquire("t")
        schemas.acquire("t")
        schemas.release("t")
        assert schemas.acquire("t") is first
        schemas.release("t")
        schemas.release("t")
        assert len(schemas) == 0

    def test_configured_topics_get_their_fixed_schema(self) -> None:
        """A topic with a fixed schema gets it; other topics infer."""
        schemas = TopicSchemas(EAGER, {"orders": FixedColumns({"id": Kind.INT64})})
        assert schemas.acquire("orders").registry() == {"id": "int64"}
        assert schemas.acquire("clicks").fixed is None
