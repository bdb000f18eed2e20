"""Published checkpoints: the user cache, ``vcframe models pull``, and verification.

A registry entry whose source is ``hf:<owner>/<repository>/<file>`` (at its ``revision``) or an ``https://`` URL
is a published file (:attr:`vcframe.checkpoints.CheckpointEntry.downloadable`). Nothing downloads unless asked:
:func:`pull` fetches one with ``huggingface_hub`` (for a Hugging Face repository, ``get_hf_file_metadata``
gives the size, the sha256, the commit and the CDN location before any byte moves; ``HF_ENDPOINT`` points it at
another host; then its ``http_get`` streams the file, retrying and resuming with Range requests, for plain URLs
too), then checks the size and the sha256 and that the file loads without running code, and only then moves it
into the cache, atomically. Loading
(:func:`cached_checkpoint`, through :func:`vcframe.checkpoints.resolve`) never downloads: a file that is not in
the cache is refused with the ``vcframe models pull`` command that gets it.

Cache layout (``$VCFRAME_CACHE_DIR``, default: the platform's user cache folder, e.g. ``~/.cache/vcframe``)::

    models/<id>/<file>           verified files, ready to load
    models/<id>/receipt.json     source, revision, commit, size, sha256 (pinned or recorded at download), date
    partial/<id>/                a download that broke off, resumed by the next pull; any other failure
                                 removes it, so a failed pull leaves no file behind

A file whose sha256 the registry does not pin gets the sha256 of its first download recorded in its receipt;
every later load and ``vcframe models verify`` checks the file against it.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vcframe import checkpoints
from vcframe._io import atomic_write
from vcframe.checkpoints import CheckpointEntry, load_torch, read_safetensors_metadata, sha256_of
from vcframe.errors import CheckpointError, DownloadError

#: Environment variable naming the cache folder.
CACHE_ENV = "VCFRAME_CACHE_DIR"
#: huggingface_hub's switch for "no network"; ``vcframe models pull`` honours it too.
OFFLINE_ENV = "HF_HUB_OFFLINE"
#: Seconds without an answer before a download gives up (``--timeout``).
DEFAULT_TIMEOUT_S = 30.0
#: Bytes read from the connection at a time: what a download that breaks off loses at most (and the progress step).
DOWNLOAD_CHUNK_BYTES = 1 << 20
#: ``progress(bytes_done, bytes_total)`` callbacks of :func:`pull`.
Progress = Callable[[int, int | None], None]
RECEIPT = "receipt.json"


def cache_root() -> Path:
    """``$VCFRAME_CACHE_DIR``, else the platform's user cache folder for vcframe (``~/.cache/vcframe`` on Linux)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("vcframe", appauthor=False))


def file_name(entry: CheckpointEntry) -> str:
    """The file name a published entry is stored under (the last part of its source)."""
    if entry.source.startswith("hf:"):
        return entry.source.rsplit("/", 1)[-1]
    return Path(urlparse(entry.source).path).name or f"{entry.id}.bin"


def cached_path(entry: CheckpointEntry) -> Path:
    """Where a published entry's verified file lives in the cache (whether or not it is there)."""
    return cache_root() / "models" / entry.id / file_name(entry)


def partial_folder(entry: CheckpointEntry) -> Path:
    """Where a download of ``entry`` that broke off waits to be resumed."""
    return cache_root() / "partial" / entry.id


class Receipt(BaseModel):
    """What was downloaded for a published entry (``models/<id>/receipt.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    source: str = Field(description="The entry's source when it was downloaded.")
    url: str = Field(description="Where it came from (the Hugging Face endpoint's URL, or the plain URL).")
    revision: str | None = Field(None, description="Revision asked for (Hugging Face sources).")
    commit: str | None = Field(None, description="Commit the host resolved the revision to (Hugging Face sources).")
    size: int = Field(gt=0, description="Bytes.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Checksum of the downloaded file.")
    sha256_pinned: bool = Field(description="True: the registry pins it; False: recorded at this download.")
    downloaded: str = Field(description="When (ISO 8601, UTC).")


def read_receipt(entry: CheckpointEntry) -> Receipt | None:
    """The receipt of ``entry``'s cached file; None when it was never downloaded (or the receipt is unreadable)."""
    path = cached_path(entry).parent / RECEIPT
    try:
        return Receipt.model_validate_json(path.read_text())
    except (OSError, ValueError, ValidationError):
        return None


