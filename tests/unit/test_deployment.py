"""Deployment files agree with each other and with the settings: compose, Dockerfile, systemd, guide."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from consumer.config import ENV_PREFIX, Settings, load_settings
from consumer.errors import ExitCode
from consumer.shutdown import HARD_EXIT_GRACE_S, WATCHDOG_REPORT_S
from tests.support.daemon import write_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
DOCKER_CONFIG = REPO / "config" / "docker.toml"
SYSTEMD_CONFIG = REPO / "config" / "systemd.toml"
UNIT = REPO / "systemd" / "kafka-parquet-archiver.service"
UNIT_GUIDE = REPO / "systemd" / "README.md"
ENV_EXAMPLE = REPO / "systemd" / "archiver.env.example"
OPERATIONS = REPO / "docs" / "operations.md"


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The files are checked as written: ARCHIVER_* variables of the caller must not change them."""
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


# --- parsing helpers ------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def _service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = _compose()["services"][name]
    return service


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of the Dockerfile, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def _instruction(keyword: str) -> str:
    found = [arguments for name, arguments in _dockerfile() if name == keyword]
    assert found, f"the Dockerfile has no {keyword}"
    return found[-1]


def _exec_form(arguments: str) -> list[str]:
    parsed = json.loads(arguments)
    assert isinstance(parsed, list), f"not in exec (JSON array) form: {arguments}"
    return [str(item) for item in parsed]


def _cmd_config_path() -> str:
    command = _exec_form(_instruction("CMD"))
    return command[command.index("--config") + 1]


def _healthcheck_command() -> list[str]:
    arguments = _instruction("HEALTHCHECK")
    return _exec_form(arguments[arguments.index("CMD ") + len("CMD ") :])


def _seconds(duration: str) -> float:
    """A compose or systemd duration such as 45s, 1m30s, 90 or 1min 30s, in seconds."""
    units = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", str(duration))
    assert parts, f"not a duration: {duration}"
    return sum(float(number) * units[unit] for number, unit in parts)


def _unit() -> dict[str, list[str]]:
    """Directive -> every value it is given in the unit file (systemd allows repeats)."""
    directives: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        directives.setdefault(key.strip(), []).append(value.strip())
    return directives


def _directive(name: str) -> str:
    values = _unit().get(name)
    assert values, f"the unit has no {name}="
    return values[-1]


def _exec_start() -> list[str]:
    return _directive("ExecStart").split()


def _guide_destination(source: str) -> str:
    """Where systemd/README.md installs a repository file (`install ... SOURCE DESTINATION`)."""
    match = re.search(rf"install\b[^\n]*\s{re.escape(source)}\s+(/\S+)", UNIT_GUIDE.read_text())
    assert match, f"systemd/README.md does not say where {source} goes"
    return match[1]


def _is_within(path: str, folder: str) -> bool:
    return Path(path).is_relative_to(folder)


# --- docker compose -------------------------------------------------------------------------------


