"""The REST API end to end with FastAPI's TestClient and the dummy components."""

from __future__ import annotations

import io
import json
import struct
import time

import numpy as np
import pytest
import soundfile

from vcframe.serve.problems import PROBLEM_MEDIA_TYPE


def _problem(response, status: int, needle: str = "") -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body = response.json()
    assert body["status"] == status and body["detail"] and "\n" not in body["detail"]
    assert needle in body["detail"] + " " + (body["hint"] or ""), body
    return body


def _wav(response) -> tuple[np.ndarray, int]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    samples, rate = soundfile.read(io.BytesIO(response.content), dtype="float32")
    assert len(samples) > 0 and np.abs(samples).max() > 0.01
    return samples, rate


# -- server, plugins -----------------------------------------------------------------------------------


def test_healthz_info_and_plugins(client) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["queue_size"] == 8 and health["queue_pending"] == 0
    info = client.get("/v1/info").json()
    assert info["defaults"] == {"encoder": "test-tone", "synthesizer": "test-constant", "vocoder": "test-sine"}
    assert info["limits"]["max_upload_bytes"] == 10 * 1024 * 1024 and info["limits"]["max_job_chars"] == 10_000
    assert info["limits"]["min_reference_seconds"] == pytest.approx(0.1)
    assert info["limits"]["audio_formats"] == ["flac", "mp3", "ogg", "wav"]
    listing = client.get("/v1/plugins").json()
    rows = {(row["kind"], row["name"]): row for row in listing["plugins"]}
    assert set(rows) == {("encoder", "test-tone"), ("synthesizer", "test-constant"), ("vocoder", "test-sine")}
    assert all(row["default"] and row["status"] == "ok" for row in rows.values())
    assert rows[("encoder", "test-tone")]["min_reference_seconds"] == pytest.approx(0.1)  # the page checks it
    assert rows[("vocoder", "test-sine")]["min_reference_seconds"] is None
    detail = client.get("/v1/plugins/vocoder/test-sine").json()
    assert detail["spec"]["kind"] == "vocoder" and "amplitude" in detail["config_schema"]["properties"]
    _problem(client.get("/v1/plugins/vocoder/nope"), 404, "unknown vocoder 'nope'")
    _problem(client.get("/v1/plugins/decoder/test-sine"), 404, "no component kind")
    _problem(client.get("/v1/nothing-here"), 404)


# -- voices ---------------------------------------------------------------------------------------------


def test_sample_voices_are_listed_previewable_and_not_deletable(client) -> None:
    voices = client.get("/v1/voices").json()["voices"]
    samples = [voice for voice in voices if voice["kind"] == "sample"]
    assert len(samples) >= 3 and not any(voice["deletable"] for voice in samples)
    first = samples[0]
    assert client.get(f"/v1/voices/{first['name']}").json() == first
    samples_, rate = _wav(client.get(first["preview"]))
    assert rate == first["sample_rate"] and len(samples_) / rate == pytest.approx(first["duration_s"], abs=0.02)
    _problem(client.delete(f"/v1/voices/{first['name']}"), 403, "sample voice")
    _problem(client.get("/v1/voices/nobody"), 404, "no voice 'nobody'")
    _problem(client.get("/v1/voices/..%2F..%2Fetc"), 404)  # a slash never reaches a voice route
    _problem(client.get("/v1/voices/Bad.Name/audio"), 422, "not a valid voice name")


