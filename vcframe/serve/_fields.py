"""The request fields and response declarations the routes of ``vcframe serve`` share, and reading them."""

from __future__ import annotations

from typing import Annotated

from fastapi import File, Form, Path, UploadFile

from vcframe.serve._state import ServerState
from vcframe.serve.jobs import JOB_ID_PATTERN
from vcframe.serve.uploads import AudioUpload, inspect_upload

SEED_MAX = 2**32 - 1

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


async def read_upload(state: ServerState, upload: UploadFile, name: str) -> AudioUpload:
    """An upload read (at most the limit + 1 byte) and checked; its spooled file is closed."""
    try:
        content = await upload.read(state.serve.max_upload_bytes + 1)
    finally:
        await upload.close()
    return inspect_upload(
        content, max_bytes=state.serve.max_upload_bytes, max_seconds=state.serve.max_upload_seconds, name=name
    )


def check_text(text: str, limit: int, *, hint: str) -> str:
    from vcframe.errors import InputError

    if not text.strip():
        raise InputError("the text is empty", hint="give some words to say")
    if len(text) > limit:
        raise InputError(f"the text has {len(text):,} characters; this endpoint takes at most {limit:,}", hint=hint)
    return text
