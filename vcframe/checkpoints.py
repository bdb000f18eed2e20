"""Checkpoints: safe loading, checksums, the curated registry, and atomic saving.

No code runs at load: ``.pt`` files go through ``torch.load(weights_only=True)`` (which refuses pickled
objects) and ``.safetensors`` files hold tensors and string metadata only.

A checkpoint reference in a component's config is one of:

* ``default``: the registry entry marked ``default = true`` for that component;
* ``registry:<id>``: an entry of ``registry/checkpoints.toml`` (verified against its sha256 at load);
* a filesystem path;
* anything a ``vcframe_resolve_checkpoint`` hook understands.

Registry sources: ``package:<distribution-or-module>/<relative path>`` (a file inside an installed Python
package, located with importlib without importing it), a path relative to the registry folder, or a published
file that ``vcframe models pull`` downloads into the user cache (:mod:`vcframe.downloads`):
``hf:<owner>/<repository>/<path in the repository>`` (a Hugging Face model repository, at the entry's
``revision``) or a plain ``https://`` URL. Nothing downloads at load: a published checkpoint that is not in the
cache is refused with the ``vcframe models pull`` command that gets it.

Every entry has a quality ``status`` (:data:`STATUSES`) and the figures it was measured at (:class:`Quality`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import importlib.util
import json
import os
import pickle
import time
import tomllib
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vcframe._io import atomic_path
from vcframe.errors import CheckpointError, VcframeError

if TYPE_CHECKING:
    import torch

#: Quality status of a checkpoint, worst first: ``demo`` weights prove the pipeline but are below their component's
#: bar (docs/models.md); ``usable`` weights trained here meet it; ``published`` weights are their authors' release.
STATUSES = ("demo", "usable", "published")
Status = Literal["demo", "usable", "published"]
#: Source prefixes of published files that ``vcframe models pull`` downloads.
DOWNLOAD_PREFIXES = ("hf:", "https://", "http://")


class Quality(BaseModel):
    """Measured quality of a checkpoint (``benchmarks/quality.py``); a figure left at None was not measured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    words_heard_right: float | None = Field(
        None, ge=0, le=100, description="Percent of the words pocketsphinx hears right in clones of real voices."
    )
    similarity: float | None = Field(
        None, ge=-1, le=1, description="GE2E cosine similarity of clones of real voices to their reference."
    )
    commit: str | None = Field(None, pattern=r"^[0-9a-f]{7,40}$", description="Commit the figures were measured at.")
    measured: str = Field(description="How the figures were measured (command, items), or why there are none.")

    def summary(self) -> str:
        """``"71.4 % words heard right, similarity 0.594 (2ad13cd)"``, or ``"not measured here"``."""
        figures = []
        if self.words_heard_right is not None:
            figures.append(f"{self.words_heard_right:.1f} % words heard right")
        if self.similarity is not None:
            figures.append(f"similarity {self.similarity:.3f}")
        if not figures:
            return "not measured here"
        return ", ".join(figures) + (f" ({self.commit})" if self.commit else "")


