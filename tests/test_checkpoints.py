"""Checkpoints: safe loading (.pt / safetensors), corrupt and malicious files, the registry and sha256."""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from vcframe import checkpoints
from vcframe.checkpoints import (
    CheckpointEntry,
    Quality,
    init_lineage,
    init_source,
    load_state,
    read_safetensors_metadata,
    resolve,
    save_safetensors,
    save_torch,
    sha256_of,
    to_half_precision,
)
from vcframe.errors import CheckpointError


def _state() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {"layer.weight": torch.randn(4, 3, generator=generator), "layer.step": torch.tensor([7])}


def test_safetensors_round_trip_with_metadata(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_safetensors(_state(), path, {"config": {"preset": "tiny"}, "license": "MIT"})
    state, metadata = load_state(path)
    assert torch.equal(state["layer.weight"], _state()["layer.weight"])
    assert metadata == {"config": {"preset": "tiny"}, "license": "MIT"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_torch_checkpoint_with_model_state_and_bare_state_dict(tmp_path: Path) -> None:
    save_torch({"model_state": _state(), "step": 12}, tmp_path / "run.pt")
    state, metadata = load_state(tmp_path / "run.pt")
    assert set(state) == {"layer.weight", "layer.step"} and metadata["checkpoint"]["step"] == 12
    torch.save(_state(), tmp_path / "bare.pt")
    assert set(load_state(tmp_path / "bare.pt")[0]) == {"layer.weight", "layer.step"}


def test_state_keys_name_the_state_dict_of_other_layouts(tmp_path: Path) -> None:
    """HiFi-GAN's generator files hold {"generator": state}: state_keys picks it, other keys become metadata."""
    save_torch({"generator": _state(), "steps": 5}, tmp_path / "g_00000005")
    state, metadata = load_state(tmp_path / "g_00000005", state_keys=("generator",))
    assert set(state) == {"layer.weight", "layer.step"} and metadata["checkpoint"] == {"steps": 5}
    with pytest.raises(CheckpointError, match="no state dict of tensors"):
        load_state(tmp_path / "g_00000005")  # without the key it is not a state dict


def test_safetensors_metadata_is_read_from_the_header_alone(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_safetensors(_state(), path, {"config": {"preset": "tiny"}, "license": "MIT"})
    assert read_safetensors_metadata(path) == load_state(path)[1]
    torch.save(_state(), tmp_path / "model.pt")
    assert read_safetensors_metadata(tmp_path / "model.pt") is None
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes((20).to_bytes(8, "little") + b"{not json at all...}")
    with pytest.raises(CheckpointError, match="corrupt safetensors header"):
        read_safetensors_metadata(corrupt)


class _RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"model_state": _state(), "payload": _RunsCode()}, path)
    with pytest.raises(CheckpointError, match="would run code when loaded"):
        load_state(path)
    plain = tmp_path / "plain_pickle.pt"
    plain.write_bytes(pickle.dumps(_RunsCode()))
    with pytest.raises(CheckpointError):
        load_state(plain)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"", "is empty"),
        (b"\x00\x01 not a checkpoint at all" * 10, "corrupt"),
        ((64).to_bytes(8, "little") + b'{"a": truncated', "corrupt"),
    ],
)
def test_corrupt_files_are_refused(tmp_path: Path, payload: bytes, needle: str) -> None:
    path = tmp_path / "broken.bin"
    path.write_bytes(payload)
    with pytest.raises(CheckpointError, match=needle):
        load_state(path)


def test_not_a_state_dict(tmp_path: Path) -> None:
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a dict of tensors"):
        load_state(tmp_path / "list.pt")
    torch.save({"model_state": {"a": 1}}, tmp_path / "numbers.pt")
    with pytest.raises(CheckpointError, match="no state dict of tensors"):
        load_state(tmp_path / "numbers.pt")


def test_half_precision_copy(tmp_path: Path) -> None:
    source, target = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    save_safetensors(_state(), source, {"steps": 3})
    to_half_precision(source, target)
    state, metadata = load_state(target)
    assert state["layer.weight"].dtype == torch.float16 and state["layer.step"].dtype == torch.int64
    assert metadata == {"steps": 3, "stored_dtype": "float16"}
    torch.testing.assert_close(state["layer.weight"].float(), _state()["layer.weight"], atol=1e-3, rtol=1e-3)
    module = torch.nn.Linear(3, 4, bias=False)
    module.load_state_dict({"weight": state["layer.weight"]})  # loading upcasts into float32 parameters
    assert module.weight.dtype == torch.float32


@pytest.fixture
def fake_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    weights = tmp_path / "weights.safetensors"
    save_safetensors(_state(), weights)
    entries = (
        CheckpointEntry(
            id="demo-good",
            component="vocoder/demo",
            source=str(weights),
            sha256=sha256_of(weights),
            format="safetensors",
            license="MIT",
            training_data="none",
            steps=1,
            default=True,
            status="demo",
            quality=Quality(measured="test"),
        ),
        CheckpointEntry(
            id="demo-tampered",
            component="vocoder/demo",
            source=str(weights),
            sha256="0" * 64,
            format="safetensors",
            license="MIT",
            training_data="none",
            steps=1,
            status="demo",
            quality=Quality(measured="test"),
        ),
    )
    monkeypatch.setattr(checkpoints, "registry_entries", lambda: entries)
    return weights


