"""Running a comparison: plan the items, generate them (in a process pool), measure, cache, resume.

:func:`plan_comparison` checks everything that can be checked before any model loads: plugin names and
options (errors), compatibility of each triple (an incompatible triple becomes *refused* rows carrying the
compatibility check's reason), reference and ground-truth files, metric names and options.
:func:`run_comparison` then runs every pending item. Finished items are cached under ``OUT/.cache/items``
(keyed by system, options, settings, reference files, text and seed), so an interrupted run resumes where it
stopped and a run with a new metric computes only that metric on the saved audio.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import multiprocessing
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcframe._io import atomic_write, to_jsonable
from vcframe._processes import stop_pool
from vcframe.compare.grid import (
    Grid,
    ResolvedText,
    ResolvedVoice,
    SystemEntry,
    item_seed,
    resolve_texts,
    resolve_voices,
)
from vcframe.config import Settings, load_settings
from vcframe.discovery import Registry, default_registry, make_config
from vcframe.errors import ConfigError, IncompatibleComponentsError, InputError, PluginError, VcframeError
from vcframe.metrics.registry import (
    MetricRegistry,
    build_metric,
    default_metric_registry,
    make_metric_config,
    use_metric_registry,
)
from vcframe.metrics.spec import MetricColumn, MetricInputs, MetricResult, MetricSpec

#: ``progress(done, total, record)`` after each item (cached and refused items included).
ItemProgress = Callable[[int, int, dict[str, Any]], None]

CACHE_DIR = ".cache"
#: Name of the reference rows that score the ground-truth recordings themselves.
GROUND_TRUTH = "ground-truth"
#: Columns of results.csv before the metric columns.
BASE_COLUMNS: tuple[str, ...] = (
    "item",
    "system",
    "encoder",
    "synthesizer",
    "vocoder",
    "voice",
    "text_id",
    "text",
    "seed",
    "status",
    "error",
    "audio",
    "duration_s",
    "references",
    "ground_truth",
)


@dataclass(frozen=True)
class PlannedSystem:
    """A system of the grid, resolved: its components, options, and why it is refused (if it is)."""

    name: str
    components: dict[str, str]
    options: dict[str, dict[str, Any]]
    allow_mismatch: bool
    adapt: bool
    refused: str | None
    description: dict[str, Any]
    recordings: bool = False  # the ground-truth recordings themselves, scored as a reference row


@dataclass(frozen=True)
class ComparisonItem:
    """One system speaking one text in one voice."""

    system: str
    voice: str
    text_id: str
    text: str
    seed: int
    references: tuple[str, ...]
    ground_truth: str | None
    key: str
    sample: bool

    @property
    def id(self) -> str:
        return f"{self.system}/{self.voice}/{self.text_id}"

    @property
    def audio_path(self) -> str:
        """Where the output is saved, relative to the output folder."""
        return f"audio/{self.system}/{self.voice}__{self.text_id}.flac"


@dataclass
class ComparisonPlan:
    """Everything :func:`run_comparison` needs; built by :func:`plan_comparison`."""

    grid: Grid
    settings: Settings
    systems: list[PlannedSystem]
    voices: list[ResolvedVoice]
    texts: list[ResolvedText]
    items: list[ComparisonItem]
    metrics: list[MetricSpec]
    metric_options: dict[str, dict[str, Any]]
    registry: Registry
    metric_registry: MetricRegistry
    warnings: list[str] = field(default_factory=list)

    @property
    def metric_columns(self) -> list[MetricColumn]:
        return [column for spec in self.metrics for column in spec.columns]

    @property
    def columns(self) -> list[str]:
        """Every column of results.csv, in order."""
        return [*BASE_COLUMNS, *(column.name for column in self.metric_columns)]

    def system(self, name: str) -> PlannedSystem:
        return next(system for system in self.systems if system.name == name)


@dataclass
class ComparisonOutcome:
    """What a run did: the records (one per item, in plan order) and how many were generated or reused."""

    records: list[dict[str, Any]]
    generated: int = 0
    reused: int = 0
    rescored: int = 0
    refused: int = 0
    failed: int = 0
    recordings: int = 0  # ground-truth recordings scored


# -- planning -----------------------------------------------------------------------------------------


def _short(name: str) -> str:
    return name.rpartition(":")[2]


def _plan_system(
    entry: SystemEntry, grid: Grid, settings: Settings, registry: Registry, index: int
) -> tuple[SystemEntry, PlannedSystem]:
    import torch

    from vcframe.pipeline import Pipeline

    names = {
        "encoder": entry.encoder or settings.encoder,
        "synthesizer": entry.synthesizer or settings.synthesizer,
        "vocoder": entry.vocoder or settings.vocoder,
    }
    label = entry.name or "+".join(_short(names[kind]) for kind in ("encoder", "synthesizer", "vocoder"))
    refused: str | None = None
    description: dict[str, Any]
    try:
        pipeline = Pipeline(
            names["encoder"],
            names["synthesizer"],
            names["vocoder"],
            device="cpu",
            settings=settings,
            options={kind: dict(values) for kind, values in entry.options.items()},
            allow_mismatch=entry.allow_mismatch,
            adapt=entry.adapt,
            registry=registry,
            threads=torch.get_num_threads(),  # describing the entry leaves the comparison's threads alone
        )
        description = pipeline.describe()
        description["device"] = grid.device
    except IncompatibleComponentsError as error:
        refused = error.message
        description = {"components": {kind: {"name": name} for kind, name in names.items()}}
    except (PluginError, ConfigError) as error:
        raise type(error)(f"system {index} ({label}): {error.message}", hint=error.hint) from error
    planned = PlannedSystem(
        name=label,
        components=names,
        options={kind: dict(values) for kind, values in entry.options.items()},
        allow_mismatch=entry.allow_mismatch,
        adapt=entry.adapt,
        refused=refused,
        description=description,
    )
    return entry, planned


def _file_identity(path: Path) -> list[Any]:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def _item_key(
    system: PlannedSystem, settings: Settings, voice: ResolvedVoice, text: str, seed: int, truth: Path | None
) -> str:
    payload = {
        "truth": _file_identity(truth) if system.recordings and truth is not None else None,
        "system": system.description,
        "options": system.options,
        "settings": settings.model_dump(mode="json", exclude={"components", "encoder", "synthesizer", "vocoder"}),
        "references": [_file_identity(path) for path in voice.files],
        "text": text,
        "seed": seed,
    }
    encoded = json.dumps(to_jsonable(payload), sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()[:24]


def _select_metrics(grid: Grid, metric_registry: MetricRegistry, context: Any) -> tuple[list[MetricSpec], list[str]]:
    """The metrics to compute; a default metric whose code cannot load is dropped with a warning."""
    notes: list[str] = []
    if grid.metrics is not None:
        if not grid.metrics:
            raise InputError("the grid's metrics list is empty", hint="name at least one metric, or leave it out")
        chosen = [metric_registry.get(name) for name in grid.metrics]
        explicit = True
    else:
        from vcframe.metrics.builtin import BUILTIN_METRICS

        order = [spec.name for spec in BUILTIN_METRICS]
        chosen = sorted(
            metric_registry.available(),
            key=lambda spec: (order.index(spec.name) if spec.name in order else len(order), spec.name),
        )
        explicit = False
        for row in metric_registry:
            if row.error:
                notes.append(f"metric {row.qualified_name} is broken and left out: {row.error}")
        for name, rows in metric_registry.duplicates().items():
            notes.append(f"metric {name} is provided by {', '.join(r.qualified_name for r in rows)}: pick one")
    names = [spec.name for spec in chosen]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"metric {', '.join(repeated)} is listed twice")
    unknown = sorted(set(grid.metric_options) - set(names))
    if unknown:
        raise ConfigError(
            f"metric_options names metrics that are not computed: {', '.join(unknown)}",
            hint=f"computed metrics: {', '.join(names)}",
        )
    usable: list[MetricSpec] = []
    for spec in chosen:
        options = grid.metric_options.get(spec.name, {})
        make_metric_config(spec, options)
        try:
            build_metric(spec, options, context)
        except VcframeError as error:
            if explicit:
                raise
            notes.append(f"metric {spec.name} is left out: {error}")
            continue
        usable.append(spec)
    columns = [column.name for spec in usable for column in spec.columns]
    clashes = sorted({name for name in columns if columns.count(name) > 1} | (set(columns) & set(BASE_COLUMNS)))
    if clashes:
        raise PluginError(f"metrics report clashing columns: {', '.join(clashes)}", hint="leave one of them out")
    return usable, notes


def plan_comparison(
    grid: Grid,
    *,
    settings: Settings | None = None,
    registry: Registry | None = None,
    metric_registry: MetricRegistry | None = None,
) -> ComparisonPlan:
    """Check the grid and list its items. Errors (VcframeError) for unknown plugins, bad options, missing
    files; incompatible triples are planned as refused systems."""
    from vcframe.metrics.context import MetricContext

    settings = settings if settings is not None else load_settings()
    registry = registry if registry is not None else default_registry(settings.disable_plugins)
    metric_registry = (
        metric_registry if metric_registry is not None else default_metric_registry(settings.disable_plugins)
    )
    entries = grid.systems or [SystemEntry()]
    systems = [_plan_system(entry, grid, settings, registry, index)[1] for index, entry in enumerate(entries, 1)]
    labels = [system.name for system in systems]
    if GROUND_TRUTH in labels:
        raise InputError(f"the system name {GROUND_TRUTH!r} is reserved", hint="rename that system")
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise InputError(
            f"several systems are named {', '.join(map(repr, repeated))}", hint="give each system a distinct name"
        )
    voices = resolve_voices(grid, settings.dataset_root)
    texts = resolve_texts(grid, [voice.name for voice in voices])
    context = MetricContext(grid.judge, dict(grid.judge_options), "cpu", settings, registry)
    metrics, notes = _select_metrics(grid, metric_registry, context)
    if any(spec.name == "speaker_similarity" for spec in metrics):  # the judge is checked only when it judges
        judge_spec = registry.get("encoder", grid.judge)
        options = settings.component_options("encoder", judge_spec.name)
        options.update(grid.judge_options)
        make_config(judge_spec, options)
    sample_voice = grid.sample_voice or voices[0].name
    sample_text = grid.sample_text or texts[0].id
    if sample_voice not in [voice.name for voice in voices] or sample_text not in [text.id for text in texts]:
        raise InputError(
            f"the sample item {sample_voice}/{sample_text} is not in the grid", hint="name a voice and a text id of it"
        )
    has_truth = any(text.ground_truth for text in texts)
    if grid.score_ground_truth and has_truth:
        systems.append(
            PlannedSystem(
                name=GROUND_TRUTH,
                components={"encoder": "", "synthesizer": "", "vocoder": ""},
                options={},
                allow_mismatch=False,
                adapt=False,
                refused=None,
                description={"recordings": "the grid's ground-truth recordings, scored as a reference"},
                recordings=True,
            )
        )
    items: list[ComparisonItem] = []
    for system in systems:
        for voice in voices:
            for text in texts:
                seed = item_seed(grid.seed, voice.name, text.text)
                truth = text.ground_truth.get(voice.name)
                if system.recordings and truth is None:
                    continue
                items.append(
                    ComparisonItem(
                        system=system.name,
                        voice=voice.name,
                        text_id=text.id,
                        text=text.text,
                        seed=seed,
                        references=tuple(str(path) for path in voice.files),
                        ground_truth=str(truth) if truth is not None else None,
                        key=_item_key(system, settings, voice, text.text, seed, truth),
                        sample=(voice.name, text.id) == (sample_voice, sample_text),
                    )
                )
    return ComparisonPlan(
        grid=grid,
        settings=settings,
        systems=systems,
        voices=voices,
        texts=texts,
        items=items,
        metrics=metrics,
        metric_options={spec.name: dict(grid.metric_options.get(spec.name, {})) for spec in metrics},
        registry=registry,
        metric_registry=metric_registry,
        warnings=notes,
    )


# -- records ------------------------------------------------------------------------------------------


def _base_record(item: ComparisonItem, system: PlannedSystem) -> dict[str, Any]:
    return {
        "item": item.id,
        "system": item.system,
        "encoder": system.components["encoder"],
        "synthesizer": system.components["synthesizer"],
        "vocoder": system.components["vocoder"],
        "voice": item.voice,
        "text_id": item.text_id,
        "text": item.text,
        "seed": item.seed,
        "status": "pending",
        "error": None,
        "audio": None,
        "duration_s": None,
        "references": list(item.references),
        "ground_truth": item.ground_truth,
        "key": item.key,
        "metrics": {},
        "metrics_done": [],
        "metric_notes": {},
        "vectors": {},
        "measurements": {},
    }


# -- worker -------------------------------------------------------------------------------------------


@dataclass
class WorkerConfig:
    """What a worker process needs (picklable)."""

    out_dir: str
    settings: Settings
    registry: Registry
    metric_registry: MetricRegistry
    systems: dict[str, PlannedSystem]
    metrics: list[MetricSpec]
    metric_options: dict[str, dict[str, Any]]
    judge: str
    judge_options: dict[str, Any]
    device: str
    threads: int | None = None
    warmup: bool = True
    plots: bool = True


@dataclass
class _Task:
    item: ComparisonItem
    cached: dict[str, Any] | None


class ItemWorker:
    """Generates items and computes their metrics; holds each system's pipeline and each metric once."""

    def __init__(self, config: WorkerConfig) -> None:
        from vcframe.metrics.context import MetricContext

        self.config = config
        self.out_dir = Path(config.out_dir)
        self.pipelines: dict[str, Any] = {}
        self.context = MetricContext(
            config.judge, dict(config.judge_options), config.device, config.settings, config.registry
        )
        self._metrics: dict[str, Any] = {}
        self._warm: set[str] = set()
        self._broken: dict[str, Exception] = {}

    def pipeline(self, name: str) -> Any:
        """The system's pipeline with every component built (weights load here, outside the meters).

        A system that fails to build fails each of its items with the same error, without trying again."""
        if name in self._broken:
            raise self._broken[name]
        try:
            return self._build(name)
        except Exception as error:
            self._broken[name] = error
            raise

    def _build(self, name: str) -> Any:
        if name not in self.pipelines:
            import torch

            from vcframe.pipeline import Pipeline

            system = self.config.systems[name]
            pipeline = Pipeline(
                system.components["encoder"],
                system.components["synthesizer"],
                system.components["vocoder"],
                device=self.config.device,
                settings=self.config.settings,
                options=system.options,
                allow_mismatch=system.allow_mismatch,
                adapt=system.adapt,
                registry=self.config.registry,
                threads=torch.get_num_threads(),  # the worker's --threads share (_init_worker), else torch's
            )
            for kind in ("encoder", "synthesizer", "vocoder"):
                pipeline.component(kind)
            self.pipelines[name] = pipeline
        return self.pipelines[name]

    def metric(self, spec: MetricSpec) -> Any:
        if spec.name not in self._metrics:
            self._metrics[spec.name] = build_metric(spec, self.config.metric_options.get(spec.name), self.context)
        return self._metrics[spec.name]

    def run(self, task: _Task) -> dict[str, Any]:
        """The item's record: generated (or loaded from the cache) and scored with every missing metric."""
        item = task.item
        record = task.cached or _base_record(item, self.config.systems[item.system])
        waveform = None
        mel = None
        if self.config.systems[item.system].recordings:
            return self._score_recording(item, record)
        if task.cached is None:
            try:
                waveform, mel = self._generate(item, record)
            except VcframeError as error:
                record.update(status="failed", error=str(error))
                return record
            except Exception as error:  # noqa: BLE001 - one broken item must not end the comparison
                record.update(status="failed", error=f"{type(error).__name__}: {error}".split("\n")[0])
                return record
        else:
            from vcframe.audio import load_audio

            try:
                waveform = load_audio(self.out_dir / record["audio"])
            except VcframeError:  # unreadable or silent saved audio: generate the item again
                return self.run(_Task(item, None))
        self._score(item, record, waveform, mel)
        return record

    def _score_recording(self, item: ComparisonItem, record: dict[str, Any]) -> dict[str, Any]:
        """A ground-truth row: the recording itself, scored by the metrics that do not compare with it."""
        from vcframe.audio import load_audio

        assert item.ground_truth is not None
        try:
            waveform = load_audio(item.ground_truth)
        except VcframeError as error:
            record.update(status="failed", error=str(error))
            return record
        record.update(status="ok", audio=item.ground_truth, duration_s=round(waveform.durations[0], 4))
        self._score(item, record, waveform, None, skip_needs={"ground_truth", "measurements"})
        return record

    def _generate(self, item: ComparisonItem, record: dict[str, Any]) -> tuple[Any, Any]:
        from vcframe.audio import save_audio
        from vcframe.metrics.resources import StageMeter

        pipeline = self.pipeline(item.system)
        if self.config.warmup and item.system not in self._warm:
            pipeline.clone(item.text, list(item.references), seed=item.seed)  # untimed: first-call costs
            self._warm.add(item.system)
        meter = StageMeter()
        with meter:
            waveform = pipeline.clone(item.text, list(item.references), seed=item.seed, progress=meter)
        target = self.out_dir / item.audio_path
        target.parent.mkdir(parents=True, exist_ok=True)
        save_audio(waveform, target)
        duration = waveform.durations[0]
        record.update(
            status="ok",
            audio=item.audio_path,
            duration_s=round(duration, 4),
            measurements=meter.summary(duration),
            bridged=list(pipeline.bridged),
        )
        mel = pipeline.last_mels[0] if pipeline.last_mels else None
        if item.sample and mel is not None and self.config.plots:
            with contextlib.suppress(VcframeError):  # plots are optional (matplotlib missing)
                from vcframe._plots import save_synthesis_plot

                plot = self.out_dir / "plots" / f"sample_{item.system}.png"
                plot.parent.mkdir(parents=True, exist_ok=True)
                save_synthesis_plot(mel, plot, title=f"{item.system}: {item.voice}/{item.text_id}")
        return waveform, mel

    def _score(
        self, item: ComparisonItem, record: dict[str, Any], waveform: Any, mel: Any, skip_needs: set[str] | None = None
    ) -> None:
        inputs = MetricInputs(
            text=item.text,
            generated=waveform,
            references=tuple(Path(path) for path in item.references),
            ground_truth=Path(item.ground_truth) if item.ground_truth else None,
            measurements=record.get("measurements", {}),
            mel=mel,
            voice=item.voice,
            system=item.system,
        )
        for spec in self.config.metrics:
            if spec.name in record["metrics_done"]:
                continue
            if skip_needs and spec.needs & skip_needs:
                for column in spec.columns:
                    record["metrics"][column.name] = None
                record["metrics_done"].append(spec.name)
                continue
            try:
                result = self.metric(spec).compute(inputs)
                if not isinstance(result, MetricResult):
                    result = MetricResult(dict(result))
            except Exception as error:  # noqa: BLE001 - a failing metric is an empty cell with a note
                result = MetricResult({}, note=f"{type(error).__name__}: {error}".split("\n")[0])
            for column in spec.columns:
                value = result.values.get(column.name)
                if isinstance(value, float) and value != value:  # NaN
                    value = None
                record["metrics"][column.name] = value
            record["vectors"].update(result.vectors)
            if result.note:
                record["metric_notes"][spec.name] = result.note
            record["metrics_done"].append(spec.name)


