"""The voices of ``vcframe serve``: sample voices and those added on this machine, under ``/v1/voices``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from vcframe.serve import models
from vcframe.serve._fields import WAV_RESPONSE, ComponentField, VoiceNamePath, read_upload
from vcframe.serve._state import ServerState, State
from vcframe.serve.engine import wav_bytes
from vcframe.serve.problems import Conflict, Forbidden, NotFound, responses

router = APIRouter(tags=["voices"])


def voice_summary(voice: Any) -> models.VoiceSummary:
    summary = voice.summary()
    return models.VoiceSummary(**summary, deletable=voice.kind == "user", preview=f"/v1/voices/{voice.name}/audio")


def find_voice(state: ServerState, name: str, *, field: bool = False) -> Any:
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


@router.get("/v1/voices", response_model=models.VoiceList, responses=responses())
def voices(state: State) -> models.VoiceList:
    """Sample voices (shipped, read-only), then voices added on this machine."""
    return models.VoiceList(voices=[voice_summary(voice) for voice in state.voices.list()])


@router.get("/v1/voices/{name}", response_model=models.VoiceSummary, responses=responses(404))
def voice(name: VoiceNamePath, state: State) -> models.VoiceSummary:
    """One voice."""
    return voice_summary(find_voice(state, name))


@router.get(
    "/v1/voices/{name}/audio",
    response_class=Response,
    responses={200: WAV_RESPONSE, **responses(404)},
)
def voice_audio(name: VoiceNamePath, state: State) -> Response:
    """The voice's clip as 16-bit WAV, for previews."""
    from vcframe.audio import load_audio

    found = find_voice(state, name)
    return Response(wav_bytes(load_audio(found.clip)), media_type="audio/wav")


@router.post(
    "/v1/voices",
    status_code=201,
    response_model=models.VoiceSummary,
    responses=responses(403, 409, 429, 503, 413, 415),
)
async def add_voice(
    request: Request,
    response: Response,
    name: Annotated[str, Form(max_length=40, description="New voice name: a-z, 0-9, '-' and '_'.")],
    clip: Annotated[UploadFile, File(description="The speaker's clip (WAV, FLAC, OGG or MP3).")],
    state: State,
    consent: Annotated[bool, Form(description="The speaker agreed to have their voice cloned (must be true).")] = False,
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
            hint="confirm that the speaker agreed to have their voice cloned (tick the consent box; API: consent=true)",
        )
    if name in state.voices.names():
        await clip.close()
        raise Conflict(f"voice {name!r} already exists", hint="choose another name or delete it first")
    upload = await read_upload(state, clip, "clip")
    pipeline = state.engine.encoder_pipeline(encoder)
    added = await state.run(
        lambda: state.voices.add(
            name, upload.waveform(), pipeline=pipeline, consent=True, description=" ".join(description.split())
        ),
        request=request,
    )
    response.headers["Location"] = f"/v1/voices/{added.name}"
    return voice_summary(added)


@router.delete("/v1/voices/{name}", status_code=204, responses=responses(403, 404))
def delete_voice(name: VoiceNamePath, state: State) -> Response:
    """Delete a voice added on this machine (sample voices cannot be deleted: 403)."""
    found = find_voice(state, name)
    if found.kind != "user":
        raise Forbidden(f"{name!r} is a sample voice and cannot be deleted", hint="delete a voice you added")
    state.voices.remove(name)
    return Response(status_code=204)
