"""Running the application with uvicorn: bind first (one-line error when the port is taken), stop promptly.

``vcframe serve`` binds its socket itself before it prints its banner, so a busy port is a one-line
:class:`~vcframe.errors.ConfigError` instead of a banner followed by uvicorn's raw error. On Ctrl+C (SIGINT) or
SIGTERM, :func:`serve_forever` first stops the application's work (:meth:`ServerState.begin_shutdown
<vcframe.serve.app.ServerState.begin_shutdown>`: live jobs are cancelled, so their event streams end, waiting
requests get 503 and the running task stops at its next progress report), says so, and then lets uvicorn
close the connections, waiting at most ``GRACE_S`` seconds for them.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

from vcframe.errors import ConfigError

#: Seconds uvicorn waits for open connections after the work was cancelled, before it cancels their tasks.
GRACE_S = 3.0


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (port 0: any free one), or a one-line ConfigError saying why not."""
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    shown = f"[{address}]:{port}" if family == socket.AF_INET6 else f"{address}:{port}"
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn; a listening server still wins
        sock.bind((address, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"cannot listen on {shown}: the port is in use (another vcframe serve?)",
                hint="stop the other server, or pick another port with --port",
            ) from None
        if error.errno == errno.EACCES:
            raise ConfigError(
                f"cannot listen on {shown}: permission denied", hint="use a port above 1023 with --port"
            ) from None
        if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(
                f"cannot listen on {shown}: no such address on this machine",
                hint="use 127.0.0.1 (this machine only), 0.0.0.0 (every interface) or one of its addresses",
            ) from None
        raise ConfigError(
            f"cannot listen on {shown}: {error.strerror or error}", hint="check --host and --port"
        ) from None
    sock.set_inheritable(True)
    return sock


def serve_forever(application: Any, sock: socket.socket, *, say: Callable[[str], None]) -> None:
    """Serve ``application`` (from :func:`~vcframe.serve.app.create_app`) on ``sock`` until SIGINT or SIGTERM.

    ``say`` prints one line: what the shutdown stopped, and that the server stopped.
    """
    import uvicorn

    state = application.state.vcframe

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            stopped = state.begin_shutdown()
            say(
                f"vcframe serve: stopping: {stopped['jobs']} unfinished job(s) cancelled, "
                f"{stopped['requests']} waiting request(s) dropped"
            )
            await super().shutdown(sockets)
            say("vcframe serve: stopped")

    config = uvicorn.Config(
        application, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=int(GRACE_S)
    )
    try:
        Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn raises the SIGINT it caught again once it has shut down
        pass
    finally:
        sock.close()
