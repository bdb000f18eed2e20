"""The page in headless Chromium (Debian's ``chromium`` driven by Playwright) against a real uvicorn server.

Skipped with a reason when Playwright or Chromium is missing (``apt-get install chromium``). Checks: the page
requests nothing from a non-loopback host; its component lists match ``/v1/plugins``; the sample-voice,
upload (and a rejected non-audio upload) and microphone paths (Chromium's fake microphone fed a known WAV)
each give playable audio; the same seed gives byte-identical audio.

Set ``VCFRAME_SERVE_SCREENSHOT=path.png`` to save a screenshot of the page after a clone.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (requirements-dev.txt)")
CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)
if CHROMIUM is None:
    pytest.skip("browser tests need Chromium (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture
def microphone_wav(tmp_path, audio) -> Path:
    path = tmp_path / "microphone.wav"
    path.write_bytes(audio(4.0, rate=48000, f0=160.0, subtype="PCM_16"))
    return path


@pytest.fixture
def page(server, microphone_wav) -> Iterator[tuple[object, list[str]]]:
    """A Chromium page with a fake microphone; yields (page, every URL it requested)."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone_wav}",
                "--autoplay-policy=no-user-gesture-required",
                "--no-sandbox",
            ],
        )
        context = browser.new_context(viewport={"width": 1100, "height": 1400})
        context.grant_permissions(["microphone"], origin=server)
        page = context.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(f"{server}/")
        page.wait_for_selector("#server-status.ok", timeout=15000)
        yield page, requested
        context.close()
        browser.close()
        assert not [e for e in errors if "415" not in e], errors  # the rejected upload logs a 415; nothing else


