"""The server itself: ``GET /healthz`` (liveness) and ``GET /v1/info`` (version, defaults, limits)."""

from __future__ import annotations

from fastapi import APIRouter

from vcframe import __version__
from vcframe.serve import models
from vcframe.serve._components import min_reference_seconds
from vcframe.serve._state import State
from vcframe.serve.problems import responses
from vcframe.serve.uploads import MEDIA_TYPES

router = APIRouter(tags=["server"])


@router.get("/healthz", response_model=models.Health, responses=responses())
async def healthz(state: State) -> models.Health:
    """Liveness: answers at once, however busy the inference worker is."""
    return models.Health(
        version=__version__,
        queue_pending=state.worker.pending,
        queue_size=state.worker.queue_size,
        busy=state.worker.busy,
        jobs=len(state.jobs),
    )


@router.get("/v1/info", response_model=models.Info, responses=responses())
def info(state: State) -> models.Info:
    """Version, default components and the server's limits."""
    defaults = state.engine.defaults()
    min_reference = min_reference_seconds(state, defaults["encoder"]) or 0.0
    limits = models.Limits(
        max_upload_bytes=state.serve.max_upload_bytes,
        max_upload_seconds=state.serve.max_upload_seconds,
        max_speech_chars=min(state.serve.max_speech_chars, state.settings.max_text_chars),
        max_job_chars=state.settings.max_text_chars,
        min_reference_seconds=min_reference,
        audio_formats=sorted(MEDIA_TYPES),
        job_ttl_s=state.serve.job_ttl_s,
        queue_size=state.serve.queue_size,
    )
    return models.Info(version=__version__, defaults=defaults, limits=limits)
