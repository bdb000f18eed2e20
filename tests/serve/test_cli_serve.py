"""``vcframe serve`` builds the app from the same component options and -o overrides as ``vcframe run``."""

from __future__ import annotations

import socket

import pytest

from tests._cli import DUMMIES


@pytest.fixture
def captured_run(monkeypatch):
    """The server the CLI would run: its application, bound host and port (nothing is served)."""
    from vcframe.serve import runner

    calls: list[dict] = []

    def record(app, sock, **kwargs) -> None:
        host, port = sock.getsockname()[:2]
        calls.append({"app": app, "host": host, "port": port, **kwargs})

    monkeypatch.setattr(runner, "serve_forever", record)
    return calls


def test_serve_starts_uvicorn_with_the_chosen_components(dummy_registry, vcframe_cli, captured_run) -> None:
    from fastapi.testclient import TestClient

    result = vcframe_cli(
        "serve", *DUMMIES, "--port", 0, "-o", "vocoder.test-sine.amplitude=0.5", "--queue-size", 3, "--no-preload"
    )
    assert result.exit_code == 0, (result.stderr, result.exception)
    (call,) = captured_run
    assert call["host"] == "127.0.0.1" and call["port"] > 0  # port 0: any free one, shown in the banner
    assert f"http://127.0.0.1:{call['port']}/" in result.stderr and "warning" not in result.stderr
    with TestClient(call["app"], base_url=f"http://127.0.0.1:{call['port']}") as client:
        assert client.get("/v1/info").json()["defaults"]["vocoder"] == "test-sine"
        assert client.get("/healthz").json()["queue_size"] == 3
        state = client.app.state.vcframe
        assert state.engine.pipeline().configs["vocoder"].amplitude == 0.5


def test_serve_warns_when_bound_beyond_loopback(dummy_registry, vcframe_cli, captured_run) -> None:
    result = vcframe_cli(
        "serve", *DUMMIES, "--host", "0.0.0.0", "--port", 0, "--allowed-host", "box.lan", "--no-preload"
    )
    assert result.exit_code == 0, result.stderr
    assert "no authentication" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [
        (["--vocoder", "nope"], "unknown vocoder 'nope'"),
        (["--queue-size", "0"], "queue_size"),
        (["--max-upload-mb", "-1"], "max_upload_bytes"),
        (["-o", "vocoder.test-sine.amplitude=7"], "amplitude"),
    ],
)
def test_bad_options_are_one_line_errors(dummy_registry, vcframe_cli, captured_run, arguments, needle) -> None:
    result = vcframe_cli("serve", *DUMMIES, *arguments)
    assert result.exit_code == 2, (result.stderr, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], result.stderr
    assert not captured_run


def test_a_busy_port_is_one_line_before_the_banner(dummy_registry, vcframe_cli, captured_run) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = vcframe_cli("serve", *DUMMIES, "--port", port, "--no-preload")
    assert result.exit_code == 2, (result.stderr, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{port}: the port is in use" in lines[0], result.stderr
    assert "another port with --port" in lines[0] and not captured_run


def test_serve_runs_one_torch_thread_unless_told(dummy_registry, vcframe_cli, captured_run, torch_threads) -> None:
    import torch

    torch_threads(8)
    assert vcframe_cli("serve", *DUMMIES, "--port", 0, "--no-preload").exit_code == 0
    assert torch.get_num_threads() == 1
    result = vcframe_cli("serve", *DUMMIES, "--port", 0, "--no-preload", "--threads", 2)
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert torch.get_num_threads() == 2
    assert captured_run[-1]["app"].state.vcframe.engine.pipeline().threads == 2