def _wait_until(condition, timeout: float = 10.0) -> None:
    """Poll ``condition`` from Python (the page's CSP forbids the eval behind Playwright's wait_for_function)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _clone(page) -> bytes:
    """Click Clone, wait for the result, check it plays; return the audio bytes the page downloaded."""
    before = page.locator("#history li").count()

    def is_result(response) -> bool:
        return "/v1/jobs/" in response.url and response.url.endswith("/audio")

    with page.expect_response(is_result, timeout=20000) as download:
        page.click("#clone")
    page.locator("#history li").nth(before).wait_for(timeout=20000)
    assert page.is_hidden("#error")
    duration = page.evaluate(
        """async () => {
            const audio = document.getElementById("result-audio");
            if (audio.readyState < 1) {
                await new Promise((resolve, reject) => {
                    audio.onloadedmetadata = resolve;
                    audio.onerror = () => reject(new Error("the audio does not play"));
                });
            }
            return audio.duration;
        }"""
    )
    # Playwright gives an empty body() for a response the page read as a blob: fetch the same URL again
    content = page.request.get(download.value.url).body()
    assert content[:4] == b"RIFF" and content[8:12] == b"WAVE"
    assert duration == pytest.approx((len(content) - 44) / 2 / 16000, abs=0.01)
    return content


def test_page_clones_from_sample_upload_and_microphone(page, server, audio, tmp_path) -> None:
    page, requested = page
    # component selects = /v1/plugins, defaults preselected
    plugins = page.evaluate("async () => (await (await fetch('/v1/plugins')).json()).plugins")
    for kind in ("encoder", "synthesizer", "vocoder"):
        options = page.eval_on_selector_all(f"#{kind} option", "options => options.map(o => [o.value, o.selected])")
        expected = [[row["name"], row["default"]] for row in plugins if row["kind"] == kind]
        assert options == expected, kind
    assert "10,000" in page.text_content("#text-count")

    # sample voice, fixed seed: the same seed gives byte-identical audio
    page.fill("#seed", "42")
    first = _clone(page)
    assert "seed 42" in page.text_content("#result-facts")
    assert _clone(page) == first
    assert page.get_attribute("#result-mel", "src").startswith("blob:")

    # upload: a real clip works, a non-audio file is refused with the server's message
    page.click("#tab-upload")
    clip = tmp_path / "clip.flac"
    clip.write_bytes(audio(1.5, f0=210, file_format="FLAC"))
    page.set_input_files("#upload-file", str(clip))
    _clone(page)
    assert "clip.flac" in page.text_content("#history li:first-child")
    fake = tmp_path / "not-audio.wav"
    fake.write_text("<html>this is not audio</html>" * 20)
    page.set_input_files("#upload-file", str(fake))
    page.click("#clone")
    page.wait_for_selector("#error:not([hidden])", timeout=10000)
    assert "not WAV, FLAC, OGG or MP3" in page.text_content("#error")
    assert page.is_enabled("#clone")  # not stuck busy

    # microphone: Chromium's fake device plays microphone.wav; the page encodes WAV itself
    page.click("#tab-record")
    page.click("#record-start")
    _wait_until(lambda: float(page.text_content("#record-time").split()[0]) >= 1.0)
    page.click("#record-stop")
    page.wait_for_selector("#record-preview:not([hidden])")
    assert "Recorded" in page.text_content("#record-note")
    _clone(page)
    assert "recording" in page.text_content("#history li:first-child")
    assert page.locator("#history li").count() == 4

    if os.environ.get("VCFRAME_SERVE_SCREENSHOT"):
        page.click("#tab-voice")
        page.screenshot(path=os.environ["VCFRAME_SERVE_SCREENSHOT"], full_page=True)

    hosts = {urlsplit(url).hostname for url in requested if not url.startswith(("blob:", "data:"))}
    assert hosts == {"127.0.0.1"}, requested


def test_the_page_fits_a_phone_and_checks_the_clip_length_before_uploading(page, audio, tmp_path) -> None:
    page, _ = page
    page.set_viewport_size({"width": 390, "height": 844})
    overflowing = page.evaluate(
        """() => [...document.querySelectorAll("section select, section input, section button, section textarea")]
            .filter((field) => field.offsetParent !== null)
            .map((field) => {
                const section = field.closest("section");
                const padding = parseFloat(getComputedStyle(section).paddingRight);
                const inner = section.getBoundingClientRect().right - padding;
                return [field.id, Math.round(field.getBoundingClientRect().right - inner)];
            })
            .filter(([, over]) => over > 0)"""
    )
    assert overflowing == [], overflowing  # the component pickers used to stick out by 8-25 px
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390

    # a clip shorter than the encoder needs is refused on the page: nothing is uploaded
    posted: list[str] = []
    page.on("request", lambda request: posted.append(request.url) if request.method == "POST" else None)
    page.click("#tab-upload")
    clip = tmp_path / "short.wav"
    clip.write_bytes(audio(0.05))
    page.set_input_files("#upload-file", str(clip))
    page.wait_for_selector("#error:not([hidden])", timeout=10000)
    assert "the clip is 0.05 s long; test-tone needs at least 0.10 s" in page.text_content("#error")
    page.click("#clone")
    page.click("#save-voice summary")
    page.fill("#save-name", "too-short")
    page.check("#save-consent")
    page.click("#save-button")
    time.sleep(0.3)
    assert "needs at least 0.10 s" in page.text_content("#error") and page.is_enabled("#clone")
    assert posted == []


def test_the_page_plays_the_first_chunk_while_the_rest_is_made(page, monkeypatch) -> None:
    from tests.serve.test_streaming import TEXT, HeldVocoder

    page, requested = page
    vocoder = HeldVocoder(monkeypatch)  # makes chunk 1, then waits for release before each further chunk
    page.fill("#text", TEXT)
    page.fill("#seed", "5")
    page.click("#clone")
    _wait_until(lambda: "first audio after" in page.text_content("#progress-label"))
    assert len(vocoder.made) == 1  # the page plays while the server still holds chunk 2
    playing = page.evaluate(
        """() => ({context: state.audio.state, rate: state.audio.sampleRate,
                   samples: state.stream.player.samples, sources: state.stream.player.sources.length})"""
    )
    # one chunk scheduled; its source may already have ended (64 ms) on a loaded machine, so 0 or 1 still live
    assert playing.pop("sources") in (0, 1), playing
    assert playing == {"context": "running", "rate": 16000, "samples": 16 * 64}, playing
    vocoder.release.set()
    page.locator("#history li").first.wait_for(timeout=20000)
    assert page.is_hidden("#error")
    assert len(vocoder.made) == 6
    facts = page.text_content("#result-facts")
    assert "seed 5" in facts and "first audio after" in facts, facts
    assert any(url.endswith("/v1/speech/stream") for url in requested)
    assert not any(url.endswith("/v1/jobs") for url in requested)  # streamed, not a job started by the page
    # the player and the download hold the whole file: every sample that was played
    duration = page.evaluate(
        """async () => {
            const audio = document.getElementById("result-audio");
            if (audio.readyState < 1) await new Promise((resolve) => { audio.onloadedmetadata = resolve; });
            return audio.duration;
        }"""
    )
    assert duration == pytest.approx(6 * 16 * 64 / 16000, abs=1e-3)
    assert page.get_attribute("#result-download", "href") == page.get_attribute("#result-audio", "src")
