"""Speech of ``vcframe serve``: ``POST /v1/speech`` (a whole WAV), ``POST /v1/speech/stream`` (a WAV stream
answered while it is made) and the jobs under ``/v1/jobs`` (long texts; events, audio and mel when done)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, UploadFile
from fastapi.responses import FileResponse, Response, StreamingResponse

from vcframe.errors import VcframeError
from vcframe.serve import models
from vcframe.serve._fields import (
    WAV_RESPONSE,
    WAV_STREAM_RESPONSE,
    ComponentField,
    JobIdPath,
    ReferenceField,
    SeedField,
    TextField,
    VoiceField,
    check_text,
    read_upload,
)
from vcframe.serve._state import ServerState, State
from vcframe.serve._voices import find_voice
from vcframe.serve.engine import SpeechResult, joined_mel, speak_stream, streaming_wav_header, wav_bytes
from vcframe.serve.jobs import Job, JobCancelled
from vcframe.serve.png import mel_png
from vcframe.serve.problems import Conflict, InternalError, ServerStopping, problem_of, responses
from vcframe.serve.streaming import AudioChannel, AudioChunk, StreamEnd
from vcframe.serve.uploads import AudioUpload

log = logging.getLogger("vcframe.serve")

router = APIRouter()


async def speech_function() -> Callable[..., SpeechResult]:
    """The dependency that gives the routes what speaks a whole text: ``vcframe.serve.app.speak`` (the engine's
    :func:`~vcframe.serve.engine.speak`), looked up there per request so that it can be replaced there (the tests
    slow it down to catch a request in the middle of its synthesis)."""
    from vcframe.serve import app

    speak: Callable[..., SpeechResult] = app.speak
    return speak


#: A route parameter ``speak: Speak`` receives :func:`speech_function`'s function.
Speak = Annotated[Callable[..., SpeechResult], Depends(speech_function)]


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


# -- speech --


async def _speech_inputs(
    state: ServerState,
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

    check_text(text, limit, hint=hint)
    has_reference = reference is not None and bool(reference.filename or reference.size)
    if bool(voice) == has_reference:
        if reference is not None:
            await reference.close()
        raise InputError("give exactly one of 'voice' and 'reference'", hint="pick a voice or upload a clip")
    pipeline = state.engine.pipeline(encoder, synthesizer, vocoder)
    pipeline.sentences(text)  # text with nothing to say is refused now, not on the worker
    found = find_voice(state, voice, field=True) if voice else None
    upload = await read_upload(state, reference, "reference") if reference is not None and has_reference else None
    return pipeline, found, upload


@router.post(
    "/v1/speech",
    response_class=Response,
    responses={200: WAV_RESPONSE, **responses(403, 409, 429, 503, 413, 415)},
    tags=["speech"],
)
async def speech(
    request: Request,
    state: State,
    speak: Speak,
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
    limit = min(state.serve.max_speech_chars, state.settings.max_text_chars)
    pipeline, found, upload = await _speech_inputs(
        state, text, voice, reference, encoder, synthesizer, vocoder, limit, "send long texts to POST /v1/jobs"
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


def _run_job(state: ServerState, job: Job, work: Callable[[], SpeechResult]) -> BaseException | None:
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
    state: ServerState, pipeline: Any, text: str, voice: str | None, seed: int | None, task: Callable[[Job], Any]
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


@router.post(
    "/v1/speech/stream",
    response_class=StreamingResponse,
    responses={200: WAV_STREAM_RESPONSE, **responses(403, 409, 429, 503, 413, 415)},
    tags=["speech"],
)
async def speech_stream(
    request: Request,
    state: State,
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
        state,
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
            state,
            job,
            lambda: speak_stream(
                pipeline, text, voice=found, upload=upload, seed=job.seed, progress=job.progress, on_chunk=hand_over
            ),
        )
        channel.end(error)

    job, future = _start_job(state, pipeline, text, voice, seed, task)

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


@router.post(
    "/v1/jobs",
    status_code=202,
    response_model=models.Job,
    responses=responses(403, 409, 429, 503, 413, 415),
    tags=["jobs"],
)
async def create_job(
    response: Response,
    state: State,
    speak: Speak,
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
        state,
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
            state, job, lambda: speak(pipeline, text, voice=found, upload=upload, seed=job.seed, progress=job.progress)
        )

    job, _ = _start_job(state, pipeline, text, voice, seed, task)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job.describe(state.serve.job_ttl_s)


@router.get("/v1/jobs/{job_id}", response_model=models.Job, responses=responses(404), tags=["jobs"])
def get_job(job_id: JobIdPath, state: State) -> dict[str, Any]:
    """A job's state, progress and result facts."""
    return state.jobs.get(job_id).describe(state.serve.job_ttl_s)


@router.get(
    "/v1/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}, **responses(404)},
    tags=["jobs"],
)
async def job_events(request: Request, job_id: JobIdPath, state: State) -> StreamingResponse:
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


@router.post("/v1/jobs/{job_id}/cancel", response_model=models.Job, responses=responses(403, 404, 409), tags=["jobs"])
def cancel_job(job_id: JobIdPath, state: State) -> dict[str, Any]:
    """Cancel a queued or running job (a running one stops at its next progress step)."""
    return state.jobs.cancel(job_id).describe(state.serve.job_ttl_s)


@router.delete("/v1/jobs/{job_id}", status_code=204, responses=responses(403, 404), tags=["jobs"])
def delete_job(job_id: JobIdPath, state: State) -> Response:
    """Cancel the job if it is live, and delete it with its results."""
    state.jobs.delete(job_id)
    return Response(status_code=204)


@router.get(
    "/v1/jobs/{job_id}/audio",
    response_class=FileResponse,
    responses={200: WAV_RESPONSE, **responses(404, 409)},
    tags=["jobs"],
)
def job_audio(job_id: JobIdPath, state: State) -> FileResponse:
    """A finished job's audio (16-bit WAV), as a download."""
    job = state.jobs.get(job_id)
    path = state.jobs.result_file(job, "audio")
    return FileResponse(path, media_type="audio/wav", filename=f"vcframe-{job.seed}.wav")


@router.get(
    "/v1/jobs/{job_id}/mel.png",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
        **responses(404, 409),
    },
    tags=["jobs"],
)
def job_mel(job_id: JobIdPath, state: State) -> FileResponse:
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
