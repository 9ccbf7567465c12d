"""Arrow's memory pool: the allocator behind it, and giving freed memory back.

Arrow takes its default allocator from the environment variable ARROW_DEFAULT_MEMORY_POOL once,
when pyarrow loads, and Parquet's page encoders always allocate from that default:
`pyarrow.set_memory_pool` would reach only the allocations made from Python, leaving the
encoders' buffers in another allocator that nothing releases or counts. So the allocator
(`memory.allocator`) is put in the environment before pyarrow is imported (`choose_allocator`,
by the `run` command) and checked once it is (`check_allocator`); this module imports pyarrow
only inside the functions that need it, for that reason.

jemalloc is the default: under the memory soak it kept the lowest peak and plateau of the three
at the same speed (docs/operations.md, "Memory allocator"). Freed pages go back to the system
within JEMALLOC_DECAY_MS (jemalloc's decay time), from its background threads. Returned at once (a
decay of 0), every freed column and row group cost a system call on the thread that freed it, and
the next batch's buffers page faults: on W1 the writer thread spent twice the CPU time, for about
10 MiB less RSS.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import get_args

from consumer.config import Allocator
from consumer.errors import ConfigError

# ruff: noqa: PLC0415 - pyarrow must not load before the allocator is chosen

ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
JEMALLOC_DECAY_MS = 20


def choose_allocator(allocator: Allocator, environment: MutableMapping[str, str]) -> None:
    """Make `allocator` Arrow's default for this process; pyarrow must not be loaded yet."""
    if "pyarrow" in sys.modules:
        raise RuntimeError("the allocator must be chosen before pyarrow is imported")
    environment[ARROW_POOL_VARIABLE] = allocator


def check_allocator(allocator: Allocator) -> None:
    """Raise ConfigError unless Arrow allocates from `allocator` (a build without it falls back)."""
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != allocator:
        raise ConfigError(
            f"memory.allocator = {allocator!r}: this pyarrow build has no {allocator}; "
            f"allowed here: {', '.join(available_allocators())}"
        )
    if allocator == "jemalloc":
        pa.jemalloc_set_decay_ms(JEMALLOC_DECAY_MS)


def available_allocators() -> list[Allocator]:
    """The allocators this pyarrow build has."""
    import pyarrow as pa

    pools = {
        "jemalloc": pa.jemalloc_memory_pool,
        "mimalloc": pa.mimalloc_memory_pool,
        "system": pa.system_memory_pool,
    }
    available: list[Allocator] = []
    for name in get_args(Allocator):
        try:
            pools[name]()
        except NotImplementedError:
            continue
        available.append(name)
    return available


def release_unused() -> None:
    """Return the pool's cached free memory to the system (called when a file is finished)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
