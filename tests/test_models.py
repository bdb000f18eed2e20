"""``vcframe models`` and bundles against a loopback model host (tests/_model_host.py, 127.0.0.1 only).

The host impersonates the Hugging Face Hub (``HF_ENDPOINT``) and plain URLs: pull, a CDN redirect, a redirected
URL, resume after a cut connection (within one pull, and across pulls), and the failures (404, wrong size, wrong
sha256, a server that hangs, no server, offline mode, a pickle that carries code), each one line, exit 2, with
nothing left in the cache. Then bundles: ``run --bundle`` refuses to run before its published weights are
pulled, ``--pull`` gets them, and the summary line, ``plugins show`` and ``models list`` show the status.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from tests._cli import one_line_error
from tests._model_host import COMMIT, HostedFile, ModelHost
from vcframe import bundles as bundles_module
from vcframe import checkpoints, downloads
from vcframe.bundles import Bundle
from vcframe.checkpoints import CheckpointEntry, Quality
from vcframe.errors import CheckpointError, DownloadError

huggingface_hub = pytest.importorskip("huggingface_hub", reason="vcframe models needs the 'models' extra")
SHIPPED = checkpoints.registry_entries()


def torch_bytes(payload: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def weights_bytes(values: int = 4000, seed: int = 0) -> bytes:
    """A plain torch checkpoint (RTVC's layout) of about 4 bytes per value."""
    generator = torch.Generator().manual_seed(seed)
    return torch_bytes({"step": 1, "model_state": {"weight": torch.randn(values, generator=generator)}})


class RunsCodeWhenUnpickled:
    """Unpickling this creates ``marker`` (what a malicious checkpoint would do, harmlessly)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


class Published:
    """The test registry: the shipped entries plus the ones a test publishes on the loopback host."""

    def __init__(self, host: ModelHost, cache: Path) -> None:
        self.host = host
        self.cache = cache
        self.entries: list[CheckpointEntry] = []
        self.bundles: dict[str, Bundle] = dict(bundles_module.bundles())

    def add(
        self,
        entry_id: str,
        content: bytes,
        *,
        plain_url: bool = False,
        size: int | None = None,
        sha256: str | None = None,
        component: str = "encoder/ge2e",
        status: str = "demo",
        **misbehaviour: Any,
    ) -> tuple[CheckpointEntry, HostedFile]:
        hosted = HostedFile(content, **misbehaviour)
        key = f"{entry_id}.pt" if plain_url else f"vcframe-test/models/{entry_id}.pt"
        self.host.files[key] = hosted
        entry = CheckpointEntry(
            id=entry_id,
            component=component,
            source=f"{self.host.url}/files/{key}" if plain_url else f"hf:{key}",
            revision=None if plain_url else "main",
            size=size or len(content),
            sha256=sha256,
            format="torch",
            license="MIT",
            training_data="none (test)",
            status=status,  # type: ignore[arg-type]
            quality=Quality(words_heard_right=12.0, similarity=0.5, commit="abc1234", measured="test figures"),
        )
        self.entries.append(entry)
        return entry, hosted

    def cache_files(self) -> list[str]:
        """Every file under the cache folder (relative paths)."""
        return sorted(str(path.relative_to(self.cache)) for path in self.cache.rglob("*") if path.is_file())


@pytest.fixture
def published(vcframe_cli, tmp_path, monkeypatch) -> Any:
    """A loopback model host serving as HF_ENDPOINT, an empty cache, and the test registry patched in."""
    from huggingface_hub import constants

    cache = tmp_path / "cache"
    with ModelHost() as host:
        monkeypatch.setenv(downloads.CACHE_ENV, str(cache))
        monkeypatch.setenv("HF_ENDPOINT", host.url)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.delenv(downloads.OFFLINE_ENV, raising=False)
        # huggingface_hub read these at import: keep it on the loopback host and off any other
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(downloads, "DOWNLOAD_CHUNK_BYTES", 4096)
        registry = Published(host, cache)
        monkeypatch.setattr(checkpoints, "registry_entries", lambda: (*SHIPPED, *registry.entries))
        monkeypatch.setattr(bundles_module, "bundles", lambda: registry.bundles)
        yield registry


@pytest.fixture
def no_retry_pause(monkeypatch) -> None:
    """huggingface_hub pauses 1 s before each retry of a broken download; tests need not wait."""
    from huggingface_hub import file_download

    monkeypatch.setattr(file_download.time, "sleep", lambda seconds: None)


def test_pull_records_the_sha256_then_loads_verifies_and_removes(published, vcframe_cli) -> None:
    content = weights_bytes()
    entry, _ = published.add("test-weights", content)
    result = vcframe_cli("models", "pull", "test-weights")
    assert result.exit_code == 0, result.stderr
    digest = hashlib.sha256(content).hexdigest()
    assert f"sha256 {digest[:16]}... recorded at this download" in result.stderr and COMMIT[:12] in result.stderr
    cached = downloads.cached_path(entry)
    assert cached.read_bytes() == content
    receipt = json.loads((cached.parent / "receipt.json").read_text())
    assert receipt["sha256"] == digest and not receipt["sha256_pinned"] and receipt["commit"] == COMMIT
    assert published.cache_files() == ["models/test-weights/receipt.json", "models/test-weights/test-weights.pt"]

    assert checkpoints.resolve("encoder", "ge2e", "registry:test-weights").path == cached
    assert vcframe_cli("models", "path", "test-weights").stdout.strip() == str(cached)
    requests = len(published.host.log)
    again = vcframe_cli("models", "pull", "test-weights")
    assert again.exit_code == 0 and "already here, verified" in again.stderr
    assert len(published.host.log) == requests  # a verified copy is not downloaded again
    listing = json.loads(vcframe_cli("models", "list", "--json").stdout)
    row = next(row for row in listing["checkpoints"] if row["id"] == "test-weights")
    assert row["available"] and row["receipt"]["sha256"] == digest and row["status"] == "demo"

    # the recorded sha256 guards the file from then on
    cached.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))
    with pytest.raises(DownloadError, match="its first download recorded"):
        checkpoints.resolve("encoder", "ge2e", "registry:test-weights")
    one_line_error(vcframe_cli("models", "verify", "test-weights"), "failed verification: test-weights", "--force")
    assert vcframe_cli("models", "pull", "test-weights", "--force").exit_code == 0
    assert cached.read_bytes() == content and vcframe_cli("models", "verify").exit_code == 0

    assert vcframe_cli("models", "remove", "test-weights").exit_code == 0
    assert published.cache_files() == []
    one_line_error(vcframe_cli("models", "path", "test-weights"), "not downloaded", "vcframe models pull test-weights")
    with pytest.raises(DownloadError, match="vcframe models pull test-weights"):
        checkpoints.resolve("encoder", "ge2e", "registry:test-weights")


def test_pinned_sha256_is_checked_and_kept(published, vcframe_cli) -> None:
    content = weights_bytes(seed=1)
    entry, _ = published.add("test-pinned", content, sha256=hashlib.sha256(content).hexdigest())
    assert vcframe_cli("models", "pull", "test-pinned").exit_code == 0
    assert downloads.read_receipt(entry).sha256_pinned  # type: ignore[union-attr]


def test_redirects_are_followed(published, vcframe_cli) -> None:
    """Large Hub files redirect to a CDN on another host; plain URLs may redirect too."""
    hub_content, plain_content = weights_bytes(seed=2), weights_bytes(seed=3)
    hub, _ = published.add("test-cdn", hub_content, cdn_redirect=True)
    moved, _ = published.add("test-moved", plain_content, plain_url=True)
    published.host.redirects["/files/test-moved.pt"] = "/files/test-renamed.pt"
    published.host.files["test-renamed.pt"] = published.host.files.pop("test-moved.pt")
    assert vcframe_cli("models", "pull", "test-cdn", "test-moved").exit_code == 0
    assert downloads.cached_path(hub).read_bytes() == hub_content
    assert downloads.cached_path(moved).read_bytes() == plain_content
    paths = [path for method, path, _ in published.host.log if method == "GET"]
    assert "/cdn/vcframe-test/models/test-cdn.pt" in paths and "/files/test-renamed.pt" in paths


@pytest.mark.parametrize("plain_url", [False, True], ids=["hub", "plain-url"])
def test_a_cut_connection_is_resumed(published, vcframe_cli, no_retry_pause, plain_url) -> None:
    content = weights_bytes(seed=4)
    entry, hosted = published.add("test-cut", content, plain_url=plain_url, cut_after=6000)
    assert vcframe_cli("models", "pull", "test-cut").exit_code == 0
    assert downloads.cached_path(entry).read_bytes() == content
    ranges = [wanted for method, _, wanted in published.host.log if method == "GET"]
    assert ranges == [None, "bytes=4096-"]  # the bytes received before the cut (whole chunks) are kept


def test_a_broken_pull_resumes_on_the_next_run(published, vcframe_cli, no_retry_pause) -> None:
    content = weights_bytes(seed=5)
    entry, hosted = published.add("test-broken", content, cut_after=6000, refuse_after_cut=10)
    error = one_line_error(vcframe_cli("models", "pull", "test-broken"), "stopped after 4096 of", "to resume")
    assert "broke off" in error
    assert published.cache_files() == ["partial/test-broken/test-broken.pt.incomplete", "partial/test-broken/version"]
    one_line_error(vcframe_cli("models", "path", "test-broken"), "not downloaded")  # a partial file is not a model
    hosted.refuse_after_cut = 0
    published.host.log.clear()
    assert vcframe_cli("models", "pull", "test-broken").exit_code == 0
    assert [wanted for method, _, wanted in published.host.log if method == "GET"] == ["bytes=4096-"]
    assert downloads.cached_path(entry).read_bytes() == content
    assert published.cache_files() == ["models/test-broken/receipt.json", "models/test-broken/test-broken.pt"]


FAILURES = {
    "hub-404": (dict(), "HTTP 404"),
    "url-404": (dict(plain_url=True), "HTTP 404"),
    "hub-wrong-size": (dict(size=123), "offers"),
    "url-wrong-size": (dict(plain_url=True, size=123), "the registry says 123"),
    "hub-wrong-sha256": (dict(sha256="0" * 64), "announces sha256"),
    "url-wrong-sha256": (dict(plain_url=True, sha256="0" * 64), "the registry pins 0000000000000000"),
    "hub-hangs": (dict(hang=True), "no answer within 0.5 s"),
    "url-hangs": (dict(plain_url=True, hang=True), "no answer within 0.5 s"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_failed_pulls_are_one_line_and_leave_nothing(published, vcframe_cli, no_retry_pause, case) -> None:
    options, needle = FAILURES[case]
    entry, _ = published.add("test-bad", weights_bytes(seed=6), **options)
    if "404" in case:
        published.host.files.clear()
    one_line_error(vcframe_cli("models", "pull", "test-bad", "--timeout", "0.5"), "registry:test-bad", needle)
    assert published.cache_files() == []
    with pytest.raises(DownloadError, match="not downloaded"):
        checkpoints.resolve("encoder", "ge2e", "registry:test-bad")


def test_a_pickle_that_carries_code_is_refused_without_running_it(published, vcframe_cli, tmp_path) -> None:
    marker = tmp_path / "code-ran"
    content = torch_bytes({"model_state": {"weight": torch.ones(3)}, "extra": RunsCodeWhenUnpickled(marker)})
    published.add("test-evil", content)
    one_line_error(vcframe_cli("models", "pull", "test-evil"), "would run code", "refusing it")
    assert published.cache_files() == [] and not marker.exists()
    evil = tmp_path / "evil.pt"
    evil.write_bytes(content)
    with pytest.raises(CheckpointError, match="would run code"):
        checkpoints.load_state(evil)
    assert not marker.exists()


def test_offline_and_unreachable_hosts_fail_in_one_line(published, vcframe_cli, monkeypatch) -> None:
    published.add("test-offline", weights_bytes(seed=7))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    one_line_error(vcframe_cli("models", "pull", "test-offline"), "HF_HUB_OFFLINE is set")
    assert published.host.log == [] and published.cache_files() == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    published.host.__exit__()  # nothing listens on the port any more: no network
    one_line_error(vcframe_cli("models", "pull", "test-offline", "--timeout", "1"), "cannot connect")
    assert published.cache_files() == []


def test_unknown_and_shipped_names_are_refused(published, vcframe_cli) -> None:
    one_line_error(vcframe_cli("models", "pull", "nope"), "no published checkpoint or bundle named 'nope'", "rtvc")
    one_line_error(vcframe_cli("models", "pull", "tacotron-demo"), "ships inside an installed package")
    result = vcframe_cli("models", "pull", "default")
    assert result.exit_code == 0 and "nothing to download" in result.stderr


def tiny_rtvc_encoder() -> bytes:
    """A tiny GE2E encoder in RTVC's encoder.pt layout."""
    from vcframe_ge2e.model import build_network
    from vcframe_ge2e.spec import GE2EConfig

    torch.manual_seed(0)
    network = build_network(GE2EConfig(preset="tiny", checkpoint=None))
    return torch_bytes({"step": 7, "model_state": network.state_dict(), "optimizer_state": {}})


def test_run_with_a_bundle_refuses_then_pulls_its_published_weights(published, vcframe_cli, speech_like_wav) -> None:
    entry, _ = published.add("test-tiny-encoder", tiny_rtvc_encoder())
    published.bundles["test-tiny"] = Bundle(
        name="test-tiny",
        encoder="ge2e",
        synthesizer="tacotron",
        vocoder="griffinlim",
        components={
            "encoder": {"ge2e": {"checkpoint": "registry:test-tiny-encoder", "preset": "tiny", "vad": "energy"}},
            "synthesizer": {"tacotron": {"checkpoint": None, "preset": "tiny", "max_frames": 40, "masking": "rtvc"}},
            "vocoder": {"griffinlim": {"n_iter": 4}},
        },
    )
    out = published.cache.parent / "out.wav"
    args = ("run", "--bundle", "test-tiny", "-r", speech_like_wav(), "-t", "Hello.", "--out", out, "--seed", 1)
    one_line_error(
        vcframe_cli(*args), "registry:test-tiny-encoder is not downloaded", "'vcframe models pull test-tiny'"
    )
    assert not out.exists() and published.cache_files() == []

    result = vcframe_cli(*args, "--pull")
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert out.is_file() and downloads.is_downloaded(entry)
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith(f"wrote {out}")
    assert "weights: ge2e [demo: 12.0 % words heard right, similarity 0.500 (abc1234)]" in summary
    assert "tacotron [random weights]" in summary and "griffinlim [no weights]" in summary


def test_bundle_options_sit_beneath_explicit_settings(published) -> None:
    from vcframe.config import load_settings
    from vcframe.pipeline import Pipeline

    settings = load_settings(explicit={"bundle": "rtvc"})
    pipeline = Pipeline(settings=settings)  # builds and checks configs from specs; loads no weights
    encoder, synthesizer, vocoder = (pipeline.configs[kind] for kind in ("encoder", "synthesizer", "vocoder"))
    assert (encoder.checkpoint, encoder.preset) == ("registry:rtvc-encoder", "rtvc")
    assert (synthesizer.checkpoint, synthesizer.preset) == ("registry:rtvc-synthesizer", "rtvc")
    assert (synthesizer.masking, synthesizer.inference_dropout) == ("rtvc", 0.5)
    assert synthesizer.precision == "float32"  # RTVC's arithmetic, not bfloat16 where the CPU has it
    assert (vocoder.checkpoint, vocoder.preset, vocoder.target, vocoder.overlap) == (
        "registry:rtvc-vocoder",
        "rtvc",
        8000,
        800,
    )
    assert vocoder.batched and vocoder.rtvc_quirks
    assert (vocoder.precision, vocoder.sampler) == ("float32", "sample")  # not the fast defaults: RTVC's stream
    swapped = load_settings(
        ["synthesizer.tacotron.inference_dropout=0"], explicit={"bundle": "rtvc", "vocoder": "griffinlim"}
    )
    assert swapped.vocoder == "griffinlim" and swapped.synthesizer == "tacotron"
    assert swapped.components["synthesizer"]["tacotron"]["inference_dropout"] == 0
    assert swapped.components["synthesizer"]["tacotron"]["masking"] == "rtvc"


def test_status_shows_in_plugins_show_models_list_and_bundles(published, vcframe_cli, monkeypatch) -> None:
    from vcframe import cli

    # wide enough for a table row to stay on one line; the console's width, not COLUMNS, which rich may have
    # resolved already (under pytest-xdist it had: 80 columns)
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setattr(cli.stdout, "_width", 400)
    shown = vcframe_cli("plugins", "show", "wavernn")
    assert shown.exit_code == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if "registry:wavernn-demo" in line]
    assert rows, shown.stdout
    row = rows[0]
    # the figures the registry holds for the shipped weights, as the table prints them
    quality = {entry.id: entry.quality for entry in SHIPPED}
    wavernn = quality["wavernn-demo"]
    shown_quality = (
        f"{wavernn.words_heard_right} % words heard right, similarity {wavernn.similarity} ({wavernn.commit})"
    )
    entry = next(entry for entry in SHIPPED if entry.id == "wavernn-demo")
    assert entry.status in row and shown_quality in row
    assert (f"with mel correction {entry.mel_correction:g}" in row) == bool(entry.mel_correction)
    row = next(line for line in shown.stdout.splitlines() if "registry:rtvc-vocoder" in line)
    assert "published" in row and "vcframe models pull" in row
    listing = vcframe_cli("models", "list")
    row = next(line for line in listing.stdout.splitlines() if "tacotron-demo" in line)
    assert "demo" in row and f"{quality['tacotron-demo'].words_heard_right} % words heard right" in row
    assert "shipped" in row
    bundles = json.loads(vcframe_cli("bundles", "list", "--json").stdout)
    by_name = {bundle["name"]: bundle for bundle in bundles}
    assert by_name["default"]["status"] == "demo" and by_name["default"]["not_downloaded"] == []
    assert by_name["rtvc"]["status"] == "published"
    assert by_name["rtvc"]["not_downloaded"] == ["rtvc-encoder", "rtvc-synthesizer", "rtvc-vocoder"]