def test_registry_default_and_ids(fake_registry: Path) -> None:
    assert resolve("vocoder", "demo", "default").path == fake_registry
    assert resolve("vocoder", "demo", "registry:demo-good").entry.id == "demo-good"  # type: ignore[union-attr]
    with pytest.raises(CheckpointError, match="sha256"):
        resolve("vocoder", "demo", "registry:demo-tampered")
    with pytest.raises(CheckpointError, match="no checkpoint registry:nope"):
        resolve("vocoder", "demo", "registry:nope")
    with pytest.raises(CheckpointError, match="is for vocoder/demo, not synthesizer/other"):
        resolve("synthesizer", "other", "registry:demo-good")
    with pytest.raises(CheckpointError, match="has no default checkpoint"):
        resolve("synthesizer", "other", "default")
    with pytest.raises(CheckpointError, match="not found"):
        resolve("vocoder", "demo", "/no/such/file.pt")


def test_shipped_registry_entries_are_complete() -> None:
    entries = checkpoints.registry_entries()
    assert entries, "registry/checkpoints.toml lists no checkpoint"
    for entry in entries:
        assert entry.license and entry.training_data and entry.status in checkpoints.STATUSES
        if entry.downloadable:  # published: its size is checked at download, its sha256 pinned or recorded then
            assert entry.size is not None and entry.format in ("torch", "safetensors")
        else:  # shipped in a package: pinned sha256 and the steps it was trained for
            assert entry.sha256 is not None and len(entry.sha256) == 64 and entry.steps is not None
    defaults = [entry.component for entry in entries if entry.default]
    assert len(defaults) == len(set(defaults)), "a component has two default checkpoints"


