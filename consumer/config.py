"""The one settings tree: frozen pydantic models, a TOML file plus `ARCHIVER_<SECTION>__<KEY>` overrides.

Every value is validated here, before anything connects; the rest of the code reads typed, final
settings and never parses strings or reads the environment itself.
"""

from __future__ import annotations

import re
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from consumer.errors import ConfigError

ENV_PREFIX = "ARCHIVER_"
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

Compression = Literal["zstd", "snappy", "gzip", "lz4", "brotli", "none"]
MetadataColumn = Literal["_partition", "_offset", "_timestamp", "_key", "_headers"]

# Inclusive compression level ranges accepted by the Parquet writer, per codec.
COMPRESSION_LEVELS: dict[str, tuple[int, int]] = {"zstd": (1, 22), "gzip": (1, 9), "brotli": (0, 11)}

# librdkafka properties the archiver owns: overriding them would break the commit protocol.
MANAGED_PROPERTIES = frozenset(
    {
        "bootstrap.servers",
        "group.id",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "partition.assignment.strategy",
        "auto.offset.reset",
        "enable.partition.eof",
    }
)
SENSITIVE_PROPERTY = re.compile(r"password|secret|\.pem$|^ssl\.key\.|sasl\.oauthbearer\.config|jaas", re.I)
TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


def _topic_name(name: str) -> str:
    if not TOPIC_NAME.fullmatch(name) or name in {".", ".."}:
        raise ValueError("a Kafka topic name is 1-249 characters of letters, digits, '.', '_' and '-'")
    return name


def _regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return pattern


TopicName = Annotated[str, AfterValidator(_topic_name)]
PropertyValue = str | int | float | bool


