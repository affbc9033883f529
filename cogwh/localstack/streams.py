"""DynamoDB stream records delivered after the write, as Lambda's event source mappings do.

moto hands each stream record to the consuming function synchronously, inside the writer's own
PutItem, UpdateItem or TransactWriteItems call (LOCAL-STACK.md): the writer waits for the consumer, a
consumer runs inside whatever event loop the writer runs, and the writer's locks are held meanwhile.
On AWS the write returns and Lambda polls the stream. Here each event source mapping gets a queue and
one worker thread (made on its first record, stopped when the stack closes):

- the write enqueues its record and returns (in stream order: moto appends records under the shard's
  lock, and the record is enqueued there);
- the worker invokes the function with the records in that order, one batch at a time, as moto does
  (one record per batch: moto ignores BatchSize and never retries a failed batch);
- :meth:`StreamWorkers.drain` waits until every record written so far has been delivered, and every
  record those deliveries wrote in turn: what tests and the demo call before they look at a
  consumer's effects.

At close the worker finishes the batch in hand; records still queued are dropped (logged), as a
deleted stack's stream would drop them.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from cogwh.localstack.errors import LocalStackError

log = logging.getLogger("cogwh.localstack")

Delivery = Callable[[], Any]
_STOP = object()


class StreamWorkers:
    """One queue and one worker thread per event source mapping (``key``: function ARN, stream ARN)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queues: dict[tuple[str, str], queue.SimpleQueue[Any]] = {}
        self._threads: list[threading.Thread] = []
        self._pending = 0
        self._closed = False
        self._worker_idents: set[int] = set()

    def submit(self, function_arn: str, stream_arn: str, deliver: Delivery) -> None:
        """Queue one batch for the mapping's worker (in order); returns at once."""
        key = (function_arn, stream_arn)
        with self._lock:
            if self._closed:
                log.warning("stream record for %s dropped: the local stack is closing", function_arn)
                return
            pending = self._queues.get(key)
            if pending is None:
                pending = self._queues[key] = queue.SimpleQueue()
                thread = threading.Thread(
                    target=self._work,
                    args=(pending, key),
                    name=f"cogwh-stream:{function_arn.rsplit(':', 1)[-1]}",
                    daemon=True,
                )
                self._threads.append(thread)
                # in an empty context: the worker belongs to no function (the writer may be one)
                contextvars.Context().run(thread.start)
            self._pending += 1
            pending.put(deliver)

    def _work(self, pending: queue.SimpleQueue[Any], key: tuple[str, str]) -> None:
        with self._lock:
            self._worker_idents.add(threading.get_ident())
        while True:
            deliver = pending.get()
            if deliver is _STOP:
                return
            try:
                deliver()
            except Exception:  # a consumer's own failure is already its payload: this is moto's
                log.exception("delivering a stream record to %s failed", key[0])
            finally:
                with self._lock:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.notify_all()

    @property
    def pending(self) -> int:
        """Batches queued or being delivered."""
        with self._lock:
            return self._pending

    def drain(self, timeout: float) -> None:
        """Wait until nothing is queued or being delivered (also what deliveries wrote meanwhile)."""
        if threading.get_ident() in self._worker_idents:
            raise LocalStackError("drain_streams() called from a stream consumer would wait for itself")
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout=timeout):
                raise LocalStackError(
                    f"stream records still undelivered after {timeout} s: {self._pending} batch(es) pending"
                )

    def close(self, timeout: float) -> None:
        """Drop what is queued, let each worker finish its batch in hand, stop the workers."""
        with self._lock:
            self._closed = True
            dropped = 0
            for pending in self._queues.values():
                while True:
                    try:
                        item = pending.get_nowait()
                    except queue.Empty:
                        break
                    if item is not _STOP:
                        dropped += 1
                pending.put(_STOP)
            self._pending -= dropped
            if self._pending == 0:
                self._idle.notify_all()
            threads = list(self._threads)
        if dropped:
            log.info("dropped %d undelivered stream record batch(es) at close", dropped)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s still delivering at close", thread.name)
