"""POST /v1/speech/stream: audio leaves while it is made, adds up to /v1/speech's, and stops with its client.

The timing tests talk HTTP to a real uvicorn server (TestClient hands over a streamed body only once it is
complete, and never hangs up); the test-sine vocoder is held between its chunks so that what the client has
received can be checked while the job is still making audio.
"""

from __future__ import annotations

import io
import logging
import struct
import threading
import time
from collections.abc import Iterator

import httpx2 as httpx
import numpy as np
import pytest
import soundfile

from tests.serve._uvicorn import until
from tests.serve.test_api import _problem
from vcframe.testing._dummy_models import SineVocoder
from vcframe.testing.dummy_specs import TEST_MEL

STREAM = "/v1/speech/stream"
#: 24 characters x 4 frames per character (test-constant) = 96 frames: 6 chunks of test-sine's 16 frames.
TEXT = "Chunks leave one by one."
CHUNK_BYTES = 16 * TEST_MEL.hop_length * 2  # 16-bit samples


def _pcm(body: bytes) -> np.ndarray:
    """The samples of a streamed WAV (its header says 'length unknown')."""
    assert body[:4] == b"RIFF" and body[8:16] == b"WAVEfmt " and body[36:40] == b"data"
    assert struct.unpack("<I", body[4:8])[0] == 0xFFFFFFFF and struct.unpack("<I", body[40:44])[0] == 0xFFFFFFFF
    channels, rate, bits = struct.unpack("<H", body[22:24])[0], *struct.unpack("<I", body[24:28]), body[34]
    assert (channels, rate, bits) == (1, 16000, 16)
    return np.frombuffer(body[44:], "<i2")


