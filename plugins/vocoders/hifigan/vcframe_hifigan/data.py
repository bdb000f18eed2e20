"""Training data of the HiFi-GAN trainer: whole clips in memory, random aligned (mel, audio) segments per epoch.

Clips come from :mod:`vcframe.datasets` (folders, manifests, the shared real recordings), read as every
vocoder trainer reads them (:func:`vcframe.datasets.load_training_audio`: resampled to the mel's rate,
peak-normalised to 0.9). Each clip keeps its whole mel: the one given beside it (a GTA mel, fine-tuning) or
:func:`vcframe.audio.mel_spectrogram` of the whole clip at the trained spec (ground truth). A segment is a
window of ``segment_frames`` mel frames and the audio those frames stand for, samples
``[hop * start, hop * (start + segment_frames))``: the alignment the generator learns (frame t -> output samples
``[hop t, hop (t + 1))``), the same for ground-truth and GTA mels, and the same as at inference, where the whole
utterance's mel is vocoded (the original computes the mel of each audio crop instead, whose edge frames see zero
or reflected padding that inference never shows).

An epoch visits every usable clip once in a seeded random order, in batches (the last, short one dropped, as the
original's DataLoader does); each segment's start frame is drawn from a generator seeded by (seed, epoch, batch
index). The optional input-mel augmentation (:class:`vcframe.datasets.MelSmoothing`) draws from a generator
seeded by (seed, clip, start frame). Nothing else is random, so a run resumed at (epoch, batch) draws exactly the
batches the uninterrupted run would have drawn, whatever the number of processes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vcframe.checkpoints import sha256_of
from vcframe.datasets import (
    AudioClip,
    MelCache,
    MelSmoothing,
    find_clips,
    load_audio_and_mel,
    load_each_once,
)
from vcframe.errors import InputError
from vcframe.specs import MelSpec


@dataclass
class TrainingClip:
    """One clip in memory.

    Attributes:
        name: the audio file's stem.
        speaker: whose voice.
        mel: (n_mels, T) float32 at the trained spec (given or computed from the whole clip).
        audio: (T * hop,) float32, peak-normalised; zero-padded at the end when the mel covers a few more
            samples than the clip has (a centred mel has one frame more than whole hops).
        given_mel: the mel came with the clip (GTA) rather than from the audio.
    """

    name: str
    speaker: str
    mel: np.ndarray
    audio: np.ndarray
    given_mel: bool

    @property
    def frames(self) -> int:
        return int(self.mel.shape[1])


def load_clip(clip: AudioClip, spec: MelSpec, mel_cache: MelCache | None = None) -> TrainingClip:
    """A clip in memory (see :class:`TrainingClip`; a ground-truth mel read from ``mel_cache`` when given);
    InputError when a given mel covers more audio than the clip has (more than one hop beyond its end: not the
    clip's mel)."""
    hop = spec.hop_length
    audio, mel = load_audio_and_mel(clip, spec, mel_cache=mel_cache)
    frames = mel.shape[1]
    if frames * hop > len(audio) + hop:
        raise InputError(
            f"{str(clip.audio)!r}: its mel has {frames} frames ({frames * hop} samples) but the clip only "
            f"{len(audio)} samples",
            hint="pair each clip with its own mel, computed at the trained spec's hop length",
        )
    audio = np.pad(audio, (0, max(0, frames * hop - len(audio))))[: frames * hop]
    return TrainingClip(
        clip.audio.stem, clip.speaker, np.ascontiguousarray(mel, np.float32), audio, clip.mel is not None
    )


def load_clips(
    sources: Sequence[str | os.PathLike[str]],
    spec: MelSpec,
    *,
    min_frames: int = 1,
    mel_cache: MelCache | None = None,
) -> tuple[list[TrainingClip], str, str]:
    """Every clip of ``sources`` with at least ``min_frames`` mel frames, a one-line description and a
    fingerprint of the clip list (sha256 of the paths, to notice a resumed run whose data changed). A clip listed
    n times is in the list n times (an epoch draws n segments of it) but in memory once. Ground-truth mels are
    read from and kept in ``mel_cache`` when one is given (default None: computed).

    Raises InputError when no clip is long enough.
    """
    clips: list[AudioClip] = []
    for source in sources:
        clips += find_clips(source)
    loaded = load_each_once(clips, lambda clip: load_clip(clip, spec, mel_cache))
    usable = [clip for clip in loaded if clip.frames >= min_frames]
    if not usable:
        raise InputError(
            f"none of the {len(loaded)} clips of {', '.join(map(str, sources))} has {min_frames} mel frames",
            hint="use longer clips or a shorter --segment-frames",
        )
    distinct = list({id(clip): clip for clip in usable}.values())
    seconds = sum(clip.audio.size for clip in distinct) / spec.sample_rate
    given = sum(clip.given_mel for clip in distinct)
    notes = [f"{given} given mels, {len(distinct) - given} ground truth"]
    if len(distinct) < len(usable):
        notes.append(f"{len(usable) - len(distinct)} repeated listings")
    if len(usable) < len(loaded):
        notes.append(f"{len(loaded) - len(usable)} listings shorter than a segment left out")
    description = (
        f"{len(distinct)} clips of {len({clip.speaker for clip in distinct})} speakers, {seconds / 3600:.2f} h, "
        f"from {', '.join(map(str, sources))} ({'; '.join(notes)})"
    )
    digest = hashlib.sha256("\n".join(f"{clip.audio}|{clip.mel or ''}" for clip in clips).encode()).hexdigest()
    return usable, description, digest


class EpochSegments:
    """Batch sampler of random segments, epoch by epoch: each batch is ``batch_size`` (clip index, start frame)
    pairs (see the module docstring). Use with :class:`vcframe.distributed.ShardedBatchSampler`.

    Args:
        frames: mel frames of each clip.
        batch_size: segments per batch (the global batch).
        segment_frames: mel frames per segment; every clip must have at least this many.
        seed: seed of the order and the start frames.
    """

    def __init__(self, frames: Sequence[int], batch_size: int, segment_frames: int, seed: int) -> None:
        if batch_size < 1 or segment_frames < 1:
            raise ValueError(f"batch_size ({batch_size}) and segment_frames ({segment_frames}) must be positive")
        if len(frames) < batch_size:
            raise InputError(
                f"{len(frames)} usable clips cannot fill a batch of {batch_size}", hint="use a smaller --batch-size"
            )
        short = [count for count in frames if count < segment_frames]
        if short:
            raise ValueError(f"a clip has {short[0]} frames, fewer than a segment's {segment_frames}")
        self.frames, self.batch_size, self.segment_frames, self.seed = list(frames), batch_size, segment_frames, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.frames) // self.batch_size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.frames))
        for index in range(len(self)):
            clips = order[index * self.batch_size : (index + 1) * self.batch_size]
            starts = np.random.default_rng([self.seed, self.epoch, index]).integers(
                0, [self.frames[clip] - self.segment_frames + 1 for clip in clips]
            )
            yield [(int(clip), int(start)) for clip, start in zip(clips, starts, strict=True)]