def test_shipped_registry_says_how_good_each_checkpoint_is() -> None:
    by_id = {entry.id: entry for entry in SHIPPED}
    for entry in SHIPPED:
        assert entry.status in checkpoints.STATUSES and entry.quality.measured
        if entry.status != "published":  # weights trained here carry their benchmark figures and commit
            assert entry.quality.words_heard_right is not None and entry.quality.similarity is not None
            assert entry.quality.commit is not None
    assert by_id["ge2e-resemblyzer"].status == "published"
    assert by_id["tacotron-demo"].status == "demo"
    # the shipped vocoders meet the vocoder bar as runs use them: with the mel correction their entries name
    assert by_id["wavernn-demo"].status == by_id["hifigan-demo"].status == "usable"
    assert by_id["wavernn-demo"].mel_correction and by_id["hifigan-demo"].mel_correction
    assert all(entry.mel_correction is None for entry in SHIPPED if not entry.component.startswith("vocoder/"))
    rtvc = {name: by_id[f"rtvc-{name}"] for name in ("encoder", "synthesizer", "vocoder")}
    assert {name: entry.size for name, entry in rtvc.items()} == {
        "encoder": 17_090_379,
        "synthesizer": 370_554_559,
        "vocoder": 53_845_290,
    }
    assert all(entry.source.startswith("hf:CorentinJ/SV2TTS/") and entry.revision for entry in rtvc.values())
