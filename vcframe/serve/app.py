"""The FastAPI application of ``vcframe serve``: the REST API under ``/v1``, ``/healthz`` and the page.

``create_app(settings, registry)`` builds it; ``vcframe serve`` runs it with uvicorn. Models load once per
process (:class:`~vcframe.serve.engine.Engine`) and run on one worker thread behind a bounded queue
(:class:`~vcframe.serve.worker.InferenceWorker`); handlers only await the worker's futures.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import json
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, File, Form, Path, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from vcframe import __version__
from vcframe.config import Settings
from vcframe.discovery import Registry
from vcframe.errors import PluginError, VcframeError
from vcframe.serve import models
from vcframe.serve.engine import (
    Engine,
    Progress,
    SpeechResult,
    joined_mel,
    speak,
    speak_stream,
    streaming_wav_header,
    wav_bytes,
)
from vcframe.serve.jobs import JOB_ID_PATTERN, Job, JobCancelled, JobStore
from vcframe.serve.png import mel_png
from vcframe.serve.problems import (
    PROBLEM_MEDIA_TYPE,
    ClientGone,
    Conflict,
    Forbidden,
    InternalError,
    NotFound,
    ServerStopping,
    problem,
    problem_of,
    responses,
)
from vcframe.serve.security import FrontDoor
from vcframe.serve.settings import ServeSettings
from vcframe.serve.streaming import AudioChannel, AudioChunk, StreamEnd
from vcframe.serve.uploads import MEDIA_TYPES, AudioUpload, inspect_upload
from vcframe.serve.worker import InferenceWorker
from vcframe.specs import KINDS

log = logging.getLogger("vcframe.serve")
T = TypeVar("T")

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
#: Slack over the largest upload for the other form fields of a request body.
FORM_OVERHEAD_BYTES = 256 * 1024
SEED_MAX = 2**32 - 1
#: How often a request waiting for the worker checks that its client is still connected, in seconds.
DISCONNECT_POLL_S = 0.2
#: How long shutdown waits for the task running on the worker (it is asked to stop at its next progress report).
STOP_WAIT_S = 2.0

ComponentField = Annotated[
    str | None,
    Form(max_length=120, pattern=r"^[A-Za-z0-9_.:-]+$", description="Component name; default: the server's."),
]
SeedField = Annotated[
    int | None, Form(ge=0, le=SEED_MAX, description="Seed; default: a random one, echoed in X-Vcframe-Seed.")
]
VoiceField = Annotated[
    str | None, Form(max_length=40, description="Name of a sample or stored voice (GET /v1/voices).")
]
TextField = Annotated[str, Form(description="Text to speak.")]
ReferenceField = Annotated[
    UploadFile | None, File(description="Reference clip (WAV, FLAC, OGG or MP3) instead of a voice.")
]
JobIdPath = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="Job id from POST /v1/jobs.")]
VoiceNamePath = Annotated[str, Path(max_length=40, description="Voice name.")]

WAV_RESPONSE = {"content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}}
WAV_STREAM_RESPONSE = {
    "description": "A 16-bit mono WAV stream: a 44-byte header whose sizes are 0xFFFFFFFF (length unknown), then "
    "little-endian PCM samples at X-Vcframe-Sample-Rate Hz as they are made (chunked transfer).",
    **WAV_RESPONSE,
}


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
    _add_page_routes(app)
    _add_api_routes(app, state)
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


# -- page --------------------------------------------------------------------------------------------


def _static_bytes(name: str) -> bytes:
    return importlib.resources.files("vcframe.serve").joinpath("static", name).read_bytes()


def _add_page_routes(app: FastAPI) -> None:
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def page() -> Response:
        return Response(
            _static_bytes("index.html"),
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
        )

    @app.api_route("/static/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise NotFound(f"no static file {name!r}")
        return Response(
            _static_bytes(name),
            media_type=STATIC_FILES[name],
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
        )


# -- API ---------------------------------------------------------------------------------------------


async def _read_upload(state: ServerState, upload: UploadFile, name: str) -> AudioUpload:
    """An upload read (at most the limit + 1 byte) and checked; its spooled file is closed."""
    try:
        content = await upload.read(state.serve.max_upload_bytes + 1)
    finally:
        await upload.close()
    return inspect_upload(
        content, max_bytes=state.serve.max_upload_bytes, max_seconds=state.serve.max_upload_seconds, name=name
    )


def _check_text(text: str, limit: int, *, hint: str) -> str:
    from vcframe.errors import InputError

    if not text.strip():
        raise InputError("the text is empty", hint="give some words to say")
    if len(text) > limit:
        raise InputError(f"the text has {len(text):,} characters; this endpoint takes at most {limit:,}", hint=hint)
    return text


def _min_reference_seconds(state: ServerState, encoder: str) -> float | None:
    """The shortest reference ``encoder`` accepts with the server's options (None if it cannot be built)."""
    try:
        pipeline = state.engine.encoder_pipeline(encoder)
        return float(pipeline.specs["encoder"].resolve_io(pipeline.configs["encoder"])[0].min_duration_s)
    except (VcframeError, ValueError):
        return None


