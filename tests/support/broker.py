"""The broker the tests talk to: KAFKA_BOOTSTRAP_SERVERS, docker compose's `kafka`, or the local script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka.admin import AdminClient

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kafka-local"
# Tests use their own port so that a development broker on 9092 is left alone.
TEST_PORT = os.environ.get("KAFKA_LOCAL_PORT", "39092")


def broker_answers(bootstrap: str, timeout_s: float = 3.0) -> bool:
    try:
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=timeout_s)
    except Exception:  # noqa: BLE001 - any failure means "not yet"
        return False
    return bool(metadata.brokers)


def docker_engine_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def local_broker_command(*args: str, port: str = TEST_PORT) -> subprocess.CompletedProcess[str]:
    """Run scripts/kafka-local with the test port; raise with its output on failure."""
    env = {**os.environ, "KAFKA_LOCAL_PORT": port}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode not in (0, 3):
        raise RuntimeError(f"kafka-local {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


@contextmanager
def local_broker(port: str = TEST_PORT) -> Iterator[str]:
    """Start the project's broker unless it already runs; stop it afterwards only if started here."""
    already_running = local_broker_command("status", port=port).returncode == 0
    if not already_running:
        local_broker_command("start", port=port)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        if not already_running:
            local_broker_command("stop", port=port)
