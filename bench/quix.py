"""(d) Quix Streams' file sink writing Parquet (zstd), one process per run, started by bench.run.

    bench/.venv-quix/bin/python bench/quix.py run --bootstrap B --topic T --group G --commit-interval S
    bench/.venv-quix/bin/python bench/quix.py versions

Runs in its own virtualenv (bench/requirements-quix.txt): quixstreams pins confluent-kafka < 2.13
and pydantic < 2.14, which the archiver's requirements exclude, so it cannot share `.venv`.
Imports nothing from this repository. Writes under ./parquet of its working directory: the sink
accepts only [a-zA-Z0-9 ._/] in its directory, so the orchestrator chooses the working directory.
Runs until SIGTERM (Quix then commits its last checkpoint); the orchestrator sends it once the
group has committed every offset of the topic.

In quixstreams 3.28 `FileSink` is the abstract base; `LocalFileSink` is the local-disk one
(`quixstreams.sinks.community.file.local`). It buffers every record of a partition as a Python
dict until the checkpoint (`commit_interval`), then writes one file per partition per checkpoint
with `pa.Table.from_pylist` over the batch's union of keys.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib.metadata import version

import confluent_kafka
from quixstreams import Application
from quixstreams.sinks.community.file.formats import ParquetFormat
from quixstreams.sinks.community.file.local import LocalFileSink

OUTPUT_DIRECTORY = "parquet"
STATE_DIRECTORY = "state"


def run(bootstrap: str, topic: str, group: str, commit_interval_s: float) -> None:
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=commit_interval_s,
        # The archiver runs with poll_timeout_s = 0.1 in the benchmark; the same here, so that
        # neither waits up to Quix's default 1 s in an idle poll before its last commit.
        consumer_poll_timeout=0.1,
        state_dir=STATE_DIRECTORY,
    )
    sdf = app.dataframe(app.topic(topic, value_deserializer="json"))
    sdf.sink(LocalFileSink(directory=OUTPUT_DIRECTORY, format=ParquetFormat(compression="zstd")))
    app.run()


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "quixstreams": version("quixstreams"),
        "confluent-kafka": version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "pyarrow": version("pyarrow"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/quix.py")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--bootstrap", required=True)
    run_parser.add_argument("--topic", required=True)
    run_parser.add_argument("--group", required=True)
    run_parser.add_argument("--commit-interval", type=float, required=True)
    commands.add_parser("versions")
    args = parser.parse_args()
    if args.command == "versions":
        sys.stdout.write(json.dumps(versions()) + "\n")
    else:
        run(args.bootstrap, args.topic, args.group, args.commit_interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
