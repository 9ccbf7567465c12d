"""The writer thread: row groups are encoded, compressed and written while the loop parses the next poll.

Parquet encoding releases the GIL, so this thread runs on the second core. At most `depth` row
groups wait for it; submitting more blocks until one is written, which bounds the memory held by
waiting row groups (they are counted against the memory budget too). Work runs in submission
order. A task's exception is kept in its future and raised to whoever waits for it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

_STOP = None


class WriteQueue:
    """One background thread and a bounded queue of writes."""

    def __init__(self, depth: int = 2) -> None:
        self._tasks: queue.Queue[tuple[Callable[[], object], int, Future[None]] | None] = queue.Queue(
            maxsize=depth
        )
        self._lock = threading.Condition()
        self._pending_bytes = 0
        self._thread = threading.Thread(target=self._work, name="row-group-writer", daemon=True)
        self._thread.start()

    @property
    def pending_bytes(self) -> int:
        """Bytes of row groups submitted and not yet written."""
        with self._lock:
            return self._pending_bytes

    def submit(self, write: Callable[[], object], nbytes: int) -> Future[None]:
        """Queue a write holding nbytes of memory until it is done; blocks while the queue is full."""
        future: Future[None] = Future()
        with self._lock:
            self._pending_bytes += nbytes
        self._tasks.put((write, nbytes, future))
        return future

    def _work(self) -> None:
        while (task := self._tasks.get()) is not _STOP:
            write, nbytes, future = task
            try:
                write()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, never lost
                future.set_exception(exc)
            else:
                future.set_result(None)
            finally:
                with self._lock:
                    self._pending_bytes -= nbytes
                    self._lock.notify_all()

    def wait_until_pending_at_most(self, nbytes: int) -> None:
        """Block until the row groups still waiting hold at most nbytes (memory pressure)."""
        with self._lock:
            self._lock.wait_for(lambda: self._pending_bytes <= max(0, nbytes))

    def close(self) -> None:
        """Let queued writes finish, then stop the thread."""
        self._tasks.put(_STOP)
        self._thread.join()
