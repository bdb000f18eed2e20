"""Jobs for long texts: queued, run on the inference worker, observed as events, kept for a time to live.

A job's results (``<id>.wav`` and ``<id>.mel.png``) live in a private temporary folder under a name the
server made (``secrets.token_urlsafe``), never one a client gave. Finished jobs expire ``ttl_s`` seconds after
they end: :meth:`JobStore.sweep` (run on every job request and by a timer) deletes their files. Cancelling a
queued job drops it; cancelling a running one stops it at the pipeline's next progress report.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vcframe._io import atomic_write
from vcframe.serve.problems import Conflict, NotFound, QueueFull

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"done", "failed", "cancelled"})
#: Job ids (``secrets.token_urlsafe``), matched against the whole path segment.
JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"


class JobCancelled(Exception):
    """Raised inside a running job (from its progress callback) when a client cancelled it."""


@dataclass
class JobEvent:
    """One Server-Sent Event: its name and JSON data."""

    name: str
    data: dict[str, Any]


@dataclass
class Job:
    """A synthesis job and everything observed about it."""

    id: str
    text_chars: int
    seed: int
    components: dict[str, str]
    voice: str | None
    created: float = field(default_factory=time.time)
    state: JobState = "queued"
    finished: float | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    events: list[JobEvent] = field(default_factory=list)
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.events.append(JobEvent("state", {"state": self.state}))

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def emit(self, name: str, data: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(JobEvent(name, data))

    def events_after(self, index: int) -> list[tuple[int, JobEvent]]:
        """Events with index > ``index`` (event ids are their 0-based positions)."""
        with self._lock:
            return [(i, event) for i, event in enumerate(self.events) if i > index]

    def move_to(self, state: JobState, **data: Any) -> None:
        """Change state and emit the matching event (``state`` or the terminal event's name)."""
        with self._lock:
            if self.terminal:
                return
            self.state = state
            if state in TERMINAL:
                self.finished = time.time()
            self.events.append(JobEvent(state if state in TERMINAL else "state", {"state": state, **data}))

    def progress(self, stage: str, done: int, total: int) -> None:
        """The pipeline's progress callback: an event, and the cancellation point."""
        if self.cancel_requested.is_set():
            raise JobCancelled(self.id)
        self.emit("progress", {"stage": stage, "done": done, "total": total})

    def describe(self, ttl_s: float) -> dict[str, Any]:
        """The job as the API shows it."""
        with self._lock:
            last_progress = next((e.data for e in reversed(self.events) if e.name == "progress"), None)
            return {
                "id": self.id,
                "state": self.state,
                "created": self.created,
                "finished": self.finished,
                "expires": None if self.finished is None else self.finished + ttl_s,
                "text_chars": self.text_chars,
                "seed": self.seed,
                "voice": self.voice,
                "components": self.components,
                "progress": last_progress,
                "result": self.result,
                "error": self.error,
                "links": {
                    "self": f"/v1/jobs/{self.id}",
                    "events": f"/v1/jobs/{self.id}/events",
                    "audio": f"/v1/jobs/{self.id}/audio" if self.state == "done" else None,
                    "mel": f"/v1/jobs/{self.id}/mel.png" if self.state == "done" and self.result else None,
                },
            }


class JobStore:
    """Jobs by id, with their result files in a private temporary folder."""

    def __init__(self, *, ttl_s: float, max_jobs: int, directory: Path | None = None) -> None:
        self.ttl_s = ttl_s
        self.max_jobs = max_jobs
        self._directory = directory
        self._owns_directory = directory is None
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    @property
    def directory(self) -> Path:
        """The results folder, made on first use (a private temporary folder unless one was given)."""
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="vcframe-serve-jobs-"))
        self._directory.mkdir(parents=True, exist_ok=True)
        return self._directory

    def create(self, *, text_chars: int, seed: int, components: dict[str, str], voice: str | None) -> Job:
        """A new queued job; the oldest finished jobs make room, QueueFull when all ``max_jobs`` are live."""
        self.sweep()
        with self._lock:
            while len(self._jobs) >= self.max_jobs:
                finished = sorted((j for j in self._jobs.values() if j.terminal), key=lambda j: j.finished or 0)
                if not finished:
                    raise QueueFull(
                        f"{self.max_jobs} jobs are queued or running",
                        hint="wait for one to finish or cancel one",
                        headers={"Retry-After": "10"},
                    )
                self._forget(finished[0].id)
            job = Job(secrets.token_urlsafe(18), text_chars, seed, components, voice)
            self._jobs[job.id] = job
            return job

    def get(self, job_id: str) -> Job:
        """The job, or NotFound (unknown, deleted or expired)."""
        self.sweep()
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}", hint="it never existed, was deleted or expired; start a new job")
        return job

    def audio_path(self, job: Job) -> Path:
        return self.directory / f"{job.id}.wav"

    def mel_path(self, job: Job) -> Path:
        return self.directory / f"{job.id}.mel.png"

    def finish(self, job: Job, result: dict[str, Any], audio: bytes, mel_png: bytes | None) -> None:
        """Store a finished job's files (atomically) and mark it done, unless it was cancelled or deleted."""
        with self._lock:
            if job.id not in self._jobs or job.cancel_requested.is_set():
                job.move_to("cancelled")
                return
            with atomic_write(self.audio_path(job)) as stream:
                stream.write(audio)
            if mel_png is not None:
                with atomic_write(self.mel_path(job)) as stream:
                    stream.write(mel_png)
            job.result = result
        job.move_to("done", result=result)

    def result_file(self, job: Job, which: Literal["audio", "mel"]) -> Path:
        """A finished job's audio or mel file: Conflict before it is done, NotFound if it has none."""
        if job.state != "done":
            raise Conflict(f"job {job.id!r} is {job.state}, not done", hint="wait for its 'done' event")
        path = self.audio_path(job) if which == "audio" else self.mel_path(job)
        if not path.is_file():
            raise NotFound(f"job {job.id!r} has no {which} result", hint="the job's result has expired")
        return path

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop: a queued one ends now, a running one at its next progress report."""
        job = self.get(job_id)
        if job.terminal:
            raise Conflict(
                f"job {job_id!r} is already {job.state}", hint="only queued or running jobs can be cancelled"
            )
        job.cancel_requested.set()
        if job.state == "queued":
            job.move_to("cancelled")
        return job

    def delete(self, job_id: str) -> None:
        """Cancel the job if it is live and forget it with its files."""
        job = self.get(job_id)
        job.cancel_requested.set()
        job.move_to("cancelled")
        with self._lock:
            self._forget(job_id)

    def sweep(self, now: float | None = None) -> int:
        """Forget jobs that finished more than ``ttl_s`` ago; returns how many."""
        moment = time.time() if now is None else now
        with self._lock:
            expired = [j.id for j in self._jobs.values() if j.finished is not None and moment - j.finished > self.ttl_s]
            for job_id in expired:
                self._forget(job_id)
        return len(expired)

    def _forget(self, job_id: str) -> None:
        job = self._jobs.pop(job_id, None)
        if job is None or self._directory is None:
            return
        for path in (self.audio_path(job), self.mel_path(job)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def __len__(self) -> int:
        return len(self._jobs)

    def cancel_all(self) -> int:
        """Cancel every live job now: its event streams end, a running one stops at its next progress report
        and stores no result. Returns how many were live."""
        with self._lock:
            live = [job for job in self._jobs.values() if not job.terminal]
        for job in live:
            job.cancel_requested.set()
            job.move_to("cancelled")  # ends its event streams
        return len(live)

    def close(self) -> None:
        """Cancel every live job (its event stream ends) and remove the folder with every result."""
        self.cancel_all()
        with self._lock:
            for job_id in list(self._jobs):
                self._forget(job_id)
        if self._owns_directory and self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
