"""The server's front door, one pure-ASGI middleware: host allowlist, same-origin writes, body size, headers.

* Host: a request whose ``Host`` header (port aside) is not in the allowlist gets 400. This stops DNS
  rebinding: a page on ``evil.example`` resolved to 127.0.0.1 still sends ``Host: evil.example``.
* Cross-origin writes: a POST, PUT, PATCH or DELETE whose ``Sec-Fetch-Site`` says ``cross-site`` or
  ``same-site``, or whose ``Origin`` differs from the request's own host, gets 403, unless the origin was
  configured with ``--cors-origin``. Clients that send neither header (curl, scripts) are not browsers
  acting for another site and pass.
* Body size: a ``Content-Length`` over the limit gets 413 before any byte is read; a chunked body is counted
  as it streams and cut off at the limit with the same 413.
* Headers on every response: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  ``X-Frame-Options: DENY``, ``Cross-Origin-Resource-Policy: same-origin`` and, unless the response set its
  own, ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'``.

Starlette's TrustedHostMiddleware does the host part too, but answers in plain text and drops IPv6 hosts
(``[::1]:8000``); this one answers with the same problem JSON as every other error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from vcframe.serve.problems import PROBLEM_MEDIA_TYPE, problem_bytes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_CSP = "default-src 'none'; frame-ancestors 'none'"
_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


class _BodyTooLarge(Exception):
    """The request body passed the limit while streaming."""


def split_host(host_header: str) -> str:
    """The host part of a Host header: ``example.org:8000`` -> ``example.org``, ``[::1]:8000`` -> ``[::1]``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class FrontDoor:
    """See the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: Iterable[str],
        cors_origins: Iterable[str] = (),
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.allowed_hosts = {host.lower() for host in allowed_hosts}
        self.allow_any_host = "*" in self.allowed_hosts
        self.cors_origins = {origin.rstrip("/").lower() for origin in cors_origins}
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, detail, hint, error = refusal
            await _send_problem(send, status, detail, hint, error)
            return
        received = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                if exceeded:
                    return  # the app answered a body cut off by the limit: 413 replaces it below
                started = True
                present = {key.lower() for key, _ in message.get("headers", [])}
                extra = [(key, value) for key, value in _SECURITY_HEADERS if key not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", API_CSP.encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            elif exceeded:
                return
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            exceeded = True
        if exceeded and not started:
            await _send_problem(send, *self._too_large())

    def _too_large(self) -> tuple[int, str, str, str]:
        return (
            413,
            f"the request body is larger than this server accepts ({self.max_body_bytes:,} bytes)",
            "upload a shorter clip or a compressed one (FLAC, OGG, MP3)",
            "PayloadTooLarge",
        )

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, str, str] | None:
        host = split_host(headers.get("host", ""))
        if not self.allow_any_host and host not in self.allowed_hosts:
            return (
                400,
                f"this server does not answer to the host {host or '(none)'!r}",
                "open it by the address it was started on, or start it with --allowed-host NAME",
                "BadRequest",
            )
        if scope["method"] in UNSAFE_METHODS:
            origin = headers.get("origin")
            fetch_site = headers.get("sec-fetch-site")
            allowed_origin = origin is not None and origin.rstrip("/").lower() in self.cors_origins
            own_origin = origin is not None and urlsplit(origin).netloc.lower() == headers.get("host", "").lower()
            if not allowed_origin and (
                (origin is not None and not own_origin) or fetch_site in ("cross-site", "same-site")
            ):
                return (
                    403,
                    f"cross-origin {scope['method']} refused (origin {origin or 'unknown'!r})",
                    "use the page this server serves, or start the server with --cors-origin ORIGIN",
                    "Forbidden",
                )
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return self._too_large()
        return None


async def _send_problem(send: Send, status: int, detail: str, hint: str, error: str) -> None:
    body = problem_bytes(status, detail, hint=hint, error=error)
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"content-security-policy", API_CSP.encode()),
        *_SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["FrontDoor", "split_host"]