def test_add_voice_needs_consent_then_lists_previews_and_deletes(client, audio) -> None:
    clip = ("me.wav", audio(2.0, f0=220), "audio/wav")
    _problem(client.post("/v1/voices", data={"name": "mine"}, files={"clip": clip}), 422, "consent")
    _problem(client.post("/v1/voices", data={"name": "mine", "consent": "false"}, files={"clip": clip}), 422, "consent")
    _problem(
        client.post("/v1/voices", data={"name": "../x", "consent": "true"}, files={"clip": clip}),
        422,
        "not a valid voice name",
    )
    added = client.post(
        "/v1/voices", data={"name": "mine", "consent": "true", "description": "my  voice"}, files={"clip": clip}
    )
    assert added.status_code == 201, added.text
    assert added.headers["location"] == "/v1/voices/mine"
    assert added.json()["kind"] == "user" and added.json()["deletable"] and added.json()["description"] == "my voice"
    assert "mine" in [voice["name"] for voice in client.get("/v1/voices").json()["voices"]]
    _wav(client.get("/v1/voices/mine/audio"))
    _problem(client.post("/v1/voices", data={"name": "mine", "consent": "true"}, files={"clip": clip}), 409)
    sample = client.get("/v1/voices").json()["voices"][0]["name"]
    _problem(client.post("/v1/voices", data={"name": sample, "consent": "true"}, files={"clip": clip}), 409)
    # the stored voice speaks
    _wav(client.post("/v1/speech", data={"text": "Hello.", "voice": "mine", "seed": "1"}))
    assert client.delete("/v1/voices/mine").status_code == 204
    _problem(client.get("/v1/voices/mine"), 404)


# -- embeddings ------------------------------------------------------------------------------------------


