"""Fixtures for the server tests: an app over the dummy components, a private voice store and temp folder."""

from __future__ import annotations

import io
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from tests.serve._uvicorn import uvicorn_in_thread

pytest.importorskip("fastapi", reason="vcframe serve needs the 'serve' extra (pip install 'vcframe-core[serve]')")

from fastapi.testclient import TestClient  # noqa: E402

from vcframe.config import Settings  # noqa: E402
from vcframe.serve import ServeSettings, create_app  # noqa: E402
from vcframe.voices import VoiceStore  # noqa: E402

BASE_URL = "http://127.0.0.1:8000"
DUMMY_SETTINGS = dict(encoder="test-tone", synthesizer="test-constant", vocoder="test-sine", device="cpu")


def audio_bytes(
    seconds: float = 1.0, *, rate: int = 16000, f0: float = 150.0, file_format: str = "WAV", subtype: str | None = None
) -> bytes:
    """A speech-like harmonic tone encoded as ``file_format`` (WAV, FLAC, OGG, MP3)."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * f0 * t
    signal = sum(np.sin(k * phase) / k for k in range(1, 8))
    samples = (0.3 * signal / np.max(np.abs(signal)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=file_format, subtype=subtype)
    return buffer.getvalue()


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tempfile's folder for this test only (so a test can see every temporary file the server leaves)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def make_client(dummy_registry: Any, tmp_path: Path, private_tmp: Path) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**serve_options)``: a started TestClient (lifespan run) on the dummy components."""
    clients: list[TestClient] = []

    def make(settings: Settings | None = None, **serve_options: Any) -> TestClient:
        serve_options.setdefault("preload", False)
        app = create_app(
            settings or Settings(**DUMMY_SETTINGS),
            dummy_registry,
            ServeSettings(**serve_options),
            voice_store=VoiceStore(tmp_path / "voices"),
        )
        client = TestClient(app, base_url=BASE_URL)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


class Gate:
    """A task that holds the inference worker until released (to make the queue fill up)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> None:
        self.entered.set()
        if not self.release.wait(30):
            raise TimeoutError("gate never released")


@pytest.fixture
def hold_worker() -> Iterator[Callable[[TestClient], Gate]]:
    """``gate = hold_worker(client)``: the client's worker is busy until ``gate.release.set()``."""
    gates: list[Gate] = []

    def hold(client: TestClient) -> Gate:
        gate = Gate()
        state = client.app.state.vcframe  # type: ignore[attr-defined]
        state.worker.start()
        state.worker.submit(gate)
        assert gate.entered.wait(10), "the worker did not pick up the gate"
        gates.append(gate)
        return gate

    yield hold
    for gate in gates:
        gate.release.set()


@pytest.fixture
def served(make_client) -> Iterator[tuple[str, object]]:
    """A uvicorn server (in a thread) over the dummy components; yields (base URL, the TestClient of the same
    app, whose lifespan runs the app's start and stop)."""
    client = make_client()
    for base in uvicorn_in_thread(client.app, lifespan="off"):
        yield base, client


@pytest.fixture
def audio() -> Callable[..., bytes]:
    """``audio(seconds=1.0, rate=16000, f0=150.0, file_format="WAV", subtype=None)``: encoded clip bytes."""
    return audio_bytes


@pytest.fixture
def server(dummy_registry, tmp_path) -> Iterator[str]:
    """A uvicorn server on a free loopback port with the dummy components (and any a test registers before it
    starts); yields its base URL. For the browser tests."""
    from vcframe.config import Settings
    from vcframe.serve import ServeSettings, create_app
    from vcframe.voices import VoiceStore

    settings = Settings(encoder="test-tone", synthesizer="test-constant", vocoder="test-sine", device="cpu")
    app = create_app(settings, dummy_registry, ServeSettings(preload=False), voice_store=VoiceStore(tmp_path / "v"))
    yield from uvicorn_in_thread(app, lifespan="on")
