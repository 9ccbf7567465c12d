"""Test support: the broker under test and small Kafka client helpers."""
