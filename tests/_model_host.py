"""A loopback HTTP server (127.0.0.1 only) that impersonates a model host for the `vcframe models` tests.

It answers like the Hugging Face Hub's ``/<owner>/<repo>/resolve/<revision>/<file>`` (HEAD with
``X-Repo-Commit``, ``X-Linked-Etag`` = sha256 and ``X-Linked-Size``; GET with ``Range``), optionally redirecting
to a "CDN" on another host name (``localhost``) as the Hub does for large files, and plain URLs under
``/files/<name>``. Misbehaviours are switched on per file: cut the connection after some bytes, refuse the next
few connections, hang without answering, or redirect. Every request is logged with its Range header.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from dataclasses import dataclass, field

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HostedFile:
    """One file the host serves, and how it misbehaves."""

    content: bytes
    cut_after: int | None = None  #: the first GET sends this many bytes, then the connection is closed
    refuse_after_cut: int = 0  #: connections closed without an answer after the cut
    hang: bool = False  #: never answer (until the host stops)
    cdn_redirect: bool = False  #: resolve URLs answer 302 to http://localhost:<port>/cdn/<name>
    announced_size: int | None = None  #: size the HEAD announces (default: the real one)
    gets: int = field(default=0, init=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


class ModelHost:
    """``with ModelHost() as host: host.files["CorentinJ/SV2TTS/encoder.pt"] = HostedFile(b"...")``; then
    ``HF_ENDPOINT=host.url`` and sources ``hf:CorentinJ/SV2TTS/encoder.pt`` or ``host.url + "/files/NAME"``."""

    def __init__(self) -> None:
        self.files: dict[str, HostedFile] = {}
        self.redirects: dict[str, str] = {}  #: plain path -> path it redirects to
        self.log: list[tuple[str, str, str | None]] = []
        self.stopping = threading.Event()
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def do_HEAD(self) -> None:
                self._answer(head=True)

            def do_GET(self) -> None:
                self._answer(head=False)

            def _answer(self, *, head: bool) -> None:
                host.log.append((self.command, self.path, self.headers.get("Range")))
                if self.path in host.redirects:
                    self._send_empty(302, {"Location": host.redirects[self.path]})
                    return
                key, resolve = host._key(self.path)
                hosted = host.files.get(key) if key is not None else None
                if hosted is None:
                    self._send_empty(404, {"X-Error-Code": "EntryNotFound"} if resolve else {})
                    return
                if hosted.hang:
                    host.stopping.wait(30)
                    self.close_connection = True
                    return
                hub_headers = {
                    "X-Repo-Commit": COMMIT,
                    "X-Linked-Etag": f'"{hosted.sha256}"',
                    "X-Linked-Size": str(hosted.announced_size or len(hosted.content)),
                    "ETag": f'"{hosted.sha256}"',
                }
                if resolve and hosted.cdn_redirect:
                    port = self.server.server_address[1]
                    self._send_empty(302, {**hub_headers, "Location": f"http://localhost:{port}/cdn/{key}"})
                    return
                self._send_content(hosted, head, hub_headers if resolve else {})

            def _send_empty(self, status: int, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _send_content(self, hosted: HostedFile, head: bool, extra: dict[str, str]) -> None:
                if not head:
                    hosted.gets += 1
                    if hosted.cut_after is not None and 1 < hosted.gets <= 1 + hosted.refuse_after_cut:
                        self.close_connection = True  # refuse: close without a status line
                        return
                start = 0
                wanted = self.headers.get("Range")
                if wanted and wanted.startswith("bytes=") and wanted.endswith("-"):
                    start = int(wanted[len("bytes=") : -1])
                body = hosted.content[start:]
                self.send_response(206 if start else 200)
                for name, value in extra.items():
                    self.send_header(name, value)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(hosted.content) - 1}/{len(hosted.content)}")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if head:
                    return
                if hosted.cut_after is not None and hosted.gets == 1:
                    self.wfile.write(body[: hosted.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _key(self, path: str) -> tuple[str | None, bool]:
        """(file key, whether the path is a Hub resolve URL) of a request path."""
        path = path.split("?")[0]
        if path.startswith("/files/"):
            return path.removeprefix("/files/"), False
        if path.startswith("/cdn/"):
            return path.removeprefix("/cdn/"), False
        parts = path.strip("/").split("/")
        if len(parts) >= 5 and parts[2] == "resolve":
            return "/".join([parts[0], parts[1], *parts[4:]]), True
        return None, False

    def __enter__(self) -> ModelHost:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
