"""What the routes of ``vcframe serve`` share, and how they reach it: :class:`ServerState` lives on
``app.state.vcframe`` and a route asks for it with a FastAPI dependency (``state: State``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from vcframe.config import Settings
from vcframe.discovery import Registry
from vcframe.serve.engine import Engine, Progress
from vcframe.serve.jobs import JobStore
from vcframe.serve.problems import ClientGone, ServerStopping
from vcframe.serve.settings import ServeSettings
from vcframe.serve.worker import InferenceWorker

log = logging.getLogger("vcframe.serve")
T = TypeVar("T")

#: How often a request waiting for the worker checks that its client is still connected, in seconds.
DISCONNECT_POLL_S = 0.2


class ServerState:
    """What the routes share: settings, models, worker, jobs, voices."""

    def __init__(self, settings: Settings, registry: Registry, serve: ServeSettings, voice_store: Any) -> None:
        self.settings = settings
        self.registry = registry
        self.serve = serve
        self.engine = Engine(settings, registry)
        self.worker = InferenceWorker(serve.queue_size)
        self.jobs = JobStore(ttl_s=serve.job_ttl_s, max_jobs=serve.max_jobs)
        self.stopping = threading.Event()
        self._voice_store = voice_store

    def begin_shutdown(self) -> dict[str, int]:
        """Stop taking work and drop what there is: live jobs are cancelled (their event streams end), waiting
        requests fail with 503, and the running task stops at its next progress report. Idempotent.

        Returns what was stopped: ``{"jobs": cancelled live jobs, "requests": dropped waiting requests}``.
        """
        self.stopping.set()
        cancelled = self.jobs.cancel_all()
        dropped = self.worker.drop_waiting(ServerStopping())
        return {"jobs": cancelled, "requests": dropped}

    def checkpoint(self, abandoned: threading.Event) -> Progress:
        """A progress callback for a request's task: it raises once the client is gone or the server stops."""

        def check(stage: str, done: int, total: int) -> None:
            if self.stopping.is_set():
                raise ServerStopping()
            if abandoned.is_set():
                raise ClientGone("the client disconnected")

        return check

    @property
    def voices(self) -> Any:
        if self._voice_store is None:
            from vcframe.voices import VoiceStore

            self._voice_store = VoiceStore()
        return self._voice_store

    async def run(
        self, task: Callable[[], T], *, request: Request | None = None, abandoned: threading.Event | None = None
    ) -> T:
        """Run ``task`` on the inference worker and wait for it without blocking the event loop.

        With ``request``: while the task waits or runs, the client's connection is checked every
        ``DISCONNECT_POLL_S`` s; once it is gone the task leaves the queue (or, running, finds ``abandoned``
        set at its next :meth:`checkpoint`) and :class:`ClientGone` is raised.
        """
        if self.stopping.is_set():
            raise ServerStopping()
        self.worker.start()
        future = self.worker.submit(task)
        waiting = asyncio.wrap_future(future)
        if request is None:
            return await waiting

        def drop() -> None:
            if not self.worker.withdraw(future) and abandoned is not None:
                abandoned.set()  # running: it stops at its next checkpoint

        return await self.watch(waiting, request=request, on_gone=drop)

    async def watch(self, waiting: Awaitable[T], *, request: Request, on_gone: Callable[[], None]) -> T:
        """Await ``waiting`` while checking every ``DISCONNECT_POLL_S`` s that the client of ``request`` is still
        connected; once it is gone: ``on_gone()`` (stop the work), ``waiting`` is cancelled and
        :class:`ClientGone` is raised."""
        pending = asyncio.ensure_future(waiting)
        while True:
            done, _ = await asyncio.wait({pending}, timeout=DISCONNECT_POLL_S)
            if done:
                return pending.result()
            if await request.is_disconnected():
                on_gone()
                pending.cancel()
                log.info("%s %s: the client disconnected; its request was dropped", request.method, request.url.path)
                raise ClientGone("the client disconnected")


async def server_state(request: Request) -> ServerState:
    """The dependency every route takes its :class:`ServerState` from: the one ``create_app`` put on
    ``app.state.vcframe`` (async, so it runs on the event loop rather than in the thread pool)."""
    state: ServerState = request.app.state.vcframe
    return state


#: A route parameter ``state: State`` receives the application's :class:`ServerState`.
State = Annotated[ServerState, Depends(server_state)]
