"""Session-wide fixtures: one real Kafka broker, one local S3 server, unique topics, groups and buckets."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.broker import REPO, broker_answers, docker_engine_available, local_broker
from tests.support.kafka_tools import create_topic
from tests.support.s3 import CREDENTIALS, client, moto_server


@pytest.fixture(scope="session")
def docker_compose_file() -> Path:
    """pytest-docker: the project's compose file, whose `kafka` service serves the tests."""
    return REPO / "docker-compose.yml"


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    """pytest-docker: start only the broker."""
    return ["up --build --wait -d kafka"]


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """A reachable Apache Kafka broker: from the environment, docker compose, or the local script."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
    elif docker_engine_available():
        services = request.getfixturevalue("docker_services")
        bootstrap = f"127.0.0.1:{services.port_for('kafka', 9092)}"
        services.wait_until_responsive(check=lambda: broker_answers(bootstrap), timeout=180.0, pause=1.0)
        yield bootstrap
    else:
        with local_broker() as bootstrap:
            yield bootstrap


def _unique(request: pytest.FixtureRequest, prefix: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:80]
    return f"{prefix}-{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def topic_factory(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Callable[[int], str]:
    """Create a topic with a unique name and the given number of partitions."""

    def make(partitions: int = 1) -> str:
        name = _unique(request, "t")
        create_topic(kafka_bootstrap, name, partitions)
        return name

    return make


@pytest.fixture
def group_id(request: pytest.FixtureRequest) -> str:
    """A consumer group id nobody else uses."""
    return _unique(request, "g")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """host:port of a local S3-compatible server (moto); the AWS variables point every client at it."""
    with pytest.MonkeyPatch.context() as patch, moto_server() as endpoint:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    """A new, empty bucket of this test's own."""
    name = _unique(request, "b").lower().replace("_", "-")[-63:].strip("-.")
    client(s3_endpoint).create_bucket(Bucket=name)
    return name
