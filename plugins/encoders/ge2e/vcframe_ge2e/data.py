"""Training data: corpus layouts -> per-utterance mel files, and the N speakers x M utterances sampler.

Layouts (``--layout``):

* ``librispeech``: ``<root>/<split>/<speaker>/<chapter>/*.flac`` (``root`` may also be one split folder);
* ``voxceleb``: ``<root>/<speaker>/<session>/*.wav`` (VoxCeleb1 wav, or VoxCeleb2 converted to wav);
* ``generic``: ``<root>/<speaker>/*.{wav,flac}``;
* ``auto``: the first layout that finds files.

Preprocessing writes ``<out>/<corpus>_<speaker>/<utterance>.npy``: the (frames, 40) float32 power mel of
the volume-normalised, silence-trimmed 16 kHz audio, exactly what the encoder sees at inference. Existing
files are skipped, so an interrupted run continues where it stopped; each file is written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

AUDIO_SUFFIXES = (".wav", ".flac")
LAYOUTS = ("auto", "librispeech", "voxceleb", "generic")


@dataclass(frozen=True)
class Utterance:
    speaker: str
    path: Path


def _files(root: Path, depth: int, suffixes: Iterable[str]) -> list[Path]:
    pattern = "/".join(["*"] * depth)
    found = [p for suffix in suffixes for p in root.glob(f"{pattern}/*{suffix}") if p.is_file()]
    return sorted(found)


def find_utterances(root: str | os.PathLike[str], layout: str = "auto") -> list[Utterance]:
    """Every audio file under ``root`` with its speaker, for one of :data:`LAYOUTS`."""
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"corpus folder {str(base)!r} does not exist")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    tag = base.name
    candidates = [layout] if layout != "auto" else ["librispeech", "voxceleb", "generic"]
    for name in candidates:
        if name == "librispeech":
            files = _files(base, 3, (".flac",))
            if files:
                return [Utterance(f"{tag}_{p.parts[-3]}", p) for p in files]
            files = _files(base, 2, (".flac",))  # root is a single split
            if files and layout == "librispeech":
                return [Utterance(f"{tag}_{p.parts[-3]}", p) for p in files]
        elif name == "voxceleb":
            files = _files(base, 2, (".wav",))
            if files:
                return [Utterance(f"{tag}_{p.parts[-3]}", p) for p in files]
        else:
            files = _files(base, 1, AUDIO_SUFFIXES)
            if files:
                return [Utterance(f"{tag}_{p.parts[-2]}", p) for p in files]
    return []


def _output_path(out_dir: Path, utterance: Utterance) -> Path:
    return out_dir / utterance.speaker / (utterance.path.stem + ".npy")


def _preprocess_one(job: tuple[Utterance, Path, str, int]) -> str:
    utterance, target, vad, min_frames = job
    from vcframe._io import atomic_write
    from vcframe.audio import load_audio
    from vcframe_ge2e.preprocess import preprocess_wav, wav_to_mel

    try:
        wav = load_audio(utterance.path, sample_rate=16000).item()
    except ValueError as error:  # AudioInputError: unreadable or silent
        return f"skipped {utterance.path}: {error}"
    mel = wav_to_mel(preprocess_wav(wav, vad=vad))
    if len(mel) < min_frames:
        return f"skipped {utterance.path}: {len(mel)} frames after trimming, fewer than {min_frames}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as stream:
        np.save(stream, mel.astype(np.float32))
    return "done"


def preprocess_corpus(
    roots: list[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    layout: str = "auto",
    workers: int = 1,
    vad: str = "auto",
    min_frames: int = 160,
) -> dict[str, int]:
    """Mel files for every utterance under ``roots`` in ``out_dir``; returns counts (done, skipped, existing)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    existing = 0
    for root in roots:
        for utterance in find_utterances(root, layout):
            target = _output_path(out, utterance)
            if target.is_file():
                existing += 1
                continue
            jobs.append((utterance, target, vad, min_frames))
    counts = {"done": 0, "skipped": 0, "existing": existing}
    messages: list[str] = []
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_preprocess_one, jobs, chunksize=4))
    else:
        results = [_preprocess_one(job) for job in jobs]
    for result in results:
        if result == "done":
            counts["done"] += 1
        else:
            counts["skipped"] += 1
            messages.append(result)
    if messages:
        with open(out / "_skipped.txt", "a") as stream:
            stream.write("\n".join(messages) + "\n")
    return counts


