"""Response bodies of the REST API (pydantic models, so the OpenAPI document describes every field)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    queue_pending: int = Field(description="Requests waiting for the inference worker.")
    queue_size: int = Field(description="Requests that may wait before the server answers 429.")
    busy: bool = Field(description="The worker is running a request now.")
    jobs: int = Field(description="Jobs kept (queued, running or finished within their time to live).")


class Limits(BaseModel):
    max_upload_bytes: int
    max_upload_seconds: float
    max_speech_chars: int = Field(description="Longest text of POST /v1/speech.")
    max_job_chars: int = Field(description="Longest text of POST /v1/jobs.")
    min_reference_seconds: float = Field(description="Shortest reference the default encoder accepts.")
    audio_formats: list[str] = Field(description="Upload formats, judged from the bytes.")
    job_ttl_s: float
    queue_size: int


class Info(BaseModel):
    version: str
    defaults: dict[str, str] = Field(description="Components used when a request names none.")
    limits: Limits


class PluginSummary(BaseModel):
    kind: str
    name: str
    distribution: str | None
    version: str | None
    status: str = Field(description="ok, warning, error or disabled; only ok and warning can be chosen.")
    summary: str | None
    api_version: str | None
    capabilities: list[str]
    error: str | None
    warning: str | None
    default: bool = Field(description="This component is the server's default for its kind.")
    min_reference_seconds: float | None = Field(
        None, description="Encoders: the shortest reference clip they accept with the server's options."
    )
    weights_status: str | None = Field(
        None,
        description="Quality status of the registry weights the server loads for this component: demo (below its "
        "component's bar), usable or published (docs/models.md); None when it loads no registry weights.",
    )
    weights: str | None = Field(
        None,
        description="Those weights in words: status and measured figures, 'random weights', 'own checkpoint, no "
        "status' or 'no weights' (as vcframe run's summary line).",
    )


class PluginList(BaseModel):
    defaults: dict[str, str]
    plugins: list[PluginSummary]


class PluginDetail(BaseModel):
    kind: str
    name: str
    spec: dict[str, Any] = Field(description="The component's spec (as 'vcframe plugins show --format json').")
    config_schema: dict[str, Any] = Field(description="JSON schema of the component's options.")


class VoiceSummary(BaseModel):
    name: str
    kind: Literal["sample", "user"]
    description: str
    duration_s: float
    sample_rate: int
    created: str | None
    deletable: bool
    preview: str = Field(description="URL of the voice's clip as WAV.")


class VoiceList(BaseModel):
    voices: list[VoiceSummary]


class EmbeddingResult(BaseModel):
    encoder: str
    space: str
    dim: int
    l2_normalized: bool
    vector: list[float]
    duration_s: float = Field(description="Seconds of the uploaded clip.")


class JobProgress(BaseModel):
    stage: str
    done: int
    total: int


class JobResult(BaseModel):
    seed: int
    components: dict[str, str]
    similarity: float | None = Field(description="Cosine similarity of the output's embedding to the reference's.")
    duration_s: float
    sample_rate: int
    sentences: int
    dropped_characters: list[str] = Field(
        default_factory=list,
        description="Code points of the text that were not spoken (control characters, emoji), e.g. ['U+1F600'].",
    )


class JobLinks(BaseModel):
    self: str
    events: str
    audio: str | None
    mel: str | None


class JobError(BaseModel):
    status: int
    detail: str
    hint: str | None
    error: str


class Job(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    created: float
    finished: float | None
    expires: float | None = Field(description="When a finished job's result is deleted (Unix time).")
    text_chars: int
    seed: int
    voice: str | None
    components: dict[str, str]
    progress: JobProgress | None
    result: JobResult | None
    error: JobError | None
    links: JobLinks
