"""One inference thread behind a bounded queue.

Async request handlers never run a model: they :meth:`InferenceWorker.submit` a task and await its future.
When ``queue_size`` tasks are already waiting, ``submit`` raises :class:`~vcframe.serve.problems.QueueFull`
(429) at once with a ``Retry-After`` estimated from recent task durations, so a busy server answers fast
and ``/healthz`` (which never touches the worker) stays responsive.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from vcframe.serve.problems import QueueFull

T = TypeVar("T")
log = logging.getLogger("vcframe.serve")

_Task = tuple[Future[Any], Callable[[], Any]]


class InferenceWorker:
    """A daemon thread running submitted tasks one at a time, in order."""

    def __init__(self, queue_size: int) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.queue_size = queue_size
        self._queue: queue.Queue[_Task | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self._recent_seconds: deque[float] = deque(maxlen=20)
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread (idempotent)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._loop, name="vcframe-inference", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel waiting tasks, let the running one finish (up to ``timeout`` s) and end the thread."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        thread.join(timeout)

    @property
    def pending(self) -> int:
        """Tasks waiting (not counting the one running)."""
        return self._queue.qsize()

    @property
    def busy(self) -> bool:
        """A task is running now."""
        return self._running.is_set()

    def retry_after(self) -> int:
        """Seconds until a queue slot is likely free (recent mean task time, at least 1, at most 120)."""
        mean = sum(self._recent_seconds) / len(self._recent_seconds) if self._recent_seconds else 2.0
        return max(1, min(120, math.ceil(mean)))

    def submit(self, task: Callable[[], T]) -> Future[T]:
        """Queue ``task``; QueueFull (429 with Retry-After) if the queue is full."""
        future: Future[T] = Future()
        try:
            self._queue.put_nowait((future, task))
        except queue.Full:
            seconds = self.retry_after()
            raise QueueFull(
                f"the server is busy: {self.queue_size} requests are already waiting",
                hint=f"retry in {seconds} s",
                headers={"Retry-After": str(seconds)},
            ) from None
        return future

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, task = item
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while waiting (the client went away)
            self._running.set()
            started = time.perf_counter()
            try:
                result = task()
            except BaseException as error:  # noqa: BLE001 - handed to the waiting request
                future.set_exception(error)
            else:
                future.set_result(result)
            finally:
                self._recent_seconds.append(time.perf_counter() - started)
                self._running.clear()
