"""Settings: defaults, file + environment, and one clear line per invalid value."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from consumer.cli import main
from consumer.config import S3Root, Settings, load_settings
from consumer.errors import ConfigError, ExitCode
from tests.support.daemon import write_config

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "archiver.toml"
CODECS = "Input should be 'zstd', 'snappy', 'gzip', 'lz4', 'brotli' or 'none'"


def _error_for(tmp_path: Path, settings: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path / "archiver.toml", settings))
    return str(caught.value)


class TestLoading:
    def test_repository_config_is_valid(self) -> None:
        """config/archiver.toml, the local default, validates and points at the local broker."""
        settings = load_settings(REPO_CONFIG)
        assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
        assert settings.output.root == "./data"

    def test_repository_config_documents_every_key(self) -> None:
        """Every settings key appears in config/archiver.toml (set or commented)."""
        text = REPO_CONFIG.read_text()
        for section, model in Settings.model_fields.items():
            assert f"[{section}]" in text
            assert model.annotation is not None
            for key in model.annotation.model_fields:
                documented = (
                    f"{key} =" in text or f"[{section}.{key}" in text
                )  # a table, or a table of tables
                assert documented, f"{section}.{key} is not documented"

    def test_environment_overrides_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """ARCHIVER_<SECTION>__<KEY> wins over the file, including list values."""
        path = write_config(
            tmp_path / "a.toml", {"rotation": {"file_max_age_s": 60}, "kafka": {"topics": ["x"]}}
        )
        monkeypatch.setenv("ARCHIVER_ROTATION__FILE_MAX_AGE_S", "5")
        monkeypatch.setenv("ARCHIVER_KAFKA__TOPICS", '["a", "b"]')
        settings = load_settings(path)
        assert settings.rotation.file_max_age_s == 5
        assert settings.kafka.topics == ("a", "b")

    def test_settings_are_frozen(self) -> None:
        """Settings cannot be changed after validation."""
        settings = load_settings(REPO_CONFIG)
        with pytest.raises(ValueError, match="frozen"):
            settings.rotation.file_max_bytes = 1  # type: ignore[misc]

    def test_secrets_are_masked_but_reach_the_client(self, tmp_path: Path) -> None:
        """Sensitive librdkafka properties print as stars; the client still gets the real value."""
        path = write_config(
            tmp_path / "a.toml", {"kafka": {"topics": ["x"], "properties": {"sasl.password": "hunter2"}}}
        )
        settings = load_settings(path)
        assert "hunter2" not in settings.model_dump_json()
        assert settings.kafka.librdkafka_properties()["sasl.password"] == "hunter2"

    def test_property_values_become_text(self, tmp_path: Path) -> None:
        """Numbers and booleans in [kafka.properties] are passed as librdkafka strings."""
        properties = {"session.timeout.ms": 6000, "check.crcs": False}
        path = write_config(tmp_path / "a.toml", {"kafka": {"topics": ["x"], "properties": properties}})
        assert load_settings(path).kafka.librdkafka_properties() == {
            "session.timeout.ms": "6000",
            "check.crcs": "false",
        }


class TestRejection:
    def test_unknown_key_lists_the_allowed_keys(self, tmp_path: Path) -> None:
        """An unknown key is named together with the keys that are allowed there."""
        message = _error_for(tmp_path, {"rotation": {"file_max_size": 10}})
        assert message.startswith("rotation.file_max_size: unknown key; allowed keys here: file_max_bytes")

    def test_unknown_section(self, tmp_path: Path) -> None:
        """An unknown section is named with the allowed sections."""
        message = _error_for(tmp_path, {"outputs": {"root": "x"}})
        assert message.startswith("outputs: unknown key; allowed keys here: kafka, output")

    def test_wrong_type(self, tmp_path: Path) -> None:
        """A wrong type names the key, the value and the expected type."""
        message = _error_for(tmp_path, {"rotation": {"file_max_bytes": "big"}})
        expected = "Input should be a valid integer, unable to parse string as an integer"
        assert message == f"rotation.file_max_bytes = 'big': {expected}"

    def test_negative_size(self, tmp_path: Path) -> None:
        """A negative size names the key, the value and the lower bound."""
        message = _error_for(tmp_path, {"memory": {"max_buffered_bytes": -1}})
        assert message == "memory.max_buffered_bytes = -1: Input should be greater than or equal to 1048576"

    def test_unknown_allocator(self, tmp_path: Path) -> None:
        """An unknown allocator names the allocators there are."""
        message = _error_for(tmp_path, {"memory": {"allocator": "tcmalloc"}})
        assert message == "memory.allocator = 'tcmalloc': Input should be 'jemalloc', 'mimalloc' or 'system'"

    def test_unknown_codec(self, tmp_path: Path) -> None:
        """An unknown codec lists the codecs that exist."""
        message = _error_for(tmp_path, {"output": {"compression": "lzo"}})
        assert message == f"output.compression = 'lzo': {CODECS}"

    def test_unknown_metadata_column_lists_the_allowed_ones(self, tmp_path: Path) -> None:
        message = _error_for(tmp_path, {"output": {"metadata_columns": ["_headers", "_tz"]}})
        assert message == (
            "output.metadata_columns.1 = '_tz': "
            "Input should be '_partition', '_offset', '_timestamp', '_key' or '_headers'"
        )

    def test_level_out_of_range_for_codec(self, tmp_path: Path) -> None:
        """A compression level is checked against its codec's range."""
        message = _error_for(tmp_path, {"output": {"compression": "gzip", "compression_level": 12}})
        assert message == "output.compression_level = 12: gzip levels are 1 to 9"

    def test_topics_and_pattern_are_exclusive(self, tmp_path: Path) -> None:
        """Exactly one of topics and topic_pattern must be set."""
        message = _error_for(tmp_path, {"kafka": {"topics": ["a"], "topic_pattern": "a.*"}})
        assert "set exactly one of kafka.topics" in message

    def test_invalid_topic_name(self, tmp_path: Path) -> None:
        """A topic name with characters Kafka refuses is rejected with the rule."""
        message = _error_for(tmp_path, {"kafka": {"topics": ["a b"]}})
        assert message.startswith("kafka.topics.0 = 'a b': a Kafka topic name is 1-249 characters")

    def test_dead_letter_topic_must_not_be_consumed(self, tmp_path: Path) -> None:
        """Dead letters on a consumed topic would be archived, rejected and published again."""
        message = _error_for(
            tmp_path, {"kafka": {"topics": ["a", "b"]}, "records": {"dead_letter_topic": "b"}}
        )
        assert message == (
            "records.dead_letter_topic = 'b': must be a topic the archiver does not consume, "
            "but kafka.topics includes it"
        )

    def test_dead_letter_topic_must_not_match_the_pattern(self, tmp_path: Path) -> None:
        """A subscription pattern matches from the topic name's start, as the client's does."""
        settings = {"kafka": {"topic_pattern": "orders.*"}, "records": {"dead_letter_topic": "orders-dead"}}
        message = _error_for(tmp_path, settings)
        assert message.endswith("but kafka.topic_pattern ('orders.*') includes it")
        settings["records"] = {"dead_letter_topic": "dead-orders"}
        loaded = load_settings(write_config(tmp_path / "ok.toml", settings))
        assert loaded.records.dead_letter_topic == "dead-orders"

    def test_dead_letter_topic_is_a_kafka_topic_name(self, tmp_path: Path) -> None:
        message = _error_for(tmp_path, {"records": {"dead_letter_topic": "dead letters"}})
        assert message.startswith("records.dead_letter_topic = 'dead letters': a Kafka topic name is")

    def test_managed_property_cannot_be_overridden(self, tmp_path: Path) -> None:
        """Pass-through properties may not switch auto-commit back on."""
        message = _error_for(
            tmp_path, {"kafka": {"topics": ["a"], "properties": {"enable.auto.commit": True}}}
        )
        assert message.startswith("kafka.properties: enable.auto.commit cannot be passed through")

    def test_bad_environment_value_is_named(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A bad value from the environment is reported under its key."""
        monkeypatch.setenv("ARCHIVER_STATS__INTERVAL_S", "-3")
        message = _error_for(tmp_path, {"kafka": {"topics": ["a"]}})
        assert message == "stats.interval_s = '-3': Input should be greater than 0"

    def test_invalid_toml(self, tmp_path: Path) -> None:
        """A file that is not TOML is reported with the position."""
        path = tmp_path / "bad.toml"
        path.write_text("x =\n")
        with pytest.raises(ConfigError, match=r"bad.toml is not valid TOML: .*line 1"):
            load_settings(path)


class TestCheckConfigCommand:
    def test_valid_config_prints_effective_settings(self, capsys: pytest.CaptureFixture[str]) -> None:
        """check-config exits 0 and prints the effective settings as JSON."""
        assert main(["check-config", "--config", str(REPO_CONFIG)]) == ExitCode.OK
        assert '"file_max_bytes": 268435456' in capsys.readouterr().out

    def test_invalid_config_exits_non_zero_with_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """check-config exits with the config exit code and one line per problem on stderr."""
        path = write_config(tmp_path / "a.toml", {"output": {"compression": "lzo"}})
        assert main(["check-config", "--config", str(path)]) == ExitCode.CONFIG
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines == [f"config error: output.compression = 'lzo': {CODECS}"]

    def test_the_collector_is_tuned_before_the_settings_library_loads(self) -> None:
        """A fresh interpreter running a command has the process's collector thresholds by the time
        pydantic is first imported: start-up's long-lived objects are not rescanned at every 700
        allocations while the settings and the daemon's libraries load."""
        probe = textwrap.dedent(
            """
            import gc, sys
            seen = []
            class Probe:
                def find_spec(self, name, path=None, target=None):
                    if name == "pydantic" and not seen:
                        seen.append(gc.get_threshold())
            sys.meta_path.insert(0, Probe())
            from consumer.cli import GC_THRESHOLDS, main
            assert main(["check-config", "--config", sys.argv[1]]) == 0
            assert seen == [GC_THRESHOLDS], seen
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", probe, str(REPO_CONFIG)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr


class TestFixedSchemas:
    def test_schema_file_next_to_the_config_is_loaded(self, tmp_path: Path) -> None:
        """A relative schema file is found next to the config file; its columns land in the settings."""
        (tmp_path / "orders.schema.toml").write_text('[columns]\nid = "int64"\ntotal = "float64"\n')
        path = write_config(
            tmp_path / "a.toml",
            {
                "kafka": {"topics": ["orders"]},
                "schema": {"fixed": {"orders": {"file": "orders.schema.toml"}}},
            },
        )
        fixed = load_settings(path).schema.fixed["orders"]
        assert fixed.columns == {"id": "int64", "total": "float64"}
        assert fixed.unknown_keys == "extra"

    def test_unknown_kind_is_named(self, tmp_path: Path) -> None:
        """A column kind that does not exist is rejected with the allowed kinds."""
        (tmp_path / "s.toml").write_text('[columns]\nid = "integer"\n')
        message = _error_for(tmp_path, {"schema": {"fixed": {"orders": {"file": "s.toml"}}}})
        assert message.startswith(
            "schema.fixed.orders.columns.id = 'integer': Input should be 'bool', 'int64'"
        )

    def test_missing_schema_file_is_named(self, tmp_path: Path) -> None:
        """A schema file that cannot be read stops start-up with its path."""
        message = _error_for(tmp_path, {"schema": {"fixed": {"orders": {"file": "nope.toml"}}}})
        assert message.startswith("schema.fixed.orders: cannot read schema file ")
        assert "nope.toml: No such file or directory" in message

    @pytest.mark.parametrize("name", ["_Offset", "_headers"])
    def test_reserved_column_names_are_refused(self, tmp_path: Path, name: str) -> None:
        """A fixed column may not be named like a metadata column, in any case."""
        (tmp_path / "s.toml").write_text(f'[columns]\n{name} = "int64"\n')
        message = _error_for(tmp_path, {"schema": {"fixed": {"orders": {"file": "s.toml"}}}})
        assert f"column '{name}': names are 1-255 printable characters and not one of" in message


class TestS3Output:
    def test_s3_root_gives_bucket_and_prefix(self, tmp_path: Path) -> None:
        """An s3:// root is split into bucket and prefix (slashes trimmed); a local path has none."""
        path = write_config(tmp_path / "a.toml", {"output": {"root": "s3://my-bucket/archive/kafka/"}})
        assert load_settings(path).output.s3_root == S3Root("my-bucket", "archive/kafka")
        assert load_settings(REPO_CONFIG).output.s3_root is None

    def test_bucket_without_prefix(self, tmp_path: Path) -> None:
        """The archive may fill a whole bucket."""
        path = write_config(tmp_path / "a.toml", {"output": {"root": "s3://my-bucket"}})
        assert load_settings(path).output.s3_root == S3Root("my-bucket", "")

    @pytest.mark.parametrize(
        ("root", "problem"),
        [
            ("gs://bucket/x", "no other URI scheme is supported"),
            ("s3://My_Bucket/x", "'My_Bucket' is not an S3 bucket name"),
            ("s3://user:secret@bucket/x", "is not an S3 bucket name"),
            ("s3://bucket/a//b", "without '//', '.' or '..'"),
            ("s3://bucket/a/../b", "without '//', '.' or '..'"),
        ],
    )
    def test_malformed_roots_are_named(self, tmp_path: Path, root: str, problem: str) -> None:
        """A root that is neither a path nor a valid s3:// URI is rejected with the rule it breaks."""
        message = _error_for(tmp_path, {"output": {"root": root}})
        assert message.startswith("output.root = ")
        assert problem in message

    def test_endpoint_takes_no_scheme(self, tmp_path: Path) -> None:
        """endpoint_override is host[:port]; the protocol has its own key."""
        message = _error_for(tmp_path, {"output": {"s3": {"endpoint_override": "http://minio:9000"}}})
        assert message == (
            "output.s3.endpoint_override = 'http://minio:9000': give host[:port] only; "
            "the protocol is output.s3.scheme"
        )

    def test_endpoint_and_region_are_checked_before_any_client_is_built(self, tmp_path: Path) -> None:
        """A malformed endpoint or region is a configuration error, not a failure at start-up."""
        message = _error_for(tmp_path, {"output": {"s3": {"endpoint_override": "minio:9000:x"}}})
        assert message.startswith("output.s3.endpoint_override = 'minio:9000:x': expected host[:port]")
        message = _error_for(tmp_path, {"output": {"s3": {"region": "eu west 1"}}})
        assert message.startswith("output.s3.region = 'eu west 1': String should match pattern")

    def test_parts_have_s3_minimum(self, tmp_path: Path) -> None:
        """Parts smaller than S3's 5 MiB minimum are refused before anything is uploaded."""
        message = _error_for(tmp_path, {"output": {"s3": {"part_size_bytes": 1024}}})
        assert message == "output.s3.part_size_bytes = 1024: Input should be greater than or equal to 5242880"

    def test_largest_file_fits_in_ten_thousand_parts(self, tmp_path: Path) -> None:
        """S3 takes 10,000 parts per object: file_max_bytes needs parts large enough for it."""
        settings = {
            "output": {"root": "s3://bucket/x"},
            "rotation": {"file_max_bytes": 100 * 2**30},
            "memory": {"max_buffered_bytes": 2**30},
        }
        message = _error_for(tmp_path, settings)
        assert "output.s3.part_size_bytes = 8388608: an object has at most 10000 parts" in message

    def test_s3_keys_come_from_the_environment_too(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """ARCHIVER_OUTPUT__S3__<KEY> overrides a key of [output.s3]."""
        monkeypatch.setenv("ARCHIVER_OUTPUT__S3__REGION", "eu-central-1")
        path = write_config(
            tmp_path / "a.toml", {"output": {"root": "s3://bucket/x", "s3": {"scheme": "http"}}}
        )
        s3 = load_settings(path).output.s3
        assert (s3.region, s3.scheme) == ("eu-central-1", "http")

    def test_no_credentials_in_effective_settings(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Credentials stay in the AWS environment: check-config never prints them."""
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
        monkeypatch.setenv("ARCHIVER_OUTPUT__ROOT", "s3://bucket/x")
        assert main(["check-config", "--config", str(REPO_CONFIG)]) == ExitCode.OK
        out = capsys.readouterr().out
        assert '"part_size_bytes": 8388608' in out
        assert "very-secret-value" not in out
