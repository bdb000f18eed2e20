"""Batch cloning: every row of a CSV or JSONL manifest cloned into a folder, resumable, on local processes, a
Dask cluster, or one fixed shard of a job array.

A manifest row names a voice (``reference``: one or more clips separated by ``|``, relative to the manifest,
or ``librispeech:<id>``; or ``voice``: a registered voice name), the ``text``, and optionally ``seed``,
``encoder`` / ``synthesizer`` / ``vocoder`` and ``out`` (the output file name inside the output folder)::

    text,reference,voice,seed,out
    Hello there.,clips/alice.wav,,1,alice_hello.wav
    Good morning.,,sample-female,,

Behaviour (:func:`run_batch`):

* a row whose output file exists is skipped, so a rerun (after a crash, or after deleting some outputs)
  does exactly the missing rows;
* outputs are written atomically (a temporary file renamed into place); temporaries a killed worker left
  behind are removed at the start and the end of a run;
* a bad row (missing clip, empty text, unknown voice, ...) is recorded as ``failed`` with its one-line error
  in the results file and the run goes on;
* every row gets a seed (its own, else the run's ``seed``), so outputs do not depend on which worker ran a row
  or in which order: any executor gives byte-identical files;
* the models are loaded once per worker process (pipelines are cached per process and component choice);
* worker processes die with the run's process, even when it is SIGKILLed; an interruption (Ctrl+C, or
  SIGTERM inside :func:`sigterm_as_interrupt`) stops the workers at once, writes the results file with the
  unfinished rows as ``interrupted`` and returns (``BatchReport.interrupted``); a rerun does those rows.

Executors (:class:`Executor`: ``run(jobs)`` yields one :class:`RowResult` per job as jobs finish):
:class:`InlineExecutor` (this process), :class:`LocalExecutor` (a pool of worker processes, the default) and
:class:`DaskExecutor` (``dask.distributed``: a scheduler address or a local cluster; optional extra
``vcframe-core[dask]``). ``shard=(i, n)`` keeps rows ``i, i + n, i + 2n, ...`` for job arrays without a scheduler.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from vcframe._io import remove_temporaries
from vcframe.errors import InputError, VcframeError

if TYPE_CHECKING:
    from vcframe.config import Settings
    from vcframe.discovery import Registry
    from vcframe.pipeline import Pipeline

COLUMNS = ("text", "reference", "voice", "seed", "encoder", "synthesizer", "vocoder", "out")
COMPONENT_COLUMNS = ("encoder", "synthesizer", "vocoder")
AUDIO_FORMATS = ("wav", "flac", "ogg")
Status = Literal["done", "skipped", "failed", "interrupted"]


# -- manifest ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestRow:
    """One manifest row, checked. ``error`` is set (and the row is reported as failed) when it cannot run.

    Attributes:
        row: 1-based number of the row among the manifest's data rows.
        text, voice, seed: as given (``seed`` None: the run's seed).
        references: reference clips, resolved against the manifest's folder (``librispeech:`` ids as given).
        components: component choices of the row (kind -> name).
        out: the output file name inside the output folder (given, or made from the row number and content).
    """

    row: int
    text: str
    references: tuple[str, ...] = ()
    voice: str | None = None
    seed: int | None = None
    components: tuple[tuple[str, str], ...] = ()
    out: str = ""
    error: str | None = None


def _cell(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    return "" if value is None else str(value).strip()


def _parse_row(number: int, record: dict[str, Any], base: Path, default_seed: int, audio_format: str) -> ManifestRow:
    text = "" if record.get("text") is None else str(record["text"])
    reference_cell, voice = _cell(record, "reference"), _cell(record, "voice") or None
    references = tuple(
        part
        if part.startswith("librispeech:")
        else str((base / part).resolve())
        if not Path(part).is_absolute()
        else part
        for part in (piece.strip() for piece in reference_cell.split("|"))
        if part
    )
    components = tuple((kind, _cell(record, kind)) for kind in COMPONENT_COLUMNS if _cell(record, kind))
    problem: str | None = None
    seed: int | None = None
    if _cell(record, "seed"):
        try:
            seed = int(_cell(record, "seed"))
            if not 0 <= seed < 2**63:
                raise ValueError
        except ValueError:
            problem = f"seed {_cell(record, 'seed')!r} is not an integer in [0, 2**63)"
    if not text.strip():
        problem = problem or "the text is empty"
    if bool(references) == bool(voice):
        problem = problem or "give exactly one of reference and voice"
    effective_seed = default_seed if seed is None else seed
    out = _cell(record, "out")
    if out:
        candidate = Path(out)
        if candidate.is_absolute() or ".." in candidate.parts or not candidate.name:
            problem = problem or f"out {out!r} must be a file name inside the output folder"
        elif candidate.suffix.lower().lstrip(".") not in AUDIO_FORMATS:
            problem = problem or f"out {out!r} must end in .wav, .flac or .ogg"
    else:
        content = json.dumps([text, references, voice, effective_seed, components], ensure_ascii=False)
        out = f"{number:06d}-{hashlib.sha256(content.encode()).hexdigest()[:8]}.{audio_format}"
    return ManifestRow(number, text, references, voice, seed, components, out, problem)


def read_manifest(
    path: str | os.PathLike[str], *, default_seed: int = 0, audio_format: str = "wav"
) -> list[ManifestRow]:
    """Every data row of a ``.csv`` (header row) or ``.jsonl`` (one object per line) manifest.

    Raises InputError for a manifest that cannot be read at all (missing, unknown columns, bad JSON, no rows);
    problems of single rows are recorded in their ``error``.
    """
    source = Path(path)
    if audio_format not in AUDIO_FORMATS:
        raise InputError(f"unknown audio format {audio_format!r}", hint=f"use one of {', '.join(AUDIO_FORMATS)}")
    if not source.is_file():
        raise InputError(f"manifest {str(source)!r} not found", hint="give a .csv or .jsonl file")
    records: list[dict[str, Any]] = []
    try:
        if source.suffix.lower() == ".csv":
            with source.open(newline="", encoding="utf-8") as stream:
                records = [dict(record) for record in csv.DictReader(stream)]
        elif source.suffix.lower() in (".jsonl", ".ndjson"):
            for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        raise InputError(f"manifest line {number} is not a JSON object", hint="write one per line")
                    records.append(record)
        else:
            raise InputError(f"manifest {str(source)!r} is neither .csv nor .jsonl", hint="rename it accordingly")
    except UnicodeDecodeError as error:
        raise InputError(f"manifest {str(source)!r} is not UTF-8 text", hint="save it as UTF-8") from error
    except json.JSONDecodeError as error:
        raise InputError(f"manifest {str(source)!r}: bad JSON ({error})", hint="one JSON object per line") from error
    if not records:
        raise InputError(f"manifest {str(source)!r} has no rows", hint="add rows with at least text and a voice")
    unknown = sorted({key for record in records for key in record if key not in COLUMNS and key is not None})
    if unknown or any(None in record for record in records):
        raise InputError(
            f"manifest {str(source)!r} has unknown columns {unknown or ['(extra cells)']}",
            hint=f"columns are {', '.join(COLUMNS)}",
        )
    if not any("text" in record for record in records):
        raise InputError(
            f"manifest {str(source)!r} has no text column",
            hint="add a 'text' column (CSV header) or a \"text\" key (JSONL) with what each row says",
        )
    rows = [_parse_row(n, record, source.parent, default_seed, audio_format) for n, record in enumerate(records, 1)]
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        if row.out in seen and row.error is None:
            rows[index] = ManifestRow(**{**asdict(row), "error": f"out {row.out!r} is also row {seen[row.out]}'s"})
        seen.setdefault(row.out, row.row)
    return rows


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError as error:
        raise InputError(f"bad shard {text!r}", hint="write INDEX/COUNT, e.g. --shard 0/4") from error
    if not 0 <= index < count:
        raise InputError(f"shard {text!r}: the index must be in 0..{count - 1}", hint="shards count from 0")
    return index, count


# -- jobs and workers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CloneJob:
    """What a worker needs to clone one row (picklable)."""

    row: int
    text: str
    references: tuple[str, ...]
    voice: str | None
    seed: int
    components: tuple[tuple[str, str], ...]
    output: str
    settings: str
    """The run's settings as JSON (``Settings.model_dump_json``)."""
    registry: Registry | None = None
    """The component registry to use (None: the worker's installed entry points)."""


@dataclass
class RowResult:
    """The outcome of one row, as written to the results file."""

    row: int
    out: str
    status: Status
    error: str | None = None
    seconds: float = 0.0
    worker: str = ""


#: Pipelines of this process, by (settings JSON, component choice): models load once per worker.
_PIPELINES: dict[tuple[str, tuple[tuple[str, str], ...]], Pipeline] = {}
#: One row at a time per process: seeded cloning forks the process-wide random streams (a Dask worker with
#: several threads would otherwise interleave them).
_CLONING = threading.Lock()


def _pipeline_for(job: CloneJob) -> Pipeline:
    key = (job.settings, job.components)
    if key not in _PIPELINES:
        import torch

        from vcframe.config import Settings
        from vcframe.discovery import default_registry
        from vcframe.pipeline import Pipeline

        settings = Settings.model_validate_json(job.settings)
        registry = job.registry if job.registry is not None else default_registry(settings.disable_plugins)
        chosen = dict(job.components)
        _PIPELINES[key] = Pipeline(
            chosen.get("encoder"),
            chosen.get("synthesizer"),
            chosen.get("vocoder"),
            settings=settings,
            registry=registry,
            threads=torch.get_num_threads(),  # the worker's (_apply_torch_threads), not the pipeline default
        )
    return _PIPELINES[key]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def clone_job(job: CloneJob) -> RowResult:
    """Clone one row and write its output atomically. Never raises for a bad row: errors become the result."""
    from vcframe.audio import save_audio

    started = time.perf_counter()
    name = Path(job.output).name
    try:
        with _CLONING:
            _apply_torch_threads()
            pipeline = _pipeline_for(job)
            references = list(job.references) or None
            waveform = pipeline.clone(job.text, references, voice=job.voice, seed=job.seed)
        save_audio(waveform, job.output)
    except VcframeError as error:
        return RowResult(job.row, name, "failed", str(error), time.perf_counter() - started, worker_id())
    except Exception as error:  # noqa: BLE001 - a bug on one row must not end the batch
        message = f"unexpected {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        return RowResult(job.row, name, "failed", message, time.perf_counter() - started, worker_id())
    return RowResult(job.row, name, "done", None, round(time.perf_counter() - started, 4), worker_id())


#: torch (and numpy BLAS) threads of this worker process (set by the executors; None: the libraries' defaults)
_TORCH_THREADS: int | None = None


def thread_environment(threads: int) -> dict[str, str]:
    """Environment of a worker process: OpenMP, MKL and OpenBLAS on ``threads`` threads from its start (Dask's
    nanny does the same with 1), so every executor computes with the same thread counts."""
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


def _init_worker(threads: int, parent_pid: int | None = None) -> None:
    """Worker set-up: ``threads`` threads for torch and for numpy's BLAS (the same everywhere keeps the
    executors' outputs byte-identical). A local worker (``parent_pid`` given) dies with the run's process
    and leaves Ctrl+C, which reaches the whole process group, to it."""
    global _TORCH_THREADS
    if parent_pid is not None:
        import signal

        from vcframe._processes import die_with_parent

        die_with_parent(parent_pid)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _TORCH_THREADS = threads
    _apply_torch_threads()


def _apply_torch_threads() -> None:
    # torch's OpenMP thread count is per calling thread: apply it in the thread that runs the row (a Dask
    # worker runs tasks in a thread pool); BLAS libraries loaded since the last row get the limit too
    if _TORCH_THREADS is None:
        return
    import torch

    if torch.get_num_threads() != _TORCH_THREADS:
        torch.set_num_threads(_TORCH_THREADS)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=_TORCH_THREADS)
    except ImportError:
        pass