def _weights_fields(state: ServerState, kind: str, spec: Any) -> dict[str, str | None]:
    """``weights_status`` and ``weights`` of a component with the server's options (nothing when they do not
    validate: choosing it then fails with that error)."""
    from vcframe.bundles import configured_entry, weights_label
    from vcframe.discovery import make_config

    if spec is None:
        return {}
    try:
        config = make_config(spec, state.settings.component_options(kind, spec.name))
    except VcframeError:
        return {}
    entry = configured_entry(kind, spec.name, config)
    return {"weights_status": entry.status if entry else None, "weights": weights_label(kind, spec.name, config)}


def _voice_summary(voice: Any) -> models.VoiceSummary:
    summary = voice.summary()
    return models.VoiceSummary(**summary, deletable=voice.kind == "user", preview=f"/v1/voices/{voice.name}/audio")


def _find_voice(state: ServerState, name: str, *, field: bool = False) -> Any:
    """A voice by name: 422 for a malformed name, 404 for an unknown one (422 too when ``field``: a form field
    named it, not the URL). Never a path."""
    from vcframe.errors import InputError
    from vcframe.voices import check_voice_name

    check_voice_name(name)
    for voice in state.voices.list():
        if voice.name == name:
            return voice
    hint = "pick one from the page's voice list (GET /v1/voices), or add one"
    if field:
        raise InputError(f"unknown voice {name!r}", hint=hint)
    raise NotFound(f"no voice {name!r}", hint=hint)


def _components_header(components: dict[str, str]) -> str:
    """``X-Vcframe-Components``: ``encoder=NAME,synthesizer=NAME,vocoder=NAME``."""
    return ",".join(f"{kind}={name}" for kind, name in components.items())


def _speech_headers(result: SpeechResult) -> dict[str, str]:
    headers = {
        "X-Vcframe-Seed": str(result.seed),
        "X-Vcframe-Components": _components_header(result.components),
        "X-Vcframe-Duration": f"{result.duration_s:.3f}",
    }
    if result.similarity is not None:
        headers["X-Vcframe-Similarity"] = f"{result.similarity:.4f}"
    return headers


