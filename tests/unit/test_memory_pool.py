"""The allocator behind Arrow's memory pool, chosen by memory.allocator.

Arrow reads its default allocator once per process, so each choice is tried in a fresh one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import get_args

import orjson
import pyarrow as pa
import pytest

from consumer import memory_pool
from consumer.config import Allocator
from consumer.errors import ConfigError

# Chooses the allocator as the run command does, writes a Parquet file, and reports how much
# each allocator served.
WRITE_PARQUET = """
import io, os, sys
import orjson
from consumer.memory_pool import check_allocator, choose_allocator

choose_allocator(sys.argv[1], os.environ)
check_allocator(sys.argv[1])
import pyarrow as pa, pyarrow.parquet as pq

table = pa.table({"n": pa.array(range(500_000)), "s": pa.array([str(i) * 7 for i in range(500_000)])})
with pq.ParquetWriter(io.BytesIO(), table.schema, compression="zstd") as writer:
    writer.write_table(table)
served = {}
for name, pool in (("jemalloc", pa.jemalloc_memory_pool), ("mimalloc", pa.mimalloc_memory_pool),
                   ("system", pa.system_memory_pool)):
    try:
        served[name] = pool().max_memory()
    except NotImplementedError:
        pass
print(orjson.dumps({"default": pa.default_memory_pool().backend_name, "served": served}).decode())
"""


def _write_parquet_with(allocator: str) -> dict[str, object]:
    environment = {key: value for key, value in os.environ.items() if key != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run(
        [sys.executable, "-c", WRITE_PARQUET, allocator],
        capture_output=True,
        env=environment,
        check=True,
        timeout=120,
    )
    result: dict[str, object] = orjson.loads(done.stdout)
    return result


@pytest.mark.parametrize("allocator", memory_pool.available_allocators())
def test_every_arrow_allocation_comes_from_the_chosen_allocator(allocator: Allocator) -> None:
    """Parquet's encoders included: the other allocators serve nothing."""
    result = _write_parquet_with(allocator)
    assert result["default"] == allocator
    served = result["served"]
    assert isinstance(served, dict)
    assert served.pop(allocator) > 10 * 2**20
    assert served == dict.fromkeys(served, 0)


def test_choosing_after_pyarrow_loaded_is_refused() -> None:
    """Too late to reach Parquet's encoders: an error, not a half-chosen allocator."""
    assert "pyarrow" in sys.modules
    environment: dict[str, str] = {}
    with pytest.raises(RuntimeError, match="before pyarrow is imported"):
        memory_pool.choose_allocator("jemalloc", environment)
    assert environment == {}


def test_jemalloc_is_the_default_and_in_linux_wheels() -> None:
    """The default allocator exists in the pyarrow this project installs."""
    assert "jemalloc" in memory_pool.available_allocators()


def test_an_allocator_the_build_lacks_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrow falls back when its build lacks the allocator; the error names the key, value and choices."""
    current = pa.default_memory_pool().backend_name
    lacking = next(name for name in get_args(Allocator) if name != current)
    monkeypatch.setattr(memory_pool, "available_allocators", lambda: [current])
    with pytest.raises(ConfigError) as error:
        memory_pool.check_allocator(lacking)
    assert str(error.value) == (
        f"memory.allocator = {lacking!r}: this pyarrow build has no {lacking}; allowed here: {current}"
    )


def test_jemalloc_returns_freed_pages_after_its_decay_time_not_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Returned at once, every freed buffer cost a system call and the next one page faults."""
    decays: list[int] = []

    class Jemalloc:
        backend_name = "jemalloc"

    monkeypatch.setattr(pa, "default_memory_pool", Jemalloc)
    monkeypatch.setattr(pa, "jemalloc_set_decay_ms", decays.append)
    memory_pool.check_allocator("jemalloc")
    assert decays == [memory_pool.JEMALLOC_DECAY_MS]
    assert memory_pool.JEMALLOC_DECAY_MS > 0