class HeldVocoder:
    """Patches test-sine's ``vocode_stream``: each chunk made is recorded, and before each chunk after the first
    the vocoder waits for ``release`` (``None``: waits ``pause_s`` instead)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, pause_s: float = 0.0, fail_after: int | None = None):
        self.made: list[float] = []  # monotonic time each chunk was made
        self.release = threading.Event()
        self.pause_s = pause_s
        self.fail_after = fail_after
        real = SineVocoder.vocode_stream
        held = self

        def vocode_stream(vocoder, mel, *, seed=None) -> Iterator:
            for index, chunk in enumerate(real(vocoder, mel, seed=seed)):
                if index and held.pause_s:
                    time.sleep(held.pause_s)
                elif index:
                    held.release.wait(10)
                if held.fail_after is not None and index == held.fail_after:
                    raise RuntimeError("the vocoder broke")
                held.made.append(time.monotonic())
                yield chunk

        monkeypatch.setattr(SineVocoder, "vocode_stream", vocode_stream)


# -- what is sent -------------------------------------------------------------------------------------------


def test_streamed_audio_is_the_speech_endpoints_audio_and_the_job_keeps_it(client) -> None:
    form = {"text": "Two sentences here. And a second one.", "voice": "clara", "seed": "7"}
    streamed = client.post(STREAM, data=form)
    assert streamed.status_code == 200, streamed.text
    headers = streamed.headers
    assert headers["content-type"] == "audio/wav" and "content-length" not in headers
    assert headers["x-vcframe-sample-rate"] == "16000" and headers["x-vcframe-seed"] == "7"
    assert headers["x-vcframe-components"] == "encoder=test-tone,synthesizer=test-constant,vocoder=test-sine"
    assert headers["cache-control"] == "no-store" and headers["location"] == f"/v1/jobs/{headers['x-vcframe-job']}"
    samples = _pcm(streamed.content)
    # libsndfile reads the stream as it is (the sizes say 'up to the end')
    read, rate = soundfile.read(io.BytesIO(streamed.content), dtype="int16")
    assert rate == 16000 and np.array_equal(read, samples)

    whole = client.post("/v1/speech", data=form)  # the same seed, not streamed
    expected = np.frombuffer(whole.content[44:], "<i2")
    assert len(samples) == len(expected) > 16000 * 0.15  # both sentences and the pause between them
    assert np.abs(samples.astype(np.int32) - expected).max() <= 1  # chunked vs whole rendering: float rounding

    job = client.get(headers["location"]).json()
    assert job["state"] == "done" and job["seed"] == 7 and job["result"]["sentences"] == 2
    assert job["result"]["duration_s"] == pytest.approx(len(samples) / 16000, abs=1e-3)
    assert job["result"]["similarity"] is not None and job["links"]["mel"]
    kept = client.get(job["links"]["audio"]).content  # the finished file: exactly what was streamed
    assert kept[:4] == b"RIFF" and struct.unpack("<I", kept[40:44])[0] == len(samples) * 2
    assert kept[44:] == streamed.content[44:]


def test_stream_requests_are_validated_like_speech_requests(make_client, hold_worker, audio) -> None:
    client = make_client(queue_size=1)
    reference = {"reference": ("a.wav", audio(1.0), "audio/wav")}
    _problem(client.post(STREAM, data={"text": "Hi."}), 422, "exactly one of 'voice' and 'reference'")
    _problem(client.post(STREAM, data={"text": "   "}, files=reference), 422, "the text is empty")
    _problem(client.post(STREAM, data={"text": "Hi.", "voice": "nobody"}), 422, "unknown voice 'nobody'")
    _problem(client.post(STREAM, data={"text": "Hi.", "seed": "-1"}, files=reference), 422, "seed")
    _problem(client.post(STREAM, data={"text": "Hi.", "vocoder": "nope"}, files=reference), 422, "unknown vocoder")
    _problem(client.post(STREAM, json={"text": "Hi.", "voice": "clara"}), 400, "form fields")
    _problem(client.post(STREAM, data={"text": "x" * 10_001, "voice": "clara"}), 422, "at most 10,000")
    _problem(client.post(STREAM, data={"text": "Hi.", "voice": "clara"}, headers={"host": "x"}), 400)
    # found on the worker, before any audio: still a JSON problem with its own status
    short = {"reference": ("a.wav", audio(0.05), "audio/wav")}
    body = _problem(client.post(STREAM, data={"text": "Hi."}, files=short), 422, "needs at least 0.10 s")
    assert body["error"] == "AudioInputError"
    # HEAD of a POST-only route
    head = client.head(STREAM)
    assert head.status_code == 405 and head.headers["allow"] == "POST"
    # the worker's queue and the job limit apply
    jobs = client.app.state.vcframe.jobs
    before = len(jobs)
    gate = hold_worker(client)
    client.app.state.vcframe.worker.submit(lambda: None)  # the queue is full
    refused = client.post(STREAM, data={"text": "Hi.", "voice": "clara"})
    assert _problem(refused, 429, "busy")["error"] == "QueueFull" and int(refused.headers["retry-after"]) >= 1
    assert len(jobs) == before  # the refused request left no job behind
    gate.release.set()
    limited = make_client(max_jobs=1)
    gate = hold_worker(limited)
    assert limited.post("/v1/jobs", data={"text": "Hi.", "voice": "clara"}).status_code == 202
    _problem(limited.post(STREAM, data={"text": "Hi.", "voice": "clara"}), 429, "1 jobs are queued or running")
    gate.release.set()


def test_openapi_declares_the_stream(client) -> None:
    operation = client.get("/openapi.json").json()["paths"][STREAM]["post"]
    assert "audio/wav" in operation["responses"]["200"]["content"]
    assert {"400", "409", "413", "415", "422", "429", "500", "503"} <= set(operation["responses"])
    assert "0xFFFFFFFF" in operation["responses"]["200"]["description"]


# -- timing, errors and hang-ups on a real server ------------------------------------------------------------


def test_the_first_chunk_reaches_the_client_before_the_last_is_made(served, monkeypatch) -> None:
    base, _ = served
    vocoder = HeldVocoder(monkeypatch)  # makes chunk 1, then waits for release before each further chunk
    received: list[tuple[float, int]] = []
    with httpx.stream("POST", f"{base}{STREAM}", data={"text": TEXT, "voice": "clara", "seed": "3"}, timeout=20) as r:
        assert r.status_code == 200
        for piece in r.iter_raw():
            received.append((time.monotonic(), len(piece)))
            if sum(size for _, size in received) > 44:
                vocoder.release.set()  # the first audio is here: let the vocoder go on
    total = sum(size for _, size in received)
    assert len(vocoder.made) == 6 and total == 44 + 6 * CHUNK_BYTES
    first_audio = next(moment for moment, _ in received)
    assert first_audio < vocoder.made[1] < vocoder.made[-1]  # the client had audio before chunk 2 was made
    assert len(received) >= 2


def test_a_client_that_hangs_up_stops_the_stream(served, monkeypatch, caplog) -> None:
    base, client = served
    state = client.app.state.vcframe
    vocoder = HeldVocoder(monkeypatch, pause_s=0.05)
    long_text = "and on " * 60 + "end."  # one sentence (stops inside it): 1,696 frames, 106 chunks x 0.05 s = 5.3 s
    caplog.set_level(logging.INFO, logger="vcframe.serve")
    with httpx.stream("POST", f"{base}{STREAM}", data={"text": long_text, "voice": "clara"}, timeout=20) as r:
        job_id = r.headers["x-vcframe-job"]
        next(r.iter_raw())
    # the connection is closed
    seconds = until(lambda: not state.worker.busy, 5, "the worker stopped the abandoned stream")
    assert seconds < 2.0 and len(vocoder.made) < 40
    assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "cancelled"
    assert any("client disconnected" in record.getMessage() for record in caplog.records)


def test_a_stream_waiting_for_the_worker_is_dropped_when_its_client_leaves(served, hold_worker) -> None:
    base, client = served
    state = client.app.state.vcframe
    gate = hold_worker(client)
    answers: list[BaseException] = []

    def hang_up_early() -> None:
        try:
            httpx.post(f"{base}{STREAM}", data={"text": TEXT, "voice": "clara"}, timeout=0.5)
        except httpx.TimeoutException as error:  # the client gives up while the request waits
            answers.append(error)

    asker = threading.Thread(target=hang_up_early)
    asker.start()
    asker.join(5)
    assert answers, "the request was answered while the worker was held"
    until(lambda: state.worker.pending == 0, 5, "the waiting stream left the queue")
    gate.release.set()
    until(lambda: not state.worker.busy, 5, "the worker went idle")
    [job] = state.jobs._jobs.values()
    assert job.state == "cancelled" and not any(event.name == "progress" for event in job.events)


def test_an_error_after_the_first_chunk_ends_the_stream_cleanly_and_is_logged(served, monkeypatch, caplog) -> None:
    base, client = served
    HeldVocoder(monkeypatch, pause_s=0.01, fail_after=2)
    caplog.set_level(logging.WARNING, logger="vcframe.serve")
    with httpx.stream("POST", f"{base}{STREAM}", data={"text": TEXT, "voice": "clara"}, timeout=20) as r:
        assert r.status_code == 200
        body = b"".join(r.iter_raw())  # ends without a protocol error
        job_id = r.headers["x-vcframe-job"]
    assert len(body) == 44 + 2 * CHUNK_BYTES  # the two chunks made before the error
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["state"] == "failed" and job["error"]["error"] == "InternalError"
    assert any(f"job {job_id} failed after streaming began" in record.getMessage() for record in caplog.records)


def test_an_unexpected_error_before_the_first_chunk_is_a_json_500(client, monkeypatch) -> None:
    HeldVocoder(monkeypatch, fail_after=0)
    body = _problem(client.post(STREAM, data={"text": "Hi.", "voice": "clara"}), 500, "RuntimeError")
    assert body["error"] == "InternalError" and "server log" in body["hint"]