class Section(BaseModel):
    """A frozen settings section that rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(Section):
    """How to reach Kafka and what to consume."""

    bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=1)
    group_id: str = Field(default="kafka-parquet-archiver", min_length=1)
    topics: tuple[TopicName, ...] = ()
    topic_pattern: Annotated[str, AfterValidator(_regex)] | None = None
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    poll_max_messages: int = Field(default=5_000, ge=1, le=1_000_000)
    poll_timeout_s: float = Field(default=0.5, gt=0, le=10)
    startup_timeout_s: float = Field(default=60.0, gt=0)
    properties: dict[str, str | SecretStr] = Field(default_factory=dict)

    @field_validator("properties", mode="before")
    @classmethod
    def _stringify(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        return {key: _property_text(item) for key, item in value.items()}

    @field_validator("properties")
    @classmethod
    def _protect(cls, value: dict[str, str | SecretStr]) -> dict[str, str | SecretStr]:
        managed = sorted(MANAGED_PROPERTIES.intersection(value))
        if managed:
            raise ValueError(
                f"{', '.join(managed)} cannot be passed through; the archiver sets "
                f"{', '.join(sorted(MANAGED_PROPERTIES))} itself (see the [kafka] keys)"
            )
        return {
            key: SecretStr(str(item)) if SENSITIVE_PROPERTY.search(key) else item
            for key, item in value.items()
        }

    @model_validator(mode="after")
    def _one_subscription(self) -> Self:
        if bool(self.topics) == (self.topic_pattern is not None):
            raise ValueError(
                "set exactly one of kafka.topics (a list of names) or kafka.topic_pattern (a regex)"
            )
        return self

    def librdkafka_properties(self) -> dict[str, str]:
        """The pass-through properties with secrets revealed, for the client only."""
        return {
            key: item.get_secret_value() if isinstance(item, SecretStr) else item
            for key, item in self.properties.items()
        }


def _property_text(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


# S3's limits on multipart uploads: parts of 5 MiB to 5 GiB (all but the last), at most 10,000 parts.
S3_MIN_PART_BYTES = 5 * MIB
S3_MAX_PART_BYTES = 5 * GIB
S3_MAX_PARTS = 10_000
URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True, slots=True)
class S3Root:
    """An `s3://bucket/prefix` output root; prefix has no leading or trailing '/' (may be empty)."""

    bucket: str
    prefix: str


def parse_s3_root(root: str) -> S3Root | None:
    """The bucket and prefix of an `s3://` root, None for a local path; ValueError if malformed."""
    if not URI_SCHEME.match(root):
        return None
    if not root.startswith("s3://"):
        raise ValueError("a local path or s3://bucket/prefix; no other URI scheme is supported")
    bucket, _, prefix = root.removeprefix("s3://").partition("/")
    if not S3_BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(
            f"{bucket!r} is not an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    prefix = prefix.strip("/")
    parts = prefix.split("/") if prefix else []
    if any(part in {"", ".", ".."} or not part.isprintable() for part in parts):
        raise ValueError(
            "the prefix after the bucket must be printable folder names without '//', '.' or '..'"
        )
    return S3Root(bucket, "/".join(parts))


ENDPOINT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?")
REGION = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"  # what botocore accepts


def _endpoint(value: str | None) -> str | None:
    if value is not None and "://" in value:
        raise ValueError("give host[:port] only; the protocol is output.s3.scheme")
    if value is not None and not ENDPOINT.fullmatch(value):
        raise ValueError("expected host[:port], e.g. minio.internal:9000 or 127.0.0.1:9000")
    return value


class S3Settings(Section):
    """How to reach the bucket of an `s3://` output root (unused for a local root).

    Credentials are never configured here: they come from the AWS environment (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE and the shared files) or instance metadata.
    """

    endpoint_override: Annotated[str, AfterValidator(_endpoint)] | None = Field(default=None, min_length=1)
    scheme: Literal["https", "http"] = "https"
    region: str | None = Field(default=None, pattern=REGION)
    force_virtual_addressing: bool = False
    connect_timeout_s: float = Field(default=5.0, gt=0, le=300)
    request_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    retry_max_attempts: int = Field(default=5, ge=1, le=20)
    part_size_bytes: int = Field(default=8 * MIB, ge=S3_MIN_PART_BYTES, le=S3_MAX_PART_BYTES)
    parts_in_flight: int = Field(default=4, ge=1, le=64)
    conditional_writes: bool = True


class OutputSettings(Section):
    """Where and how finished Parquet files are written."""

    root: str = Field(default="./data", min_length=1)
    s3: S3Settings = S3Settings()
    compression: Compression = "zstd"
    compression_level: int | None = None
    metadata_columns: tuple[MetadataColumn, ...] = ("_partition", "_offset", "_timestamp", "_key")
    date_field: str | None = Field(default=None, min_length=1)
    date_field_unit: Literal["s", "ms", "us", "iso8601"] = "ms"

    @field_validator("root")
    @classmethod
    def _root(cls, value: str) -> str:
        parse_s3_root(value)
        return value

    @field_validator("metadata_columns")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each metadata column may be listed once")
        return value

    @property
    def s3_root(self) -> S3Root | None:
        """The bucket and prefix when the archive is on S3, None for a local folder."""
        return parse_s3_root(self.root)

    @model_validator(mode="after")
    def _level_fits_codec(self) -> Self:
        if self.compression_level is None:
            return self
        bounds = COMPRESSION_LEVELS.get(self.compression)
        if bounds is None:
            raise ValueError(
                f"output.compression_level = {self.compression_level}: {self.compression} takes no level; "
                f"levels apply to {', '.join(sorted(COMPRESSION_LEVELS))}"
            )
        low, high = bounds
        if not low <= self.compression_level <= high:
            raise ValueError(
                f"output.compression_level = {self.compression_level}: {self.compression} "
                f"levels are {low} to {high}"
            )
        return self


class RotationSettings(Section):
    """When an output file is finished, and how big its row groups get."""

    file_max_bytes: int = Field(default=256 * MIB, ge=64 * KIB)
    file_max_age_s: float = Field(default=3600.0, gt=0)
    file_max_idle_s: float = Field(default=300.0, gt=0)
    file_max_row_groups: int = Field(default=256, ge=1)
    row_group_max_bytes: int = Field(default=64 * MIB, ge=64 * KIB)
    row_group_max_rows: int = Field(default=1_000_000, ge=1)


Allocator = Literal["jemalloc", "mimalloc", "system"]


class MemorySettings(Section):
    """The budget for data buffered in memory across all partitions, and Arrow's allocator."""

    max_buffered_bytes: int = Field(default=512 * MIB, ge=1 * MIB)
    allocator: Allocator = "jemalloc"


