"""Real-time factor and peak memory of each pipeline stage.

:class:`StageMeter` is a :data:`vcframe.pipeline.Progress` callback: the pipeline reports the stage it
enters (``embed``, ``synthesize``, ``vocode``), and the meter charges wall-clock time and memory to it.

What is measured:

* ``seconds``: wall-clock time (``time.perf_counter``) spent in the stage; components are built before the
  meter starts, so loading weights is not included. Loading and resampling the reference counts as ``embed``.
* ``peak_rss_mb``: the highest resident set size of the whole process while the stage ran, and
  ``peak_extra_mb``: that peak minus the resident size when the stage began, i.e. the memory the stage
  itself needed on top of what was already loaded (weights, other systems). On Linux the kernel's
  high-water mark (``VmHWM``) is reset at each stage start by writing ``5`` to ``/proc/self/clear_refs``, so
  the peak is exact for the stage, torch's allocations included (tracemalloc would miss them). Elsewhere
  ``resource.getrusage`` gives the process-lifetime peak, which overstates later stages (``method`` says
  which was used).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from vcframe.metrics.spec import MetricInputs, MetricResult, NoOptions

STAGES: tuple[str, ...] = ("embed", "synthesize", "vocode")
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def current_rss_mb() -> float:
    """Resident set size of this process in MiB (0.0 where it cannot be read)."""
    kilobytes = _status_kb("VmRSS")
    if kilobytes is not None:
        return kilobytes / 1024
    return 0.0


def _peak_rss_mb() -> float:
    kilobytes = _status_kb("VmHWM")
    if kilobytes is not None:
        return kilobytes / 1024
    import resource

    peak = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class StageMeter:
    """Wall-clock seconds and peak memory per stage, fed by pipeline progress callbacks.

    >>> meter = StageMeter()
    >>> with meter:
    ...     waveform = pipeline.clone(text, reference, progress=meter)
    >>> meter.measurements["vocode"]["seconds"]
    """

    def __init__(self, first_stage: str = "embed") -> None:
        self.first_stage = first_stage
        self.measurements: dict[str, dict[str, Any]] = {}
        self.method = "vmhwm-reset"
        self._stage: str | None = None
        self._started = 0.0
        self._rss_before = 0.0

    def __enter__(self) -> StageMeter:
        self._open(self.first_stage)
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage:
            self._close()
            self._open(stage)

    def _open(self, stage: str) -> None:
        if not _reset_peak():
            self.method = "ru_maxrss"
        self._stage = stage
        self._rss_before = current_rss_mb()
        self._started = time.perf_counter()

    def _close(self) -> None:
        if self._stage is None:
            return
        seconds = time.perf_counter() - self._started
        peak = max(_peak_rss_mb(), self._rss_before)
        entry = self.measurements.setdefault(self._stage, {"seconds": 0.0, "peak_rss_mb": 0.0, "peak_extra_mb": 0.0})
        entry["seconds"] += seconds
        entry["peak_rss_mb"] = max(entry["peak_rss_mb"], peak)
        entry["peak_extra_mb"] = max(entry["peak_extra_mb"], peak - self._rss_before)
        self._stage = None

    def summary(self, audio_seconds: float) -> dict[str, Any]:
        """The measurements with the output duration and the method, as stored with each item."""
        return {"stages": self.measurements, "audio_seconds": audio_seconds, "memory_method": self.method}


class RealTimeFactorMetric:
    """The ``rtf`` metric: seconds of computation per second of output, in total and per stage."""

    def __init__(self, config: NoOptions, context: Any) -> None:
        self.config = config

    def compute(self, inputs: MetricInputs) -> MetricResult:
        stages = inputs.measurements.get("stages", {})
        audio_seconds = float(inputs.measurements.get("audio_seconds", 0.0))
        if not stages or audio_seconds <= 0:
            return MetricResult({"rtf": None, **{f"rtf_{stage}": None for stage in STAGES}}, note="not measured")
        values: dict[str, float | str | None] = {
            f"rtf_{stage}": stages[stage]["seconds"] / audio_seconds if stage in stages else None for stage in STAGES
        }
        values["rtf"] = sum(entry["seconds"] for entry in stages.values()) / audio_seconds
        return MetricResult(values)


class PeakMemoryMetric:
    """The ``peak_memory`` metric: extra resident memory each stage needed at its peak, in MiB."""

    def __init__(self, config: NoOptions, context: Any) -> None:
        self.config = config

    def compute(self, inputs: MetricInputs) -> MetricResult:
        stages = inputs.measurements.get("stages", {})
        columns = ["peak_memory", *(f"peak_memory_{stage}" for stage in STAGES), "peak_rss"]
        if not stages:
            return MetricResult(dict.fromkeys(columns), note="not measured")
        values: dict[str, float | str | None] = {
            f"peak_memory_{stage}": stages[stage]["peak_extra_mb"] if stage in stages else None for stage in STAGES
        }
        values["peak_memory"] = max(entry["peak_extra_mb"] for entry in stages.values())
        values["peak_rss"] = max(entry["peak_rss_mb"] for entry in stages.values())
        return MetricResult(values)
