"""Training audio for the vocoder trainers: which clips, whose voice, with which mel, at which level.

A vocoder learns from audio alone (no transcripts), optionally paired with mels it should read (GTA mels of a
synthesizer). Every vocoder trainer gets its clips here, so they all read the same sources the same way:

* a **folder**: LJSpeech's layout (``metadata.csv`` + ``wavs/<id>.wav``, one speaker), or any tree of audio files
  (``.wav``, ``.flac``, ``.ogg``, ``.mp3``): the generic ``<speaker>/<utterance>.wav`` layout, LibriSpeech's
  ``<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac``, a flat folder. A ``.npy`` beside an audio file is its mel
  (``x.wav`` + ``x.npy``, as the WaveRNN trainer always read them);
* one **audio file** (with its ``.npy`` mel beside it, if any);
* a **manifest** file: one clip per line, ``audio|mel|speaker`` (mel and speaker may be empty or left out; relative
  paths are relative to the manifest). ``vcframe train synthesizer gta`` writes ``pairs.txt`` in this form;
* the **real recordings** of ``../shared/data`` (:func:`real_speech_clips`): LibriSpeech train-clean-100 (251
  speakers) and LJSpeech-mini, without what the benchmarks evaluate on: no LibriSpeech test-other speaker (the
  evaluation voices of ``benchmarks/quality.py``) and not the first :data:`HUMAN_YARDSTICK_CLIPS` LJSpeech-mini
  clips (its human and vocoder yardsticks). Those come back as the held-out list.

:func:`write_manifest` stores a list of clips (the trainers' ``manifest`` command writes one from sources), and
:func:`load_training_audio` reads a clip the way every trainer must: resampled to the mel's rate and
peak-normalised to :data:`vcframe.audio.TRAINING_PEAK`, as the synthesizer's preprocessing normalises before it
computes the mels a GTA run starts from (so a given mel and its audio agree in level).

A :class:`MelCache` keeps the ground-truth mels on disk between runs (one ``.npy`` per audio file and mel spec),
so a trainer's start reads them instead of computing every clip's mel again. :class:`MelSmoothing` is the input-mel
augmentation both vocoder trainers offer (``--mel-smoothing``): some segments' mels smoothed across frequency,
their audio unchanged.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import numpy as np
import typer

from vcframe._io import atomic_write
from vcframe.errors import InputError

if TYPE_CHECKING:
    from vcframe.specs import MelSpec

Loaded = TypeVar("Loaded")

#: Audio files a folder source contributes.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")

#: How many LJSpeech-mini clips (metadata order) ``benchmarks/quality.py`` uses as its human and vocoder
#: yardsticks by default (``--human-clips``); the first of them is also its LJSpeech reference voice.
HUMAN_YARDSTICK_CLIPS = 12

#: Part of every :class:`MelCache` key: raise it when the mel front-end changes what it computes for a spec.
MEL_CACHE_VERSION = 1

_LIBRISPEECH_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_HINT = "give a folder of audio files (with optional .npy mels beside them) or a manifest of 'audio|mel|speaker' lines"


@dataclass(frozen=True)
class AudioClip:
    """One training clip.

    Attributes:
        audio: the audio file.
        speaker: whose voice (the generic layout's folder name, ``librispeech-<id>``, ``ljspeech``...).
        mel: a mel aligned with the audio (``.npy``, (n_mels, T) or (T, n_mels)), e.g. a GTA mel; None: the
            trainer computes it from the audio.
    """

    audio: Path
    speaker: str
    mel: Path | None = None


def find_clips(source: str | os.PathLike[str]) -> list[AudioClip]:
    """Every clip of a folder or manifest ``source`` (see the module docstring), in a stable order.

    Raises InputError (one line) when the source does not exist or holds no audio.
    """
    path = Path(source)
    if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES:
        mel = path.with_suffix(".npy")
        clips = [AudioClip(path, path.parent.name, mel if mel.is_file() else None)]
    elif path.is_file():
        clips = read_manifest(path)
    elif (path / "metadata.csv").is_file():
        clips = _ljspeech_clips(path)
    elif path.is_dir():
        clips = _folder_clips(path)
    else:
        raise InputError(f"training audio {str(path)!r} not found", hint=_HINT)
    if not clips:
        raise InputError(f"no audio files in {str(path)!r}", hint=_HINT)
    return clips


def _folder_clips(root: Path) -> list[AudioClip]:
    clips = []
    for audio in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        mel = audio.with_suffix(".npy")
        clips.append(AudioClip(audio, _speaker_of(audio, root), mel if mel.is_file() else None))
    return clips


def _speaker_of(audio: Path, root: Path) -> str:
    """LibriSpeech names carry the speaker; otherwise the first folder under the root (the root's own name for
    files directly in it)."""
    if librispeech := _librispeech_speaker(audio):
        return librispeech
    relative = audio.relative_to(root)
    return relative.parts[0] if len(relative.parts) > 1 else root.name


def _speaker_of_file(audio: Path) -> str:
    """The speaker of a manifest line that names none: a LibriSpeech name's, else the audio file's folder."""
    return _librispeech_speaker(audio) or audio.parent.name


def _librispeech_speaker(audio: Path) -> str | None:
    """``librispeech-<id>`` for a file named ``<speaker>-<chapter>-<utterance>``, else None."""
    match = _LIBRISPEECH_NAME.match(audio.stem)
    return f"librispeech-{match.group(1)}" if match else None


def _ljspeech_clips(root: Path) -> list[AudioClip]:
    return [AudioClip(root / "wavs" / f"{clip_id}.wav", "ljspeech") for clip_id in _ljspeech_ids(root)]


def _ljspeech_ids(root: Path) -> list[str]:
    with open(root / "metadata.csv", encoding="utf-8", newline="") as stream:
        return [row[0] for row in csv.reader(stream, delimiter="|", quoting=csv.QUOTE_NONE) if row and row[0]]


def read_manifest(path: str | os.PathLike[str]) -> list[AudioClip]:
    """The clips of a manifest file: lines ``audio|mel|speaker`` (mel and speaker optional; ``#`` comments and
    blank lines skipped; relative paths from the manifest's folder). A clip without a speaker gets the one its
    LibriSpeech name carries (``librispeech-<id>``, as the real-speech lists name it), else its audio file's folder
    name."""
    manifest = Path(path)
    try:
        text = manifest.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{str(manifest)!r} is not a text manifest ({error.reason})", hint=_HINT) from error
    clips = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [field.strip() for field in line.split("|")]
        if len(fields) > 3 or not fields[0]:
            raise InputError(
                f"{str(manifest)!r} line {number}: expected 'audio|mel|speaker', got {line.strip()!r}", hint=_HINT
            )
        audio = (manifest.parent / fields[0]).resolve()
        mel = (manifest.parent / fields[1]).resolve() if len(fields) > 1 and fields[1] else None
        speaker = fields[2] if len(fields) > 2 and fields[2] else _speaker_of_file(audio)
        clips.append(AudioClip(audio, speaker, mel))
    return clips


def write_manifest(clips: Iterable[AudioClip], path: str | os.PathLike[str]) -> int:
    """Write ``clips`` as a manifest (absolute paths, ``audio|mel|speaker``) atomically; returns the line count."""
    lines = [f"{clip.audio.resolve()}|{clip.mel.resolve() if clip.mel else ''}|{clip.speaker}" for clip in clips]
    for line in lines:
        if line.count("|") != 2 or "\n" in line:
            raise InputError(f"cannot write {line!r} into a manifest: a path or speaker holds '|' or a newline")
    with atomic_write(path, "w") as stream:
        stream.write("".join(line + "\n" for line in lines))
    return len(lines)


def real_speech_clips(
    data_root: str | os.PathLike[str], *, yardstick_clips: int = HUMAN_YARDSTICK_CLIPS
) -> tuple[list[AudioClip], list[AudioClip]]:
    """(training, held-out) clips of the shared real recordings (``../shared/data``).

    Training: every LibriSpeech ``train-clean-100`` clip whose speaker is not a ``test-other`` speaker, and the
    LJSpeech-mini clips after the first ``yardstick_clips`` (metadata order). Held out: the first clip of each
    test-other speaker (``benchmarks/quality.py``'s real reference voices) and the first ``yardstick_clips``
    LJSpeech-mini clips (its human and vocoder yardsticks).

    Raises InputError when neither corpus is found under ``data_root``.
    """
    root = Path(data_root)
    librispeech = root / "librispeech" / "LibriSpeech"
    ljspeech = root / "ljspeech" / "LJSpeech-mini"
    training: list[AudioClip] = []
    held_out: list[AudioClip] = []
    evaluation_speakers: set[str] = set()
    if (librispeech / "test-other").is_dir():
        for speaker_dir in sorted(p for p in (librispeech / "test-other").iterdir() if p.is_dir()):
            evaluation_speakers.add(speaker_dir.name)
            first = next(iter(sorted(speaker_dir.rglob("*.flac"))), None)
            if first is not None:
                held_out.append(AudioClip(first, f"librispeech-{speaker_dir.name}"))
    if (librispeech / "train-clean-100").is_dir():
        training += [
            clip
            for clip in _folder_clips(librispeech / "train-clean-100")
            if clip.speaker.removeprefix("librispeech-") not in evaluation_speakers
        ]
    if (ljspeech / "metadata.csv").is_file():
        clips = _ljspeech_clips(ljspeech)
        held_out += clips[:yardstick_clips]
        training += clips[yardstick_clips:]
    if not training and not held_out:
        raise InputError(
            f"no LibriSpeech or LJSpeech-mini recordings under {str(root)!r}",
            hint="give the shared data folder (the one holding librispeech/ and ljspeech/)",
        )
    return training, held_out


def load_training_audio(clip: AudioClip | str | os.PathLike[str], sample_rate: int) -> np.ndarray:
    """A clip's samples as the trainers use them: mono float32 at ``sample_rate`` (resampled when needed),
    peak-normalised to :data:`vcframe.audio.TRAINING_PEAK` (RTVC's ``rescaling_max``)."""
    from vcframe.audio import load_audio, rescale_peak

    path = clip.audio if isinstance(clip, AudioClip) else Path(clip)
    samples = load_audio(path, sample_rate=sample_rate).item(0)
    return np.asarray(rescale_peak(samples), dtype=np.float32)


class MelCache:
    """Ground-truth training mels kept on disk: one ``<key>.npy`` in ``folder`` per audio file and mel spec.

    The key is a sha256 of the audio file's resolved path, size and modification time, the MelSpec (its JSON),
    the training peak level and :data:`MEL_CACHE_VERSION`: a file edited in place, another spec or another
    normalisation misses and is computed anew (the stale entry stays, unused). Entries are written atomically;
    one that cannot be read back as the mel the audio should have (corrupt, truncated, another shape) is
    recomputed and replaced, never fatal. Several trainers may share a folder (the vocoders train at the same
    spec on the same clips), also at the same time.

    Args:
        folder: where the entries go (created at the first write).

    Attributes:
        hits, misses: entries read back and mels computed since construction.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0

    def entry(self, audio: str | os.PathLike[str], spec: MelSpec) -> Path:
        """The cache file of ``audio``'s mel at ``spec`` (existing or not)."""
        from vcframe.audio import TRAINING_PEAK

        source = Path(audio).resolve()
        status = source.stat()
        identity = {
            "version": MEL_CACHE_VERSION,
            "audio": str(source),
            "size": status.st_size,
            "mtime_ns": status.st_mtime_ns,
            "spec": spec.model_dump_json(),
            "peak": TRAINING_PEAK,
        }
        key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        return self.folder / f"{key}.npy"

    def mel(self, audio: str | os.PathLike[str], samples: np.ndarray, spec: MelSpec) -> np.ndarray:
        """``spec``'s (n_mels, frames) float32 mel of ``samples`` (the training audio of the file ``audio``): the
        cached one when its entry holds a mel of that shape, else computed and stored."""
        from vcframe.audio import frames_for, mel_spectrogram

        path = self.entry(audio, spec)
        expected = (spec.n_mels, frames_for(len(samples), spec))
        if path.is_file():
            try:
                cached = load_array(path, what="cached mel")
            except InputError:
                cached = None  # corrupt: computed again below and replaced
            if cached is not None and cached.dtype == np.float32 and cached.shape == expected:
                self.hits += 1
                return cached
        mel = mel_spectrogram(samples, spec)
        self.misses += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as stream:
            np.save(stream, mel, allow_pickle=False)
        return mel

    def describe(self) -> str:
        """``mel cache FOLDER: H read, M computed``."""
        return f"mel cache {self.folder}: {self.hits} read, {self.misses} computed"


def load_audio_and_mel(
    clip: AudioClip, spec: MelSpec, *, mel_cache: MelCache | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A clip's training audio (:func:`load_training_audio` at ``spec``'s rate) and the mel the vocoder reads for
    it: the one given with the clip (:func:`load_mel`: a GTA mel) or ``spec``'s mel of that audio (ground truth),
    read from and kept in ``mel_cache`` when one is given (default None: computed)."""
    from vcframe.audio import mel_spectrogram

    audio = load_training_audio(clip, spec.sample_rate)
    if clip.mel is not None:
        mel = load_mel(clip.mel, spec.n_mels)
    elif mel_cache is not None:
        mel = mel_cache.mel(clip.audio, audio, spec)
    else:
        mel = mel_spectrogram(audio, spec)
    return audio, mel


def load_each_once(clips: Sequence[AudioClip], load: Callable[[AudioClip], Loaded]) -> list[Loaded]:
    """``load(clip)`` for every listing, computed once per distinct (audio, mel) pair: a clip listed n times (a
    manifest's ``--real-speech-repeat``) is n references to one loaded object, so an epoch draws it n times
    without holding it n times."""
    cache: dict[tuple[Path, Path | None], Loaded] = {}
    for clip in clips:
        if (clip.audio, clip.mel) not in cache:
            cache[clip.audio, clip.mel] = load(clip)
    return [cache[clip.audio, clip.mel] for clip in clips]


def load_array(
    path: str | os.PathLike[str], *, what: str = "array file", mmap_mode: Literal["r", "r+", "w+", "c"] | None = None
) -> np.ndarray:
    """A ``.npy`` training file (mel, embedding) as an array, never unpickling anything.

    InputError naming the file (and ``what`` it should be) when it is missing, holds pickled Python objects
    (an object array), or is not a ``.npy`` array at all (truncated, another format); ``mmap_mode`` as
    ``numpy.load``'s.
    """
    try:
        array = np.load(path, allow_pickle=False, mmap_mode=mmap_mode)
    except FileNotFoundError as error:
        raise InputError(f"{what} {str(path)!r} not found", hint="run the preprocessing again") from error
    except ValueError as error:
        pickled = "pickle" in str(error) or "Python objects" in str(error)
        reason = "holds pickled Python objects" if pickled else f"is not a .npy array ({error})"
        raise InputError(
            f"{what} {str(path)!r} {reason}; training data is loaded without unpickling",
            hint="save it with numpy.save of a numeric array, or run the preprocessing again",
        ) from error
    except (OSError, EOFError) as error:
        raise InputError(
            f"{what} {str(path)!r} is corrupt or not a .npy array ({error})", hint="run the preprocessing again"
        ) from error
    if not isinstance(array, np.ndarray) or array.dtype.hasobject:
        raise InputError(f"{what} {str(path)!r} is not a numeric .npy array", hint="run the preprocessing again")
    return array


def load_mel(path: str | os.PathLike[str], n_mels: int) -> np.ndarray:
    """A given mel as (n_mels, T) float32 (RTVC's synthesizer exports store (T, n_mels): transposed back).

    Raises InputError when neither dimension is ``n_mels``.
    """
    mel = load_array(path, what="mel").astype(np.float32)
    if mel.ndim == 2 and mel.shape[0] != n_mels and mel.shape[1] == n_mels:
        mel = mel.T
    if mel.ndim != 2 or mel.shape[0] != n_mels:
        raise InputError(
            f"mel {str(path)!r} has shape {mel.shape}, expected ({n_mels}, frames)",
            hint="give mels of the spec the vocoder trains on",
        )
    return np.ascontiguousarray(mel)


def band_smoothing(bands: int, sigma: float) -> np.ndarray:
    """(bands, bands) matrix ``M`` with ``M @ mel`` = ``mel`` smoothed across bands by a Gaussian of ``sigma``
    bands, truncated at 4 sigma, edges extended with their nearest band (scipy's ``gaussian_filter1d`` with
    ``mode="nearest"``). Each row sums to 1, so a mel that is constant across bands stays as it is."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    offsets = np.arange(-int(4 * sigma + 0.5), int(4 * sigma + 0.5) + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    rows = np.arange(bands)[:, None]
    matrix = np.zeros((bands, bands))
    np.add.at(matrix, (rows, np.clip(rows + offsets, 0, bands - 1)), weights / weights.sum())
    return matrix


#: Mixed into :class:`MelSmoothing`'s seed so that its draws are not those of :class:`EpochSegments`.
SMOOTHING_STREAM = 0x5307


@dataclass(frozen=True)
class MelSmoothing:
    """Input-mel augmentation: some segments' mels smoothed across frequency, their audio left as it is.

    A synthesizer's mels are much smoother across mel bands than a recording's (the demo Tacotron's: mean
    absolute difference between neighbouring bands 0.125 against 0.39 for LJSpeech-mini's; the same difference
    between neighbouring frames is close, 0.30 against 0.34), and a vocoder that has only seen recordings' mels
    loses words on them where Griffin-Lim does not (the HiFi-GAN plugin's README, "Smooth mels"). Training on smoothed
    mels with the recording's audio as the target teaches the generator to put the fine structure back.

    Args:
        max_bands: the largest Gaussian sigma, in mel bands; each smoothed segment draws sigma uniformly from
            [0, max_bands]. 0 turns the augmentation off.
        probability: the share of segments smoothed (default 0.5: the others keep the mel as it is).
        seed: with the segment's clip index and start frame, seeds its draw, so that the draw depends on the
            segment only (exact on resume, and the same for any number of processes).

    ``__call__(mel, clip, start)`` takes and returns a (n_mels, frames) float32 window; frames stay independent
    (each is smoothed across its bands alone, edges extended with their nearest band). The trainers pass only
    ground-truth windows: a given (GTA) mel is a synthesizer's already and stays as it is.
    """

    max_bands: float
    probability: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_bands < 0 or not 0.0 <= self.probability <= 1.0:
            raise ValueError(
                f"MelSmoothing needs max_bands >= 0 and probability in [0, 1], got max_bands={self.max_bands} "
                f"and probability={self.probability}"
            )

    def sigma(self, clip: int, start: int) -> float:
        """The Gaussian sigma (mel bands) for the segment of clip ``clip`` at frame ``start``; 0.0: unchanged."""
        if self.max_bands == 0 or self.probability == 0:
            return 0.0
        draws = np.random.default_rng([self.seed, SMOOTHING_STREAM, clip, start]).random(2)
        return float(draws[1] * self.max_bands) if draws[0] < self.probability else 0.0

    def __call__(self, mel: np.ndarray, clip: int, start: int) -> np.ndarray:
        sigma = self.sigma(clip, start)
        if sigma == 0.0:
            return mel
        smoothed: np.ndarray = (band_smoothing(mel.shape[0], sigma) @ mel).astype(np.float32)
        return smoothed


def record_smoothing(
    recorded: Sequence[dict[str, Any]], max_bands: float, probability: float, step: int
) -> tuple[list[dict[str, Any]], str | None]:
    """A run's history of ``--mel-smoothing`` settings, kept in its checkpoint: ``recorded`` (the checkpoint's
    list, empty for a new run) with ``{"step", "mel_smoothing", "mel_smoothing_probability"}`` appended when the
    settings differ from the last entry (none: off), and a line saying so (None when nothing changed). The
    probability counts only while smoothing is on."""
    changes = list(recorded)
    last = changes[-1] if changes else {"mel_smoothing": 0.0}
    if max_bands:
        changed = (last["mel_smoothing"], last.get("mel_smoothing_probability")) != (max_bands, probability)
    else:
        changed = bool(last["mel_smoothing"])
    if not changed:
        return changes, None
    changes.append({"step": step, "mel_smoothing": max_bands, "mel_smoothing_probability": probability})
    note = (
        f"the mel smoothing changed at step {step}: {last['mel_smoothing']:g} -> {max_bands:g} bands"
        f" (probability {probability:g})"
    )
    return changes, note


def manifest_command(
    out: Annotated[Path, typer.Option(help="Manifest to write: one 'audio|mel|speaker' line per clip.")],
    source: Annotated[
        list[Path] | None,
        typer.Option("--source", help="A folder of audio (+ .npy mels) or a manifest (repeatable)."),
    ] = None,
    real_speech: Annotated[
        Path | None,
        typer.Option(
            help="The shared data folder (../shared/data): its LibriSpeech train-clean-100 and LJSpeech-mini clips, "
            "without the evaluation speakers and the benchmark's yardstick clips."
        ),
    ] = None,
    held_out: Annotated[
        Path | None,
        typer.Option(help="Also write the real recordings held out of --real-speech here (for --valid-data)."),
    ] = None,
    real_speech_repeat: Annotated[
        int,
        typer.Option(
            min=1,
            help="List each real clip this many times: a trainer's epoch then draws that many segments of it "
            "(the real clips are few and long: 271 clips, 0.91 h, against 4,187 synthetic ones in 5.41 h).",
        ),
    ] = 1,
) -> None:
    """Write one manifest of training audio from folders, manifests and the shared real recordings."""
    clips: list[AudioClip] = []
    groups: list[tuple[str, list[AudioClip]]] = []
    if real_speech is not None:
        training, kept_back = real_speech_clips(real_speech)
        repeated = f", each listed {real_speech_repeat} times" if real_speech_repeat > 1 else ""
        groups.append((f"real speech ({real_speech}{repeated})", training * real_speech_repeat))
        if held_out is not None:
            write_manifest(kept_back, held_out)
            typer.echo(f"held out: {_summary(kept_back)} -> {held_out}")
    elif held_out is not None:
        raise InputError("--held-out lists the real recordings held out of --real-speech", hint="give --real-speech")
    for path in source or []:
        groups.append((str(path), find_clips(path)))
    if not groups:
        raise InputError("no training audio given", hint="give --source FOLDER_OR_MANIFEST and/or --real-speech DIR")
    for name, group in groups:
        typer.echo(f"{name}: {_summary(group)}")
        clips += group
    count = write_manifest(clips, out)
    typer.echo(f"wrote {out}: {count} clips, {len({clip.speaker for clip in clips})} speakers")


def _summary(clips: list[AudioClip]) -> str:
    """``N clips, S speakers, H h`` (hours of distinct files; repeated listings named)."""
    import soundfile

    from vcframe.errors import AudioInputError

    distinct = list(dict.fromkeys(clip.audio for clip in clips))
    seconds = 0.0
    for audio in distinct:
        try:
            seconds += soundfile.info(str(audio)).duration
        except RuntimeError as error:  # libsndfile's errors, a missing file included
            detail = str(error).splitlines()[0]
            raise AudioInputError(f"cannot read {str(audio)!r} ({detail})", hint=_HINT) from error
    mels = sum(clip.mel is not None for clip in clips)
    speakers = len({clip.speaker for clip in clips})
    listings = f" in {len(clips)} listings" if len(clips) > len(distinct) else ""
    return f"{len(distinct)} clips{listings}, {speakers} speakers, {seconds / 3600:.2f} h" + (
        f", {mels} with mels" if mels else ""
    )