class RecordsSettings(Section):
    """What counts as a bad record, and what happens to tombstones."""

    max_value_bytes: int = Field(default=8 * MIB, ge=1)
    tombstones: Literal["skip", "quarantine"] = "skip"
    dead_letter_topic: TopicName | None = None


ColumnKind = Literal["bool", "int64", "float64", "string", "json"]
# The metadata columns, `_extra`, and `date`: the hive partition key of the folders
# (<topic>/date=YYYY-MM-DD/), which readers with partition discovery would show instead of a
# column of the same name. A JSON key named like one of these stays in `_extra`.
RESERVED_COLUMNS = frozenset({*get_args(MetadataColumn), "_extra", "date"})


class FixedSchemaSettings(Section):
    """A topic's fixed schema: a TOML file whose [columns] table maps names to kinds."""

    file: Path
    unknown_keys: Literal["extra", "quarantine"] = "extra"
    columns: dict[str, ColumnKind] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _read_file(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "file" not in data or "columns" in data:
            return data
        path = Path(data["file"])
        document = read_toml(path, "schema file", ValueError)
        columns = document.get("columns")
        if not isinstance(columns, dict) or not columns:
            raise ValueError(f"schema file {path} needs a [columns] table of name = kind")
        return {**data, "columns": columns}

    @field_validator("columns")
    @classmethod
    def _names(cls, columns: dict[str, str]) -> dict[str, str]:
        folded: set[str] = set()
        for name in columns:
            if not name or len(name) > 255 or name.casefold() in RESERVED_COLUMNS or not name.isprintable():
                raise ValueError(
                    f"column {name!r}: names are 1-255 printable characters and not one of "
                    f"{', '.join(sorted(RESERVED_COLUMNS))}"
                )
            if name.casefold() in folded:
                raise ValueError(f"column {name!r}: differs from another column only by case")
            folded.add(name.casefold())
        return columns


class SchemaSettings(Section):
    """How columns are chosen: inferred from keys (bounded), or fixed per topic."""

    max_columns: int = Field(default=256, ge=1, le=10_000)
    min_key_frequency: float = Field(default=0.01, ge=0, le=1)
    min_key_count: int = Field(default=5, ge=1)
    fixed: dict[TopicName, FixedSchemaSettings] = Field(default_factory=dict)


class StatsSettings(Section):
    """The periodic `stats` log event."""

    interval_s: float = Field(default=30.0, gt=0)


class ShutdownSettings(Section):
    """Graceful shutdown on SIGTERM/SIGINT."""

    timeout_s: float = Field(default=30.0, gt=0)


class MetricsSettings(Section):
    """The optional HTTP endpoint with Prometheus metrics and /healthz."""

    port: int = Field(default=0, ge=0, le=65535)
    host: str = Field(default="127.0.0.1", min_length=1)
    health_stall_s: float = Field(default=60.0, gt=0)


# The [schema] section's field shadows BaseModel.schema(), a deprecated alias of model_json_schema().
warnings.filterwarnings("ignore", message='Field name "schema" in "Settings" shadows', category=UserWarning)


class Settings(BaseSettings):
    """The whole configuration. Environment variables override the TOML file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True, case_sensitive=False
    )

    kafka: KafkaSettings = KafkaSettings(topics=("events",))
    output: OutputSettings = OutputSettings()
    rotation: RotationSettings = RotationSettings()
    memory: MemorySettings = MemorySettings()
    records: RecordsSettings = RecordsSettings()
    schema: SchemaSettings = SchemaSettings()  # type: ignore[assignment]  # replaces BaseModel's deprecated schema()
    stats: StatsSettings = StatsSettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    metrics: MetricsSettings = MetricsSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003 - pydantic-settings passes these by name
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first: an ARCHIVER_* variable overrides the same key from the file.
        return env_settings, init_settings

    @model_validator(mode="after")
    def _row_groups_fit_budget(self) -> Self:
        if self.rotation.row_group_max_bytes > self.memory.max_buffered_bytes:
            raise ValueError(
                f"rotation.row_group_max_bytes = {self.rotation.row_group_max_bytes}: must not exceed "
                f"memory.max_buffered_bytes ({self.memory.max_buffered_bytes})"
            )
        return self

    @model_validator(mode="after")
    def _dead_letters_are_not_archived(self) -> Self:
        # Archiving its own dead letters, the archiver would reject them again, and again.
        topic, kafka = self.records.dead_letter_topic, self.kafka
        if topic is None:
            return self
        if topic in kafka.topics:
            consumed = "kafka.topics"
        elif kafka.topic_pattern and re.match(kafka.topic_pattern, topic):
            consumed = f"kafka.topic_pattern ({kafka.topic_pattern!r})"
        else:
            return self
        raise ValueError(
            f"records.dead_letter_topic = {topic!r}: must be a topic the archiver does not consume, "
            f"but {consumed} includes it"
        )

    @model_validator(mode="after")
    def _files_fit_in_parts(self) -> Self:
        # A file can exceed file_max_bytes by one row group; S3 takes at most 10,000 parts per object.
        part_size = self.output.s3.part_size_bytes
        largest = self.rotation.file_max_bytes + self.rotation.row_group_max_bytes
        if self.output.s3_root is not None and largest > S3_MAX_PARTS * part_size:
            raise ValueError(
                f"output.s3.part_size_bytes = {part_size}: an object has at most {S3_MAX_PARTS} parts, "
                f"too few for rotation.file_max_bytes + rotation.row_group_max_bytes ({largest}); "
                f"use parts of at least {-(-largest // S3_MAX_PARTS)} bytes"
            )
        return self


def load_settings(path: Path) -> Settings:
    """Read a TOML file, apply environment overrides, validate; raise ConfigError on any problem."""
    document = read_toml(path, "config file", ConfigError)
    _resolve_schema_files(document, path.parent)
    try:
        return Settings(**document)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(error) for error in exc.errors())) from exc


def read_toml(path: Path, what: str, error: type[Exception]) -> dict[str, Any]:
    """A TOML document, or `error` with one line naming the file and the problem."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {path} is not valid TOML: {exc}") from exc


def _resolve_schema_files(document: dict[str, Any], base: Path) -> None:
    """Schema files named relative to the config file are found next to it."""
    fixed = document.get("schema", {}).get("fixed", {})
    for entry in fixed.values() if isinstance(fixed, dict) else ():
        if isinstance(entry, dict) and isinstance(entry.get("file"), str):
            entry["file"] = str(base / entry["file"])


def _describe(error: Any) -> str:
    """One line: the dotted key, the offending value and what is allowed."""
    key = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(error["loc"][:-1]))
        return f"{key}: unknown key; allowed keys here: {allowed}"
    if kind == "missing":
        return f"{key}: required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if not key or message.startswith(f"{key}."):
        return message
    if isinstance(value, dict):  # a whole section or table: the message names the keys itself
        return f"{key}: {message}"
    shown = "***" if SENSITIVE_PROPERTY.search(key) else _short(value)
    return f"{key} = {shown}: {message}"


def _allowed_keys(section: tuple[str | int, ...]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in section:
        annotation = model.model_fields[str(part)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