class TestCompose:
    def test_kafka_service_keeps_what_the_test_suite_needs(self) -> None:
        """The `kafka` service keeps its name, image and host port 9092 (pytest-docker uses them)."""
        kafka = _service("kafka")
        assert kafka["image"] == "apache/kafka:4.1.1"
        assert "9092:9092" in kafka["ports"]
        assert "healthcheck" in kafka

    def test_kafka_data_is_on_a_named_volume(self) -> None:
        """The broker's log dir is a declared named volume, so topics survive a restart."""
        kafka = _service("kafka")
        log_dir = kafka["environment"]["KAFKA_LOG_DIRS"]
        volume, _, target = kafka["volumes"][0].partition(":")
        assert target == log_dir
        assert volume in _compose()["volumes"]

    def test_archiver_mounts_the_docker_config_read_only_where_the_image_reads_it(self) -> None:
        """config/docker.toml is mounted read-only at the path the Dockerfile's CMD passes to --config."""
        mount = self._config_mount("archiver")
        assert (REPO / mount["source"]).resolve() == DOCKER_CONFIG
        assert mount["target"] == _cmd_config_path()
        assert mount["read_only"] is True
        assert "command" not in _service("archiver"), "the archiver runs the image's default command"

    def test_archiver_publishes_the_metrics_port_of_its_config(self) -> None:
        """The metrics port of config/docker.toml is published, and listens on every interface."""
        metrics = load_settings(DOCKER_CONFIG).metrics
        assert metrics.port != 0
        assert metrics.host == "0.0.0.0"  # noqa: S104 - inside a container, so the port can be published
        assert f"{metrics.port}:{metrics.port}" in [str(port) for port in _service("archiver")["ports"]]
        assert str(metrics.port) in _instruction("EXPOSE").split()

    def test_bootstrap_servers_are_the_kafka_services_internal_listener(self) -> None:
        """config/docker.toml reaches the broker on the listener it advertises inside the network."""
        environment = _service("kafka")["environment"]
        internal = environment["KAFKA_INTER_BROKER_LISTENER_NAME"]
        advertised = dict(
            listener.split("://") for listener in environment["KAFKA_ADVERTISED_LISTENERS"].split(",")
        )
        assert advertised[internal] == "kafka:19092"
        assert load_settings(DOCKER_CONFIG).kafka.bootstrap_servers == advertised[internal]

    def test_archive_root_is_inside_the_named_volume(self) -> None:
        """The archive is written inside a declared named volume, which is the image's VOLUME."""
        root = load_settings(DOCKER_CONFIG).output.root
        volumes = [entry for entry in _service("archiver")["volumes"] if isinstance(entry, str)]
        mounts = dict(entry.split(":")[:2] for entry in volumes)
        holding = [name for name, target in mounts.items() if _is_within(root, target)]
        assert holding, f"{root} is in none of {mounts}"
        assert holding[0] in _compose()["volumes"]
        assert mounts[holding[0]] in json.loads(_instruction("VOLUME"))

    def test_stop_grace_period_outlasts_the_drain(self) -> None:
        """Docker waits longer than shutdown.timeout_s (plus the abort's unwinding) before SIGKILL."""
        grace = _seconds(_service("archiver")["stop_grace_period"])
        assert grace > load_settings(DOCKER_CONFIG).shutdown.timeout_s + HARD_EXIT_GRACE_S + WATCHDOG_REPORT_S

    def test_archiver_waits_for_a_healthy_broker_and_its_topics(self) -> None:
        """The archiver starts after the broker is healthy and create-topics has succeeded."""
        depends = _service("archiver")["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["create-topics"]["condition"] == "service_completed_successfully"
        assert _service("archiver")["restart"] in {"always", "unless-stopped", "on-failure"}

    def test_create_topics_runs_once_on_the_same_image_and_config(self) -> None:
        """create-topics is a one-shot of the archiver's image, with its config, creating 6 partitions."""
        service = _service("create-topics")
        assert service["image"] == _service("archiver")["image"]
        assert service["command"] == ["create-topics", "--config", _cmd_config_path(), "--partitions", "6"]
        assert self._config_mount("create-topics") == self._config_mount("archiver")
        assert service["restart"] == "no"
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"

    def test_producer_is_a_sample_profile_writing_to_the_archived_topic(self) -> None:
        """The sample producer only runs with the `sample` profile, into the topic the archiver reads."""
        service = _service("producer")
        command = service["command"]
        assert service["profiles"] == ["sample"]
        assert command[:3] == ["produce-sample", "--config", _cmd_config_path()]
        assert "--topic" not in command, "the first of kafka.topics is the archived topic"
        assert 0 < float(command[command.index("--rate") + 1]) <= 1000
        assert self._config_mount("producer") == self._config_mount("archiver")

    def test_one_shot_services_do_not_inherit_the_daemon_health_check(self) -> None:
        """Services that are not the daemon would never answer /healthz: their check is off."""
        for name in ("create-topics", "producer"):
            assert _service(name)["healthcheck"] == {"disable": True}

    def test_archiver_has_a_memory_limit_above_its_budget(self) -> None:
        """The container limit leaves room above the buffer budget (docs/operations.md, sizing)."""
        limit = _service("archiver")["deploy"]["resources"]["limits"]["memory"]
        assert limit.lower().endswith("g")
        settings = load_settings(DOCKER_CONFIG)
        estimate = (
            250 * 2**20 + settings.memory.max_buffered_bytes + 3 * settings.rotation.row_group_max_bytes
        )
        assert float(limit[:-1]) * 2**30 >= 1.25 * estimate

    @staticmethod
    def _config_mount(service: str) -> dict[str, Any]:
        mounts = [entry for entry in _service(service)["volumes"] if isinstance(entry, dict)]
        assert len(mounts) == 1, f"{service} should bind-mount exactly one config file"
        return mounts[0]


# --- Dockerfile -----------------------------------------------------------------------------------


class TestDockerfile:
    def test_base_image_is_a_slim_python_3_11_or_newer(self) -> None:
        """Both stages use the same slim Python image, version 3.11 or newer."""
        base = re.search(r"ARG PYTHON_IMAGE=python:(\d+)\.(\d+)-slim", DOCKERFILE.read_text())
        assert base, "the base image is python:<version>-slim"
        assert (int(base[1]), int(base[2])) >= (3, 11)
        assert [arguments for name, arguments in _dockerfile() if name == "FROM"] == [
            "${PYTHON_IMAGE} AS build",
            "${PYTHON_IMAGE}",
        ]

    def test_installs_the_package_with_pip(self) -> None:
        """The build stage runs `pip install .` on the copied project."""
        runs = [arguments for name, arguments in _dockerfile() if name == "RUN"]
        assert any(re.search(r"pip install \.$", run) for run in runs)

    def test_entrypoint_and_default_command(self) -> None:
        """The command is the daemon; the default arguments run it on the mounted config."""
        assert _exec_form(_instruction("ENTRYPOINT")) == ["kafka-parquet-archiver"]
        assert _exec_form(_instruction("CMD")) == [
            "run",
            "--config",
            "/etc/kafka-parquet-archiver/archiver.toml",
        ]

    def test_runs_as_a_non_root_user(self) -> None:
        """The final USER is neither root nor uid 0."""
        user = _instruction("USER").split(":")[0]
        assert user not in {"root", "0", ""}

    def test_archive_volume(self) -> None:
        """The archive folder is a VOLUME, and the image's default config writes inside it."""
        assert json.loads(_instruction("VOLUME")) == ["/var/lib/kafka-parquet-archiver"]
        assert _is_within(load_settings(DOCKER_CONFIG).output.root, "/var/lib/kafka-parquet-archiver")

    def test_healthcheck_reads_the_commands_config(self) -> None:
        """The health check reads the same file as CMD, so it follows a mounted config's port."""
        command = _healthcheck_command()
        assert command[:2] == ["python", "-c"]
        assert command[-1] == _cmd_config_path()
        assert "/healthz" in command[2]

    def test_dockerignore_keeps_only_the_build_inputs(self) -> None:
        """.dockerignore excludes everything but what the Dockerfile copies from the context."""
        lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
        rules = [line for line in lines if line and not line.startswith("#")]
        assert rules[0] == "*"
        kept = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
        copied = {
            source.rstrip("/")
            for name, arguments in _dockerfile()
            if name == "COPY" and not arguments.startswith("--from")
            for source in arguments.split()[:-1]
        }
        assert copied == kept


class _Healthz(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def healthz_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class TestHealthcheck:
    """The Dockerfile's health check command, run here against a stand-in /healthz."""

    @staticmethod
    def _run(tmp_path: Path, port: int, host: str = "0.0.0.0") -> int:  # noqa: S104 - as in docker.toml
        config = write_config(tmp_path / "archiver.toml", {"metrics": {"port": port, "host": host}})
        code = _healthcheck_command()[2]
        result = subprocess.run(
            [sys.executable, "-c", code, str(config)], capture_output=True, timeout=60, check=False
        )
        return result.returncode

    def test_healthy_when_healthz_answers_200(self, tmp_path: Path, healthz_server: HTTPServer) -> None:
        """200 from /healthz on the configured port (0.0.0.0 reached as 127.0.0.1) is healthy."""
        _Healthz.status = 200
        assert self._run(tmp_path, healthz_server.server_address[1]) == 0

    def test_unhealthy_when_healthz_answers_503(self, tmp_path: Path, healthz_server: HTTPServer) -> None:
        """503 (the poll loop stalled) is unhealthy."""
        _Healthz.status = 503
        assert self._run(tmp_path, healthz_server.server_address[1]) != 0

    def test_unhealthy_when_the_endpoint_is_off(self, tmp_path: Path) -> None:
        """With metrics.port = 0 nothing can answer: the check fails instead of guessing."""
        assert self._run(tmp_path, 0) != 0


# --- settings files -------------------------------------------------------------------------------


class TestConfigFiles:
    def test_docker_config_is_valid(self) -> None:
        """config/docker.toml passes validation."""
        settings = load_settings(DOCKER_CONFIG)
        assert settings.output.root == "/var/lib/kafka-parquet-archiver/archive"
        assert settings.metrics.port == 9108

    def test_systemd_config_is_valid(self) -> None:
        """config/systemd.toml passes validation: archive in the state folder, local metrics, 60 s drain."""
        settings = load_settings(SYSTEMD_CONFIG)
        assert settings.output.root == "/var/lib/kafka-parquet-archiver/archive"
        assert (settings.metrics.host, settings.metrics.port) == ("127.0.0.1", 9108)
        assert settings.shutdown.timeout_s == 60.0

    def test_env_example_overrides_are_real_keys(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Every ARCHIVER_* line of archiver.env.example, uncommented, validates against the settings."""
        assignments = re.findall(r"^#(ARCHIVER_\w+)=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
        assert assignments
        for name, value in assignments:
            monkeypatch.setenv(name, value.strip("'"))
        settings = load_settings(SYSTEMD_CONFIG)
        assert settings.kafka.librdkafka_properties()["sasl.password"] == "change-me"


# --- systemd --------------------------------------------------------------------------------------


class TestSystemdUnit:
    def test_systemd_analyze_verify(self, tmp_path: Path) -> None:
        """`systemd-analyze verify` accepts the unit (ExecStart pointed at this checkout's command)."""
        tool = shutil.which("systemd-analyze")
        if tool is None:
            pytest.skip("systemd-analyze is not installed (Debian package: systemd)")
        command = Path(sys.executable).parent / "kafka-parquet-archiver"
        assert command.exists(), "the package is not installed in this environment"
        unit = tmp_path / UNIT.name
        unit.write_text(UNIT.read_text().replace(_exec_start()[0], str(command)))
        result = subprocess.run(
            [tool, "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False
        )
        problems = [line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line]
        assert result.returncode == 0, result.stdout + result.stderr
        assert not problems

    def test_stop_timeout_outlasts_the_drain(self) -> None:
        """TimeoutStopSec exceeds shutdown.timeout_s plus the abort's unwinding time."""
        timeout = _seconds(_directive("TimeoutStopSec"))
        assert (
            timeout > load_settings(SYSTEMD_CONFIG).shutdown.timeout_s + HARD_EXIT_GRACE_S + WATCHDOG_REPORT_S
        )

    def test_start_timeout_covers_the_startup_retries(self) -> None:
        """TimeoutStartSec leaves time for kafka.startup_timeout_s of retries before READY=1."""
        assert _seconds(_directive("TimeoutStartSec")) > load_settings(SYSTEMD_CONFIG).kafka.startup_timeout_s

    def test_exec_start_reads_the_config_where_the_guide_installs_it(self) -> None:
        """ExecStart's --config is where systemd/README.md puts config/systemd.toml."""
        command = _exec_start()
        assert command[0] == "/opt/kafka-parquet-archiver/venv/bin/kafka-parquet-archiver"
        assert command[1:] == [
            "--log-format",
            "json",
            "run",
            "--config",
            "/etc/kafka-parquet-archiver/archiver.toml",
        ]
        assert _guide_destination("config/systemd.toml") == command[-1]

    def test_environment_file_is_where_the_guide_installs_the_example(self) -> None:
        """EnvironmentFile (optional, '-') is where systemd/README.md puts archiver.env.example."""
        assert _directive("EnvironmentFile") == "-" + _guide_destination("systemd/archiver.env.example")

    def test_restart_policy_spares_configuration_errors(self) -> None:
        """Restarts on failure, but not on the configuration exit code."""
        assert _directive("Restart") == "on-failure"
        assert _seconds(_directive("RestartSec")) > 0
        assert _directive("RestartPreventExitStatus") == str(int(ExitCode.CONFIG))

    def test_notify_and_watchdog(self) -> None:
        """Type=notify from the main process, with a watchdog."""
        assert _directive("Type") == "notify"
        assert _directive("NotifyAccess") == "main"
        assert _seconds(_directive("WatchdogSec")) == 30

    def test_dedicated_user_and_writable_archive(self) -> None:
        """A fixed service user; the archive root is in the state folder and writable in the sandbox."""
        assert _directive("User") == _directive("Group") == "kafka-parquet-archiver"
        assert _directive("DynamicUser") == "no"
        state = "/var/lib/" + _directive("StateDirectory")
        root = load_settings(SYSTEMD_CONFIG).output.root
        assert _is_within(root, state)
        assert any(_is_within(root, path) for path in _directive("ReadWritePaths").split())
        assert _directive("LogsDirectory") == "kafka-parquet-archiver"

    def test_hardening(self) -> None:
        """The sandbox directives the service is meant to run with."""
        expected = {
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "NoNewPrivileges": "yes",
            "PrivateDevices": "yes",
            "ProtectKernelTunables": "yes",
            "ProtectKernelModules": "yes",
            "ProtectKernelLogs": "yes",
            "ProtectControlGroups": "yes",
            "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
            "RestrictNamespaces": "yes",
            "LockPersonality": "yes",
            "MemoryDenyWriteExecute": "yes",
            "SystemCallArchitectures": "native",
            "CapabilityBoundingSet": "",
        }
        assert {name: _directive(name) for name in expected} == expected

    def test_memory_limit_above_the_budget(self) -> None:
        """MemoryMax leaves room above the buffer budget of config/systemd.toml."""
        limit = _directive("MemoryMax")
        assert limit.endswith("M")
        settings = load_settings(SYSTEMD_CONFIG)
        estimate = (
            250 * 2**20 + settings.memory.max_buffered_bytes + 3 * settings.rotation.row_group_max_bytes
        )
        assert int(limit[:-1]) * 2**20 >= 1.25 * estimate


# --- the operations guide -------------------------------------------------------------------------


class TestOperationsGuide:
    def test_every_setting_is_documented(self) -> None:
        """docs/operations.md names every key of every settings section."""
        text = OPERATIONS.read_text()
        for section, field in Settings.model_fields.items():
            model = field.annotation
            assert isinstance(model, type)
            assert issubclass(model, BaseModel)
            assert f"[{section}]" in text, f"section [{section}] is not documented"
            for key in model.model_fields:
                assert f"`{key}`" in text or f"`{section}.{key}`" in text, (
                    f"{section}.{key} is not documented"
                )

    def test_every_exit_code_is_documented(self) -> None:
        """The exit-code table lists every ExitCode."""
        text = OPERATIONS.read_text()
        for code in ExitCode:
            assert re.search(rf"^\| {int(code)} \|", text, re.MULTILINE), f"exit code {int(code)}"
