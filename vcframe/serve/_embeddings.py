"""Speaker embeddings of uploaded clips: ``POST /v1/embeddings``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile

from vcframe.serve import models
from vcframe.serve._fields import ComponentField, read_upload
from vcframe.serve._state import State
from vcframe.serve.problems import responses

router = APIRouter(tags=["embeddings"])


@router.post(
    "/v1/embeddings",
    response_model=models.EmbeddingResult,
    responses=responses(403, 429, 503, 413, 415),
)
async def embeddings(
    request: Request,
    clip: Annotated[UploadFile, File(description="A clip of the speaker (WAV, FLAC, OGG or MP3).")],
    state: State,
    encoder: ComponentField = None,
) -> models.EmbeddingResult:
    """The speaker embedding of an uploaded clip."""
    upload = await read_upload(state, clip, "clip")
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