class CheckpointEntry(BaseModel):
    """One row of ``registry/checkpoints.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Registry id, used as 'registry:<id>'.")
    component: str = Field(description="'<kind>/<name>' of the component the weights are for.")
    source: str = Field(
        description="'package:<module>/<path>', 'hf:<owner>/<repository>/<file>', an https:// URL, or a path "
        "relative to the registry folder."
    )
    revision: str | None = Field(None, description="Hugging Face sources: the branch, tag or commit to download.")
    size: int | None = Field(None, gt=0, description="Size in bytes (published files: checked after download).")
    sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="Checksum verified at load. Published files may leave it out: the first download records it.",
    )
    format: str = Field(description="'torch' (weights_only pickle) or 'safetensors'.")
    license: str = Field(description="Licence of the weights.")
    training_data: str = Field(description="What the weights were trained on.")
    steps: int | None = Field(None, description="Training steps.")
    default: bool = Field(False, description="The component's default checkpoint.")
    preset: str | None = Field(None, description="Model size preset the weights need.")
    status: Status = Field(description="demo, usable or published (see STATUSES).")
    quality: Quality = Field(description="The measured figures behind the status.")
    notes: str = Field("", description="Anything a user should know.")
    mel_correction: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Vocoders: the mel correction strength (vcframe.correction) the weights were measured with and "
        "are run with by default (the pipeline's mel_correction setting left unset); None: off.",
    )

    @model_validator(mode="after")
    def _check_source(self) -> CheckpointEntry:
        if self.downloadable:
            if self.size is None:
                raise ValueError(f"{self.id}: a published file needs its size in bytes (size = ...)")
            if self.source.startswith("hf:"):
                if self.revision is None:
                    raise ValueError(f"{self.id}: a Hugging Face source needs a revision (a commit, tag or 'main')")
                if self.source.removeprefix("hf:").count("/") < 2:
                    raise ValueError(f"{self.id}: source {self.source!r} is not 'hf:<owner>/<repository>/<file>'")
        elif self.sha256 is None:
            raise ValueError(f"{self.id}: a file shipped in a package or the registry needs its sha256")
        if self.revision is not None and not self.source.startswith("hf:"):
            raise ValueError(f"{self.id}: revision {self.revision!r} is for 'hf:' sources, not {self.source!r}")
        return self

    @property
    def downloadable(self) -> bool:
        """A published file that ``vcframe models pull`` downloads (not one shipped in a package)."""
        return self.source.startswith(DOWNLOAD_PREFIXES)

    def figures(self) -> str:
        """The quality figures (:meth:`Quality.summary`) and ``", with mel correction 1"`` for weights measured and
        run with :mod:`vcframe.correction` (their ``mel_correction``)."""
        corrected = f", with mel correction {self.mel_correction:g}" if self.mel_correction else ""
        return f"{self.quality.summary()}{corrected}"

    def status_line(self) -> str:
        """``"demo: 6.5 % words heard right, similarity 0.555 (c5c3eb9)"``: the status and its :meth:`figures`."""
        return f"{self.status}: {self.figures()}"


@functools.lru_cache(maxsize=1)
def registry_entries() -> tuple[CheckpointEntry, ...]:
    """All entries of the shipped ``checkpoints.toml``."""
    text = importlib.resources.files("vcframe.registry").joinpath("checkpoints.toml").read_text()
    rows = tomllib.loads(text).get("checkpoint", [])
    return tuple(CheckpointEntry.model_validate(row) for row in rows)


def find_entry(component: str, reference: str) -> CheckpointEntry | None:
    """The registry entry for ``reference`` (``default`` or ``registry:<id>``) of ``component``."""
    entries = registry_entries()
    if reference == "default":
        matches = [e for e in entries if e.component == component and e.default]
        return matches[0] if matches else None
    if reference.startswith("registry:"):
        wanted = reference.removeprefix("registry:")
        for entry in entries:
            if entry.id == wanted:
                if entry.component != component:
                    raise CheckpointError(
                        f"checkpoint registry:{wanted} is for {entry.component}, not {component}",
                        hint="pick an id listed for this component in 'vcframe plugins show'",
                    )
                return entry
        known = ", ".join(e.id for e in entries if e.component == component) or "none"
        raise CheckpointError(f"no checkpoint registry:{wanted}", hint=f"known for {component}: {known}")
    return None


def locate_source(source: str) -> Path:
    """File path of a registry ``source`` (see module docstring), without importing the package."""
    if source.startswith("package:"):
        module, _, relative = source.removeprefix("package:").partition("/")
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None or not found.submodule_search_locations:
            raise CheckpointError(
                f"the package {module!r} that holds these weights is not installed",
                hint=f"pip install {module}",
            )
        for location in found.submodule_search_locations:
            candidate = Path(location) / relative
            if candidate.is_file():
                return candidate
        raise CheckpointError(
            f"{relative!r} is missing from the installed package {module!r}", hint=f"reinstall {module}"
        )
    registry_folder = Path(str(importlib.resources.files("vcframe.registry")))
    return (registry_folder / source).resolve()


def sha256_of(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: The file in the user cache folder (:func:`vcframe.downloads.cache_root`) where :func:`shipped_sha256`
#: remembers the checksums of shipped weight files.
SHA256_CACHE_FILE = "shipped-sha256.json"
#: A file changed less than this long ago is hashed but not remembered: a second change within the file system's
#: timestamp resolution could keep its size and times ("racily clean", as git calls it).
SHA256_SETTLE_NS = 2_000_000_000
#: Files remembered at most (the oldest are forgotten first).
SHA256_CACHE_ENTRIES = 64


def _file_identity(status: os.stat_result) -> list[int]:
    """What changes when a file's bytes change: its device, inode, size, modification and status-change times
    (``st_ctime`` is set by the kernel on every write, rename or ``touch``; no user can set it back)."""
    return [status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns]


def shipped_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a weight file shipped inside an installed package, hashed once per version of the file.

    The checksum is remembered in :data:`SHA256_CACHE_FILE` under the file's resolved path with its identity
    (:func:`_file_identity`); while the file keeps that identity the remembered checksum is returned, so a run no
    longer reads and hashes each shipped file every time (0.02 s of CPU per 17 MB file, two in the default bundle).
    Any write to the file, a replacement, a ``touch`` or a copy over it changes the identity and the file is hashed
    again. A file changed in the last :data:`SHA256_SETTLE_NS` is not remembered; the cache is written atomically
    and an unreadable, corrupt or unwritable cache only means hashing every time. (Downloaded files in the cache
    folder are always hashed: their checksum would sit beside them, as writable as they are.)
    """
    source = Path(path).resolve()
    before = _file_identity(source.stat())
    cache_file = _sha256_cache_file()
    remembered = _read_sha256_cache(cache_file)
    row = remembered.get(str(source))
    if row is not None and row.get("identity") == before:
        return str(row["sha256"])
    digest = sha256_of(source)
    status = source.stat()
    settled = time.time_ns() - max(status.st_mtime_ns, status.st_ctime_ns) >= SHA256_SETTLE_NS
    if cache_file is not None and settled and _file_identity(status) == before:
        remembered.pop(str(source), None)
        remembered[str(source)] = {"identity": before, "sha256": digest}
        _write_sha256_cache(cache_file, dict(list(remembered.items())[-SHA256_CACHE_ENTRIES:]))
    return digest