def _torch_threads_plugin(threads: int) -> Any:
    """A Dask worker plugin: every worker (also one started to replace a dead one) runs torch with ``threads``
    threads, so results do not depend on a worker's core count."""
    from dask.distributed import WorkerPlugin

    class TorchThreads(WorkerPlugin):
        name = "vcframe-torch-threads"

        def setup(self, worker: Any) -> None:
            _init_worker(threads)

    return TorchThreads()


# -- executors -------------------------------------------------------------------------------------------


class Executor(Protocol):
    """Runs clone jobs; ``run`` yields one result per job, in completion order."""

    name: str

    def run(self, jobs: Sequence[CloneJob]) -> Iterator[RowResult]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Every job in this process, one after the other (``--workers 1``)."""

    name = "inline"

    def run(self, jobs: Sequence[CloneJob]) -> Iterator[RowResult]:
        for job in jobs:
            yield clone_job(job)

    def close(self) -> None:
        return None


class LocalExecutor:
    """A pool of ``workers`` processes on this machine, each with ``threads`` torch threads (default
    ``cpu_count // workers``).

    A worker that dies (killed, out of memory) breaks the pool: a new pool takes the unfinished jobs, each job at
    most ``attempts`` times. Workers die with this process; an interruption ends them at once."""

    name = "local"

    def __init__(self, workers: int | None = None, attempts: int = 3, threads: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.attempts = attempts
        self.threads = threads or max(1, (os.cpu_count() or 1) // self.workers)

    def run(self, jobs: Sequence[CloneJob]) -> Iterator[RowResult]:
        threads = self.threads
        remaining = {job.row: job for job in jobs}
        tries = dict.fromkeys(remaining, 0)
        saved = {name: os.environ.get(name) for name in thread_environment(threads)}
        os.environ.update(thread_environment(threads))  # inherited by the spawned workers
        try:
            yield from self._run(remaining, tries, threads)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def _run(self, remaining: dict[int, CloneJob], tries: dict[int, int], threads: int) -> Iterator[RowResult]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        from vcframe._processes import stop_pool

        while remaining:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_init_worker, initargs=(threads, os.getpid())
            ) as pool:
                try:
                    futures = {pool.submit(clone_job, job): job for job in remaining.values()}
                    for job in remaining.values():
                        tries[job.row] += 1
                    pending = set(futures)
                    broken = False
                    while pending and not broken:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            job = futures[future]
                            try:
                                result = future.result()
                            except BrokenProcessPool:
                                broken = True
                                continue
                            remaining.pop(job.row, None)
                            yield result
                except BaseException:  # interrupted (or the caller stopped early): end the workers now
                    stop_pool(pool)
                    raise
            for row in [row for row in remaining if tries[row] >= self.attempts]:
                job = remaining.pop(row)
                yield RowResult(row, Path(job.output).name, "failed", f"its worker died {tries[row]} times")

    def close(self) -> None:
        return None


class DaskExecutor:
    """``dask.distributed``: the cluster at ``scheduler`` (``tcp://host:port``), or a local cluster of ``workers``
    single-threaded worker processes. Every worker runs torch with ``threads`` threads (default 1; a worker
    plugin sets it) and clones one row at a time. The scheduler reruns the jobs of a worker that dies."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None, threads: int | None = None) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as error:
            raise InputError(
                "the dask executor needs dask.distributed", hint="pip install 'vcframe-core[dask]'"
            ) from error
        self.cluster: Any = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="20s")  # type: ignore[no-untyped-call]
            except OSError as error:
                raise InputError(
                    f"cannot reach the Dask scheduler {scheduler!r}: {error}", hint="check the address and port"
                ) from error
        else:
            count = max(1, workers or os.cpu_count() or 1)
            self.cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=count,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=40,
                env=thread_environment(threads or 1),
            )
            self.client = Client(self.cluster)  # type: ignore[no-untyped-call]
        self.client.register_plugin(_torch_threads_plugin(threads or 1))

    def run(self, jobs: Sequence[CloneJob]) -> Iterator[RowResult]:
        from dask.distributed import as_completed

        futures = self.client.map(clone_job, list(jobs), key=[f"vcframe-batch-row-{job.row}" for job in jobs])
        owner = {future.key: job for future, job in zip(futures, jobs, strict=True)}
        for future in as_completed(futures):  # type: ignore[no-untyped-call]
            job = owner[future.key]
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 - e.g. KilledWorker after repeated worker deaths
                result = RowResult(job.row, Path(job.output).name, "failed", f"{type(error).__name__}: {error}")
            yield result

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]
        if self.cluster is not None:
            self.cluster.close()