def is_downloaded(entry: CheckpointEntry) -> bool:
    """Whether ``entry``'s file and its receipt are in the cache (not verified: see :func:`verify_download`)."""
    return cached_path(entry).is_file() and read_receipt(entry) is not None


def entries_named(names: Sequence[str]) -> list[CheckpointEntry]:
    """The published entries ``names`` stand for: registry ids, or bundle names (the bundle's published
    checkpoints), in order and without repeats. CheckpointError for a name that is neither, or for an id that is
    shipped in a package rather than published."""
    from vcframe.bundles import bundles

    by_id = {entry.id: entry for entry in checkpoints.registry_entries()}
    known_bundles = bundles()
    chosen: list[CheckpointEntry] = []
    for name in names:
        if name in known_bundles:
            found = [entry for entry in known_bundles[name].checkpoint_entries().values() if entry is not None]
            chosen += [entry for entry in found if entry.downloadable]
        elif name.removeprefix("registry:") in by_id:
            entry = by_id[name.removeprefix("registry:")]
            if not entry.downloadable:
                raise CheckpointError(
                    f"registry:{entry.id} ships inside an installed package; there is nothing to download",
                    hint=f"it loads from {entry.source}",
                )
            chosen.append(entry)
        else:
            published = ", ".join(entry.id for entry in by_id.values() if entry.downloadable)
            raise CheckpointError(
                f"no published checkpoint or bundle named {name!r}",
                hint=f"bundles: {', '.join(known_bundles)}; checkpoints: {published} (vcframe models list)",
            )
    unique: dict[str, CheckpointEntry] = {}
    for entry in chosen:
        unique.setdefault(entry.id, entry)
    return list(unique.values())


def pull_command(entries: Sequence[CheckpointEntry], bundle: str | None = None) -> str:
    """``vcframe models pull ...`` for ``entries``: the bundle's name when it stands for all of them."""
    if bundle is not None:
        try:
            if {entry.id for entry in entries} <= {entry.id for entry in entries_named([bundle])}:
                return f"vcframe models pull {bundle}"
        except CheckpointError:
            pass
    return "vcframe models pull " + " ".join(entry.id for entry in entries)


def not_downloaded_error(
    entries: Sequence[CheckpointEntry], bundle: str | None = None, *, pull_option: bool = False
) -> DownloadError:
    """The one-line error for published checkpoints that are not in the cache, naming the command that gets
    them (and ``--pull`` when ``pull_option``: the command at hand has one)."""
    names = ", ".join(f"registry:{entry.id}" for entry in entries)
    size = sum(entry.size or 0 for entry in entries) / 1e6
    return DownloadError(
        f"{names} {'is' if len(entries) == 1 else 'are'} not downloaded (nothing downloads unless asked)",
        hint=f"run '{pull_command(entries, bundle)}' ({size:.0f} MB) first"
        + (", or add --pull" if pull_option else ""),
    )


def cached_checkpoint(entry: CheckpointEntry, *, verify: bool = True) -> Path:
    """The cached file of a published entry, verified (size and sha256) unless ``verify`` is False; DownloadError
    naming ``vcframe models pull`` when it is not in the cache."""
    if not is_downloaded(entry):
        raise not_downloaded_error([entry])
    if verify:
        verify_download(entry)
    return cached_path(entry)


