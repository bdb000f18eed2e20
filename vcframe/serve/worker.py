"""One inference thread behind a bounded queue.

Async request handlers never run a model: they :meth:`InferenceWorker.submit` a task and await its future.
When ``queue_size`` tasks are already waiting, ``submit`` raises :class:`~vcframe.serve.problems.QueueFull`
(429) at once with a ``Retry-After`` estimated from recent task durations, so a busy server answers fast
and ``/healthz`` (which never touches the worker) stays responsive. A waiting task whose client went away
is withdrawn (:meth:`InferenceWorker.withdraw`), which frees its slot at once.
"""

from __future__ import annotations

import logging
import math
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
    """A daemon thread running submitted tasks one at a time, in order.

    Args:
        queue_size: tasks that may wait (besides the running one) before ``submit`` raises QueueFull; >= 1.
    """

    def __init__(self, queue_size: int) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.queue_size = queue_size
        self._waiting: deque[_Task] = deque()
        self._changed = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        self._recent_seconds: deque[float] = deque(maxlen=20)

    def start(self) -> None:
        """Start the thread (idempotent)."""
        with self._changed:
            self._stop = False
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._loop, name="vcframe-inference", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel waiting tasks, let the running one finish (up to ``timeout`` s) and end the thread.

        A task still running after ``timeout`` is left to the daemon thread, which dies with the process.
        """
        self.drop_waiting()
        with self._changed:
            self._stop = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)

    def drop_waiting(self, error: BaseException | None = None) -> int:
        """Take every waiting task out of the queue: its future fails with ``error`` (None: is cancelled).

        The running task is not touched. Returns how many tasks were dropped.
        """
        with self._changed:
            dropped = list(self._waiting)
            self._waiting.clear()
        for future, _ in dropped:
            if error is None:
                future.cancel()
            elif future.set_running_or_notify_cancel():
                future.set_exception(error)
        return len(dropped)

    def withdraw(self, future: Future[Any]) -> bool:
        """Take the task of ``future`` out of the queue and cancel it; False if it is not waiting (any more)."""
        with self._changed:
            for item in self._waiting:
                if item[0] is future:
                    self._waiting.remove(item)
                    break
            else:
                return False
        future.cancel()
        return True

    @property
    def pending(self) -> int:
        """Tasks waiting (not counting the one running)."""
        return len(self._waiting)

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
        with self._changed:
            if len(self._waiting) >= self.queue_size:
                seconds = self.retry_after()
                raise QueueFull(
                    f"the server is busy: {self.queue_size} requests are already waiting",
                    hint=f"retry in {seconds} s",
                    headers={"Retry-After": str(seconds)},
                )
            self._waiting.append((future, task))
            self._changed.notify()
        return future

    def _next(self) -> _Task | None:
        """The next task to run, waiting for one; None once the worker is stopped."""
        with self._changed:
            while not self._waiting and not self._stop:
                self._changed.wait()
            if self._stop:
                return None
            return self._waiting.popleft()

    def _loop(self) -> None:
        while (item := self._next()) is not None:
            future, task = item
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while waiting
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
