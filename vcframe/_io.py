"""Atomic file writes and small serialisation helpers (private; re-exported where public)."""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from vcframe.errors import InputError, OutputError

if TYPE_CHECKING:
    from vcframe.types import SpeakerEmbedding


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """The output path, or an OutputError if it cannot be written: its directory does not exist or is not
    writable, it is a directory, its name is longer than the file system allows, or the OS refuses to create
    a file there (a read-only or virtual file system such as ``/proc``: probed by creating and removing an
    empty temporary file). Commands call it before any model runs."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError(f"output directory {str(directory)!r} does not exist", hint="create it first")
    if not os.access(directory, os.W_OK):
        raise OutputError(f"cannot write to {str(directory)!r}", hint="choose a writable directory")
    name_bytes = len(os.fsencode(target.name))
    try:
        name_max = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    if name_bytes > name_max:
        raise OutputError(
            f"output file name {target.name[:40] + '...'!r} is {name_bytes} bytes long; this file system allows "
            f"{name_max}",
            hint="give a shorter file name",
        )
    if target.is_dir():
        raise OutputError(f"output path {str(target)!r} is a directory", hint="give a file name")
    try:
        handle, probe = tempfile.mkstemp(dir=directory, prefix=".vcframe-probe.")
    except OSError as error:
        raise OutputError(
            f"cannot create files in {str(directory)!r} ({error.strerror})", hint="choose a writable directory"
        ) from error
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return target


def temporary_prefix(target: Path) -> str:
    """Prefix of the temporary files that atomic writes of ``target`` create beside it (``.NAME.``, the name cut
    to 100 characters so that a long but legal name still leaves room for the random part)."""
    return f".{target.name[:100]}."


def remove_temporaries(folder: Path, names: Iterable[str], *, patterns: bool = False) -> int:
    """Delete the temporary files that interrupted atomic writes (a process killed while writing) left in
    ``folder`` for the files ``names`` (relative paths; with ``patterns``, glob patterns such as
    ``checkpoint*.pt``). Returns how many were deleted."""
    removed = 0
    for name in names:
        target = folder / name
        prefix = temporary_prefix(target)
        for temporary in target.parent.glob(f"{prefix if patterns else glob.escape(prefix)}*"):
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
                removed += 1
    return removed


def _replace(temp_name: str, target: Path) -> None:
    try:
        os.replace(temp_name, target)
    except OSError as error:
        raise OutputError(f"cannot write {str(target)!r} ({error.strerror})", hint="check the output path") from error


@functools.lru_cache(maxsize=1)
def _default_mode() -> int:
    """The permissions ``open()`` would give a new file (0o666 less the umask); mkstemp's 0o600 is private.
    Read once (os.umask can only be read by setting it, which must not race with other threads later)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and rename it into place only if the block succeeds.

    Readers never see a half-written file, and a failure leaves nothing behind.
    """
    target = check_output_path(path)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=temporary_prefix(target), suffix=".part")
    try:
        with os.fdopen(handle, mode) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, _default_mode())
        _replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` for libraries that write by file name; renamed on success."""
    target = check_output_path(path)
    handle, temp_name = tempfile.mkstemp(
        dir=target.parent, prefix=temporary_prefix(target), suffix=suffix or target.suffix
    )
    os.close(handle)
    try:
        yield Path(temp_name)
        os.chmod(temp_name, _default_mode())
        _replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def save_embedding(embedding: SpeakerEmbedding, path: str | os.PathLike[str]) -> None:
    """``path`` (.npy, (B, D) float32) and ``path + '.json'`` (the EmbeddingSpec and metadata, including the
    reference clips' spectrum where the metadata stores one: ``Pipeline.embed(..., with_spectrum=True)``, and an
    output adapter where adaptation fitted one: ``SpeakerAdaptation(target="output")``)."""
    import numpy as np

    with atomic_write(path) as stream:
        np.save(stream, embedding.vector.detach().cpu().numpy().astype(np.float32))
    sidecar = {"spec": embedding.spec.model_dump(), "metadata": _jsonable(dict(embedding.metadata))}
    with atomic_write(f"{path}.json", "w") as stream:
        json.dump(sidecar, stream, indent=2)


def load_embedding(path: str | os.PathLike[str]) -> SpeakerEmbedding:
    """Read what :func:`save_embedding` wrote. The vectors, the spec, any stored reference spectrum
    (:func:`vcframe.spectrum.stored_spectrum`) and any output adapter (:func:`vcframe.adaptation.output_adapter`)
    are checked: anything unreadable is a one-line InputError."""
    import numpy as np
    import torch

    from vcframe.adaptation import output_adapter
    from vcframe.specs import EmbeddingSpec
    from vcframe.spectrum import stored_spectrum
    from vcframe.types import SpeakerEmbedding

    source = Path(path)
    sidecar = Path(f"{path}.json")
    if not source.is_file():
        raise InputError(f"embedding file {str(source)!r} not found", hint="create one with 'vcframe embed'")
    if not sidecar.is_file():
        raise InputError(
            f"embedding {str(source)!r} has no spec sidecar {sidecar.name!r}",
            hint="embeddings written by 'vcframe embed' have one; re-create it",
        )
    try:
        vector = np.load(source, allow_pickle=False)
        described = json.loads(sidecar.read_text())
        spec = EmbeddingSpec.model_validate(described["spec"])
    except Exception as error:  # noqa: BLE001 - any parse failure is the same user error
        raise InputError(
            f"cannot read embedding {str(source)!r}: {error}", hint="re-create it with 'vcframe embed'"
        ) from error
    if vector.ndim == 1:
        vector = vector[None]
    if vector.ndim != 2 or vector.shape[1] != spec.dim or not np.all(np.isfinite(vector)):
        raise InputError(f"embedding {str(source)!r} has shape {vector.shape}, expected (B, {spec.dim}) finite values")
    metadata = described.get("metadata", {})
    if not isinstance(metadata, dict):
        raise InputError(
            f"cannot read embedding {str(source)!r}: its metadata is not an object",
            hint="re-create it with 'vcframe embed'",
        )
    try:
        stored_spectrum(metadata)
        output_adapter(metadata)
    except InputError as error:
        raise InputError(f"embedding {str(source)!r}: {error.message}", hint=error.hint) from error
    return SpeakerEmbedding(torch.from_numpy(vector.astype(np.float32)), spec, metadata)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return str(value)


def to_jsonable(value: Any) -> Any:
    """Metadata made safe for JSON (pydantic models dumped, unknown objects as strings)."""
    return _jsonable(value)