def make_executor(
    kind: str = "local", *, workers: int | None = None, scheduler: str | None = None, threads: int | None = None
) -> Executor:
    """``inline``, ``local`` (``workers`` processes; one means inline) or ``dask`` (``scheduler`` or local);
    ``threads``: torch threads per worker."""
    if scheduler and kind not in ("dask", "local"):
        raise InputError("--scheduler needs the dask executor", hint="drop --executor or pass --executor dask")
    if scheduler or kind == "dask":
        return DaskExecutor(scheduler, workers, threads)
    if kind == "inline" or (kind == "local" and workers == 1):
        return InlineExecutor()
    if kind == "local":
        return LocalExecutor(workers, threads=threads)
    raise InputError(f"unknown executor {kind!r}", hint="use local, dask or inline")


# -- the run ---------------------------------------------------------------------------------------------


@dataclass
class BatchReport:
    """What a batch run did: one result per row of the shard, in row order, and where they were written."""

    results: list[RowResult]
    results_path: Path
    seconds: float
    executor: str
    counts: dict[str, int] = field(default_factory=dict)
    interrupted: str | None = None
    """Why the run stopped early (``"SIGTERM"``, ``"SIGINT"``), or None when every row ran."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt("SIGTERM")`` in the main thread, as Ctrl+C raises
    ``KeyboardInterrupt``, so :func:`run_batch` ends a run that is told to stop cleanly (results written,
    workers ended). Outside the main thread (where Python cannot install handlers) it does nothing."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def results_file_name(shard: tuple[int, int]) -> str:
    index, count = shard
    return "results.jsonl" if count == 1 else f"results.shard-{index}-of-{count}.jsonl"


def run_batch(
    manifest: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    settings: Settings,
    executor: Executor,
    registry: Registry | None = None,
    shard: tuple[int, int] = (0, 1),
    audio_format: str = "wav",
    results_path: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int, RowResult], None] | None = None,
) -> BatchReport:
    """Clone every row of ``manifest`` (of this ``shard``) into ``out_dir``; see the module docstring.

    ``progress(done, total, result)`` is called after each row. The results file (``results.jsonl`` in
    ``out_dir`` by default) is written atomically at the end, one JSON object per row. A KeyboardInterrupt
    (Ctrl+C; SIGTERM inside :func:`sigterm_as_interrupt`) while rows run ends the executor's work at once;
    the results file is still written, the unfinished rows ``interrupted``, and the report says why.
    """
    from vcframe._io import atomic_write

    started = time.perf_counter()
    seed = 0 if settings.seed is None else settings.seed
    rows = read_manifest(manifest, default_seed=seed, audio_format=audio_format)
    index, count = shard
    rows = [row for row in rows if (row.row - 1) % count == index]
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"output {str(folder)!r} is a file", hint="give a folder for the outputs")
    folder.mkdir(parents=True, exist_ok=True)
    remove_temporaries(folder, [row.out for row in rows])
    settings_json = settings.model_dump_json()
    results: dict[int, RowResult] = {}
    jobs: list[CloneJob] = []
    for row in rows:
        target = folder / row.out
        if row.error is not None:
            results[row.row] = RowResult(row.row, row.out, "failed", row.error)
        elif target.is_file():
            results[row.row] = RowResult(row.row, row.out, "skipped")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            jobs.append(
                CloneJob(
                    row.row,
                    row.text,
                    row.references,
                    row.voice,
                    seed if row.seed is None else row.seed,
                    row.components,
                    str(target.resolve()),
                    settings_json,
                    registry,
                )
            )
    total = len(rows)
    done = 0
    for result in results.values():
        done += 1
        if progress is not None:
            progress(done, total, result)
    interrupted: str | None = None
    running = executor.run(jobs)
    try:
        for result in running:
            results[result.row] = result
            done += 1
            if progress is not None:
                progress(done, total, result)
    except KeyboardInterrupt as stop:
        interrupted = str(stop) or "SIGINT"
        close = getattr(running, "close", None)
        if close is not None:
            close()  # a generator executor ends its workers on close
    remove_temporaries(folder, [row.out for row in rows])
    for row in rows:
        if row.row in results:
            continue
        if (folder / row.out).is_file():  # written (atomically, so whole) by a worker stopped before it reported
            results[row.row] = RowResult(row.row, row.out, "done")
        else:
            reason = f"the run was interrupted ({interrupted}) before this row finished"
            results[row.row] = RowResult(row.row, row.out, "interrupted", reason)
    ordered = [results[row.row] for row in rows]
    target_results = Path(results_path) if results_path is not None else folder / results_file_name(shard)
    with atomic_write(target_results, "w") as stream:
        for result in ordered:
            stream.write(json.dumps(asdict(result)) + "\n")
    counts = {status: sum(r.status == status for r in ordered) for status in ("done", "skipped", "failed")}
    if interrupted is not None:
        counts["interrupted"] = sum(r.status == "interrupted" for r in ordered)
    seconds = time.perf_counter() - started
    return BatchReport(ordered, target_results, seconds, executor.name, counts, interrupted)
