"""``vcframe serve`` benchmark and page screenshot: latencies of the API and of the page in headless Chromium.

Run by hand:  .venv/bin/python benchmarks/serve.py [--screenshot docs/serve-page.png] [--rounds 20]

Starts a real uvicorn server on a free loopback port whose registry holds the installed plugins plus the
dummy test components (test-tone -> test-constant -> test-sine are the defaults, so cloning works without
trained weights), then measures:

* ``/healthz`` latency, idle and while the inference worker is held busy with a full queue (and that the
  next inference request is refused with 429 at once);
* ``POST /v1/speech`` round trip with a sample voice;
* a job: ``POST /v1/jobs`` to its ``done`` event over Server-Sent Events, then the audio download;
* with Chromium (Debian's ``chromium``) and Playwright: page load to "ready", and Clone to the result in
  the history.

Prints a markdown table. The numbers are the server's overhead around the (dummy, near-instant) models.

``--screenshot PATH`` then starts a second server with the installed plugins and the settings' defaults (the
real components and their shipped weights, as ``vcframe serve`` runs), clones a sample voice in Chromium and
saves the page after the result (docs/serve-page.png).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx

from vcframe.config import Settings, load_settings
from vcframe.discovery import Registry
from vcframe.serve import ServeSettings, create_app
from vcframe.testing.dummy_specs import DUMMY_SPECS
from vcframe.voices import VoiceStore


def start_server(app: object) -> tuple[str, Callable[[], None]]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return f"http://127.0.0.1:{port}", stop


def timed(function: Callable[[], object], rounds: int) -> list[float]:
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return seconds


def row(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return f"| {name} | {len(ms)} | {statistics.median(ms):.1f} | {max(ms):.1f} |"


def run_job(client: httpx.Client) -> None:
    job = client.post("/v1/jobs", data={"text": "A job. With two sentences.", "voice": "clara", "seed": "1"})
    job.raise_for_status()
    location = job.headers["location"]
    with client.stream("GET", f"{location}/events") as events:
        for line in events.iter_lines():
            if line.startswith("event: done"):
                break
            if line.startswith("event: failed"):
                raise RuntimeError("job failed")
    client.get(f"{location}/audio").raise_for_status()


def page_timings(base: str, rounds: int) -> list[str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return ["| page (skipped: no playwright) | | | |"]
    if chromium is None:
        return ["| page (skipped: no chromium) | | | |"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 1500})
        loads = []
        for _ in range(max(3, rounds // 4)):
            started = time.perf_counter()
            page.goto(f"{base}/")
            page.wait_for_selector("#server-status.ok")
            loads.append(time.perf_counter() - started)
        page.fill("#text", "Hello! This is my cloned voice, made on this machine. It runs offline.")
        page.fill("#seed", "42")
        clones = []
        for index in range(max(3, rounds // 4)):
            started = time.perf_counter()
            page.click("#clone")
            page.locator("#history li").nth(index).wait_for()
            clones.append(time.perf_counter() - started)
        browser.close()
    return [row("page load to ready (Chromium)", loads), row("page Clone to result (Chromium)", clones)]


def screenshot_default_components(path: Path) -> float:
    """Save the page after a clone by the installed default components; returns the clone's seconds."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("--screenshot needs Chromium (apt-get install chromium)")
    settings = load_settings([])
    with tempfile.TemporaryDirectory() as voices:
        registry = Registry.from_entry_points(settings.disable_plugins)
        app = create_app(settings, registry, ServeSettings(), voice_store=VoiceStore(voices))
        base, stop = start_server(app)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, headless=True)
                page = browser.new_page(viewport={"width": 1100, "height": 1500})
                page.goto(f"{base}/")
                page.wait_for_selector("#server-status.ok")
                page.fill("#text", "Hello! This is my cloned voice, made on this machine. It runs offline.")
                page.fill("#seed", "42")
                started = time.perf_counter()
                page.click("#clone")
                page.locator("#history li").first.wait_for(timeout=600_000)
                seconds = time.perf_counter() - started
                page.screenshot(path=str(path), full_page=True)
                browser.close()
        finally:
            stop()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--screenshot", type=Path, default=None, help="save a PNG of the page after a clone")
    options = parser.parse_args()

    registry = Registry.from_entry_points()
    for spec in DUMMY_SPECS:
        registry.register(spec, distribution="vcframe-core")
    settings = Settings(encoder="test-tone", synthesizer="test-constant", vocoder="test-sine", device="cpu")
    with tempfile.TemporaryDirectory() as voices:
        app = create_app(settings, registry, ServeSettings(queue_size=2), voice_store=VoiceStore(voices))
        base, stop = start_server(app)
        try:
            lines = ["| measurement | n | median ms | max ms |", "|---|---|---|---|"]
            with httpx.Client(base_url=base, timeout=30) as client:
                lines.append(row("GET /healthz (idle)", timed(lambda: client.get("/healthz"), options.rounds)))
                speech = {"text": "Hello there, how are you?", "voice": "clara", "seed": "1"}
                lines.append(
                    row(
                        "POST /v1/speech (sample voice)",
                        timed(lambda: client.post("/v1/speech", data=speech).raise_for_status(), options.rounds),
                    )
                )
                lines.append(
                    row("POST /v1/jobs -> done (SSE) -> audio", timed(lambda: run_job(client), options.rounds))
                )
                state = app.state.vcframe
                release = threading.Event()
                state.worker.submit(lambda: release.wait(60))
                time.sleep(0.05)
                state.worker.submit(lambda: None)
                state.worker.submit(lambda: None)
                refused = timed(lambda: client.post("/v1/speech", data=speech), options.rounds)
                status = client.post("/v1/speech", data=speech).status_code
                lines.append(row(f"POST /v1/speech, queue full (answers {status})", refused))
                lines.append(
                    row("GET /healthz (worker busy, queue full)", timed(lambda: client.get("/healthz"), options.rounds))
                )
                release.set()
            lines += page_timings(base, options.rounds)
        finally:
            stop()
    print("\n".join(lines))
    if options.screenshot is not None:
        seconds = screenshot_default_components(options.screenshot)
        print(f"\n{options.screenshot}: the page after a clone by {settings_line()} ({seconds:.1f} s)")


def settings_line() -> str:
    settings = load_settings([])
    return f"{settings.encoder} -> {settings.synthesizer} -> {settings.vocoder}"


if __name__ == "__main__":
    main()
