"""``vcframe serve`` benchmark and page screenshot: latencies of the API and of the page in headless Chromium.

Run by hand:  .venv/bin/python benchmarks/serve.py [--screenshot docs/serve-page.png] [--rounds 20]
                 [--first-audio griffinlim,hifigan] [--threads 1,2] [--stream-rounds 5] [--skip-api]
                 [--first-batch-sizes 8,1] [--cold-serve 4]

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

``--first-audio griffinlim,hifigan`` then measures ``POST /v1/speech/stream`` with the installed plugins and the
settings' defaults (``--vocoder`` swapped per row, as ``vcframe serve --vocoder hifigan``), models loaded and
warmed up, at each of ``--threads`` (default 1,2): milliseconds from the request to the first audio byte (the
response headers leave with it), the smallest slack of the received audio against playback starting at the first byte
(negative: a player would stall), the stream's and ``POST /v1/speech``'s total seconds for the same text and seed,
and compute seconds per second of audio. Medians over ``--stream-rounds``; CPU model, flags and load average.
A row may carry ``-o`` options after its vocoder, joined by ``+``:
``griffinlim+vocoder.griffinlim.stream_first_chunk_frames=10000`` is Griffin-Lim streamed in one block (the whole
sentence in one chunk, as before it streamed).
``--first-batch-sizes 8,1`` gives a row per ``synthesis_first_batch_size`` (8: the whole three-sentence text in
the first batch, as before issue 26's first-sentence batch; 1: the first sentence alone, the default), their
rounds interleaved so that both see the same load.

``--cold-serve 4`` starts ``vcframe serve --no-preload`` (the installed plugins and the settings' defaults) that
many times per configuration, the configurations interleaved: its own thread defaults (one OpenBLAS thread), and
``OPENBLAS_NUM_THREADS`` set to the core count (numpy's default before ``vcframe serve`` set one). It times the
server's first ``POST /v1/speech`` (which builds the models, Griffin-Lim's pseudo-inverse of the mel basis among
them) in wall and in the server process's CPU seconds (user + sys, from /proc), and the CPU seconds to ready.

``--screenshot PATH`` then starts a second server with the installed plugins and the settings' defaults (the
real components and their shipped weights, as ``vcframe serve`` runs), clones a sample voice in Chromium and
saves the page after the result (docs/serve-page.png).
"""

from __future__ import annotations

from vcframe.cli import _thread_defaults_for_models

_thread_defaults_for_models()  # sleeping OpenMP threads, one OpenBLAS thread: as `vcframe serve` (before torch loads)

import argparse  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx2 as httpx  # noqa: E402

from vcframe.config import Settings, load_settings  # noqa: E402
from vcframe.discovery import Registry  # noqa: E402
from vcframe.serve import ServeSettings, create_app  # noqa: E402
from vcframe.testing.dummy_specs import DUMMY_SPECS  # noqa: E402
from vcframe.voices import VoiceStore  # noqa: E402


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


#: Three sentences, as benchmarks/streaming.py reads them.
STREAM_TEXT = (
    "Streaming should start at once. The next sentence is synthesized while this one plays. "
    "And the last one follows without a gap."
)


def stream_once(client: httpx.Client, form: dict[str, str]) -> dict[str, float]:
    """One POST /v1/speech/stream read to the end: seconds to the headers, to the first audio byte and to the
    end, seconds of audio, and the smallest slack (audio received before each piece, played from the first
    byte on, minus the piece's arrival)."""
    started = time.perf_counter()
    with client.stream("POST", "/v1/speech/stream", data=form) as response:
        headers = time.perf_counter() - started
        response.raise_for_status()
        rate = int(response.headers["x-vcframe-sample-rate"])
        received = 0
        first = None
        slack = float("inf")
        for piece in response.iter_raw():
            arrived = time.perf_counter() - started
            audio_bytes = max(0, received - 44)
            received += len(piece)
            if first is None and received > 44:
                first = arrived
            elif first is not None:
                slack = min(slack, first + audio_bytes / 2 / rate - arrived)
    assert first is not None, "no audio"
    total = time.perf_counter() - started
    return {"headers": headers, "first": first, "slack": slack, "total": total, "audio": (received - 44) / 2 / rate}


