"""WriteQueue: one writer thread, writes in order, bounded depth, failures handed back."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from consumer.write_queue import WriteQueue


@pytest.fixture
def writes() -> Iterator[WriteQueue]:
    queue = WriteQueue(depth=2)
    yield queue
    queue.close()


class TestWriteQueue:
    def test_writes_run_in_submission_order(self, writes: WriteQueue) -> None:
        """Every write runs, on another thread, in the order submitted."""
        seen: list[tuple[int, str]] = []

        def write(n: int) -> Callable[[], None]:
            return lambda: seen.append((n, threading.current_thread().name))

        futures = [writes.submit(write(n), 10) for n in range(5)]
        for future in futures:
            future.result(timeout=5)
        assert [n for n, _ in seen] == [0, 1, 2, 3, 4]
        assert {name for _, name in seen} == {"row-group-writer"}

    def test_a_failure_is_raised_to_the_waiter(self, writes: WriteQueue) -> None:
        """An exception in a write comes back from its future; later writes still run."""

        def fail() -> None:
            raise OSError("No space left on device")

        failed = writes.submit(fail, 10)
        after = writes.submit(lambda: None, 10)
        with pytest.raises(OSError, match="No space left"):
            failed.result(timeout=5)
        after.result(timeout=5)

    def test_pending_bytes_count_until_written(self, writes: WriteQueue) -> None:
        """Submitted bytes are pending until their write ends; waiting for a limit blocks until then."""
        release = threading.Event()
        writes.submit(release.wait, 100)
        writes.submit(lambda: None, 50)
        assert writes.pending_bytes == 150
        release.set()
        writes.wait_until_pending_at_most(0)
        assert writes.pending_bytes == 0

    def test_submitting_beyond_the_depth_blocks(self, writes: WriteQueue) -> None:
        """With the thread busy and `depth` writes queued, the next submit waits for room."""
        release = threading.Event()
        writes.submit(release.wait, 1)  # taken by the thread
        writes.submit(lambda: None, 1)
        writes.submit(lambda: None, 1)  # the queue is now full
        submitted = threading.Event()

        def submit_one_more() -> None:
            writes.submit(lambda: None, 1)
            submitted.set()

        threading.Thread(target=submit_one_more, daemon=True).start()
        assert not submitted.wait(0.3)
        release.set()
        assert submitted.wait(5)
