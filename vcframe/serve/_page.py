"""The page of ``vcframe serve``: ``/`` and its files under ``/static`` (kept out of the OpenAPI document)."""

from __future__ import annotations

import importlib.resources

from fastapi import APIRouter
from fastapi.responses import Response

from vcframe.serve.problems import NotFound

#: The page's Content-Security-Policy: nothing inline, nothing from another origin.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; media-src 'self' blob:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
#: Files of the page, by URL name -> media type (nothing else under /static is served).
STATIC_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "recorder-worklet.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

router = APIRouter(include_in_schema=False)


def _static_bytes(name: str) -> bytes:
    return importlib.resources.files("vcframe.serve").joinpath("static", name).read_bytes()


@router.api_route("/", methods=["GET", "HEAD"])
def page() -> Response:
    return Response(
        _static_bytes("index.html"),
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
    )


@router.api_route("/static/{name}", methods=["GET", "HEAD"])
def static(name: str) -> Response:
    if name not in STATIC_FILES:
        raise NotFound(f"no static file {name!r}")
    return Response(
        _static_bytes(name),
        media_type=STATIC_FILES[name],
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
    )