def _add_api_routes(app: FastAPI, state: ServerState) -> None:  # noqa: C901 - one place for every route
    serve = state.serve

    @app.get("/healthz", response_model=models.Health, responses=responses(), tags=["server"])
    async def healthz() -> models.Health:
        """Liveness: answers at once, however busy the inference worker is."""
        return models.Health(
            version=__version__,
            queue_pending=state.worker.pending,
            queue_size=state.worker.queue_size,
            busy=state.worker.busy,
            jobs=len(state.jobs),
        )

    @app.get("/v1/info", response_model=models.Info, responses=responses(), tags=["server"])
    def info() -> models.Info:
        """Version, default components and the server's limits."""
        defaults = state.engine.defaults()
        min_reference = _min_reference_seconds(state, defaults["encoder"]) or 0.0
        limits = models.Limits(
            max_upload_bytes=serve.max_upload_bytes,
            max_upload_seconds=serve.max_upload_seconds,
            max_speech_chars=min(serve.max_speech_chars, state.settings.max_text_chars),
            max_job_chars=state.settings.max_text_chars,
            min_reference_seconds=min_reference,
            audio_formats=sorted(MEDIA_TYPES),
            job_ttl_s=serve.job_ttl_s,
            queue_size=serve.queue_size,
        )
        return models.Info(version=__version__, defaults=defaults, limits=limits)

    # -- plugins --

    @app.get("/v1/plugins", response_model=models.PluginList, responses=responses(), tags=["plugins"])
    def plugins() -> models.PluginList:
        """Installed components of every kind (specs only; no model is loaded)."""
        defaults = state.engine.defaults()
        rows = []
        for row in state.registry:
            rows.append(
                models.PluginSummary(
                    kind=row.kind,
                    name=row.name,
                    distribution=row.distribution,
                    version=row.version,
                    status=row.status,
                    summary=row.spec.summary if row.spec else None,
                    api_version=row.spec.api_version if row.spec else None,
                    capabilities=sorted(row.spec.capabilities) if row.spec else [],
                    error=row.error,
                    warning=row.warning,
                    default=defaults.get(row.kind) in (row.name, row.qualified_name),
                    min_reference_seconds=_min_reference_seconds(state, row.qualified_name)
                    if row.kind == "encoder" and row.status in ("ok", "warning")
                    else None,
                    **_weights_fields(state, row.kind, row.spec),
                )
            )
        return models.PluginList(defaults=defaults, plugins=rows)

    @app.get(
        "/v1/plugins/{kind}/{name}", response_model=models.PluginDetail, responses=responses(404), tags=["plugins"]
    )
    def plugin(
        kind: Annotated[str, Path(description="encoder, synthesizer or vocoder")],
        name: Annotated[str, Path(max_length=120, description="Component name (or DISTRIBUTION:NAME).")],
    ) -> models.PluginDetail:
        """One component's spec and the JSON schema of its options."""
        if kind not in KINDS:
            raise NotFound(f"no component kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
        try:
            spec = state.registry.get(kind, name)
        except PluginError as error:
            raise NotFound(error.message, hint=error.hint) from error
        payload = json.loads(json.dumps(spec.model_dump(mode="json", exclude={"config_model"}), default=str))
        return models.PluginDetail(
            kind=kind, name=spec.name, spec=payload, config_schema=spec.config_model.model_json_schema()
        )

    # -- voices --

    @app.get("/v1/voices", response_model=models.VoiceList, responses=responses(), tags=["voices"])
    def voices() -> models.VoiceList:
        """Sample voices (shipped, read-only), then voices added on this machine."""
        return models.VoiceList(voices=[_voice_summary(voice) for voice in state.voices.list()])

    @app.get("/v1/voices/{name}", response_model=models.VoiceSummary, responses=responses(404), tags=["voices"])
    def voice(name: VoiceNamePath) -> models.VoiceSummary:
        """One voice."""
        return _voice_summary(_find_voice(state, name))

    @app.get(
        "/v1/voices/{name}/audio",
        response_class=Response,
        responses={200: WAV_RESPONSE, **responses(404)},
        tags=["voices"],
    )
    def voice_audio(name: VoiceNamePath) -> Response:
        """The voice's clip as 16-bit WAV, for previews."""
        from vcframe.audio import load_audio

        found = _find_voice(state, name)
        return Response(wav_bytes(load_audio(found.clip)), media_type="audio/wav")

    @app.post(
        "/v1/voices",
        status_code=201,
        response_model=models.VoiceSummary,
        responses=responses(403, 409, 429, 503, 413, 415),
        tags=["voices"],
    )
    async def add_voice(
        request: Request,
        response: Response,
        name: Annotated[str, Form(max_length=40, description="New voice name: a-z, 0-9, '-' and '_'.")],
        clip: Annotated[UploadFile, File(description="The speaker's clip (WAV, FLAC, OGG or MP3).")],
        consent: Annotated[
            bool, Form(description="The speaker agreed to have their voice cloned (must be true).")
        ] = False,
        description: Annotated[str, Form(max_length=200, description="One line shown in listings.")] = "",
        encoder: ComponentField = None,
    ) -> models.VoiceSummary:
        """Add a voice from an upload; needs ``consent=true``. Sample voices' names are taken."""
        from vcframe.voices import check_voice_name

        check_voice_name(name)
        if not consent:
            from vcframe.errors import InputError

            await clip.close()
            raise InputError(
                "adding a voice needs the speaker's consent",
                hint="confirm that the speaker agreed to have their voice cloned (tick the consent box; "
                "API: consent=true)",
            )
        if name in state.voices.names():
            await clip.close()
            raise Conflict(f"voice {name!r} already exists", hint="choose another name or delete it first")
        upload = await _read_upload(state, clip, "clip")
        pipeline = state.engine.encoder_pipeline(encoder)
        added = await state.run(
            lambda: state.voices.add(
                name, upload.waveform(), pipeline=pipeline, consent=True, description=" ".join(description.split())
            ),
            request=request,
        )
        response.headers["Location"] = f"/v1/voices/{added.name}"
        return _voice_summary(added)

    @app.delete("/v1/voices/{name}", status_code=204, responses=responses(403, 404), tags=["voices"])
    def delete_voice(name: VoiceNamePath) -> Response:
        """Delete a voice added on this machine (sample voices cannot be deleted: 403)."""
        found = _find_voice(state, name)
        if found.kind != "user":
            raise Forbidden(f"{name!r} is a sample voice and cannot be deleted", hint="delete a voice you added")
        state.voices.remove(name)
        return Response(status_code=204)

    # -- embeddings --

    @app.post(
        "/v1/embeddings",
        response_model=models.EmbeddingResult,
        responses=responses(403, 429, 503, 413, 415),
        tags=["embeddings"],
    )
    async def embeddings(
        request: Request,
        clip: Annotated[UploadFile, File(description="A clip of the speaker (WAV, FLAC, OGG or MP3).")],
        encoder: ComponentField = None,
    ) -> models.EmbeddingResult:
        """The speaker embedding of an uploaded clip."""
        upload = await _read_upload(state, clip, "clip")
        pipeline = state.engine.encoder_pipeline(encoder)

        def task() -> tuple[Any, float]:
            waveform = upload.waveform()
            return pipeline.embed([waveform]), waveform.durations[0]

        embedding, duration_s = await state.run(task, request=request)
        return models.EmbeddingResult(
            encoder=pipeline.specs["encoder"].name,
            space=embedding.spec.space,
            dim=embedding.spec.dim,
            l2_normalized=embedding.spec.l2_normalized,
            vector=[float(value) for value in embedding.vector[0].tolist()],
            duration_s=round(duration_s, 3),
        )

    # -- speech --

    async def _speech_inputs(
        text: str,
        voice: str | None,
        reference: UploadFile | None,
        encoder: str | None,
        synthesizer: str | None,
        vocoder: str | None,
        limit: int,
        hint: str,
    ) -> tuple[Any, Any, AudioUpload | None]:
        from vcframe.errors import InputError

        _check_text(text, limit, hint=hint)
        has_reference = reference is not None and bool(reference.filename or reference.size)
        if bool(voice) == has_reference:
            if reference is not None:
                await reference.close()
            raise InputError("give exactly one of 'voice' and 'reference'", hint="pick a voice or upload a clip")
        pipeline = state.engine.pipeline(encoder, synthesizer, vocoder)
        pipeline.sentences(text)  # text with nothing to say is refused now, not on the worker
        found = _find_voice(state, voice, field=True) if voice else None
        upload = await _read_upload(state, reference, "reference") if reference is not None and has_reference else None
        return pipeline, found, upload

    @app.post(
        "/v1/speech",
        response_class=Response,
        responses={200: WAV_RESPONSE, **responses(403, 409, 429, 503, 413, 415)},
        tags=["speech"],
    )
    async def speech(
        request: Request,
        text: TextField,
        voice: VoiceField = None,
        reference: ReferenceField = None,
        encoder: ComponentField = None,
        synthesizer: ComponentField = None,
        vocoder: ComponentField = None,
        seed: SeedField = None,
    ) -> Response:
        """Speak ``text`` in a stored voice or an uploaded reference's voice; answers 16-bit WAV.

        ``X-Vcframe-Seed`` echoes the seed (reuse it for the same audio), ``X-Vcframe-Similarity`` is the
        cosine similarity of the output's speaker embedding to the reference's.
        """
        limit = min(serve.max_speech_chars, state.settings.max_text_chars)
        pipeline, found, upload = await _speech_inputs(
            text, voice, reference, encoder, synthesizer, vocoder, limit, "send long texts to POST /v1/jobs"
        )
        chosen = secrets.randbelow(2**31) if seed is None else seed
        abandoned = threading.Event()
        progress = state.checkpoint(abandoned)

        def task() -> tuple[SpeechResult, bytes]:
            result = speak(pipeline, text, voice=found, upload=upload, seed=chosen, progress=progress)
            return result, wav_bytes(result.waveform)

        result, audio = await state.run(task, request=request, abandoned=abandoned)
        return Response(audio, media_type="audio/wav", headers=_speech_headers(result))

    # -- jobs --

    def _run_job(job: Job, work: Callable[[], SpeechResult]) -> BaseException | None:
        """A job's work on the inference worker; its outcome is recorded in the job, never raised.

        Returns the error that failed it (None when it is done or cancelled)."""
        if job.cancel_requested.is_set():
            job.move_to("cancelled")
            return None
        job.move_to("running")
        try:
            result = work()
            mel = joined_mel(result.mels)
            state.jobs.finish(job, result.summary(), wav_bytes(result.waveform), None if mel is None else mel_png(mel))
        except JobCancelled:
            job.move_to("cancelled")
        except VcframeError as error:
            status, body = problem_of(error)
            job.error = {key: body[key] for key in ("status", "detail", "hint", "error")}
            job.move_to("failed", error=job.error)
            return error
        except Exception as error:  # noqa: BLE001 - recorded in the job; the traceback goes to the log
            log.exception("job %s failed", job.id)
            job.error = {
                "status": 500,
                "detail": f"unexpected {type(error).__name__}",
                "hint": None,
                "error": "InternalError",
            }
            job.move_to("failed", error=job.error)
            return error
        return None

    def _start_job(
        pipeline: Any, text: str, voice: str | None, seed: int | None, task: Callable[[Job], Any]
    ) -> tuple[Job, Any]:
        """A new job for ``text`` (the job limit applies: 429) with ``task(job)`` queued on the worker (429 when
        the queue is full, 503 while stopping). Returns the job and the task's future."""
        chosen = secrets.randbelow(2**31) if seed is None else seed
        components = {kind: spec.name for kind, spec in pipeline.specs.items()}
        if state.stopping.is_set():
            raise ServerStopping()
        job = state.jobs.create(text_chars=len(text), seed=chosen, components=components, voice=voice or None)
        try:
            state.worker.start()
            future = state.worker.submit(lambda: task(job))
        except VcframeError:
            state.jobs.delete(job.id)
            raise
        return job, future

    # -- speech, streamed --

    @app.post(
        "/v1/speech/stream",
        response_class=StreamingResponse,
        responses={200: WAV_STREAM_RESPONSE, **responses(403, 409, 429, 503, 413, 415)},
        tags=["speech"],
    )
    async def speech_stream(
        request: Request,
        text: TextField,
        voice: VoiceField = None,
        reference: ReferenceField = None,
        encoder: ComponentField = None,
        synthesizer: ComponentField = None,
        vocoder: ComponentField = None,
        seed: SeedField = None,
    ) -> Response:
        """Speak ``text`` as ``POST /v1/speech`` does, answering the audio while it is made: a 16-bit WAV stream
        (header with unknown sizes, then PCM chunks at ``X-Vcframe-Sample-Rate`` Hz) whose first chunk leaves
        as soon as the vocoder gives it; texts up to the job limit.

        It runs as a job (the job limit applies): ``X-Vcframe-Job`` and ``Location`` name it, its events show
        the progress and, once the stream has ended, it holds the similarity, the mel and the whole file.
        Errors before the first chunk are JSON problems, as for ``/v1/speech``; an error after it ends the
        stream early (the job then says ``failed`` and why). A client that hangs up stops the work.
        """
        pipeline, found, upload = await _speech_inputs(
            text,
            voice,
            reference,
            encoder,
            synthesizer,
            vocoder,
            state.settings.max_text_chars,
            "split the text into several requests",
        )
        channel = AudioChannel(asyncio.get_running_loop())

        def task(job: Job) -> None:
            def hand_over(chunk: Any) -> None:
                if job.cancel_requested.is_set():
                    raise JobCancelled(job.id)
                channel.put(chunk)

            error = _run_job(
                job,
                lambda: speak_stream(
                    pipeline, text, voice=found, upload=upload, seed=job.seed, progress=job.progress, on_chunk=hand_over
                ),
            )
            channel.end(error)

        job, future = _start_job(pipeline, text, voice, seed, task)

        def drop() -> None:
            job.cancel_requested.set()
            if state.worker.withdraw(future):
                job.move_to("cancelled")

        first = await state.watch(channel.get(), request=request, on_gone=drop)
        if isinstance(first, StreamEnd):
            raise _unstreamed_error(job, first, stopping=state.stopping.is_set())
        headers = {
            "X-Vcframe-Seed": str(job.seed),
            "X-Vcframe-Components": _components_header(job.components),
            "X-Vcframe-Job": job.id,
            "Location": f"/v1/jobs/{job.id}",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
            "X-Vcframe-Sample-Rate": str(first.sample_rate),
        }
        return StreamingResponse(_audio_stream(job, channel, first), media_type="audio/wav", headers=headers)

    @app.post(
        "/v1/jobs",
        status_code=202,
        response_model=models.Job,
        responses=responses(403, 409, 429, 503, 413, 415),
        tags=["jobs"],
    )
    async def create_job(
        response: Response,
        text: TextField,
        voice: VoiceField = None,
        reference: ReferenceField = None,
        encoder: ComponentField = None,
        synthesizer: ComponentField = None,
        vocoder: ComponentField = None,
        seed: SeedField = None,
    ) -> dict[str, Any]:
        """Start a synthesis job (for long texts); 202 with ``Location`` of the job.

        Follow it with ``GET /v1/jobs/{id}/events`` (Server-Sent Events), fetch ``/audio`` and ``/mel.png``
        when it is done. Results are deleted ``job_ttl_s`` after the job ends.
        """
        pipeline, found, upload = await _speech_inputs(
            text,
            voice,
            reference,
            encoder,
            synthesizer,
            vocoder,
            state.settings.max_text_chars,
            "split the text into several jobs",
        )

        def task(job: Job) -> None:
            _run_job(
                job, lambda: speak(pipeline, text, voice=found, upload=upload, seed=job.seed, progress=job.progress)
            )

        job, _ = _start_job(pipeline, text, voice, seed, task)
        response.headers["Location"] = f"/v1/jobs/{job.id}"
        return job.describe(serve.job_ttl_s)

    @app.get("/v1/jobs/{job_id}", response_model=models.Job, responses=responses(404), tags=["jobs"])
    def get_job(job_id: JobIdPath) -> dict[str, Any]:
        """A job's state, progress and result facts."""
        return state.jobs.get(job_id).describe(serve.job_ttl_s)

    @app.get(
        "/v1/jobs/{job_id}/events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}, **responses(404)},
        tags=["jobs"],
    )
    async def job_events(request: Request, job_id: JobIdPath) -> StreamingResponse:
        """Server-Sent Events: ``state``, ``progress`` (stage, done, total) and one of ``done``, ``failed``,
        ``cancelled``, after which the stream ends. ``Last-Event-ID`` resumes after that event."""
        job = state.jobs.get(job_id)
        last = request.headers.get("last-event-id", "")
        start = int(last) if last.isdigit() else -1
        return StreamingResponse(
            _event_stream(job, start),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/v1/jobs/{job_id}/cancel", response_model=models.Job, responses=responses(403, 404, 409), tags=["jobs"])
    def cancel_job(job_id: JobIdPath) -> dict[str, Any]:
        """Cancel a queued or running job (a running one stops at its next progress step)."""
        return state.jobs.cancel(job_id).describe(serve.job_ttl_s)

    @app.delete("/v1/jobs/{job_id}", status_code=204, responses=responses(403, 404), tags=["jobs"])
    def delete_job(job_id: JobIdPath) -> Response:
        """Cancel the job if it is live, and delete it with its results."""
        state.jobs.delete(job_id)
        return Response(status_code=204)

    @app.get(
        "/v1/jobs/{job_id}/audio",
        response_class=FileResponse,
        responses={200: WAV_RESPONSE, **responses(404, 409)},
        tags=["jobs"],
    )
    def job_audio(job_id: JobIdPath) -> FileResponse:
        """A finished job's audio (16-bit WAV), as a download."""
        job = state.jobs.get(job_id)
        path = state.jobs.result_file(job, "audio")
        return FileResponse(path, media_type="audio/wav", filename=f"vcframe-{job.seed}.wav")

    @app.get(
        "/v1/jobs/{job_id}/mel.png",
        response_class=FileResponse,
        responses={
            200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
            **responses(404, 409),
        },
        tags=["jobs"],
    )
    def job_mel(job_id: JobIdPath) -> FileResponse:
        """A finished job's synthesized mel spectrogram (sentences side by side) as a PNG."""
        job = state.jobs.get(job_id)
        return FileResponse(state.jobs.result_file(job, "mel"), media_type="image/png")


def _unstreamed_error(job: Job, end: StreamEnd, *, stopping: bool) -> VcframeError:
    """Why a streamed job ended before its first chunk, as the error the client gets (JSON, usual status)."""
    if isinstance(end.error, VcframeError):
        return end.error
    if job.state == "failed":  # unexpected: the job logged its traceback
        return InternalError(str((job.error or {}).get("detail", "unexpected error")))
    if job.state == "cancelled":
        return ServerStopping() if stopping else Conflict("the job was cancelled", hint="send the request again")
    return InternalError(f"the job ended {job.state} without any audio")


async def _audio_stream(job: Job, channel: AudioChannel, first: AudioChunk) -> AsyncIterator[bytes]:
    """The WAV stream of a streamed job: header and first chunk, then each chunk as the worker hands it over.

    Ends when the job's task ends; an error after the first chunk ends the stream early and is logged (the job
    records it). If the client goes away first, Starlette closes this generator: the job is cancelled and its
    task stops before its next chunk."""
    route = "POST /v1/speech/stream"
    finished = False
    try:
        yield streaming_wav_header(first.sample_rate) + first.pcm
        while True:
            item = await channel.get()
            if isinstance(item, StreamEnd):
                finished = True
                if job.state == "failed":
                    detail = (job.error or {}).get("detail")
                    log.warning("%s: job %s failed after streaming began; the stream ends: %s", route, job.id, detail)
                elif job.state == "cancelled":
                    log.info("%s: job %s was cancelled while streaming; the stream ends", route, job.id)
                return
            if item.sample_rate != first.sample_rate:
                finished = True
                job.cancel_requested.set()
                log.error(
                    "%s: job %s changed its sample rate while streaming (%d Hz, then %d Hz); the stream ends",
                    route,
                    job.id,
                    first.sample_rate,
                    item.sample_rate,
                )
                return
            yield item.pcm
    finally:
        if not finished:
            job.cancel_requested.set()
            log.info("%s: the client disconnected; job %s stops before its next chunk", route, job.id)


async def _event_stream(job: Job, after: int, poll_s: float = 0.05, keepalive_s: float = 15.0) -> AsyncIterator[str]:
    """The job's events as SSE text, from event ``after + 1`` until its terminal event."""
    cursor = after
    quiet = 0.0
    yield "retry: 1000\n\n"
    while True:
        for index, event in job.events_after(cursor):
            cursor = index
            quiet = 0.0
            yield f"id: {index}\nevent: {event.name}\ndata: {json.dumps(event.data)}\n\n"
            if event.name in ("done", "failed", "cancelled"):
                return
        await asyncio.sleep(poll_s)
        quiet += poll_s
        if quiet >= keepalive_s:
            quiet = 0.0
            yield ": keep-alive\n\n"
