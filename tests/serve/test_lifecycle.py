"""A real uvicorn server: clients that go away are dropped, and Ctrl+C stops running work within seconds.

TestClient never disconnects and never receives a signal, so these tests talk HTTP to a server on a free
loopback port: in a thread for the disconnect tests, in a child process for the SIGINT test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.serve._uvicorn import until


def _send_and_hang_up(base: str, text: str) -> socket.socket:
    """Send a whole POST /v1/speech (sample voice) on a raw connection that the caller closes later."""
    request = httpx.Request("POST", f"{base}/v1/speech", data={"text": text, "voice": "clara", "seed": "1"})
    head = f"POST /v1/speech HTTP/1.1\r\nHost: {request.url.netloc.decode()}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in request.headers.items() if name.lower() != "host")
    connection = socket.create_connection((request.url.host, request.url.port))
    connection.sendall(head.encode() + b"\r\n" + request.read())
    return connection


def test_a_request_whose_client_left_while_it_waited_is_never_computed(served, hold_worker, monkeypatch) -> None:
    from vcframe.serve import app as app_module

    base, client = served
    state = client.app.state.vcframe
    spoken: list[str] = []
    real_speak = app_module.speak

    def counted_speak(pipeline, text, **kwargs):
        spoken.append(text)
        return real_speak(pipeline, text, **kwargs)

    monkeypatch.setattr(app_module, "speak", counted_speak)
    gate = hold_worker(client)
    connections = [_send_and_hang_up(base, f"Waiting {index}.") for index in range(3)]
    until(lambda: state.worker.pending == 3, 10, "the requests reached the queue")
    for connection in connections:
        connection.close()
    seconds = until(lambda: state.worker.pending == 0, 5, "the queue emptied while the worker was busy")
    assert seconds < 2.0
    assert httpx.get(f"{base}/healthz").json()["queue_pending"] == 0  # room for other clients: no 429
    gate.release.set()
    until(lambda: not state.worker.busy, 10, "the worker went idle")
    time.sleep(0.3)
    assert spoken == []  # none of them was synthesized


def test_a_running_request_whose_client_left_stops_at_its_next_step(served, monkeypatch) -> None:
    from vcframe.serve import app as app_module

    base, client = served
    state = client.app.state.vcframe
    steps: list[int] = []

    def endless_speak(pipeline, text, *, progress, **kwargs):
        for step in range(600):  # a minute of synthesis, reported every 0.1 s
            steps.append(step)
            progress("synthesize", step, 600)
            time.sleep(0.1)
        raise AssertionError("never stopped")

    monkeypatch.setattr(app_module, "speak", endless_speak)
    connection = _send_and_hang_up(base, "A long text.")
    until(lambda: len(steps) > 2, 10, "the request started")
    connection.close()
    seconds = until(lambda: not state.worker.busy, 5, "the worker stopped the abandoned request")
    assert seconds < 2.0 and len(steps) < 40


SERVER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from vcframe.config import Settings
    from vcframe.discovery import Registry
    from vcframe.serve import ServeSettings, create_app
    from vcframe.serve import app as app_module
    from vcframe.serve.runner import listen_socket, serve_forever
    from vcframe.testing.dummy_specs import DUMMY_SPECS
    from vcframe.voices import VoiceStore

    def slow_speak(pipeline, text, *, progress, **kwargs):  # two minutes of synthesis, reported every 0.1 s
        for step in range(1200):
            progress("synthesize", step, 1200)
            time.sleep(0.1)
        raise AssertionError("never stopped")

    app_module.speak = slow_speak
    registry = Registry()
    for spec in DUMMY_SPECS:
        registry.register(spec, distribution="vcframe-core")
    settings = Settings(encoder="test-tone", synthesizer="test-constant", vocoder="test-sine", device="cpu")
    application = create_app(settings, registry, ServeSettings(preload=False), voice_store=VoiceStore(sys.argv[1]))
    sock = listen_socket("127.0.0.1", 0)
    print(sock.getsockname()[1], flush=True)
    serve_forever(application, sock, say=lambda line: print(line, file=sys.stderr, flush=True))
    """
)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.ConnectError:
        return False


def _events(base: str, job_id: str, into: list[str]) -> None:
    with httpx.stream("GET", f"{base}/v1/jobs/{job_id}/events", timeout=30) as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                into.append(line.removeprefix("event: "))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_cancels_running_work_and_exits_within_seconds(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(SERVER_SCRIPT)
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "voices")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        base = f"http://127.0.0.1:{int(process.stdout.readline())}"  # bound; listening once uvicorn has started
        until(lambda: _answers(f"{base}/healthz"), 20, "the server started")
        job = httpx.post(f"{base}/v1/jobs", data={"text": "A long job.", "voice": "clara"}).json()
        events: list[str] = []
        follower = threading.Thread(target=_events, args=(base, job["id"], events), daemon=True)
        follower.start()
        until(lambda: httpx.get(f"{base}/v1/jobs/{job['id']}").json()["state"] == "running", 20, "the job ran")
        answers: list[httpx.Response] = []
        waiting = threading.Thread(
            target=lambda: answers.append(httpx.post(f"{base}/v1/speech", data={"text": "Hi.", "voice": "clara"})),
            daemon=True,
        )
        waiting.start()
        until(lambda: httpx.get(f"{base}/healthz").json()["queue_pending"] == 1, 10, "the request waited")
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
        seconds = time.monotonic() - started
        stderr = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    follower.join(5)
    waiting.join(5)
    assert seconds < 5.0, (seconds, stderr)
    assert "stopping: 1 unfinished job(s) cancelled, 1 waiting request(s) dropped" in stderr, stderr
    assert "vcframe serve: stopped" in stderr and "Traceback" not in stderr, stderr
    assert process.returncode == 0, stderr
    assert events[-1] == "cancelled", events
    assert answers and answers[0].status_code == 503, [(a.status_code, a.text) for a in answers]
    assert json.loads(answers[0].text)["detail"] == "the server is shutting down"
