"""argv -> settings -> logging -> command -> exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from consumer import __version__
from consumer.config import Settings, load_settings
from consumer.errors import ConfigError, ExitCode, FatalError
from consumer.log import LEVELS, configure

DEFAULT_CONFIG = Path("config/archiver.toml")


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
    for name, summary in (
        ("run", "run the daemon in the foreground until SIGTERM/SIGINT"),
        ("check-config", "validate the configuration and print the effective settings"),
        ("create-topics", "create the configured topics that do not exist yet"),
    ):
        command = commands.add_parser(name, help=summary, description=summary)
        command.add_argument(
            "--config",
            type=Path,
            default=DEFAULT_CONFIG,
            help=f"TOML settings file (default {DEFAULT_CONFIG})",
        )
        if name == "create-topics":
            command.add_argument(
                "--partitions", type=int, default=6, help="partitions per new topic (default 6)"
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure(args.log_level, args.log_format)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"config error: {line}", file=sys.stderr)
        return ExitCode.CONFIG
    if args.command == "check-config":
        return _check_config(settings)
    if args.command == "create-topics":
        return _create_topics(settings, args.partitions)
    from consumer.daemon import run  # noqa: PLC0415 - keeps check-config free of the Kafka client

    return run(settings, os.environ)


def _check_config(settings: Settings) -> int:
    document = settings.model_dump(mode="json")
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    return ExitCode.OK


def _create_topics(settings: Settings, partitions: int) -> int:
    from consumer.kafka.admin import create_missing_topics  # noqa: PLC0415 - only this command needs the admin client

    try:
        created = create_missing_topics(settings.kafka, partitions)
    except FatalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FATAL
    for topic in created:
        print(f"created topic {topic} with {partitions} partitions")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