def verify_download(entry: CheckpointEntry) -> Receipt:
    """Check a cached file against the registry's size and sha256 (or the sha256 recorded at its first
    download). DownloadError naming the difference and the command that fetches a good copy."""
    receipt = read_receipt(entry)
    path = cached_path(entry)
    if receipt is None or not path.is_file():
        raise not_downloaded_error([entry])
    again = f"run 'vcframe models pull {entry.id} --force' to download it again"
    actual_size = path.stat().st_size
    if actual_size != entry.size:
        raise DownloadError(
            f"cached {path} of registry:{entry.id} has {actual_size} bytes, the registry says {entry.size}", hint=again
        )
    expected = entry.sha256 or receipt.sha256
    actual = sha256_of(path)
    if actual != expected:
        how = "the registry pins" if entry.sha256 else "its first download recorded"
        raise DownloadError(
            f"cached {path} of registry:{entry.id} has sha256 {actual[:16]}..., {how} {expected[:16]}...",
            hint=f"the file was changed or damaged; {again}",
        )
    return receipt


def remove_download(entry: CheckpointEntry) -> list[Path]:
    """Delete ``entry``'s cached file, receipt and any partial download; the paths removed."""
    removed = []
    for folder in (cached_path(entry).parent, partial_folder(entry)):
        if folder.exists():
            shutil.rmtree(folder)
            removed.append(folder)
    return removed