def _sha256_cache_file() -> Path | None:
    from vcframe.downloads import cache_root

    try:
        return cache_root() / SHA256_CACHE_FILE
    except Exception:  # noqa: BLE001 - no cache folder (no home, platformdirs failing): hash every time
        return None


def _read_sha256_cache(cache_file: Path | None) -> dict[str, dict[str, Any]]:
    """The remembered rows (path -> identity, sha256); empty when the cache is missing, unreadable or corrupt."""
    if cache_file is None:
        return {}
    try:
        rows = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(rows, dict):
        return {}
    return {
        path: row
        for path, row in rows.items()
        if isinstance(row, dict)
        and isinstance(row.get("identity"), list)
        and isinstance(row.get("sha256"), str)
        and len(row["sha256"]) == 64
    }


def _write_sha256_cache(cache_file: Path, rows: dict[str, dict[str, Any]]) -> None:
    from vcframe._io import atomic_write

    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(cache_file, "w") as stream:
            json.dump(rows, stream, indent=1)
    except (OSError, VcframeError):  # a read-only cache folder: remember nothing
        return


@dataclass
class ResolvedCheckpoint:
    """A checkpoint file ready to load, with the registry entry it came from (if any)."""

    path: Path
    entry: CheckpointEntry | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def resolve(
    component_kind: str, component_name: str, reference: str, *, verify: bool = True, rehash: bool = False
) -> ResolvedCheckpoint:
    """Turn a checkpoint reference into a verified local file.

    A file shipped in a package is checked against its registry sha256 as remembered for this version of the file
    (:func:`shipped_sha256`), or hashed afresh with ``rehash`` (``vcframe models verify``).

    A published (downloadable) registry entry resolves to its file in the user cache, or DownloadError naming
    the ``vcframe models pull`` command when it is not there; nothing downloads here. Hooks
    (``vcframe_resolve_checkpoint``) are asked first for references that are neither ``default``, ``registry:``
    ids nor existing paths.
    """
    component = f"{component_kind}/{component_name}"
    entry = find_entry(component, reference)
    if entry is not None and entry.downloadable:
        from vcframe.downloads import cached_checkpoint

        return ResolvedCheckpoint(cached_checkpoint(entry, verify=verify), entry)
    if entry is not None:
        path = locate_source(entry.source)
        if not path.is_file():
            raise CheckpointError(
                f"checkpoint file {str(path)!r} of registry:{entry.id} is missing", hint="reinstall the plugin"
            )
        if verify:
            actual = sha256_of(path) if rehash else shipped_sha256(path)
            expected = entry.sha256 or ""  # always set for shipped files (CheckpointEntry checks it)
            if actual != expected:
                raise CheckpointError(
                    f"checkpoint {str(path)!r} has sha256 {actual[:16]}..., registry:{entry.id} expects "
                    f"{expected[:16]}...",
                    hint="the file is corrupt or was replaced; reinstall the plugin",
                )
        return ResolvedCheckpoint(path, entry)
    if reference == "default":
        raise CheckpointError(f"{component} has no default checkpoint", hint="give one with -o checkpoint=PATH")
    candidate = Path(reference).expanduser()
    if not candidate.exists():
        from vcframe.discovery import plugin_manager

        spec_like = _SpecStub(component_kind, component_name)
        hooked = plugin_manager().hook.vcframe_resolve_checkpoint(component=spec_like, reference=reference)
        if hooked is not None:
            candidate = Path(hooked)
    if not candidate.is_file():
        raise CheckpointError(f"checkpoint {reference!r} not found", hint="give an existing file or a registry id")
    return ResolvedCheckpoint(candidate)