_WORKER: ItemWorker | None = None


def _init_worker(config: WorkerConfig, parent_pid: int) -> None:
    global _WORKER
    import signal

    from vcframe._processes import die_with_parent
    from vcframe.discovery import use_registry

    die_with_parent(parent_pid)  # a killed comparison leaves no worker running on its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent alone handles it

    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    use_registry(config.registry)
    use_metric_registry(config.metric_registry)
    warnings.filterwarnings("ignore")
    _WORKER = ItemWorker(config)


def _run_in_worker(task: _Task) -> dict[str, Any]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.run(task)


# -- running ------------------------------------------------------------------------------------------


def machine_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cache_path(out_dir: Path, item: ComparisonItem) -> Path:
    return out_dir / CACHE_DIR / "items" / f"{item.key}.json"


def _load_cached(out_dir: Path, item: ComparisonItem) -> dict[str, Any] | None:
    path = _cache_path(out_dir, item)
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("key") != item.key or record.get("status") != "ok" or not record.get("audio"):
        return None
    if not (out_dir / record["audio"]).is_file():
        return None
    return record


def _store(out_dir: Path, item: ComparisonItem, record: dict[str, Any]) -> None:
    if record.get("status") != "ok":
        return
    path = _cache_path(out_dir, item)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as stream:
        json.dump(to_jsonable(record), stream)


