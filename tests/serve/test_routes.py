"""The server's routes: the OpenAPI document's operations pinned (paths, methods, operation ids, tags and the
statuses each declares), one ``APIRouter`` per resource, and the shared state reached as a FastAPI dependency."""

from __future__ import annotations

from vcframe.serve import _components, _embeddings, _page, _server, _speech, _voices
from vcframe.serve._state import server_state
from vcframe.serve.app import ROUTERS

#: (method, path) -> (operationId, tag, declared statuses) of every operation in /openapi.json.
OPERATIONS = {
    ("GET", "/healthz"): ("healthz_healthz_get", "server", {200, 400, 422, 500}),
    ("POST", "/v1/embeddings"): (
        "embeddings_v1_embeddings_post",
        "embeddings",
        {200, 400, 403, 413, 415, 422, 429, 500, 503},
    ),
    ("GET", "/v1/info"): ("info_v1_info_get", "server", {200, 400, 422, 500}),
    ("POST", "/v1/jobs"): ("create_job_v1_jobs_post", "jobs", {202, 400, 403, 409, 413, 415, 422, 429, 500, 503}),
    ("DELETE", "/v1/jobs/{job_id}"): ("delete_job_v1_jobs__job_id__delete", "jobs", {204, 400, 403, 404, 422, 500}),
    ("GET", "/v1/jobs/{job_id}"): ("get_job_v1_jobs__job_id__get", "jobs", {200, 400, 404, 422, 500}),
    ("GET", "/v1/jobs/{job_id}/audio"): (
        "job_audio_v1_jobs__job_id__audio_get",
        "jobs",
        {200, 400, 404, 409, 422, 500},
    ),
    ("POST", "/v1/jobs/{job_id}/cancel"): (
        "cancel_job_v1_jobs__job_id__cancel_post",
        "jobs",
        {200, 400, 403, 404, 409, 422, 500},
    ),
    ("GET", "/v1/jobs/{job_id}/events"): ("job_events_v1_jobs__job_id__events_get", "jobs", {200, 400, 404, 422, 500}),
    ("GET", "/v1/jobs/{job_id}/mel.png"): (
        "job_mel_v1_jobs__job_id__mel_png_get",
        "jobs",
        {200, 400, 404, 409, 422, 500},
    ),
    ("GET", "/v1/plugins"): ("plugins_v1_plugins_get", "plugins", {200, 400, 422, 500}),
    ("GET", "/v1/plugins/{kind}/{name}"): ("plugin_v1_plugins__kind___name__get", "plugins", {200, 400, 404, 422, 500}),
    ("POST", "/v1/speech"): ("speech_v1_speech_post", "speech", {200, 400, 403, 409, 413, 415, 422, 429, 500, 503}),
    ("POST", "/v1/speech/stream"): (
        "speech_stream_v1_speech_stream_post",
        "speech",
        {200, 400, 403, 409, 413, 415, 422, 429, 500, 503},
    ),
    ("GET", "/v1/voices"): ("voices_v1_voices_get", "voices", {200, 400, 422, 500}),
    ("POST", "/v1/voices"): ("add_voice_v1_voices_post", "voices", {201, 400, 403, 409, 413, 415, 422, 429, 500, 503}),
    ("DELETE", "/v1/voices/{name}"): ("delete_voice_v1_voices__name__delete", "voices", {204, 400, 403, 404, 422, 500}),
    ("GET", "/v1/voices/{name}"): ("voice_v1_voices__name__get", "voices", {200, 400, 404, 422, 500}),
    ("GET", "/v1/voices/{name}/audio"): ("voice_audio_v1_voices__name__audio_get", "voices", {200, 400, 404, 422, 500}),
}
#: The models and form bodies of the document (the form bodies are named after their operations).
SCHEMAS = {
    "Body_add_voice_v1_voices_post",
    "Body_create_job_v1_jobs_post",
    "Body_embeddings_v1_embeddings_post",
    "Body_speech_stream_v1_speech_stream_post",
    "Body_speech_v1_speech_post",
    "EmbeddingResult",
    "Health",
    "Info",
    "Job",
    "JobError",
    "JobLinks",
    "JobProgress",
    "JobResult",
    "Limits",
    "PluginDetail",
    "PluginList",
    "PluginSummary",
    "Problem",
    "VoiceList",
    "VoiceSummary",
}


def test_the_openapi_operations_are_pinned(client) -> None:
    document = client.get("/openapi.json").json()
    operations = {
        (method.upper(), path): (operation["operationId"], *operation["tags"], {int(s) for s in operation["responses"]})
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert operations == OPERATIONS
    assert set(document["components"]["schemas"]) == SCHEMAS


def _operations(router) -> set[tuple[str, str]]:
    return {(method, route.path) for route in router.routes for method in route.methods}


def test_each_resource_has_its_router(client) -> None:
    """Every operation of the document is served by its resource's router, and the page's by the page router."""
    by_router = [
        (_server, {("GET", "/healthz"), ("GET", "/v1/info")}),
        (_components, {("GET", "/v1/plugins"), ("GET", "/v1/plugins/{kind}/{name}")}),
        (_voices, {key for key in OPERATIONS if key[1].startswith("/v1/voices")}),
        (_embeddings, {("POST", "/v1/embeddings")}),
        (_speech, {key for key in OPERATIONS if key[1].startswith(("/v1/speech", "/v1/jobs"))}),
        (_page, {(method, path) for path in ("/", "/static/{name}") for method in ("GET", "HEAD")}),
    ]
    assert {id(router) for router in ROUTERS} == {id(module.router) for module, _ in by_router}
    for module, expected in by_router:
        assert _operations(module.router) == expected, module.__name__
    assert set().union(*(expected for _, expected in by_router)) >= set(OPERATIONS)
    page = client.get("/")
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers


def test_routes_take_the_server_state_from_the_dependency(make_client) -> None:
    """Overriding the ``server_state`` dependency hands every route another state: /healthz then counts that
    state's jobs."""
    first, second = make_client(), make_client()
    second.app.state.vcframe.jobs.create(text_chars=3, seed=1, components={}, voice=None)
    assert first.get("/healthz").json()["jobs"] == 0
    first.app.dependency_overrides[server_state] = lambda: second.app.state.vcframe
    assert first.get("/healthz").json()["jobs"] == 1
    assert second.get("/healthz").json()["jobs"] == 1
