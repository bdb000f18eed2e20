"""The FastAPI application of ``vcframe serve``: the REST API under ``/v1``, ``/healthz`` and the page.

``create_app(settings, registry)`` builds it; ``vcframe serve`` runs it with uvicorn. Models load once per
process (:class:`~vcframe.serve.engine.Engine`) and run on one worker thread behind a bounded queue
(:class:`~vcframe.serve.worker.InferenceWorker`); handlers only await the worker's futures.

The routes live in one ``APIRouter`` per resource, each in its own private module: ``_page`` (``/`` and
``/static``), ``_server`` (``/healthz``, ``/v1/info``), ``_components`` (``/v1/plugins``), ``_voices``
(``/v1/voices``), ``_embeddings`` (``/v1/embeddings``) and ``_speech`` (``/v1/speech``, ``/v1/speech/stream``,
``/v1/jobs``). What they share, a :class:`~vcframe.serve._state.ServerState`, sits on ``app.state.vcframe`` and
reaches them as a FastAPI dependency (``state: State``); their common form fields are in ``_fields``. This
module puts them together with the lifespan (worker, preload, job sweeper, shutdown), the middleware and the
error handlers that turn every error into a JSON problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from vcframe import __version__
from vcframe.config import Settings
from vcframe.discovery import Registry
from vcframe.errors import VcframeError
from vcframe.serve import _components, _embeddings, _page, _server, _speech, _voices
from vcframe.serve._state import ServerState
from vcframe.serve.engine import speak
from vcframe.serve.jobs import JobStore
from vcframe.serve.problems import PROBLEM_MEDIA_TYPE, problem, problem_of
from vcframe.serve.security import FrontDoor
from vcframe.serve.settings import ServeSettings

__all__ = ["ROUTERS", "ServerState", "create_app", "speak"]

log = logging.getLogger("vcframe.serve")

#: The routers, in the order their routes are matched and listed in the OpenAPI document.
ROUTERS = (
    _page.router,
    _server.router,
    _components.router,
    _voices.router,
    _embeddings.router,
    _speech.router,
)
#: Slack over the largest upload for the other form fields of a request body.
FORM_OVERHEAD_BYTES = 256 * 1024
#: How long shutdown waits for the task running on the worker (it is asked to stop at its next progress report).
STOP_WAIT_S = 2.0


def create_app(
    settings: Settings,
    registry: Registry,
    serve: ServeSettings | None = None,
    *,
    voice_store: Any = None,
) -> FastAPI:
    """The application. ``voice_store``: a :class:`vcframe.voices.VoiceStore` (default: the user's)."""
    serve = serve or ServeSettings()
    state = ServerState(settings, registry, serve, voice_store)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.worker.start()
        if serve.preload:
            with contextlib.suppress(VcframeError):  # a broken default is reported by the requests that use it
                state.worker.submit(state.engine.preload).add_done_callback(_log_preload)
        sweeper = asyncio.create_task(_sweep_forever(state.jobs, min(60.0, serve.job_ttl_s / 2)))
        try:
            yield
        finally:
            sweeper.cancel()
            state.begin_shutdown()  # first: cancelled jobs end their event streams and write no result
            state.jobs.close()
            state.worker.stop(STOP_WAIT_S)

    app = FastAPI(
        title="vcframe",
        version=__version__,
        summary="Voice cloning from swappable plugins: speaker encoder -> synthesizer -> vocoder.",
        lifespan=lifespan,
        docs_url=None,  # the Swagger page loads scripts from a CDN; /openapi.json is the contract
        redoc_url=None,
    )
    app.state.vcframe = state
    _install_error_handlers(app)
    if serve.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(serve.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["*"],
            expose_headers=[
                "X-Vcframe-Seed",
                "X-Vcframe-Similarity",
                "X-Vcframe-Components",
                "X-Vcframe-Duration",
                "X-Vcframe-Job",
                "X-Vcframe-Sample-Rate",
                "Location",
            ],
        )
    app.add_middleware(
        FrontDoor,
        allowed_hosts=serve.host_allowlist(),
        cors_origins=serve.cors_origins,
        max_body_bytes=serve.max_upload_bytes + FORM_OVERHEAD_BYTES,
    )
    for router in ROUTERS:
        app.include_router(router)
    return app


def _log_preload(future: Any) -> None:
    error = future.exception() if not future.cancelled() else None
    if error is not None:
        log.warning("preloading the default components failed: %s", error)


async def _sweep_forever(jobs: JobStore, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        jobs.sweep()


# -- errors ------------------------------------------------------------------------------------------


def _problem_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


#: Body types of the form endpoints, and what to do about another body.
FORM_MEDIA_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
FORM_HINT = "send the fields as multipart/form-data, as the page does (curl: -F text='Hello.' -F voice=clara)"


def _malformed_body(request: Request, error: RequestValidationError) -> dict[str, Any] | None:
    """The 400 problem of a form endpoint's body that is not a readable form (JSON, bytes, broken multipart),
    or None when the body is a form (its fields are then checked one by one: 422)."""
    if not any(issue.get("loc", ("",))[0] == "body" for issue in error.errors()):
        return None
    route = f"{request.method} {request.url.path}"
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in FORM_MEDIA_TYPES:
        detail = f"{route} takes form fields, not {media_type or 'a body without a Content-Type'}"
        return problem(400, detail, hint=FORM_HINT, error="MalformedBody")
    declared = request.headers.get("content-length", "")
    if isinstance(error.body, FormData) and not len(error.body) and declared.isdigit() and int(declared) > 0:
        return problem(
            400, f"{route}: no readable field in the {media_type} body", hint=FORM_HINT, error="MalformedBody"
        )
    return None


def _install_error_handlers(app: FastAPI) -> None:
    async def vcframe_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, VcframeError)
        status, body = problem_of(error)
        if status == 503 and error.hint and body["hint"] != error.hint:
            log.warning("%s %s: %s (%s)", request.method, request.url.path, error.message, error.hint)
        return _problem_response(status, body, getattr(error, "headers", None))

    async def validation_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        malformed = _malformed_body(request, error)
        if malformed is not None:
            return _problem_response(400, malformed)
        sent = error.body if isinstance(error.body, FormData) else None
        problems = []
        for issue in error.errors()[:5]:
            where = ".".join(str(part) for part in issue.get("loc", ()) if part not in ("body", "query", "path"))
            message = f"{where or 'request'}: {issue.get('msg', 'invalid')}"
            if issue.get("type") == "missing" and sent is not None and where in sent:  # sent empty, read as missing
                message = "the text is empty" if where == "text" else f"{where}: empty"
            problems.append(message)
        hint = "give some words to say" if problems == ["the text is empty"] else "fix the field named above"
        body = problem(422, "; ".join(problems), hint=hint, error="RequestValidationError")
        return _problem_response(422, body)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 400:  # Starlette could not parse the body (e.g. multipart without a boundary)
            body = problem(
                400,
                f"malformed request body ({str(error.detail).rstrip('.')})",
                hint=FORM_HINT,
                error="MalformedBody",
            )
            return _problem_response(400, body, dict(error.headers or {}))
        body = problem(error.status_code, str(error.detail), error="HTTPError")
        return _problem_response(error.status_code, body, dict(error.headers or {}))

    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=error)
        body = problem(
            500,
            f"unexpected {type(error).__name__}",
            hint="the server log has the traceback; please report it",
            error="InternalError",
        )
        return _problem_response(500, body)

    app.add_exception_handler(VcframeError, vcframe_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
