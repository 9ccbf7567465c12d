"""The metrics endpoint: Prometheus text from the pipeline's counters, and /healthz."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from consumer.counters import Counters
from consumer.metrics import MetricsEndpoint, MetricSources
from consumer.records import Reason, Rejected, TopicPartition
from consumer.stats import ConsumerLag, Gauges, GcMonitor


class Stall:
    seconds = 0.0


@pytest.fixture
def endpoint() -> Iterator[tuple[MetricsEndpoint, Counters, Stall]]:
    counters = Counters()
    lag = ConsumerLag(lambda tp: tp.partition != 9)
    lag.update({TopicPartition("orders", 3): 42, TopicPartition("orders", 9): 7})
    stall = Stall()
    gauges = Gauges(
        buffered_rows=7,
        buffered_bytes=700,
        open_files=2,
        partitions=4,
        tracked_topics=1,
        oldest_unfinished_s=9.5,
    )
    sources = MetricSources(counters, lambda: gauges, lag, GcMonitor(), lambda: stall.seconds)
    server = MetricsEndpoint("127.0.0.1", 0, sources, stall_limit_s=5.0)
    server.start()
    yield server, counters, stall
    server.stop()


def _get(server: MetricsEndpoint, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class TestMetricsEndpoint:
    def test_counters_and_gauges_are_exposed(self, endpoint: tuple[MetricsEndpoint, Counters, Stall]) -> None:
        """Per-topic counters, gauges, lag per partition and process RSS appear in the scrape."""
        server, counters, _ = endpoint
        counters.record_poll("orders", 12, [Rejected(1, None, None, b"x", Reason.INVALID_JSON, "bad")], 0)
        status, body = _get(server, "/metrics")
        assert status == 200
        assert 'archiver_records_consumed_total{topic="orders"} 12.0' in body
        assert 'archiver_records_quarantined_total{reason="invalid_json",topic="orders"} 1.0' in body
        assert "archiver_buffered_bytes 700.0" in body
        assert "archiver_oldest_unfinished_record_age_seconds 9.5" in body
        assert 'archiver_consumer_lag{partition="3",topic="orders"} 42.0' in body
        assert 'partition="9"' not in body  # a partition no longer owned has no lag series
        assert "archiver_offset_commit_seconds_bucket" in body
        assert "process_resident_memory_bytes" in body

    def test_healthz_turns_unhealthy_when_the_loop_stalls(
        self, endpoint: tuple[MetricsEndpoint, Counters, Stall]
    ) -> None:
        """/healthz answers 200 while the loop turns and 503 once it stalled past the limit."""
        server, _, stall = endpoint
        assert _get(server, "/healthz") == (200, "ok\n")
        stall.seconds = 6.0
        assert _get(server, "/healthz") == (503, "poll loop stalled\n")

    def test_unknown_paths_are_not_found(self, endpoint: tuple[MetricsEndpoint, Counters, Stall]) -> None:
        """Anything but /metrics and /healthz is a 404."""
        server, _, _ = endpoint
        assert _get(server, "/")[0] == 404