@dataclass(frozen=True)
class _SpecStub:
    kind: str
    name: str


def load_state(
    path: str | os.PathLike[str], *, state_keys: tuple[str, ...] = ("model_state",)
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state dict, metadata) from a ``.safetensors`` or a torch ``.pt`` checkpoint, safely.

    For ``.pt`` files the state dict is the value of the first top-level key of ``state_keys`` present
    (``model_state``: RTVC's layout; HiFi-GAN's generator files use ``("generator",)``); a bare state dict
    is accepted too. Other top-level entries (``step``, ``optimizer_state``...) come back in metadata under
    ``"checkpoint"``. For safetensors, string metadata values that hold JSON are decoded.
    """
    import torch

    source = _existing_file(path, "checkpoint")
    name = str(source)
    with open(source, "rb") as stream:
        head = stream.read(16)
    if _looks_like_safetensors(head, source.stat().st_size):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(name, framework="pt") as handle:
                raw_metadata = handle.metadata() or {}
                state = {key: handle.get_tensor(key) for key in handle.keys()}
        except (SafetensorError, OSError, ValueError) as error:
            raise CheckpointError(
                f"checkpoint {name!r} is a corrupt safetensors file ({error})", hint="re-create it"
            ) from error
        return state, {key: _maybe_json(value) for key, value in raw_metadata.items()}
    loaded = load_torch(source)
    if not isinstance(loaded, dict):
        raise CheckpointError(f"checkpoint {name!r} holds a {type(loaded).__name__}, not a dict of tensors")
    state_key = next((key for key in state_keys if key in loaded), None)
    if state_key is not None:
        state = loaded[state_key]
        others = {key: value for key, value in loaded.items() if key != state_key}
    else:
        state, others = loaded, {}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {name!r} has no state dict of tensors", hint="is it a model checkpoint?")
    return dict(state), {"checkpoint": others}


def _existing_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path; CheckpointError naming ``what`` when it is not a file or is empty."""
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(f"{what} {str(source)!r} not found", hint="check the path")
    if source.stat().st_size == 0:
        raise CheckpointError(f"{what} {str(source)!r} is empty", hint="the download or copy was interrupted")
    return source