def run_comparison(
    plan: ComparisonPlan,
    out_dir: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    progress: ItemProgress | None = None,
    plots: bool = True,
) -> ComparisonOutcome:
    """Run every item of ``plan`` not already cached in ``out_dir``; returns the records in plan order.

    Args:
        jobs: worker processes; None = one per CPU core (capped by the pending items); 1 runs in this process.
        progress: called after each item as ``progress(done, total, record)``.
        plots: draw the mel/attention plot of each system's sample item (``plots/sample_<system>.png``).

    Timings are most comparable with ``jobs=1`` (parallel workers compete for cores and memory bandwidth).
    An interruption (KeyboardInterrupt) leaves every finished item cached; the next run resumes.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise VcframeError(f"cannot write to {str(out)!r}", hint="choose a writable output folder")
    records: dict[str, dict[str, Any]] = {}
    outcome = ComparisonOutcome(records=[])
    total = len(plan.items)
    done = 0
    wanted = [spec.name for spec in plan.metrics]

    def finish(item: ComparisonItem, record: dict[str, Any]) -> None:
        nonlocal done
        records[item.id] = record
        _store(out, item, record)
        done += 1
        if progress is not None:
            progress(done, total, record)

    tasks: list[_Task] = []
    for item in plan.items:
        system = plan.system(item.system)
        if system.refused is not None:
            record = _base_record(item, system)
            record.update(status="refused", error=system.refused)
            outcome.refused += 1
            finish(item, record)
            continue
        cached = _load_cached(out, item)
        if cached is not None and all(name in cached.get("metrics_done", []) for name in wanted):
            outcome.reused += 1
            finish(item, cached)
            continue
        if cached is not None:
            outcome.rescored += 1
        tasks.append(_Task(item, cached))

    workers = min(jobs if jobs is not None else machine_cores(), len(tasks))
    config = WorkerConfig(
        out_dir=str(out),
        settings=plan.settings,
        registry=plan.registry,
        metric_registry=plan.metric_registry,
        systems={system.name: system for system in plan.systems},
        metrics=plan.metrics,
        metric_options=plan.metric_options,
        judge=plan.grid.judge,
        judge_options=dict(plan.grid.judge_options),
        device=plan.grid.device,
        warmup=plan.grid.warmup,
        plots=plots,
        threads=max(1, machine_cores() // workers) if workers > 1 else None,
    )
    items_by_id = {task.item.id: task.item for task in tasks}
    rescoring = {task.item.id for task in tasks if task.cached is not None}
    for record in _execute(config, tasks, workers):
        item = items_by_id[record["item"]]
        if record.get("status") == "failed":
            outcome.failed += 1
        elif plan.system(item.system).recordings:
            outcome.recordings += 1
        elif item.id not in rescoring:
            outcome.generated += 1
        finish(item, record)
    outcome.records = [records[item.id] for item in plan.items]
    return outcome


def _execute(config: WorkerConfig, tasks: Sequence[_Task], workers: int) -> Any:
    """Yield each task's record as it finishes: in this process for one worker, else in a spawn pool."""
    if not tasks:
        return
    if workers <= 1:
        worker = ItemWorker(config)
        for task in tasks:
            yield worker.run(task)
        return
    context = multiprocessing.get_context("spawn")
    executor = concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(config, os.getpid())
    )
    try:
        futures = [executor.submit(_run_in_worker, task) for task in tasks]
        for future in concurrent.futures.as_completed(futures):
            try:
                yield future.result()
            except concurrent.futures.process.BrokenProcessPool as error:
                raise VcframeError(
                    "a worker process died (out of memory?)",
                    hint="run again to resume (finished items are cached), with fewer --jobs",
                ) from error
    except BaseException:
        stop_pool(executor)
        raise
    executor.shutdown(wait=True)
