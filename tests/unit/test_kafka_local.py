"""scripts/kafka-local's start-up wait: it tells a broker that exited from one that is still starting."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kafka-local"


def _load_script() -> ModuleType:
    loader = SourceFileLoader("kafka_local_script", str(SCRIPT))
    spec = spec_from_loader(loader.name, loader)
    assert spec is not None
    module = module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture
def kafka_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    with socket.socket() as sock:  # a port nothing listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("KAFKA_LOCAL_HOME", str(tmp_path))
    monkeypatch.setenv("KAFKA_LOCAL_PORT", str(port))
    monkeypatch.setenv("KAFKA_LOCAL_START_TIMEOUT_S", "1.5")
    return _load_script()


@pytest.fixture
def child() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def _spawn(children: list[subprocess.Popen[bytes]], code: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", code])
    children.append(process)
    return process


def test_a_starting_process_that_is_not_yet_recognisable_is_waited_for(
    kafka_local: ModuleType, child: list[subprocess.Popen[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A live child whose command line does not name the broker (as while the java launcher
    re-executes itself) is still starting: the wait runs to its deadline instead of failing at once."""
    layout = kafka_local.Layout()
    layout.state.mkdir(parents=True)
    process = _spawn(child, "import time; time.sleep(60)")
    with pytest.raises(SystemExit):
        kafka_local.wait_ready(layout, process)
    message = capsys.readouterr().err
    assert "did not answer a metadata request" in message
    assert "exited during start-up" not in message
    assert process.wait(timeout=10) is not None  # stopped by the timeout path


def test_a_child_that_exits_during_start_up_is_reported_with_its_exit_code(
    kafka_local: ModuleType, child: list[subprocess.Popen[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    layout = kafka_local.Layout()
    process = _spawn(child, "raise SystemExit(3)")
    process.wait(timeout=10)
    with pytest.raises(SystemExit):
        kafka_local.wait_ready(layout, process)
    assert "the broker exited during start-up (exit code 3)" in capsys.readouterr().err