def load_torch(path: str | os.PathLike[str], *, what: str = "checkpoint") -> Any:
    """The object in a torch ``.pt`` file, loaded safely (``torch.load(weights_only=True)``): trainers' resume,
    export and GTA files go through here too.

    CheckpointError (one line, naming ``what`` and the file) when the file is missing or empty, holds pickled
    Python objects that would run code, or is not a torch file at all (text, a truncated download, another
    format): torch's weights-only unpickler then fails with anything from UnpicklingError to KeyError.
    """
    import torch

    source = _existing_file(path, what)
    name = str(source)
    try:
        return torch.load(name, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        text = str(error).split("\n")[0]
        if "Weights only load failed" in str(error) or "weights_only" in str(error):
            raise CheckpointError(
                f"{what} {name!r} contains Python objects that would run code when loaded; refusing it",
                hint="re-save it as a plain state dict or a safetensors file",
            ) from error
        raise CheckpointError(f"{what} {name!r} is corrupt ({text})", hint="re-create or re-download it") from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError, TypeError) as error:
        first_line = str(error).split("\n")[0][:120]
        text = f"{type(error).__name__}: {first_line}"
        raise CheckpointError(
            f"{what} {name!r} is corrupt or not a torch checkpoint ({text})",
            hint="give a .pt file written by torch.save, or a .safetensors file",
        ) from error


#: ``format`` metadata of vcframe exports that predate the ``component`` key -> the component's name.
_FORMAT_COMPONENTS = {"vcframe-tacotron-v1": "tacotron", "vcframe-ge2e-v1": "ge2e"}


def checkpoint_component(metadata: Mapping[str, Any]) -> str | None:
    """The component a vcframe export was written for: its ``component`` metadata (``"vocoder/wavernn"``), else
    the name its ``format`` implies (``"vcframe-tacotron-v1"`` -> ``"tacotron"``); None when the file does not
    say (RTVC ``.pt`` files, third-party files)."""
    component = metadata.get("component")
    if isinstance(component, str) and component:
        return component
    return _FORMAT_COMPONENTS.get(str(metadata.get("format", "")))


def check_checkpoint_component(metadata: Mapping[str, Any], kind: str, name: str, source: str) -> None:
    """CheckpointError naming the component a checkpoint belongs to when it says it is another one's (e.g. a
    WaveRNN export given as the Tacotron checkpoint); files that do not say pass."""
    owner = checkpoint_component(metadata)
    if owner is None or owner in (f"{kind}/{name}", name):
        return
    raise CheckpointError(
        f"checkpoint {source!r} belongs to the {owner} component, not to {kind} {name!r}",
        hint=f"give it to {owner.replace('/', ' ')} instead, or give a {name} checkpoint",
    )