def test_embedding_of_an_upload_matches_the_pipeline(client, audio, dummy_registry, tmp_path) -> None:
    content = audio(1.5, f0=180, rate=22050, file_format="FLAC")
    response = client.post("/v1/embeddings", files={"clip": ("any-name.bin", content, "application/octet-stream")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["encoder"] == "test-tone" and body["dim"] == 8 and body["space"] == "vcframe-test/tone"
    assert body["duration_s"] == pytest.approx(1.5, abs=0.01)
    from vcframe.config import Settings
    from vcframe.pipeline import Pipeline

    (tmp_path / "clip.flac").write_bytes(content)
    expected = Pipeline(encoder="test-tone", settings=Settings(), registry=dummy_registry, embedding_only=True).embed(
        [tmp_path / "clip.flac"]
    )
    np.testing.assert_allclose(body["vector"], expected.vector[0].numpy(), atol=1e-6)


# -- speech ----------------------------------------------------------------------------------------------


def test_speech_from_upload_is_wav_and_the_seed_reproduces_it(client, audio) -> None:
    reference = ("ref.ogg", audio(1.0, f0=140, file_format="OGG"), "audio/ogg")
    first = client.post("/v1/speech", data={"text": "Hello there.", "seed": "7"}, files={"reference": reference})
    samples, rate = _wav(first)
    assert rate == 16000 and len(samples) == 4 * len("Hello there.") * 64
    assert first.headers["x-vcframe-seed"] == "7"
    assert first.headers["x-vcframe-components"] == "encoder=test-tone,synthesizer=test-constant,vocoder=test-sine"
    assert -1.0 <= float(first.headers["x-vcframe-similarity"]) <= 1.0
    again = client.post("/v1/speech", data={"text": "Hello there.", "seed": "7"}, files={"reference": reference})
    assert again.content == first.content
    other = client.post("/v1/speech", data={"text": "Hello there.", "seed": "8"}, files={"reference": reference})
    assert other.status_code == 200 and other.content != first.content
    unseeded = client.post("/v1/speech", data={"text": "Hello there."}, files={"reference": reference})
    seed = unseeded.headers["x-vcframe-seed"]
    replay = client.post("/v1/speech", data={"text": "Hello there.", "seed": seed}, files={"reference": reference})
    assert replay.content == unseeded.content


def test_spectrum_matching_reads_the_upload_or_the_voice_clip_by_default(make_client, audio) -> None:
    from tests.serve.conftest import DUMMY_SETTINGS
    from vcframe.config import Settings

    plain, matching = make_client(Settings(**DUMMY_SETTINGS, match_spectrum=0)), make_client()  # on by default
    reference = ("ref.wav", audio(1.0, f0=140), "audio/wav")
    fields = {"text": "Hello there, how are you?", "seed": "3"}
    plain_upload = plain.post("/v1/speech", data=fields, files={"reference": reference})
    matched_upload = matching.post("/v1/speech", data=fields, files={"reference": reference})
    assert _wav(matched_upload)[0].shape == _wav(plain_upload)[0].shape  # same timing, other spectrum
    assert matched_upload.content != plain_upload.content
    voice = plain.get("/v1/voices").json()["voices"][0]["name"]
    plain_voice = plain.post("/v1/speech", data={**fields, "voice": voice})
    matched_voice = matching.post("/v1/speech", data={**fields, "voice": voice})
    assert matched_voice.status_code == 200 and matched_voice.content != plain_voice.content


@pytest.mark.parametrize("file_format", ["WAV", "FLAC", "MP3"])
def test_speech_takes_each_upload_format_and_a_sample_voice(client, audio, file_format) -> None:
    reference = ("clip", audio(1.0, file_format=file_format), "application/octet-stream")
    _wav(client.post("/v1/speech", data={"text": "Hi.", "seed": "1"}, files={"reference": reference}))
    voice = client.get("/v1/voices").json()["voices"][0]["name"]
    response = client.post("/v1/speech", data={"text": "Hello there, how are you?", "voice": voice})
    _wav(response)  # long enough (0.4 s) for the encoder to embed the output
    assert 0.0 < float(response.headers["x-vcframe-similarity"]) <= 1.0


def test_speech_refuses_bad_requests(make_client, audio) -> None:
    client = make_client(max_speech_chars=50)
    reference = {"reference": ("a.wav", audio(1.0), "audio/wav")}
    _problem(client.post("/v1/speech", data={"text": "Hi."}), 422, "exactly one of 'voice' and 'reference'")
    both = client.post("/v1/speech", data={"text": "Hi.", "voice": "clara"}, files=reference)
    _problem(both, 422, "exactly one")
    _problem(client.post("/v1/speech", data={"text": "   "}, files=reference), 422, "the text is empty")
    _problem(client.post("/v1/speech", data={"text": "x" * 51}, files=reference), 422, "/v1/jobs")
    _problem(client.post("/v1/speech", data={"text": "Hi.", "voice": "nobody"}), 422, "unknown voice 'nobody'")
    _problem(client.post("/v1/speech", data={"text": "Hi.", "seed": "-1"}, files=reference), 422, "seed")
    _problem(client.post("/v1/speech", data={"text": "Hi.", "seed": "abc"}, files=reference), 422, "seed")
    unknown = client.post("/v1/speech", data={"text": "Hi.", "vocoder": "nope"}, files=reference)
    _problem(unknown, 422, "unknown vocoder 'nope'")
    path_like = client.post("/v1/speech", data={"text": "Hi.", "vocoder": "/etc/passwd"}, files=reference)
    _problem(path_like, 422, "vocoder")
    short = {"reference": ("a.wav", audio(0.05), "audio/wav")}
    _problem(client.post("/v1/speech", data={"text": "Hi."}, files=short), 422, "needs at least 0.10 s")
    _problem(client.post("/v1/speech", data={"text": "Hi."}, files=reference, headers={"host": "x"}), 400)


def test_incompatible_components_are_409(make_client, dummy_registry, audio) -> None:
    from vcframe.specs import EmbeddingSpec
    from vcframe.testing.dummy_specs import CONSTANT_SYNTHESIZER

    other = CONSTANT_SYNTHESIZER.model_copy(
        update={"name": "test-other", "input": EmbeddingSpec(space="elsewhere", dim=8), "io_resolver": None}
    )
    dummy_registry.register(other, distribution="tests")
    client = make_client()
    reference = {"reference": ("a.wav", audio(1.0), "audio/wav")}
    body = _problem(client.post("/v1/speech", data={"text": "Hi.", "synthesizer": "test-other"}, files=reference), 409)
    assert body["error"] == "IncompatibleComponentsError" and "space" in body["detail"]


def test_error_hints_are_web_guidance_not_command_lines(make_client, dummy_registry, audio) -> None:
    import re

    from vcframe.errors import CheckpointError
    from vcframe.serve.problems import problem_of
    from vcframe.specs import EmbeddingSpec
    from vcframe.testing.dummy_specs import CONSTANT_SYNTHESIZER

    other = CONSTANT_SYNTHESIZER.model_copy(
        update={"name": "test-other", "input": EmbeddingSpec(space="elsewhere", dim=8), "io_resolver": None}
    )
    dummy_registry.register(other, distribution="tests")
    client = make_client()
    reference = {"reference": ("a.wav", audio(1.0), "audio/wav")}
    clip = {"clip": ("me.wav", audio(2.0), "audio/wav")}
    answers = {
        "unknown voice": client.post("/v1/speech", data={"text": "Hi.", "voice": "nobody"}),
        "no consent": client.post("/v1/voices", data={"name": "mine"}, files=clip),
        "incompatible": client.post("/v1/speech", data={"text": "Hi.", "synthesizer": "test-other"}, files=reference),
        "unknown component": client.post("/v1/speech", data={"text": "Hi.", "vocoder": "nope"}, files=reference),
    }
    command_line = re.compile(r"vcframe |(^|[\s(])--?[a-z]")
    for case, response in answers.items():
        body = _problem(response, response.status_code)
        assert body["hint"] and not command_line.search(body["hint"]), (case, body)
    assert "consent box" in answers["no consent"].json()["hint"]
    assert "/v1/voices" in answers["unknown voice"].json()["hint"]
    status, body = problem_of(CheckpointError("synthesizer has no default checkpoint", hint="give one with -o x=y"))
    assert status == 503 and "operator" in body["hint"]


def test_names_and_ids_with_a_trailing_newline_are_refused(client, audio) -> None:
    clip = {"clip": ("me.wav", audio(2.0), "audio/wav")}
    added = client.post("/v1/voices", data={"name": "nl\n", "consent": "true"}, files=clip)
    _problem(added, 422, "not a valid voice name")
    assert all("\n" not in voice["name"] for voice in client.get("/v1/voices").json()["voices"])
    _problem(client.get("/v1/voices/clara%0A"), 422, "not a valid voice name")
    _problem(client.get("/v1/voices/clara%0A/audio"), 422, "not a valid voice name")
    _problem(client.post("/v1/speech", data={"text": "Hi.", "voice": "clara\n"}), 422, "not a valid voice name")
    _problem(
        client.post("/v1/speech", data={"text": "Hi.", "voice": "clara", "vocoder": "test-sine\n"}), 422, "vocoder"
    )
    job = client.post("/v1/jobs", data={"text": "Hi.", "voice": "clara"}).json()
    _problem(client.get(f"/v1/jobs/{job['id']}%0A"), 422, "job_id")
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 200


def test_malformed_bodies_are_400_and_an_empty_text_says_so(client) -> None:
    body = _problem(client.post("/v1/speech", json={"text": "Hi.", "voice": "clara"}), 400, "not application/json")
    assert body["error"] == "MalformedBody" and "multipart/form-data" in body["hint"]
    _problem(client.post("/v1/jobs", content=b"{bad", headers={"content-type": "application/json"}), 400, "form fields")
    _problem(client.post("/v1/jobs", content=b"text=Hi.", headers={"content-type": "text/plain"}), 400, "text/plain")
    garbage = {"content-type": "multipart/form-data; boundary=x"}
    _problem(client.post("/v1/speech", content=b"--x\r\ngarbage", headers=garbage), 400, "no readable field")
    no_boundary = {"content-type": "multipart/form-data"}
    _problem(client.post("/v1/speech", content=b"abc", headers=no_boundary), 400, "malformed request body")
    for endpoint in ("/v1/speech", "/v1/jobs"):
        body = _problem(client.post(endpoint, data={"text": "", "voice": "clara"}), 422)
        assert body["detail"] == "the text is empty" and body["hint"] == "give some words to say"


def test_a_short_upload_is_called_the_reference_clip(client, audio) -> None:
    short = {"reference": ("a.wav", audio(0.05), "audio/wav")}
    body = _problem(client.post("/v1/speech", data={"text": "Hi."}, files=short), 422)
    assert body["detail"] == "the reference clip is 0.05 s long; test-tone needs at least 0.10 s"


def test_a_flac_of_unknown_length_is_accepted(client, audio) -> None:
    content = bytearray(audio(1.5, file_format="FLAC"))
    fields = int.from_bytes(content[18:26], "big")
    content[18:26] = (fields & ~((1 << 36) - 1)).to_bytes(8, "big")  # STREAMINFO total samples: 0, "unknown"
    response = client.post("/v1/embeddings", files={"clip": ("stream.flac", bytes(content), "audio/flac")})
    assert response.status_code == 200, response.text
    assert response.json()["duration_s"] == pytest.approx(1.5, abs=0.01)


# -- uploads ------------------------------------------------------------------------------------------------


def test_upload_limits_413_415_422(make_client, audio) -> None:
    client = make_client(max_upload_bytes=40_000, max_upload_seconds=1.0)
    big = audio(1.0, rate=44100)  # 88 KB
    _problem(client.post("/v1/embeddings", files={"clip": ("a.wav", big, "audio/wav")}), 413, "at most 40,000")
    html = b"<!doctype html><script>alert(1)</script>" * 10
    _problem(client.post("/v1/embeddings", files={"clip": ("voice.wav", html, "audio/wav")}), 415)
    webm = b"\x1aE\xdf\xa3" + bytes(2000)
    _problem(client.post("/v1/speech", data={"text": "Hi."}, files={"reference": ("r.webm", webm, "audio/webm")}), 415)
    long_clip = audio(1.5, rate=8000)
    response = client.post("/v1/embeddings", files={"clip": ("a.wav", long_clip, "audio/wav")})
    _problem(response, 422, "1.5 s long; this server takes at most 1 s")


def test_request_bodies_over_the_limit_are_cut_off(make_client) -> None:
    client = make_client(max_upload_bytes=10_000)
    limit = 10_000 + 256 * 1024
    declared = client.post(
        "/v1/embeddings", content=b"x" * 16, headers={"content-length": str(limit + 1), "content-type": "text/plain"}
    )
    _problem(declared, 413, "request body is larger")

    def chunks():
        for _ in range(40):
            yield b"\0" * 8192  # streamed without a Content-Length: counted as it arrives

    streamed = client.post(
        "/v1/embeddings", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xyz"}
    )
    _problem(streamed, 413, "request body is larger")
    assert client.get("/healthz").status_code == 200


def test_no_temporary_file_is_left(make_client, audio, private_tmp, tmp_path) -> None:
    client = make_client()
    big = audio(20.0, rate=44100)  # 1.7 MB: Starlette spools it to a temporary file
    assert len(big) > 1024 * 1024
    _wav(client.post("/v1/speech", data={"text": "Hi.", "seed": "1"}, files={"reference": ("a.wav", big, "audio/wav")}))
    job = client.post("/v1/jobs", data={"text": "A job.", "voice": "clara"}).json()
    _wait(client, job["id"], "done")
    assert list(private_tmp.iterdir())  # the job's result folder
    clip = {"clip": ("a.wav", big, "audio/wav")}
    assert client.post("/v1/voices", data={"name": "tmp-check", "consent": "true"}, files=clip).status_code == 201
    assert client.delete("/v1/voices/tmp-check").status_code == 204
    assert not [p for p in (tmp_path / "voices").iterdir()]  # no staging folder left by the voice store
    client.__exit__(None, None, None)
    assert list(private_tmp.iterdir()) == []


# -- jobs -----------------------------------------------------------------------------------------------


def _wait(client, job_id: str, state: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] == state:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {state}: {job}")


def _events(client, job_id: str, last_event_id: str | None = None) -> list[tuple[str, dict]]:
    headers = {"last-event-id": last_event_id} if last_event_id else {}
    events, name = [], None
    with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    return events


def test_job_lifecycle_with_events_download_and_mel(client) -> None:
    text = "First sentence here. A second one! And a third?"
    created = client.post("/v1/jobs", data={"text": text, "voice": "clara", "seed": "5"})
    assert created.status_code == 202, created.text
    job = created.json()
    assert created.headers["location"] == f"/v1/jobs/{job['id']}" == job["links"]["self"]
    assert job["state"] in ("queued", "running") and job["seed"] == 5 and job["text_chars"] == len(text)
    events = _events(client, job["id"])
    names = [name for name, _ in events]
    assert names[0] == "state" and names[-1] == "done" and names.count("done") == 1
    stages = {data["stage"] for name, data in events if name == "progress"}
    assert stages == {"embed", "synthesize", "vocode"}
    vocode = [data for name, data in events if name == "progress" and data["stage"] == "vocode"]
    assert vocode[-1] == {"stage": "vocode", "done": 3, "total": 3}
    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["state"] == "done" and done["result"]["sentences"] == 3 and done["expires"] > done["finished"]
    audio = client.get(done["links"]["audio"])
    assert 'filename="vcframe-5.wav"' in audio.headers["content-disposition"]
    samples, _ = _wav(audio)
    assert len(samples) / 16000 == pytest.approx(done["result"]["duration_s"], abs=1e-3)
    mel = client.get(done["links"]["mel"])
    assert mel.status_code == 200 and mel.headers["content-type"] == "image/png" and mel.content[:4] == b"\x89PNG"
    width, height = struct.unpack(">II", mel.content[16:24])  # IHDR: one column per frame, 3 px per band
    assert height == 20 * 3 and width == (len(samples) - 2 * round(0.15 * 16000)) // 64
    # a job gives the same audio as /v1/speech with the same seed
    direct = client.post("/v1/speech", data={"text": text, "voice": "clara", "seed": "5"})
    assert direct.content == audio.content
    # resuming the stream after the last event id replays only the rest
    assert [name for name, _ in _events(client, job["id"], last_event_id=str(len(events) - 2))] == ["done"]
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
    _problem(client.get(f"/v1/jobs/{job['id']}"), 404)
    _problem(client.get(done["links"]["audio"]), 404)


def test_cancel_a_queued_job(client, hold_worker) -> None:
    gate = hold_worker(client)
    job = client.post("/v1/jobs", data={"text": "Never spoken.", "voice": "clara"}).json()
    assert client.get(f"/v1/jobs/{job['id']}").json()["state"] == "queued"
    _problem(client.get(f"/v1/jobs/{job['id']}/audio"), 409, "queued, not done")
    cancelled = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert _events(client, job["id"])[-1][0] == "cancelled"
    gate.release.set()
    time.sleep(0.1)
    assert client.get(f"/v1/jobs/{job['id']}").json()["state"] == "cancelled"
    _problem(client.post(f"/v1/jobs/{job['id']}/cancel"), 409, "already cancelled")


def test_cancel_a_running_job(client, monkeypatch) -> None:
    import threading

    from vcframe.serve import app as app_module

    started, proceed = threading.Event(), threading.Event()
    real_speak = app_module.speak

    def slow_speak(pipeline, text, *, progress, **kwargs):
        progress("synthesize", 0, 1)
        started.set()
        proceed.wait(10)
        return real_speak(pipeline, text, progress=progress, **kwargs)

    monkeypatch.setattr(app_module, "speak", slow_speak)
    job = client.post("/v1/jobs", data={"text": "Stop me.", "voice": "clara"}).json()
    assert started.wait(10)
    assert client.get(f"/v1/jobs/{job['id']}").json()["state"] == "running"
    assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 200
    proceed.set()
    assert _events(client, job["id"])[-1][0] == "cancelled"
    _problem(client.get(f"/v1/jobs/{job['id']}/audio"), 409, "cancelled")


def test_failed_job_reports_the_error(client, audio) -> None:
    too_short = {"reference": ("a.wav", audio(0.05), "audio/wav")}
    job = client.post("/v1/jobs", data={"text": "Hi."}, files=too_short).json()
    name, data = _events(client, job["id"])[-1]
    assert name == "failed" and data["error"]["status"] == 422 and "at least 0.10 s" in data["error"]["detail"]
    assert client.get(f"/v1/jobs/{job['id']}").json()["error"]["error"] == "AudioInputError"


def test_jobs_expire_after_their_time_to_live(make_client, private_tmp) -> None:
    client = make_client(job_ttl_s=0.3)
    job = client.post("/v1/jobs", data={"text": "Short lived.", "voice": "clara"}).json()
    _wait(client, job["id"], "done")
    results = [path for folder in private_tmp.iterdir() for path in folder.iterdir()]
    assert sorted(path.suffix for path in results) == [".png", ".wav"]
    time.sleep(0.5)  # the sweeper runs every ttl/2
    assert not any(path.exists() for path in results)
    _problem(client.get(f"/v1/jobs/{job['id']}"), 404, "expired")
    _problem(client.get("/v1/jobs/not-a-job"), 422)


def test_long_texts_go_to_jobs(make_client) -> None:
    client = make_client(max_speech_chars=20)
    text = "This text is longer than the speech endpoint takes. " * 2
    _problem(client.post("/v1/speech", data={"text": text, "voice": "clara"}), 422, "/v1/jobs")
    job = client.post("/v1/jobs", data={"text": text, "voice": "clara"}).json()
    assert _wait(client, job["id"], "done")["result"]["sentences"] == 2


# -- concurrency ----------------------------------------------------------------------------------------------


def test_full_queue_answers_429_while_healthz_stays_fast(make_client, hold_worker, audio) -> None:
    client = make_client(queue_size=1)
    gate = hold_worker(client)  # running
    client.app.state.vcframe.worker.submit(lambda: None)  # waiting: the queue is now full
    reference = {"reference": ("a.wav", audio(1.0), "audio/wav")}
    refused = client.post("/v1/speech", data={"text": "Hi."}, files=reference)
    body = _problem(refused, 429, "busy")
    assert int(refused.headers["retry-after"]) >= 1 and body["error"] == "QueueFull"
    _problem(client.post("/v1/jobs", data={"text": "Hi.", "voice": "clara"}), 429)
    _problem(client.post("/v1/embeddings", files={"clip": ("a.wav", audio(1.0), "audio/wav")}), 429)
    started = time.perf_counter()
    health = client.get("/healthz")
    assert time.perf_counter() - started < 1.0
    assert health.json()["busy"] and health.json()["queue_pending"] == 1
    assert client.get("/v1/jobs").status_code in (404, 405)  # no listing of other people's jobs
    gate.release.set()
    deadline = time.monotonic() + 10
    while client.get("/healthz").json()["queue_pending"] and time.monotonic() < deadline:
        time.sleep(0.02)
    _wav(client.post("/v1/speech", data={"text": "Hi."}, files=reference))


def test_requests_wait_for_the_worker_without_blocking_the_event_loop(client, hold_worker, audio) -> None:
    import threading

    gate = hold_worker(client)
    results = {}

    def speak():
        results["speech"] = client.post(
            "/v1/speech", data={"text": "Hi.", "seed": "1"}, files={"reference": ("a.wav", audio(1.0), "audio/wav")}
        )

    thread = threading.Thread(target=speak)
    thread.start()
    deadline = time.monotonic() + 10
    while client.get("/healthz").json()["queue_pending"] != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.get("/v1/info").status_code == 200  # answered while a request waits on the worker
    gate.release.set()
    thread.join(10)
    _wav(results["speech"])


# -- security ------------------------------------------------------------------------------------------------


def test_host_header_allowlist(make_client) -> None:
    client = make_client()
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LOCALHOST"):
        assert client.get("/healthz", headers={"host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", ""):
        _problem(client.get("/healthz", headers={"host": host}), 400, "does not answer to the host")
    _problem(client.get("/", headers={"host": "rebind.example"}), 400)
    named = make_client(allowed_hosts=("voices.lan",))
    assert named.get("/healthz", headers={"host": "voices.lan:8000"}).status_code == 200


def test_cross_origin_writes_are_refused_and_no_cors_by_default(client, audio) -> None:
    reference = {"reference": ("a.wav", audio(1.0), "audio/wav")}
    data = {"text": "Hi.", "seed": "1"}
    _problem(client.post("/v1/speech", data=data, files=reference, headers={"origin": "http://evil.example"}), 403)
    _problem(client.post("/v1/speech", data=data, files=reference, headers={"origin": "null"}), 403)
    _problem(client.post("/v1/speech", data=data, files=reference, headers={"sec-fetch-site": "cross-site"}), 403)
    _problem(client.post("/v1/speech", data=data, files=reference, headers={"sec-fetch-site": "same-site"}), 403)
    _problem(client.delete("/v1/voices/clara", headers={"origin": "http://localhost:3000"}), 403, "cross-origin")
    same = {"origin": "http://127.0.0.1:8000", "sec-fetch-site": "same-origin"}
    _wav(client.post("/v1/speech", data=data, files=reference, headers=same))
    _wav(client.post("/v1/speech", data=data, files=reference))  # curl and scripts send neither header
    read = client.get("/v1/voices", headers={"origin": "http://evil.example"})
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers
    preflight = client.options(
        "/v1/speech", headers={"origin": "http://evil.example", "access-control-request-method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_configured_cors_origin_may_call(make_client, audio) -> None:
    client = make_client(cors_origins=("http://studio.example",))
    origin = {"origin": "http://studio.example"}
    response = client.post(
        "/v1/speech",
        data={"text": "Hi.", "seed": "2"},
        files={"reference": ("a.wav", audio(1.0), "audio/wav")},
        headers=origin,
    )
    _wav(response)
    assert response.headers["access-control-allow-origin"] == "http://studio.example"
    assert "x-vcframe-seed" in response.headers["access-control-expose-headers"].lower()
    _problem(client.post("/v1/jobs", data={"text": "Hi."}, headers={"origin": "http://other.example"}), 403)


def test_security_headers_on_every_response(client) -> None:
    for path in ("/healthz", "/v1/voices", "/v1/missing", "/"):
        headers = client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]


# -- page ---------------------------------------------------------------------------------------------------------


def test_page_is_served_with_a_strict_csp_and_no_network_asset(client) -> None:
    import re

    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["connect-src"] == "'self'" and "unsafe" not in page.headers["content-security-policy"]
    html = page.text
    assert re.search(r"<script[^>]*>(?!</script>)", html) is None, "inline script"
    assert " style=" not in html and "<style" not in html and " on" + "click=" not in html
    for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == 200
    for name in ("app.js", "recorder-worklet.js", "style.css"):
        body = client.get(f"/static/{name}").text
        assert "http://" not in body and "https://" not in body, name
    js = client.get("/static/app.js").text
    for endpoint in ("/v1/info", "/v1/plugins", "/v1/voices", "/v1/speech/stream", "/v1/jobs", "EventSource"):
        assert endpoint in js
    _problem(client.get("/static/../app.py"), 404)
    _problem(client.get("/static/index.html.bak"), 404)


def test_head_of_the_page_answers_200(client) -> None:
    for path in ("/", "/static/app.js"):
        response = client.head(path)
        assert response.status_code == 200 and response.content == b"", path
        assert int(response.headers["content-length"]) > 0
    assert client.head("/").headers["content-type"].startswith("text/html")


# -- OpenAPI ----------------------------------------------------------------------------------------------------


def test_openapi_declares_every_error_status(client) -> None:
    document = client.get("/openapi.json").json()
    operations = {
        (method.upper(), path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert ("GET", "/") not in operations and ("GET", "/static/{name}") not in operations
    expected = {
        ("GET", "/healthz"): set(),
        ("GET", "/v1/plugins/{kind}/{name}"): {404},
        ("GET", "/v1/voices/{name}/audio"): {404},
        ("POST", "/v1/voices"): {403, 409, 413, 415, 429},
        ("DELETE", "/v1/voices/{name}"): {403, 404},
        ("POST", "/v1/embeddings"): {403, 413, 415, 429},
        ("POST", "/v1/speech"): {403, 409, 413, 415, 429},
        ("POST", "/v1/speech/stream"): {403, 409, 413, 415, 429, 503},
        ("POST", "/v1/jobs"): {403, 409, 413, 415, 429},
        ("GET", "/v1/jobs/{job_id}"): {404},
        ("GET", "/v1/jobs/{job_id}/events"): {404},
        ("POST", "/v1/jobs/{job_id}/cancel"): {403, 404, 409},
        ("DELETE", "/v1/jobs/{job_id}"): {403, 404},
        ("GET", "/v1/jobs/{job_id}/audio"): {404, 409},
        ("GET", "/v1/jobs/{job_id}/mel.png"): {404, 409},
    }
    for key, operation in operations.items():
        declared = {int(status) for status in operation["responses"]}
        assert {400, 422, 500} <= declared, key
        assert expected.get(key, set()) <= declared, (key, declared)
        for status in declared - {200, 201, 202, 204}:
            content = operation["responses"][str(status)]["content"]
            assert PROBLEM_MEDIA_TYPE in content, (key, status)
    assert operations[("POST", "/v1/speech")]["responses"]["200"]["content"]["audio/wav"]
    assert "429" in operations[("POST", "/v1/jobs")]["responses"]
    form = document["components"]["schemas"]
    assert any("consent" in schema.get("properties", {}) for schema in form.values())