class _Layers(torch.nn.Module):
    """Every layer kind the reference models initialise at random, plus deterministic state the build keeps."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(10, 6, padding_idx=0)
        self.lstm = torch.nn.LSTM(6, 8, num_layers=2, batch_first=True)
        self.conv = torch.nn.Conv1d(8, 8, 3, padding=1)
        self.norm = torch.nn.BatchNorm1d(8)
        self.linear = torch.nn.Linear(8, 4)
        self.gain = torch.nn.Parameter(torch.empty(4))
        torch.nn.init.xavier_uniform_(self.linear.weight)
        torch.nn.init.normal_(self.gain)
        self.register_buffer("window", torch.hann_window(8), persistent=False)  # deterministic: rebuilt, not loaded

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(self.embedding(ids))
        features = self.norm(self.conv(hidden.transpose(1, 2)) * self.window[:, None]).transpose(1, 2)
        return self.linear(features) * self.gain


def test_uninitialised_module_loads_to_the_same_module_without_drawing_random_numbers() -> None:
    torch.manual_seed(0)
    reference = _Layers().eval()
    reference.norm.running_mean.uniform_()  # a trained-looking state to load
    state = {key: value.half() if value.is_floating_point() else value for key, value in reference.state_dict().items()}
    random_state = torch.get_rng_state()
    built = checkpoints.uninitialised(_Layers)
    assert torch.equal(torch.get_rng_state(), random_state)  # no random fill ran
    assert torch.equal(built.window, torch.hann_window(8))  # deterministic state is built as usual
    built.load_state_dict(state, strict=True)
    built.eval()
    normal = _Layers().eval()
    normal.load_state_dict(state, strict=True)
    for key, value in normal.state_dict().items():
        assert built.state_dict()[key].dtype == value.dtype and torch.equal(built.state_dict()[key], value), key
    ids = torch.tensor([[1, 4, 2, 0], [3, 3, 9, 5]])
    torch.testing.assert_close(built(ids), normal(ids), rtol=1e-6, atol=1e-6)


class _RandomOutsideTheState(torch.nn.Module):
    def __init__(self, where: str) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 3)
        if where == "attribute":
            self.projection = torch.empty(3, 3).normal_()
        else:
            self.register_buffer("projection", torch.empty(3, 3).uniform_(), persistent=False)


@pytest.mark.parametrize("where", ["attribute", "non-persistent buffer"])
def test_uninitialised_refuses_a_random_tensor_no_checkpoint_fills(where: str) -> None:
    with pytest.raises(ValueError, match=r"_RandomOutsideTheState fills a \(3, 3\) tensor at random"):
        checkpoints.uninitialised(lambda: _RandomOutsideTheState(where))


@dataclass
class _Sha256Cache:
    file: Path  # the cache file
    hashed: list[Path]  # every file sha256_of read


@pytest.fixture
def sha256_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> _Sha256Cache:
    """An empty user cache folder, files remembered however recently they changed, and sha256_of counted."""
    from vcframe import downloads

    monkeypatch.setenv(downloads.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(checkpoints, "SHA256_SETTLE_NS", 0)
    cache = _Sha256Cache(tmp_path / "cache" / checkpoints.SHA256_CACHE_FILE, [])
    real = checkpoints.sha256_of

    def counted(path: str | os.PathLike[str]) -> str:
        cache.hashed.append(Path(path))
        return real(path)

    monkeypatch.setattr(checkpoints, "sha256_of", counted)
    return cache


def test_a_shipped_file_is_hashed_once_per_version(fake_registry: Path, sha256_cache: _Sha256Cache) -> None:
    for _ in range(3):
        assert resolve("vocoder", "demo", "default").path == fake_registry
    assert sha256_cache.hashed == [fake_registry]
    assert json.loads(sha256_cache.file.read_text())[str(fake_registry)]["sha256"] == sha256_of(fake_registry)
    assert not [path for path in sha256_cache.file.parent.iterdir() if path.name.startswith(".")]  # atomic write
    resolve("vocoder", "demo", "default", rehash=True)  # vcframe models verify reads the file again
    assert sha256_cache.hashed == [fake_registry, fake_registry]


def test_a_modified_file_is_caught_even_with_its_size_and_mtime_kept(
    fake_registry: Path, sha256_cache: _Sha256Cache
) -> None:
    resolve("vocoder", "demo", "default")
    status = fake_registry.stat()
    contents = bytearray(fake_registry.read_bytes())
    contents[-1] ^= 0xFF  # one flipped bit in the last tensor value, same size
    with open(fake_registry, "r+b") as stream:
        stream.write(contents)
    os.utime(fake_registry, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert fake_registry.stat().st_size == status.st_size and fake_registry.stat().st_mtime_ns == status.st_mtime_ns
    with pytest.raises(CheckpointError, match="sha256"):
        resolve("vocoder", "demo", "default")
    replacement = fake_registry.with_suffix(".new")  # replaced by another file with the same bytes: hashed again
    replacement.write_bytes(bytes(contents))
    os.replace(replacement, fake_registry)
    with pytest.raises(CheckpointError, match="sha256"):
        resolve("vocoder", "demo", "default")
    assert len(sha256_cache.hashed) == 3


def test_a_file_changed_just_now_is_not_remembered(
    fake_registry: Path, sha256_cache: _Sha256Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "SHA256_SETTLE_NS", 60 * 10**9)  # written a moment ago by the fixture
    resolve("vocoder", "demo", "default")
    resolve("vocoder", "demo", "default")
    assert len(sha256_cache.hashed) == 2 and not sha256_cache.file.exists()


@pytest.mark.parametrize("cache_text", ["{not json", "[1, 2]", '{"x": {"identity": 3, "sha256": "ab"}}'])
def test_a_corrupt_cache_means_hashing_again(fake_registry: Path, sha256_cache: _Sha256Cache, cache_text: str) -> None:
    sha256_cache.file.parent.mkdir(parents=True)
    sha256_cache.file.write_text(cache_text)
    resolve("vocoder", "demo", "default")
    assert sha256_cache.hashed == [fake_registry]
    assert str(fake_registry) in json.loads(sha256_cache.file.read_text())  # rewritten whole


def test_a_poisoned_cache_row_for_another_version_of_the_file_is_not_believed(
    fake_registry: Path, sha256_cache: _Sha256Cache
) -> None:
    """A row whose identity is not the file's (an old version) is ignored, whatever checksum it claims."""
    identity = checkpoints._file_identity(fake_registry.stat())
    identity[-1] -= 1  # another status-change time: another version of the file
    sha256_cache.file.parent.mkdir(parents=True)
    rows = {str(fake_registry.resolve()): {"identity": identity, "sha256": "0" * 64}}
    sha256_cache.file.write_text(json.dumps(rows))
    assert resolve("vocoder", "demo", "default").path == fake_registry
    assert sha256_cache.hashed == [fake_registry]


def test_an_unwritable_cache_folder_means_hashing_every_time(
    fake_registry: Path, sha256_cache: _Sha256Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VCFRAME_CACHE_DIR", "/proc/vcframe-cache")  # cannot be created
    resolve("vocoder", "demo", "default")
    resolve("vocoder", "demo", "default")
    assert len(sha256_cache.hashed) == 2


def test_init_lineage_counts_the_init_steps_and_says_so():
    """The trainers' exports: steps = the run's + its --init's, with run_steps and the record beside them."""
    assert init_source("registry:x", "x.safetensors", 7000) == "registry:x (x.safetensors, 7000 steps)"
    assert init_source(Path("g_00000000"), "g_00000000", 0) == "g_00000000 (g_00000000)"
    record = {"source": "registry:x (x.safetensors, 7000 steps)", "steps": 7000, "discriminators": None}
    lineage = init_lineage(record, 800)
    assert (lineage.steps, lineage.note) == (7800, ", 7800 steps with its --init's")
    assert lineage.metadata == {"run_steps": 800, "init": record} and lineage.metadata["init"] is not record
    for missing in (None, {}):
        assert init_lineage(missing, 800) == init_lineage(None, 800)
        assert (init_lineage(missing, 800).steps, init_lineage(missing, 800).metadata) == (800, {})
        assert init_lineage(missing, 800).note == ""