def collate(
    clips: Sequence[TrainingClip],
    picks: Sequence[tuple[int, int]],
    segment_frames: int,
    hop: int,
    smoothing: MelSmoothing | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The segments ``picks`` ((clip index, start frame) pairs): mels (B, n_mels, segment_frames) and audio
    (B, 1, segment_frames * hop), aligned; each ground-truth mel through ``smoothing`` when given (default None: as
    is). A given (GTA) mel is never smoothed: it is a synthesizer's already, which the smoothing imitates."""
    windows = [clips[clip].mel[:, start : start + segment_frames] for clip, start in picks]
    if smoothing is not None:
        windows = [
            window if clips[clip].given_mel else smoothing(window, clip, start)
            for window, (clip, start) in zip(windows, picks, strict=True)
        ]
    mels = np.stack(windows)
    audio = np.stack([clips[clip].audio[start * hop : (start + segment_frames) * hop] for clip, start in picks])
    return torch.from_numpy(mels), torch.from_numpy(audio).unsqueeze(1)


def smoothing_sigmas(
    clips: Sequence[TrainingClip], picks: Sequence[tuple[int, int]], smoothing: MelSmoothing | None
) -> torch.Tensor:
    """(B,) the Gaussian sigma, in mel bands, :func:`collate` smoothed each segment of ``picks`` by (the same
    draw: it depends on the segment only); 0 for segments left as they are, given (GTA) mels among them."""
    return torch.tensor(
        [0.0 if smoothing is None or clips[clip].given_mel else smoothing.sigma(clip, start) for clip, start in picks],
        dtype=torch.float32,
    )


#: Tag of the unpaired batches' random stream (:func:`unpaired_picks`), apart from the epochs' streams.
UNPAIRED_STREAM = 0x756E70


@dataclass
class UnpairedMels:
    """Synthesizer mels without audio (``recipes/demo/free_mels.py``), for ``fit --unpaired-mels``.

    Attributes:
        mels: (n_mels, T) float32 arrays, each with at least a segment's frames.
        description: a one-line summary (count, frames, sources).
        fingerprint: sha256 of the file list, to notice a resumed run whose unpaired mels changed.
        speakers: each mel's voice: the name of the folder it is in (free_mels.py's ``<out>/<speaker>/``).
    """

    mels: list[np.ndarray]
    description: str
    fingerprint: str
    speakers: list[str] = field(default_factory=list)


#: The key of a speaker-embeddings file that names the embedding space (not a voice).
SPACE_KEY = "__space__"


@dataclass
class SpeakerVectors:
    """Speaker embeddings by voice, for ``fit --speaker-embeddings`` (``recipes/demo/speaker_embeddings.py``).

    Attributes:
        vectors: voice name -> (dim,) float32 embedding.
        space: the embedding space (e.g. ``ge2e/rtvc``), recorded in the export for the vocoder to check.
        fingerprint: sha256 of the file's contents.
    """

    vectors: dict[str, np.ndarray]
    space: str
    fingerprint: str

    @property
    def dim(self) -> int:
        return int(next(iter(self.vectors.values())).shape[0])

    def rows(self, speakers: Sequence[str], what: str) -> torch.Tensor:
        """(len(speakers), dim) float32: each voice's embedding; InputError naming the first voice the file lacks
        (``what`` says whose voices they are)."""
        missing = sorted({speaker for speaker in speakers if speaker not in self.vectors})
        if missing:
            raise InputError(
                f"the speaker embeddings have no voice {missing[0]!r} of the {what} ({len(missing)} missing)",
                hint="make them from the same sources (recipes/demo/speaker_embeddings.py)",
            )
        return torch.from_numpy(np.stack([self.vectors[speaker] for speaker in speakers]).astype(np.float32))

    def standardisation(self, speakers: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (dim,), scale ()) of the distinct ``speakers``' embeddings: their mean (what the generator reads
        without one) and the root mean square of their deviations from it over every entry (1 for a single voice)."""
        rows = self.rows(sorted(set(speakers)), "training data")
        mean = rows.mean(dim=0)
        scale = (rows - mean).square().mean().sqrt()
        return mean, scale if float(scale) > 0 else torch.ones(())


def load_speaker_vectors(path: str | os.PathLike[str]) -> SpeakerVectors:
    """A speaker-embeddings ``.npz`` (voice -> (dim,) vector, and :data:`SPACE_KEY`); InputError (one line) for a
    missing or unreadable file, no space, no voice, or vectors of differing sizes or not finite."""
    path = Path(path)
    hint = "make it with recipes/demo/speaker_embeddings.py"
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read speaker embeddings {str(path)!r}: {error}", hint=hint) from error
    space = str(arrays.pop(SPACE_KEY, "")).strip()
    if not space or not arrays:
        raise InputError(f"{str(path)!r} holds no {'voices' if space else 'embedding space'}", hint=hint)
    sizes = {array.shape for array in arrays.values()}
    if len(sizes) != 1 or len(next(iter(sizes))) != 1 or next(iter(sizes))[0] < 1:
        raise InputError(f"{str(path)!r} holds vectors of shapes {sorted(sizes)}, not one (dim,) size", hint=hint)
    if not all(np.isfinite(array).all() for array in arrays.values()):
        raise InputError(f"{str(path)!r} holds values that are not finite", hint=hint)
    digest = sha256_of(path)
    return SpeakerVectors({name: array.astype(np.float32) for name, array in arrays.items()}, space, digest)


def load_unpaired_mels(
    sources: Sequence[str | os.PathLike[str]], spec: MelSpec, *, min_frames: int = 1
) -> UnpairedMels:
    """Every ``.npy`` mel of ``sources`` (a folder, searched recursively, or one ``.npy`` file), sorted by path;
    mels with fewer than ``min_frames`` frames are left out. InputError for a mel that is not (spec.n_mels, T) or
    not finite, a source that does not exist, or no usable mel."""
    paths: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            paths += sorted(path.rglob("*.npy"))
        elif path.is_file() and path.suffix == ".npy":
            paths.append(path)
        else:
            raise InputError(
                f"{str(path)!r} is neither a folder nor a .npy mel",
                hint="give the folder recipes/demo/free_mels.py wrote",
            )
    mels: list[np.ndarray] = []
    speakers: list[str] = []
    for path in paths:
        mel = np.load(path, allow_pickle=False)
        if mel.ndim != 2 or mel.shape[0] != spec.n_mels:
            raise InputError(
                f"{str(path)!r} has shape {tuple(mel.shape)}; the trained mel has {spec.n_mels} bands",
                hint="make the unpaired mels with a synthesizer of the trained mel spec",
            )
        if not np.isfinite(mel).all():
            raise InputError(f"{str(path)!r} holds values that are not finite", hint="make it again")
        if mel.shape[1] >= min_frames:
            mels.append(np.ascontiguousarray(mel, np.float32))
            speakers.append(path.parent.name)
    if not mels:
        raise InputError(
            f"none of the {len(paths)} mels of {', '.join(map(str, sources))} has {min_frames} frames",
            hint="synthesize longer sentences or use a shorter --segment-frames",
        )
    frames = sum(mel.shape[1] for mel in mels)
    seconds = frames * spec.hop_length / spec.sample_rate
    description = f"{len(mels)} unpaired mels, {seconds / 3600:.2f} h, from {', '.join(map(str, sources))}" + (
        f" ({len(paths) - len(mels)} shorter than a segment left out)" if len(mels) < len(paths) else ""
    )
    digest = hashlib.sha256("\n".join(str(path) for path in paths).encode()).hexdigest()
    return UnpairedMels(mels, description, digest, speakers)


def unpaired_picks(
    frames: Sequence[int], batch_size: int, segment_frames: int, seed: int, step: int
) -> list[tuple[int, int]]:
    """The unpaired batch of ``step``: ``batch_size`` (mel index, start frame) pairs drawn with replacement from a
    generator seeded by (seed, :data:`UNPAIRED_STREAM`, step), so a resumed run draws what the uninterrupted run
    would have."""
    rng = np.random.default_rng([seed, UNPAIRED_STREAM, step])
    chosen = rng.integers(0, len(frames), batch_size)
    starts = rng.integers(0, [frames[index] - segment_frames + 1 for index in chosen])
    return [(int(index), int(start)) for index, start in zip(chosen, starts, strict=True)]


def collate_unpaired(mels: Sequence[np.ndarray], picks: Sequence[tuple[int, int]], segment_frames: int) -> torch.Tensor:
    """(B, n_mels, segment_frames) windows of ``mels`` at ``picks``."""
    return torch.from_numpy(np.stack([mels[index][:, start : start + segment_frames] for index, start in picks]))
