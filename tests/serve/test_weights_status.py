"""The web page's component picker shows the quality status of each component's weights (issue 25, and issue 23's
"no silent downgrade"): ``/v1/plugins`` gives ``weights_status`` and ``weights`` for the server's options, and the
page writes the status next to the component's name.

The components are the dummies plus ``test-weighted``, a vocoder with a ``checkpoint`` option whose registry
default is a ``demo`` checkpoint (the registry is patched; nothing is loaded or downloaded).
"""

from __future__ import annotations

import shutil

import pytest
from pydantic import Field

from vcframe import checkpoints
from vcframe.checkpoints import CheckpointEntry, Quality
from vcframe.testing.dummy_specs import SINE_VOCODER, SineVocoderConfig


class WeightedSineConfig(SineVocoderConfig):
    """The sine vocoder's options plus the checkpoint option of a component with weights."""

    checkpoint: str | None = Field("default", description="'default', 'registry:<id>' or a path.")


WEIGHTED = SINE_VOCODER.model_copy(update={"name": "test-weighted", "config_model": WeightedSineConfig})
DEMO_ENTRY = CheckpointEntry(
    id="test-weighted-demo",
    component="vocoder/test-weighted",
    source="package:vcframe/py.typed",
    sha256="0" * 64,
    format="safetensors",
    license="MIT",
    training_data="none (test)",
    steps=1,
    default=True,
    status="demo",
    quality=Quality(words_heard_right=6.5, similarity=0.555, commit="c5c3eb9", measured="test figures"),
)


@pytest.fixture(autouse=True)
def weighted_component(dummy_registry, monkeypatch) -> None:
    dummy_registry.register(WEIGHTED, distribution="vcframe-core")
    shipped = checkpoints.registry_entries()
    monkeypatch.setattr(checkpoints, "registry_entries", lambda: (*shipped, DEMO_ENTRY))


def test_plugins_give_the_weights_status_for_the_servers_options(make_client) -> None:
    from vcframe.config import Settings

    from .conftest import DUMMY_SETTINGS

    rows = {row["name"]: row for row in make_client().get("/v1/plugins").json()["plugins"]}
    assert rows["test-weighted"]["weights_status"] == "demo"
    assert rows["test-weighted"]["weights"] == "demo: 6.5 % words heard right, similarity 0.555 (c5c3eb9)"
    assert rows["test-sine"]["weights_status"] is None and rows["test-sine"]["weights"] == "no weights"

    settings = Settings(**DUMMY_SETTINGS, components={"vocoder": {"test-weighted": {"checkpoint": "mine.pt"}}})
    rows = {row["name"]: row for row in make_client(settings).get("/v1/plugins").json()["plugins"]}
    assert rows["test-weighted"]["weights_status"] is None
    assert rows["test-weighted"]["weights"] == "own checkpoint, no status"


@pytest.mark.slow
def test_the_picker_shows_the_status_next_to_the_name(server) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("browser tests need Chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{server}/")
        page.wait_for_selector("#server-status.ok", timeout=15000)
        options = page.eval_on_selector_all(
            "#vocoder option", "options => options.map(o => [o.value, o.textContent, o.title])"
        )
        browser.close()
    labels = {value: (text, title) for value, text, title in options}
    assert labels["test-weighted"][0] == "test-weighted · demo weights"
    assert "weights: demo: 6.5 % words heard right" in labels["test-weighted"][1]
    assert labels["test-sine"][0] == "test-sine (default)"