def first_audio_rows(vocoders: list[str], threads: list[int], rounds: int, first_batch_sizes: list[int]) -> None:
    """Time to first audio through the server with the real default components and each vocoder, at each
    ``synthesis_first_batch_size`` (printed as a markdown table, row by row as they are measured)."""
    from streaming import cpu_line  # the sibling benchmark's CPU line

    def load() -> float:
        return os.getloadavg()[0]

    from vcframe.cpu import limit_threads

    print(f"CPU: {cpu_line()}\n", flush=True)
    print(
        "| vocoder | threads | first batch | first audio ms | min slack ms | stream s | /v1/speech s | audio s "
        "| compute s / audio s | load |\n|---|---|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    base_settings = load_settings([])
    form = {"text": STREAM_TEXT, "voice": "clara", "seed": "1"}
    for row_name in vocoders:
        vocoder, *options = row_name.split("+")  # NAME+KEY=VALUE+...: -o options of that row
        for count in threads:
            # a server per thread count: torch's count is per thread once a thread has run torch operations, so
            # the served pipelines are built at this count (the threads setting) on a fresh worker thread
            settings = load_settings(options, explicit={"vocoder": vocoder, "threads": count})
            limit_threads(count)  # numpy's BLAS too
            with tempfile.TemporaryDirectory() as voices:
                registry = Registry.from_entry_points(settings.disable_plugins)
                app = create_app(settings, registry, ServeSettings(preload=False), voice_store=VoiceStore(voices))
                base, stop = start_server(app)
                try:
                    with httpx.Client(base_url=base, timeout=600) as client:
                        stream_once(client, form)  # load and warm up
                        client.post("/v1/speech", data=form).raise_for_status()
                        loads = [load()]
                        runs: dict[int, list[dict[str, float]]] = {size: [] for size in first_batch_sizes}
                        whole: dict[int, list[float]] = {size: [] for size in first_batch_sizes}
                        for _ in range(rounds):
                            for size in first_batch_sizes:
                                settings.synthesis_first_batch_size = size  # the served pipelines' settings
                                runs[size].append(stream_once(client, form))
                                started = time.perf_counter()
                                client.post("/v1/speech", data=form).raise_for_status()
                                whole[size].append(time.perf_counter() - started)
                                loads.append(load())
                        for size in first_batch_sizes:
                            middle = {key: statistics.median(run[key] for run in runs[size]) for key in runs[size][0]}
                            print(
                                f"| {row_name} | {count} | {size} | {middle['first'] * 1000:.0f} "
                                f"| {middle['slack'] * 1000:.0f} | {middle['total']:.2f} "
                                f"| {statistics.median(whole[size]):.2f} "
                                f"| {middle['audio']:.2f} | {middle['total'] / middle['audio']:.2f} "
                                f"| {min(loads):.1f}-{max(loads):.1f} |",
                                flush=True,
                            )
                finally:
                    stop()
    print(
        f"\nComponents: {base_settings.encoder} -> {base_settings.synthesizer} -> (vocoder per row); "
        f"text: {len(STREAM_TEXT)} characters, 3 sentences; medians of {rounds} rounds."
    )


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cold_serve_once(blas_threads: str | None) -> dict[str, float]:
    """One fresh ``vcframe serve --no-preload`` process: CPU seconds to ready, then the first POST /v1/speech's
    wall and CPU seconds and the load average before it (``blas_threads``: OPENBLAS_NUM_THREADS, None: unset)."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    if blas_threads is not None:
        environment["OPENBLAS_NUM_THREADS"] = blas_threads
    command = [sys.executable, "-m", "vcframe", "serve", "--no-preload", "--port", str(port)]
    server = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            deadline = time.monotonic() + 300
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"vcframe serve did not start (exit {server.returncode})")
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            ready_cpu = _process_cpu_seconds(server.pid)
            load = os.getloadavg()[0]
            started = time.perf_counter()
            form = {"text": "Hello there, this is a test.", "voice": "clara", "seed": "1"}
            client.post("/v1/speech", data=form).raise_for_status()
            wall = time.perf_counter() - started
            request_cpu = _process_cpu_seconds(server.pid) - ready_cpu
    finally:
        server.terminate()
        server.wait(30)
    return {"ready_cpu": ready_cpu, "wall": wall, "cpu": request_cpu, "load": load}


def cold_serve_rows(rounds: int) -> None:
    """The first request of a fresh ``vcframe serve --no-preload``, with one and with a core's worth of OpenBLAS
    threads, interleaved (printed as a markdown table)."""
    from streaming import cpu_line  # the sibling benchmark's CPU line

    configurations = {
        "one OpenBLAS thread (the default)": None,
        f"OPENBLAS_NUM_THREADS={os.cpu_count()}": str(os.cpu_count()),
    }
    cold_serve_once(None)  # warm the page cache
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in configurations}
    for _ in range(rounds):
        for name, blas_threads in configurations.items():
            runs[name].append(cold_serve_once(blas_threads))
    loads = [run["load"] for results in runs.values() for run in results]
    print(f"\nCPU: {cpu_line()}; load average {min(loads):.1f}-{max(loads):.1f}; {settings_line()}, --no-preload\n")
    print("| vcframe serve | first /v1/speech wall s | its CPU s | CPU s to ready | walls |\n|---|---|---|---|---|")
    for name, results in runs.items():
        walls = ", ".join(f"{run['wall']:.2f}" for run in results)
        print(
            f"| {name} | {statistics.median(run['wall'] for run in results):.2f} "
            f"| {statistics.median(run['cpu'] for run in results):.2f} "
            f"| {statistics.median(run['ready_cpu'] for run in results):.2f} | {walls} |",
            flush=True,
        )


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
        first_audio = []  # the page's own measure: from its request to the first sound
        for index in range(max(3, rounds // 4)):
            started = time.perf_counter()
            page.click("#clone")
            page.locator("#history li").nth(index).wait_for()
            clones.append(time.perf_counter() - started)
            found = re.search(r"first audio after ([0-9.]+) s", page.text_content("#result-facts") or "")
            if found:
                first_audio.append(float(found.group(1)))
        browser.close()
    rows = [row("page load to ready (Chromium)", loads), row("page Clone to result (Chromium)", clones)]
    if first_audio:
        rows.append(row("page Clone to first audio (Chromium, streamed)", first_audio))
    return rows


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
    parser.add_argument(
        "--first-audio",
        default="",
        help="comma-separated vocoders: time to first audio of POST /v1/speech/stream with the real components",
    )
    parser.add_argument("--threads", default="1,2", help="torch threads for --first-audio, comma-separated")
    parser.add_argument("--stream-rounds", type=int, default=5)
    parser.add_argument(
        "--first-batch-sizes", default="1", help="synthesis_first_batch_size values for --first-audio, comma-separated"
    )
    parser.add_argument(
        "--cold-serve", type=int, default=0, help="fresh `vcframe serve` processes per OpenBLAS thread count"
    )
    parser.add_argument("--skip-api", action="store_true", help="only --first-audio, --cold-serve and --screenshot")
    options = parser.parse_args()
    if not options.skip_api:
        api_rows(options.rounds)
    if options.first_audio:
        vocoders = [name for name in options.first_audio.split(",") if name]
        threads = [int(count) for count in options.threads.split(",")]
        first_batch_sizes = [int(size) for size in options.first_batch_sizes.split(",") if size]
        first_audio_rows(vocoders, threads, options.stream_rounds, first_batch_sizes)
    if options.cold_serve:
        cold_serve_rows(options.cold_serve)
    if options.screenshot is not None:
        seconds = screenshot_default_components(options.screenshot)
        print(f"\n{options.screenshot}: the page after a clone by {settings_line()} ({seconds:.1f} s)")


def api_rows(rounds: int) -> None:
    """The API and page latencies over the dummy components (printed as a markdown table)."""

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
                lines.append(row("GET /healthz (idle)", timed(lambda: client.get("/healthz"), rounds)))
                speech = {"text": "Hello there, how are you?", "voice": "clara", "seed": "1"}
                lines.append(
                    row(
                        "POST /v1/speech (sample voice)",
                        timed(lambda: client.post("/v1/speech", data=speech).raise_for_status(), rounds),
                    )
                )
                lines.append(row("POST /v1/jobs -> done (SSE) -> audio", timed(lambda: run_job(client), rounds)))
                state = app.state.vcframe
                release = threading.Event()
                state.worker.submit(lambda: release.wait(60))
                time.sleep(0.05)
                state.worker.submit(lambda: None)
                state.worker.submit(lambda: None)
                refused = timed(lambda: client.post("/v1/speech", data=speech), rounds)
                status = client.post("/v1/speech", data=speech).status_code
                lines.append(row(f"POST /v1/speech, queue full (answers {status})", refused))
                lines.append(
                    row("GET /healthz (worker busy, queue full)", timed(lambda: client.get("/healthz"), rounds))
                )
                release.set()
            lines += page_timings(base, rounds)
        finally:
            stop()
    print("\n".join(lines))


def settings_line() -> str:
    settings = load_settings([])
    return f"{settings.encoder} -> {settings.synthesizer} -> {settings.vocoder}"


if __name__ == "__main__":
    main()