class MelCorpus:
    """Preprocessed mel files, ``<root>/<speaker>/*.npy``, memory-mapped on first use."""

    def __init__(self, root: str | os.PathLike[str], speakers: list[str] | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"preprocessed data folder {str(self.root)!r} does not exist; run 'preprocess' first"
            )
        names = sorted(p.name for p in self.root.iterdir() if p.is_dir()) if speakers is None else list(speakers)
        self.files = {name: sorted((self.root / name).glob("*.npy")) for name in names}
        self.files = {name: files for name, files in self.files.items() if files}
        self.speakers = sorted(self.files)
        self._cache: dict[Path, np.ndarray] = {}

    def mel(self, path: Path) -> np.ndarray:
        if path not in self._cache:
            from vcframe.datasets import load_array

            self._cache[path] = load_array(path, what="mel", mmap_mode="r")
        return self._cache[path]

    def split(self, n_validation: int, seed: int = 0) -> tuple[MelCorpus, MelCorpus]:
        """(training, validation) corpora with disjoint speakers; the validation speakers are a seeded draw."""
        if not 0 <= n_validation < len(self.speakers):
            raise ValueError(f"cannot hold out {n_validation} of {len(self.speakers)} speakers")
        order = np.random.RandomState(seed).permutation(len(self.speakers))
        held = {self.speakers[i] for i in order[:n_validation]}
        return (
            MelCorpus(self.root, [s for s in self.speakers if s not in held]),
            MelCorpus(self.root, [s for s in self.speakers if s in held]),
        )


class SpeakerBatchSampler:
    """N speakers x M random ``frames``-long crops per batch, from a numpy Generator whose state is saved.

    Speakers are drawn without replacement within a batch; each speaker's M crops come from its utterances
    (cycled in a random order, so one long clip per speaker still gives M different crops).
    """

    def __init__(
        self, corpus: MelCorpus, speakers_per_batch: int, utterances_per_speaker: int, frames: int, seed: int
    ) -> None:
        if speakers_per_batch > len(corpus.speakers):
            raise ValueError(
                f"speakers_per_batch ({speakers_per_batch}) exceeds the training speakers ({len(corpus.speakers)})"
            )
        if utterances_per_speaker < 2:
            raise ValueError(f"utterances_per_speaker must be at least 2, got {utterances_per_speaker}")
        self.corpus = corpus
        self.speakers_per_batch = speakers_per_batch
        self.utterances_per_speaker = utterances_per_speaker
        self.frames = frames
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict[str, Any]:
        # numpy's stub says Mapping; every bit generator's state getter builds a new dict
        return cast(dict[str, Any], self.rng.bit_generator.state)

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state

    def next_plan(self) -> list[tuple[Path, int | None]]:
        """The next batch as N * M crops ``(mel file, first frame)`` (None: shorter than ``frames``, zero-padded),
        speaker-major. Draws exactly the random numbers ``next_batch`` always drew, in the same order."""
        plan: list[tuple[Path, int | None]] = []
        chosen = self.rng.choice(len(self.corpus.speakers), self.speakers_per_batch, replace=False)
        for index in chosen:
            files = self.corpus.files[self.corpus.speakers[index]]
            picks = self.rng.permutation(np.resize(np.arange(len(files)), self.utterances_per_speaker))
            for pick in picks:
                length = len(self.corpus.mel(files[pick]))
                if length < self.frames:
                    plan.append((files[pick], None))
                    continue
                plan.append((files[pick], int(self.rng.integers(0, length - self.frames + 1))))
        return plan

    def load(self, plan: list[tuple[Path, int | None]]) -> np.ndarray:
        """(len(plan), frames, 40) float32 crops of a plan (or of one rank's share of it)."""
        crops = []
        for path, start in plan:
            mel = self.corpus.mel(path)
            if start is None:
                padded = np.zeros((self.frames, mel.shape[1]), np.float32)
                padded[: len(mel)] = mel
                crops.append(padded)
            else:
                crops.append(np.asarray(mel[start : start + self.frames], dtype=np.float32))
        return np.stack(crops)

    def __iter__(self) -> Iterator[list[tuple[Path, int | None]]]:
        """Endless batch plans (a batch sampler for ``vcframe.distributed.ShardedBatchSampler``)."""
        while True:
            yield self.next_plan()

    def next_batch(self) -> np.ndarray:
        """(N * M, frames, 40) float32, speaker-major."""
        return self.load(self.next_plan())
