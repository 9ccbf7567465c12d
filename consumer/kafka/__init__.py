"""The Kafka adapter: the only package that imports confluent_kafka.

`source` is the consumer-group member the daemon runs; `dead_letters` publishes copies of rejected
records; `admin` creates topics for the commands.
"""

from consumer.kafka.source import KafkaSource, RebalanceListener, parse_lag

__all__ = ["KafkaSource", "RebalanceListener", "parse_lag"]
