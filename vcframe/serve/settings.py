"""Limits and network settings of ``vcframe serve`` (the pipeline's own settings stay in vcframe.config)."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field

#: Host names a server bound to a loopback address answers to.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServeSettings(BaseModel):
    """What the server accepts and how much work it takes on.

    The defaults suit one person on their own machine: the server binds to 127.0.0.1, answers only to
    loopback host names, takes clips of up to 10 MiB and 60 s, and keeps up to 8 requests waiting.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", description="Address the server binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port (0: any free port).")
    allowed_hosts: tuple[str, ...] = Field(
        default=(),
        description="Host header values accepted besides the bound host (and loopback names when bound there).",
    )
    cors_origins: tuple[str, ...] = Field(
        default=(),
        description="Origins (scheme://host[:port]) allowed to call the API from other pages; none by default.",
    )
    max_upload_bytes: int = Field(
        default=10 * 1024 * 1024, gt=0, description="Largest accepted audio upload, in bytes."
    )
    max_upload_seconds: float = Field(default=60.0, gt=0, description="Longest accepted audio upload, in seconds.")
    max_speech_chars: int = Field(
        default=600, gt=0, description="Longest text POST /v1/speech takes; longer texts go through /v1/jobs."
    )
    queue_size: int = Field(default=8, ge=1, le=1000, description="Requests that may wait for the inference worker.")
    job_ttl_s: float = Field(default=3600.0, gt=0, description="Seconds a finished job's result is kept.")
    max_jobs: int = Field(default=64, ge=1, description="Jobs kept at once (oldest finished ones are dropped first).")
    preload: bool = Field(default=True, description="Load the default components' models when the server starts.")

    def host_allowlist(self) -> list[str]:
        """Host header values TrustedHostMiddleware accepts (ports are ignored by it)."""
        hosts = [self.host, *self.allowed_hosts]
        if is_loopback(self.host) or self.host in ("0.0.0.0", "::"):
            hosts += list(LOOPBACK_HOSTS)
        # TrustedHostMiddleware compares the Host header without its port; IPv6 hosts arrive in brackets.
        normalised = [f"[{host}]" if ":" in host and not host.startswith("[") else host for host in hosts]
        return sorted(set(normalised))