def pull(
    entry: CheckpointEntry,
    *,
    force: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: Progress | None = None,
) -> tuple[Path, Receipt, bool]:
    """Download a published entry into the cache: ``(path, receipt, downloaded)``, ``downloaded`` False when a
    verified copy was there already (unless ``force``).

    The file is fetched into ``partial/<id>/``; then its size, its sha256 (pinned, or recorded now) and its
    content (a torch file must load with ``weights_only``, a safetensors file must have a valid header) are
    checked, and only then is it moved into ``models/<id>/``. DownloadError (one line) when offline, on no
    answer within ``timeout_s``, a missing file, a wrong size or checksum, or a file that would run code; the
    partial download is kept only when the connection broke off mid-file (the next pull resumes it).
    """
    if not entry.downloadable:
        raise CheckpointError(f"registry:{entry.id} ships inside a package; there is nothing to download")
    if is_downloaded(entry) and not force:
        return cached_path(entry), verify_download(entry), False
    if _offline():
        raise DownloadError(
            f"cannot download registry:{entry.id}: {OFFLINE_ENV} is set, so vcframe stays offline",
            hint=f"unset {OFFLINE_ENV} and run the pull again with a network",
        )
    staging = partial_folder(entry)
    staging.mkdir(parents=True, exist_ok=True)
    try:
        if entry.source.startswith("hf:"):
            fetched, url, commit, host_sha256 = _fetch_from_hub(entry, staging, timeout_s, progress)
        else:
            fetched, url, commit, host_sha256 = _fetch_url(entry, staging, timeout_s, progress)
    except DownloadError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except Exception as error:  # noqa: BLE001 - every failure of the download library becomes one line
        raise _failed(entry, error, staging, timeout_s) from error
    try:
        receipt = _check_download(entry, fetched, url, commit, host_sha256)
        target = cached_path(entry)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(target.parent / RECEIPT, "w") as stream:
            stream.write(receipt.model_dump_json(indent=2))
        os.replace(fetched, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            staging.parent.rmdir()  # only when no other partial download waits there
    return target, receipt, True


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _check_download(
    entry: CheckpointEntry, fetched: Path, url: str, commit: str | None, host_sha256: str | None
) -> Receipt:
    """The receipt of a fetched file that has the registry's size, sha256 and a loadable content; DownloadError
    (or CheckpointError for content that would run code) otherwise."""
    size = fetched.stat().st_size
    if size != entry.size:
        raise DownloadError(
            f"download of registry:{entry.id} from {url} has {size} bytes, the registry says {entry.size}",
            hint="the host serves another file; nothing was kept",
        )
    actual = sha256_of(fetched)
    for expected, who in ((entry.sha256, "the registry pins"), (host_sha256, "the host announced")):
        if expected is not None and actual != expected:
            raise DownloadError(
                f"download of registry:{entry.id} from {url} has sha256 {actual[:16]}..., {who} {expected[:16]}...",
                hint="the file is not the published one; nothing was kept",
            )
    what = f"download of registry:{entry.id}"
    if entry.format == "torch":
        load_torch(fetched, what=what)  # weights_only: refuses pickled code without running it
    elif read_safetensors_metadata(fetched) is None:
        raise CheckpointError(f"{what} is not a safetensors file", hint="the host serves another file")
    return Receipt(
        id=entry.id,
        source=entry.source,
        url=url,
        revision=entry.revision,
        commit=commit,
        size=size,
        sha256=actual,
        sha256_pinned=entry.sha256 is not None,
        downloaded=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )


def _fetch_from_hub(
    entry: CheckpointEntry, staging: Path, timeout_s: float, progress: Progress | None
) -> tuple[Path, str, str | None, str | None]:
    """An ``hf:`` entry into ``staging``: (file, url, commit, sha256 the host announced). The Hub's metadata
    (``get_hf_file_metadata``: size, sha256 of large files, the commit the revision points to, the CDN
    location) is checked before any byte is downloaded."""
    hub = _huggingface_hub()
    owner, repository, filename = entry.source.removeprefix("hf:").split("/", 2)
    repo_id = f"{owner}/{repository}"
    endpoint = os.environ.get("HF_ENDPOINT") or None
    url = hub.hf_hub_url(repo_id, filename, revision=entry.revision, endpoint=endpoint)
    with _hub_settings(timeout_s):
        metadata = hub.get_hf_file_metadata(url, timeout=timeout_s, endpoint=endpoint)
        if metadata.size is not None and metadata.size != entry.size:
            raise DownloadError(
                f"{url} offers {metadata.size} bytes, registry:{entry.id} expects {entry.size}",
                hint="the host serves another file; nothing was downloaded",
            )
        announced = metadata.etag if metadata.etag and _is_sha256(metadata.etag) else None
        if entry.sha256 is not None and announced is not None and announced != entry.sha256:
            raise DownloadError(
                f"{url} announces sha256 {announced[:16]}..., registry:{entry.id} pins {entry.sha256[:16]}...",
                hint="the host serves another file; nothing was downloaded",
            )
        location, headers = metadata.location, {}
        if urlparse(location).netloc == urlparse(url).netloc:  # not redirected to a CDN: pin the commit, keep auth
            if metadata.commit_hash:
                location = hub.hf_hub_url(repo_id, filename, revision=metadata.commit_hash, endpoint=endpoint)
            headers = hub.utils.build_hf_headers()
        version = metadata.etag or metadata.commit_hash or location
        fetched = _resumable_get(entry, location, staging, version, progress, headers)
    return fetched, url, metadata.commit_hash, announced


def _fetch_url(
    entry: CheckpointEntry, staging: Path, timeout_s: float, progress: Progress | None
) -> tuple[Path, str, None, None]:
    """A plain-URL entry into ``staging``: (file, url, None, None)."""
    _huggingface_hub()
    with _hub_settings(timeout_s):
        return _resumable_get(entry, entry.source, staging, entry.source, progress, {}), entry.source, None, None


def _resumable_get(
    entry: CheckpointEntry, url: str, staging: Path, version: str, progress: Progress | None, headers: dict[str, str]
) -> Path:
    """GET ``url`` with huggingface_hub's ``http_get`` (streams, follows redirects, retries and resumes with a
    Range request when the connection breaks off) into ``staging/<file>.incomplete``, appending to what an earlier
    pull left there when it was for the same ``version`` (ETag or URL); the finished file's path.

    vcframe keeps this partial file itself: ``hf_hub_download`` deletes its partial file when a download fails,
    so it resumes within one call only."""
    from huggingface_hub.file_download import http_get

    partial = staging / f"{file_name(entry)}.incomplete"
    version_file = staging / "version"
    if not version_file.is_file() or version_file.read_text() != version:
        partial.unlink(missing_ok=True)
        version_file.write_text(version)
    with open(partial, "ab") as stream:
        http_get(
            url,
            stream,
            resume_size=stream.tell(),
            headers=headers,
            displayed_filename=file_name(entry),
            tqdm_class=_progress_bar_class(progress),
        )
    fetched = staging / file_name(entry)
    os.replace(partial, fetched)
    return fetched


def _huggingface_hub() -> Any:
    try:
        import huggingface_hub
    except ImportError as error:
        raise DownloadError(
            "vcframe models pull needs the huggingface_hub package", hint="pip install 'vcframe-core[models]'"
        ) from error
    return huggingface_hub


@contextlib.contextmanager
def _hub_settings(timeout_s: float) -> Iterator[None]:
    """huggingface_hub's download timeout and chunk size (module constants it reads from the environment at
    import) for the duration of one pull, and its retry warnings kept off stderr (a failure is one line)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import logging as hub_logging

    settings: Any = constants  # the constants are typed int; a float timeout is what httpx takes
    before = (settings.HF_HUB_DOWNLOAD_TIMEOUT, settings.DOWNLOAD_CHUNK_SIZE)
    level = hub_logging.get_verbosity()
    settings.HF_HUB_DOWNLOAD_TIMEOUT, settings.DOWNLOAD_CHUNK_SIZE = timeout_s, DOWNLOAD_CHUNK_BYTES
    hub_logging.set_verbosity(logging.ERROR)
    try:
        yield
    finally:
        settings.HF_HUB_DOWNLOAD_TIMEOUT, settings.DOWNLOAD_CHUNK_SIZE = before
        hub_logging.set_verbosity(level)


def _progress_bar_class(progress: Progress | None) -> Any:
    """A tqdm class (what huggingface_hub's downloads report to) that forwards bytes to ``progress``."""
    from tqdm import tqdm

    class ReportingBar(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self.received = int(kwargs.get("initial") or 0)
            if progress is not None:
                progress(self.received, self.total)

        def update(self, n: float | None = 1) -> bool | None:
            self.received += int(n or 0)
            if progress is not None:
                progress(self.received, self.total)
            return None

    return ReportingBar


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(character in "0123456789abcdef" for character in text)


def _failed(entry: CheckpointEntry, error: BaseException, staging: Path, timeout_s: float) -> DownloadError:
    """One-line DownloadError for a failed fetch; removes ``staging`` unless a transfer broke off mid-file."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    causes: list[BaseException] = []
    cursor: BaseException | None = error
    while cursor is not None and cursor not in causes:
        causes.append(cursor)
        cursor = cursor.__cause__ or cursor.__context__
    reason = f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"
    broken_off = False
    for cause in causes:
        if isinstance(cause, OfflineModeIsEnabled):
            reason = f"huggingface_hub is in offline mode ({OFFLINE_ENV})"
        elif isinstance(cause, HfHubHTTPError) and getattr(cause, "response", None) is not None:
            status = cause.response.status_code
            reason = f"the host answered HTTP {status}" + (" (no such file)" if status == 404 else "")
        elif isinstance(cause, httpx2.TimeoutException):
            reason, broken_off = f"no answer within {timeout_s:g} s", True
        elif isinstance(cause, httpx2.ConnectError):
            reason = f"cannot connect ({str(cause).splitlines()[0][:120] if str(cause) else 'refused'})"
        elif isinstance(cause, httpx2.TransportError):
            reason, broken_off = "the connection broke off", True
        else:
            continue
        break
    received = sum(path.stat().st_size for path in staging.rglob("*.incomplete") if path.is_file())
    source = entry.source
    if broken_off and received > 0:
        return DownloadError(
            f"download of registry:{entry.id} ({source}) stopped after {received} of {entry.size} bytes: {reason}",
            hint="run the same command again to resume it",
        )
    shutil.rmtree(staging, ignore_errors=True)
    with contextlib.suppress(OSError):
        staging.parent.rmdir()
    return DownloadError(f"cannot download registry:{entry.id} ({source}): {reason}", hint="nothing was kept")