def read_safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The header metadata of a safetensors file (JSON values decoded), reading no tensor and importing no
    torch; None when ``path`` is not a safetensors file. CheckpointError when the header is corrupt."""
    source = Path(path)
    size = source.stat().st_size
    with open(source, "rb") as stream:
        head = stream.read(16)
        if not _looks_like_safetensors(head, size):
            return None
        stream.seek(8)
        header_bytes = stream.read(int.from_bytes(head[:8], "little"))
    try:
        header = json.loads(header_bytes)
    except ValueError as error:
        raise CheckpointError(
            f"checkpoint {str(source)!r} has a corrupt safetensors header", hint="re-create it"
        ) from error
    raw_metadata = (header.get("__metadata__") or {}) if isinstance(header, dict) else {}
    return {key: _maybe_json(value) for key, value in raw_metadata.items()}


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    header_length = int.from_bytes(head[:8], "little")
    return 0 < header_length <= size - 8 and head[8:9] == b"{"


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


ModuleT = TypeVar("ModuleT", bound="torch.nn.Module")


def uninitialised(build: Callable[[], ModuleT]) -> ModuleT:
    """``build()``'s module without its random initialisation, for a checkpoint to fill at once with
    ``load_state_dict(..., strict=True)``.

    A plugin about to load weights calls ``uninitialised(functools.partial(build_network, config))`` instead of
    ``build_network(config)``. The module is built on the CPU as usual, but the random fills that ``torch.nn.init``
    and the layers' ``reset_parameters`` run (``uniform_``, ``normal_``, ``xavier_uniform_``, ...) are skipped: those
    tensors keep the uninitialised memory ``torch.empty`` gave them, and no random numbers are drawn. Every
    deterministic step (zeros, ones, a padding row, constants) still runs, and the load copies into the tensors as
    it copies into initialised ones (float16 weights are upcast alike), so the loaded module is the same. Building
    the default Tacotron took 80-90 ms of CPU with the fills and 11-13 ms without. (The meta device would skip
    the allocation too, but its random fills import torch's compiler: 1.3 s of CPU.)

    Args:
        build: makes the module (``() -> torch.nn.Module``).

    Raises ValueError when a skipped fill was on a tensor that is not (a view of) a parameter or persistent
    buffer of the module, which a strict load would leave uninitialised: build such a module normally.
    """
    import torch
    from torch.overrides import TorchFunctionMode

    #: Tensor methods and torch.nn.init functions that fill a tensor at random (the init functions dispatch here
    #: before they call the methods, and the methods they call are not seen again)
    random_fills = {"uniform_", "normal_", "trunc_normal_", "orthogonal_", "sparse_"}
    random_fills |= {f"{name}_{law}_" for name in ("xavier", "kaiming") for law in ("uniform", "normal")}
    skipped: dict[int, torch.Tensor] = {}

    class SkipRandomFills(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            kwargs = kwargs or {}
            # torch.nn.init passes the tensor by keyword, Tensor methods positionally
            target = kwargs.get("tensor", args[0] if args else None)
            if getattr(func, "__name__", None) in random_fills and isinstance(target, torch.Tensor) and target.numel():
                skipped[target.untyped_storage().data_ptr()] = target
                return target
            return func(*args, **kwargs)

    with SkipRandomFills():
        module = build()
    loaded = {tensor.untyped_storage().data_ptr() for tensor in module.state_dict(keep_vars=True).values()}
    for storage, tensor in skipped.items():
        if storage not in loaded:
            raise ValueError(
                f"{type(module).__name__} fills a {tuple(tensor.shape)} tensor at random that is not in its state "
                "dict, so no checkpoint would fill it; build it normally"
            )
    return module


def save_safetensors(
    state: dict[str, Any], path: str | os.PathLike[str], metadata: dict[str, Any] | None = None
) -> None:
    """Write tensors and metadata (values JSON-encoded unless strings) atomically."""
    from safetensors.torch import save_file

    encoded = {key: value if isinstance(value, str) else json.dumps(value) for key, value in (metadata or {}).items()}
    tensors = {key: tensor.detach().cpu().contiguous() for key, tensor in state.items()}
    with atomic_path(path, suffix=".safetensors") as temp:
        save_file(tensors, str(temp), metadata=encoded)


def to_half_precision(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Copy a safetensors checkpoint with its float32 tensors stored as float16 (metadata kept).

    Halves the file (shipped weights stay small); loading upcasts, since ``load_state_dict`` copies into the
    model's float32 parameters. The metadata gains ``"stored_dtype": "float16"``.
    """
    import torch

    state, metadata = load_state(source)
    halved = {key: tensor.half() if tensor.dtype == torch.float32 else tensor for key, tensor in state.items()}
    save_safetensors(halved, target, {**metadata, "stored_dtype": "float16"})


def save_torch(payload: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """``torch.save`` atomically (training checkpoints with optimizer and RNG state)."""
    import torch

    with atomic_path(path, suffix=".pt") as temp:
        torch.save(payload, str(temp))


def init_source(reference: str | os.PathLike[str], file_name: str, steps: int) -> str:
    """How a training run names the weights its ``--init`` loaded: ``REFERENCE (FILE, N steps)`` (no steps part
    when the file records none)."""
    return f"{reference} ({file_name}{f', {steps} steps' if steps else ''})"


@dataclass(frozen=True)
class Lineage:
    """What an export says about the steps its weights have seen.

    Attributes:
        steps: the run's steps plus those of the weights its ``--init`` loaded.
        metadata: ``{"run_steps": the run's, "init": the run's init record}``; empty for a run without ``--init``.
        note: ``", N steps with its --init's"`` for the export's message ('' without ``--init``).
    """

    steps: int
    metadata: dict[str, Any]
    note: str


def init_lineage(init: Mapping[str, Any] | None, run_steps: int) -> Lineage:
    """The :class:`Lineage` of a run's weights after ``run_steps``, from the ``init`` record its checkpoints keep
    (``{"source", "steps", ...}``, None for a run that started from random weights)."""
    if not init:
        return Lineage(run_steps, {}, "")
    steps = int(init["steps"]) + run_steps
    return Lineage(steps, {"run_steps": run_steps, "init": dict(init)}, f", {steps} steps with its --init's")
