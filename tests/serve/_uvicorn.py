"""A real uvicorn server in a thread, for tests that need HTTP on a socket (browsers, disconnecting clients), and
:func:`until` to wait there for what the server does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any


def uvicorn_in_thread(app: Any, *, lifespan: str) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a daemon thread on a free loopback port; yields the base URL, then stops
    the server. For fixtures: ``yield from uvicorn_in_thread(app, lifespan="on")``."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def until(condition: Callable[[], bool], timeout: float, what: str, *, poll_s: float = 0.01) -> float:
    """Poll ``condition`` every ``poll_s`` seconds until it holds; fails naming ``what`` after ``timeout`` seconds.
    Returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(poll_s)
    return time.monotonic() - started
