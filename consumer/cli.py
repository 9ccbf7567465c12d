"""argv -> settings -> logging -> command -> exit code.

The daemon logs to stdout (journald, docker); the other commands log to stderr so that their own
output (JSON reports, effective settings) stays clean on stdout.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from consumer import __version__
from consumer.errors import ConfigError, ExitCode, FatalError
from consumer.log import LEVELS, configure

if TYPE_CHECKING:
    from consumer.config import Settings

DEFAULT_CONFIG = Path("config/archiver.toml")
Command = Callable[["Settings", argparse.Namespace], int]
# The process's collector thresholds, set before the settings (pydantic) and the daemon's libraries
# are imported. Start-up builds tens of thousands of objects that live as long as the process, and
# the daemon's hot path allocates one dict per record and frees it within the poll: a large first
# generation keeps the cyclic collector from rescanning either many times over (the daemon's
# imports took 20 to 25 ms less with it, about a tenth).
GC_THRESHOLDS = (100_000, 20, 50)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafka-parquet-archiver",
        description="Archive Kafka topics of JSON objects into rolling Parquet files.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level", choices=LEVELS, default="info", help="lowest level logged (default info)"
    )
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default="auto",
        help="json lines, console, or auto: console on a terminal, json otherwise (default auto)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(commands, "run", "run the daemon in the foreground until SIGTERM/SIGINT")
    _command(commands, "check-config", "validate the configuration and print the effective settings")
    create = _command(commands, "create-topics", "create the configured topics that do not exist yet")
    create.add_argument("--partitions", type=int, default=6, help="partitions per new topic (default 6)")
    verify = _command(
        commands, "verify", "check that the archive holds every record of the topics exactly once"
    )
    verify.add_argument("--deep", action="store_true", help="re-read the topics and check every offset")
    verify.add_argument("--json", action="store_true", help="print a JSON report instead of a table")
    verify.add_argument(
        "--sample",
        type=_non_negative,
        help="with --deep, records whose content is compared (default 100, 0 for none)",
    )
    sample = _command(commands, "produce-sample", "write realistic JSON events into a topic")
    sample.add_argument("--topic", help="topic to write to (default: the first configured topic)")
    sample.add_argument(
        "--rate", type=float, default=100.0, help="records per second, 0 for no limit (default 100)"
    )
    sample.add_argument("--count", type=int, help="records to write (default: until SIGINT/SIGTERM)")
    sample.add_argument("--seed", type=int, default=1, help="seed of the generator (default 1)")
    return parser


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str
) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=summary, description=summary)
    command.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help=f"TOML settings file (default {DEFAULT_CONFIG})"
    )
    return command


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    gc.set_threshold(*GC_THRESHOLDS)
    args = build_parser().parse_args(argv)
    configure(args.log_level, args.log_format, sys.stdout if args.command == "run" else sys.stderr)
    from consumer.config import load_settings

    try:
        settings = load_settings(args.config)
        return COMMANDS[args.command](settings, args)
    except ConfigError as exc:  # found by validation, or by a client refusing a pass-through property
        _report_config_error(exc)
        return ExitCode.CONFIG


def _report_config_error(exc: ConfigError) -> None:
    for line in str(exc).splitlines():
        print(f"config error: {line}", file=sys.stderr)


# The commands import what they need when they run, so `check-config` loads no Kafka client.
# ruff: noqa: PLC0415


def _run(settings: Settings, _args: argparse.Namespace) -> int:
    from consumer.shutdown import ShutdownSignal

    shutdown = ShutdownSignal(settings.shutdown.timeout_s)
    shutdown.install()  # before the heavier imports: a SIGTERM during start-up still drains cleanly
    from consumer.memory_pool import choose_allocator

    choose_allocator(settings.memory.allocator, os.environ)  # before pyarrow loads
    # pyarrow imports numpy whenever it is installed (13 MiB of RSS); the daemon never uses it.
    sys.modules.setdefault("numpy", None)  # type: ignore[arg-type]  # `import numpy` now fails
    from consumer.daemon import run

    return run(settings, os.environ, shutdown)


def _check_config(settings: Settings, _args: argparse.Namespace) -> int:
    sys.stdout.write(
        orjson.dumps(settings.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode() + "\n"
    )
    return ExitCode.OK


def _create_topics(settings: Settings, args: argparse.Namespace) -> int:
    from consumer.kafka.admin import create_missing_topics

    dead_letters = settings.records.dead_letter_topic
    topics = [*settings.kafka.topics, *([dead_letters] if dead_letters else [])]
    if not topics:
        print(
            "create-topics: the config subscribes by kafka.topic_pattern; there are no topic names to create",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    try:
        created = create_missing_topics(settings.kafka, topics, args.partitions)
    except FatalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FATAL
    for topic in created:
        print(f"created topic {topic} with {args.partitions} partitions")
    return ExitCode.OK


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from consumer.verify import DEFAULT_SAMPLE, verify_archive

    sample = DEFAULT_SAMPLE if args.sample is None else args.sample
    return verify_archive(settings, args.deep, args.json, sample, sys.stdout)


def _produce_sample(settings: Settings, args: argparse.Namespace) -> int:
    from consumer.sample import produce_sample

    return produce_sample(settings, args.topic, args.rate, args.count, args.seed, sys.stdout)


COMMANDS: dict[str, Command] = {
    "run": _run,
    "check-config": _check_config,
    "create-topics": _create_topics,
    "verify": _verify,
    "produce-sample": _produce_sample,
}


if __name__ == "__main__":
    sys.exit(main())
