"""Quality benchmark: intelligibility (WER) and speaker similarity of cloned speech, with yardsticks.

Run by hand (minutes per system on 2 cores):

    .venv/bin/python benchmarks/quality.py --vocoder griffinlim --vocoder wavernn --out /tmp/quality

* Voices: the predefined sample voices (synthetic speakers held out of the demo training corpus) and real
  clips from ../shared/data (one utterance of each LibriSpeech test-other speaker, one LJSpeech clip).
* Sentences: the demo corpus recipe's held-out sentences (never in training), ``--sentences`` of them from
  ``--first-sentence`` (default 0; a later start gives fresh items to confirm a choice made on the usual ones).
* For every system (the default bundle with each ``--vocoder``) and every (voice, sentence): ``Pipeline.clone``
  with a fixed seed; word error rate of the pocketsphinx transcript (``vcframe.metrics``, text normalised);
  speaker similarity = cosine between GE2E embeddings of the reference clip and the output; real-time factor
  = synthesis seconds / output seconds (models already loaded).
* Yardsticks (WER and words heard right): a person reading (LJSpeech-mini clips, the same book text as the
  sentences, against their transcripts), flite (voice slt) reading the same sentences, the held-out voices'
  own engines reading them (plus similarity to the reference clip: what "the same speaker" scores), each
  system's vocoder resynthesising the person's recordings from their own mels (what the vocoder alone costs),
  and the wall time of one ``vcframe run`` command (model loading included).
* Per-voice similarity (real voices): the output's similarity to the reference beside two yardsticks, the same
  speaker's second recording (the next LibriSpeech test-other clip of the speaker, the next LJSpeech-mini clip)
  and Griffin-Lim resynthesis of the reference from its own mel (what the vocoder alone leaves of the voice), and
  the same resynthesis by each other ``--vocoder``.
* ``--stream-yardstick``: only the vocoder yardstick, vocoded whole and streamed (``vocode_stream``) with the same
  mels and seeds: what streaming costs (words heard right, spectral convergence and log-spectral distance to the
  recordings, level, CPU, frames at chunk seams against all frames).
* ``--smooth-yardstick 0,1,2``: only the vocoder yardstick, each --vocoder from the clips' own mels and from
  those mels smoothed across mel bands (a Gaussian of each sigma, in bands): how much of its words a vocoder keeps
  when its input is as smooth as a synthesizer's. Also the band and frame roughness (mean absolute difference
  between neighbouring bands / frames) of those mels and of the default synthesizer's mels for ``--real`` voices x
  ``--sentences`` held-out sentences, which says which sigma the synthesizer's mels resemble.
* ``--adapt N``: each system also runs with speaker adaptation (``vcframe.adaptation``, N steps, once per
  voice) as system ``<vocoder>+adapt<N>``; the transcript is the clip's own where known (LJSpeech-mini, the sample
  voices), recognised otherwise (all of them with ``--adapt-recognised``). Each adaptation's record (steps,
  seconds, losses, transcript) is in results.json. ``--adapt-target output`` fits the synthesizer's output layer
  instead of the embedding (``SpeakerAdaptation(target="output")``) as system ``<vocoder>+adaptout<N>``.
* ``--trained-voices CORPUS``: also clone voices the synthesizer trained on, the training-split speakers of a demo
  corpus folder (``recipes/demo/make_corpus.py``'s; ``--trained N`` of them): the reference is each voice's first
  clip and the second recording its second. ``--train-clean N``: also the first N LibriSpeech train-clean-100
  voices of ../shared/data (one clip each, no second recording; the default Tacotron's speaker map was fitted on
  phrases of 202 of them, its decoder on none). With the benchmark's unseen voices this says where similarity is
  lost: in a voice the synthesizer never heard, or in synthesis itself.
* Spectrum matching (``vcframe.spectrum``, the ``match_spectrum`` setting) is on by default (strength 1), as in
  ``vcframe run``; ``--match-spectrum S`` (repeatable) also runs each system at strength S as system
  ``<vocoder>+match<S>`` (``--match-spectrum 0``: without it, as before commit 307ca9b). Since it moves the
  output toward the reference clip's spectrum, recording channel included, judge it by the similarity to the
  speaker's second recording too (a column of the table for real voices).

Prints markdown tables and writes ``results.json`` plus every generated clip under ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch

from vcframe.adaptation import AdaptationTarget, SpeakerAdaptation
from vcframe.audio import load_audio, mel_spectrogram, save_audio, stft
from vcframe.config import load_settings
from vcframe.datasets import HUMAN_YARDSTICK_CLIPS, real_speech_clips
from vcframe.metrics.asr import default_recognizer, word_error_rate, word_errors
from vcframe.metrics.frame_rate import frame_rate_lines
from vcframe.metrics.pitch import PitchErrors, compare_f0_tracks, pitch_errors, track_f0, voiced_share
from vcframe.metrics.speaker import SpeakerJudge
from vcframe.pipeline import Pipeline
from vcframe.types import SPEAKER_EMBEDDING_KEY, Mel, SpeakerEmbedding
from vcframe.voices import sample_voices

ROOT = Path(__file__).resolve().parents[1]


def load_recipe() -> Any:
    """recipes/demo/make_corpus.py as a module (held-out sentences, speaker catalogue, engines)."""
    path = ROOT / "recipes" / "demo" / "make_corpus.py"
    spec = importlib.util.spec_from_file_location("demo_make_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def held_out_sentences(recipe: Any, count: int, *, first: int = 0) -> list[str]:
    """``count`` of the recipe's held-out sentences from position ``first`` (0: the ones every table uses; a later
    ``first`` gives a fresh set, e.g. to confirm on other items what was chosen on the usual ones)."""
    scratch = tempfile.gettempdir()
    args = recipe.build_parser().parse_args(["--out", scratch, "--eval-out", scratch])
    plan = recipe.make_plan(args)
    if first < 0 or first + count > len(plan.eval_sentences):
        raise SystemExit(
            f"error: sentences {first} to {first + count - 1} asked, but the recipe holds out "
            f"{len(plan.eval_sentences)}: lower --first-sentence or --sentences"
        )
    return [text for _, text in plan.eval_sentences[first : first + count]]


def real_voice_clips(shared: Path) -> list[tuple[str, list[Path]]]:
    """(name, clips) of each real voice, sorted: the LibriSpeech test-other speakers (10 clips each) and
    LJSpeech-mini (one reader). The first clip is the reference; the second is the same-speaker yardstick."""
    voices = []
    test_other = shared / "data" / "librispeech" / "LibriSpeech" / "test-other"
    if test_other.is_dir():
        for speaker in sorted(test_other.iterdir()):
            clips = sorted(speaker.rglob("*.flac"))
            if clips:
                voices.append((f"librispeech-{speaker.name}", clips))
    ljspeech = sorted((shared / "data" / "ljspeech" / "LJSpeech-mini" / "wavs").glob("*.wav"))
    if ljspeech:
        voices.append(("ljspeech", ljspeech))
    return voices


def trained_voice_clips(corpus: Path) -> list[tuple[str, list[Path]]]:
    """(speaker, clips sorted by name) of each training-split speaker of a demo corpus folder, in the order of its
    ``speakers.json``; speakers with fewer than two clips are left out (no second recording)."""
    speakers_file = corpus / "speakers.json"
    if not speakers_file.is_file():
        raise SystemExit(f"error: {corpus} has no speakers.json: give a folder made by recipes/demo/make_corpus.py")
    speakers = json.loads(speakers_file.read_text(encoding="utf-8"))
    voices = []
    for speaker, details in speakers.items():
        clips = sorted((corpus / speaker).glob("*.wav"))
        if details.get("split") == "train" and len(clips) >= 2:
            voices.append((speaker, clips))
    if not voices:
        raise SystemExit(f"error: {corpus} lists no training speaker with two clips or more")
    return voices


def _text_beside(clip: Path) -> str | None:
    """The transcript a corpus keeps beside a clip (``<clip>.txt``), if any."""
    text_file = clip.with_suffix(".txt")
    if not text_file.is_file():
        return None
    return text_file.read_text(encoding="utf-8").strip() or None


def train_clean_clips(shared: Path, count: int) -> list[tuple[str, Path]]:
    """(``librispeech-<speaker>``, clip) of the first ``count`` LibriSpeech train-clean-100 speakers, sorted: the
    first clip of each LibriSpeech speaker among the shared recordings' training clips
    (:func:`vcframe.datasets.real_speech_clips`)."""
    if count < 1:
        return []
    first: dict[str, Path] = {}
    for clip in real_speech_clips(shared / "data")[0]:
        if clip.speaker.startswith("librispeech-"):
            first.setdefault(clip.speaker, clip.audio)
    return sorted(first.items())[:count]


def known_transcripts(shared: Path) -> dict[Path, str]:
    """Clip -> its transcript where the shared data has one (LJSpeech-mini's metadata.csv, normalised text)."""
    folder = shared / "data" / "ljspeech" / "LJSpeech-mini"
    if not (folder / "metadata.csv").is_file():
        return {}
    rows = (line.split("|") for line in (folder / "metadata.csv").read_text(encoding="utf-8").splitlines())
    return {folder / "wavs" / f"{row[0]}.wav": row[2] for row in rows if len(row) == 3}


def voice_yardsticks(
    voices: list[tuple[str, list[Path]]],
    judge: SpeakerJudge,
    args: argparse.Namespace,
    scratch: Path,
    vocoders: list[str] | None = None,
):
    """Per real voice: similarity of the speaker's second recording to the reference (None with one clip), of
    Griffin-Lim's resynthesis of the reference from its own mel (Griffin-Lim's input spec, the run's options), and
    of each other vocoder in ``vocoders``'s resynthesis (``resynthesis_similarity``: what the vocoder alone keeps
    of the voice, beside what it keeps of a synthesizer's mel), and the pitch errors of each resynthesis against
    the reference, frame by frame (``resynthesis_pitch``: vocoder -> the fields of
    :class:`~vcframe.metrics.pitch.PitchErrors`)."""
    names = ["griffinlim", *[vocoder for vocoder in vocoders or [] if vocoder != "griffinlim"]]
    settings = load_settings(args.option or [])
    pipelines = {
        vocoder: Pipeline(vocoder=vocoder, device="cpu", settings=settings, threads=torch.get_num_threads())
        for vocoder in names
    }
    rows = {}
    for name, clips in voices:
        reference = clips[0]
        reference_track = track_f0(reference)
        similarity = {}
        pitch = {}
        buzz: dict[str, float | None] = {}
        voice = pipelines["griffinlim"].embed([reference])  # every system's encoder is the default bundle's
        for vocoder, pipeline in pipelines.items():
            spec = pipeline.vocoder.input_spec
            samples = load_audio(reference, sample_rate=spec.sample_rate).item(0)
            path = scratch / f"{vocoder}_resynthesis_{name}.wav"
            mel = with_voice(Mel.from_numpy([mel_spectrogram(samples, spec)], spec), voice)
            output = pipeline.vocoder.vocode(mel, seed=args.seed)
            save_audio(output, path)
            similarity[vocoder] = judge.similarity(reference, path)
            pitch[vocoder] = dataclasses.asdict(compare_f0_tracks(reference_track, track_f0(output)))
            buzz[vocoder] = buzz_db(output.item(0), output.sample_rate, spec.hop_length)
        rows[name] = {
            "reference": reference.name,
            "second_recording": clips[1].name if len(clips) > 1 else None,
            "second_recording_similarity": judge.similarity(reference, clips[1]) if len(clips) > 1 else None,
            "griffinlim_resynthesis_similarity": similarity["griffinlim"],
            "resynthesis_similarity": similarity,
            "resynthesis_pitch": pitch,
            "resynthesis_frame_rate_lines_db": buzz,
        }
    return rows


def resynthesis_f0_frame_error(yardstick: dict[str, Any], vocoder: str) -> str:
    """The F0 frame error of ``vocoder``'s resynthesis of the voice's reference as a table cell ("-" where the
    yardstick has none, as in results.json files written before it was measured)."""
    errors = yardstick.get("resynthesis_pitch", {}).get(vocoder)
    return "-" if errors is None else f"{errors['f0_frame_error']:.1%}"


def voice_table(rows: list[dict[str, Any]], yardsticks: dict[str, dict[str, Any]]) -> str:
    """Per real voice: mean similarity of each system's outputs to the reference, then the two yardsticks, then
    the F0 frame error of each vocoder's resynthesis of the reference (where measured)."""
    systems = sorted({row["system"] for row in rows})
    others = sorted(
        {vocoder for yardstick in yardsticks.values() for vocoder in yardstick.get("resynthesis_similarity", {})}
        - {"griffinlim"}
    )
    pitched = sorted(
        {vocoder for yardstick in yardsticks.values() for vocoder in yardstick.get("resynthesis_pitch", {})}
    )
    lines = [
        "| voice | " + " | ".join(f"{system} similarity" for system in systems)
        + " | same speaker, second recording | Griffin-Lim resynthesis of the reference |"
        + "".join(f" {vocoder} resynthesis |" for vocoder in others)
        + "".join(f" {vocoder} resynthesis F0 frame error |" for vocoder in pitched),
        "|---|" + "---|" * len(systems) + "---|---|" + "---|" * len(others) + "---|" * len(pitched),
    ]  # fmt: skip
    for name, yardstick in yardsticks.items():
        cells = []
        for system in systems:
            values = [r["similarity"] for r in rows if r["voice"] == name and r["system"] == system]
            cells.append(f"{statistics.mean(values):.3f}" if values else "-")
        second = yardstick["second_recording_similarity"]
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {'-' if second is None else f'{second:.3f}'} "
            f"| {yardstick['griffinlim_resynthesis_similarity']:.3f} |"
            + "".join(
                f" {yardstick.get('resynthesis_similarity', {}).get(vocoder, float('nan')):.3f} |" for vocoder in others
            )
            + "".join(f" {resynthesis_f0_frame_error(yardstick, vocoder)} |" for vocoder in pitched)
        )
    return "\n".join(lines)


def seconds_of(path: Path) -> float:
    info = soundfile.info(str(path))
    return info.frames / info.samplerate


def heard(pairs: list[tuple[str, str]]) -> dict[str, float]:
    """Mean WER and the share of reference words heard right over (text, transcript) pairs."""
    counts = [word_errors(text, transcript) for text, transcript in pairs]
    return {
        "wer": statistics.mean(count.rate for count in counts),
        "words_right": sum(count.hits for count in counts) / sum(count.reference_words for count in counts),
    }


def flite_yardstick(sentences: list[str], scratch: Path) -> dict[str, float]:
    """flite's slt voice reading the sentences: a clean text-to-speech voice the recogniser hears well."""
    recognizer = default_recognizer()
    pairs = []
    for index, text in enumerate(sentences):
        path = scratch / f"flite_{index}.wav"
        subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(path)], check=True, capture_output=True)
        pairs.append((text, recognizer.transcribe(path)))
    return heard(pairs)


def human_yardstick(shared: Path, count: int) -> dict[str, float] | None:
    """The first ``count`` LJSpeech-mini recordings (a person reading the same public-domain book text the
    held-out sentences come from) against their transcripts: what the recogniser makes of real read speech."""
    clips = ljspeech_clips(shared, count)
    if not clips:
        return None
    recognizer = default_recognizer()
    pairs = [(text, recognizer.transcribe(wav)) for wav, text in clips]
    return {**heard(pairs), "clips": len(pairs)}


def ljspeech_clips(shared: Path, count: int) -> list[tuple[Path, str]]:
    """(wav, normalised transcript) of the first ``count`` LJSpeech-mini clips (none without the folder)."""
    folder = shared / "data" / "ljspeech" / "LJSpeech-mini"
    if not (folder / "metadata.csv").is_file():
        return []
    clips = []
    for line in (folder / "metadata.csv").read_text(encoding="utf-8").splitlines()[:count]:
        clip_id, _, normalized = line.split("|")
        clips.append((folder / "wavs" / f"{clip_id}.wav", normalized))
    return clips


def yardstick_setup(
    vocoder: str, args: argparse.Namespace
) -> tuple[Pipeline, Any, Iterator[tuple[int, str, np.ndarray, Mel]]] | None:
    """What the vocoder yardsticks share: a pipeline with ``vocoder``, the recognizer, and the human yardstick's
    clips as (index, transcript, samples at the vocoder's rate, their own mel at its input spec), computed as
    they are read; None without LJSpeech-mini."""
    clips = ljspeech_clips(args.shared, args.human_clips)
    if not clips:
        return None
    pipeline = Pipeline(
        vocoder=vocoder, device="cpu", settings=load_settings(args.option or []), threads=torch.get_num_threads()
    )
    spec = pipeline.vocoder.input_spec

    def items() -> Iterator[tuple[int, str, np.ndarray, Mel]]:
        for index, (wav, text) in enumerate(clips):
            samples = load_audio(wav, sample_rate=spec.sample_rate).item(0)
            mel = Mel.from_numpy([mel_spectrogram(samples, spec)], spec)
            yield index, text, samples, with_voice(mel, pipeline.embed([wav]))

    return pipeline, default_recognizer(), items()


def with_voice(mel: Mel, voice: SpeakerEmbedding) -> Mel:
    """``mel`` (a recording's own) with the recording's speaker embedding ``voice`` in its metadata, as a run's mels
    carry the reference's (:data:`~vcframe.types.SPEAKER_EMBEDDING_KEY`): a vocoder that reads the voice
    resynthesises with the information it has when it clones; the others ignore it."""
    return dataclasses.replace(mel, metadata={**mel.metadata, SPEAKER_EMBEDDING_KEY: voice})


#: The pitch errors the vocoder yardstick averages over its clips (fields of PitchErrors).
YARDSTICK_PITCH_KEYS = ("f0_frame_error", "gross_pitch_error", "voicing_error", "median_abs_cents")


def mean_pitch_errors(errors: list[PitchErrors]) -> dict[str, float | None]:
    """The mean over clips of each of YARDSTICK_PITCH_KEYS, skipping clips where it is None (no frame voiced in
    both); None where every clip lacks it."""
    means: dict[str, float | None] = {}
    for key in YARDSTICK_PITCH_KEYS:
        values = [getattr(clip, key) for clip in errors if getattr(clip, key) is not None]
        means[key] = statistics.mean(values) if values else None
    return means


def vocoder_yardstick(vocoder: str, args: argparse.Namespace, scratch: Path) -> dict[str, float | None] | None:
    """``vocoder`` turning the person's recordings (the human yardstick's clips) back into audio from their own
    mels, computed with the vocoder's input mel spec: the share of words the vocoder alone keeps, the pitch
    errors of each resynthesis against its recording, frame by frame, averaged over the clips, and the median
    over the clips of the spectral lines at the vocoder's frame rate (:func:`buzz_db`)."""
    setup = yardstick_setup(vocoder, args)
    if setup is None:
        return None
    pipeline, recognizer, items = setup
    spec = pipeline.vocoder.input_spec
    pairs = []
    pitch = []
    buzz = []
    for index, text, samples, mel in items:
        path = scratch / f"resynthesis_{vocoder}_{index}.wav"
        output = pipeline.vocode(mel, seed=args.seed + index)  # mel-corrected with -o mel_correction=S
        save_audio(output, path)
        pairs.append((text, recognizer.transcribe(path)))
        pitch.append(pitch_errors(samples, output, sample_rate=spec.sample_rate))  # the rate is the recording's
        buzz.append(buzz_db(output.item(0), output.sample_rate, spec.hop_length))
    measured = [level for level in buzz if level is not None]
    return {
        **heard(pairs),
        **mean_pitch_errors(pitch),
        "frame_rate_lines_db": float(np.median(measured)) if measured else None,
        "clips": len(pairs),
    }


def pitch_summary(resynthesis: dict[str, float | None]) -> str:
    """The vocoder yardstick's mean pitch errors as words for its printed line ("-" where not measured)."""

    def share(key: str) -> str:
        value = resynthesis.get(key)
        return "-" if value is None else f"{value:.1%}"

    cents = resynthesis.get("median_abs_cents")
    return (
        f"F0 frame error {share('f0_frame_error')} (gross pitch error {share('gross_pitch_error')}, "
        f"voicing error {share('voicing_error')}), median |F0 error| {'-' if cents is None else f'{cents:.0f}'} cents"
    )


def fitted_magnitudes(recording: np.ndarray, output: np.ndarray, spec: Any) -> tuple[np.ndarray, np.ndarray]:
    """STFT magnitudes (the mel spec's n_fft, hop, window) of ``recording`` and of ``output`` (cut or repeated to
    the recording's length) after the single gain that fits the second to the first best (least squares)."""
    settings = {"n_fft": spec.n_fft, "hop_length": spec.hop_length, "win_length": spec.win_length}
    expected = np.abs(stft(recording.astype(np.float64), **settings))
    actual = np.abs(stft(np.resize(output.astype(np.float64), len(recording)), **settings))
    actual *= float((expected * actual).sum() / max((actual * actual).sum(), 1e-30))
    return expected, actual


def spectral_scores(recording: np.ndarray, output: np.ndarray, spec: Any) -> tuple[float, float]:
    """(spectral convergence, log-spectral distance in dB) of ``output``'s STFT magnitude (the mel spec's n_fft,
    hop, window) to ``recording``'s, after the single gain that fits them best (the vocoder's level is its own);
    the log-spectral distance floors both at -80 dB below the recording's loudest cell."""
    expected, actual = fitted_magnitudes(recording, output, spec)
    convergence = float(np.linalg.norm(expected - actual) / np.linalg.norm(expected))
    floor = expected.max() * 1e-4
    difference = 20 * np.log10(np.maximum(expected, floor)) - 20 * np.log10(np.maximum(actual, floor))
    return convergence, float(np.mean(np.sqrt(np.mean(difference**2, axis=0))))


def stream_yardstick(vocoder: str, args: argparse.Namespace, scratch: Path) -> dict[str, dict[str, float]] | None:
    """The vocoder yardstick's clips vocoded whole (``vocode``) and streamed (``vocode_stream``, chunks joined),
    same mels, same seeds: words heard right, spectral convergence and log-spectral distance to the recording,
    the output level (dBFS RMS), CPU seconds per second of audio, and the seam check: the mean per-frame
    spectral convergence of the frames within two of a chunk boundary against all frames."""
    setup = yardstick_setup(vocoder, args)
    if setup is None:
        return None
    pipeline, recognizer, items = setup
    spec = pipeline.vocoder.input_spec
    results: dict[str, dict[str, list[Any]]] = {way: {} for way in ("whole", "streamed")}
    for index, text, samples, mel in items:
        for way in results:
            started = time.process_time()
            if way == "whole":
                output, boundaries = pipeline.vocoder.vocode(mel, seed=args.seed + index).item(0), []
            else:
                chunks = [chunk.item(0) for chunk in pipeline.vocoder.vocode_stream(mel, seed=args.seed + index)]
                output, boundaries = np.concatenate(chunks), np.cumsum([len(chunk) for chunk in chunks])[:-1]
            cpu = time.process_time() - started
            path = scratch / f"stream_{vocoder}_{way}_{index}.wav"
            soundfile.write(str(path), output, spec.sample_rate)
            convergence, distance = spectral_scores(samples, output, spec)
            row = results[way]
            row.setdefault("pairs", []).append((text, recognizer.transcribe(path)))
            row.setdefault("spectral_convergence", []).append(convergence)
            row.setdefault("log_spectral_distance_db", []).append(distance)
            row.setdefault("level_dbfs", []).append(20 * np.log10(max(float(np.sqrt(np.mean(output**2))), 1e-9)))
            row.setdefault("cpu_s", []).append(cpu)
            row.setdefault("audio_s", []).append(len(output) / spec.sample_rate)
            if way == "streamed":
                row.setdefault("seams", []).append(seam_convergence(samples, output, boundaries, spec))
    summary: dict[str, dict[str, float]] = {}
    for way, row in results.items():
        summary[way] = {
            **heard(row.pop("pairs")),
            "cpu_per_audio_s": sum(row.pop("cpu_s")) / sum(row.pop("audio_s")),
            **{name: float(np.mean(values)) for name, values in row.items() if name != "seams"},
        }
        if "seams" in row:
            near, overall = zip(*row["seams"], strict=True)
            summary[way] |= {
                "seam_frames_convergence": float(np.mean(near)),
                "all_frames_convergence": float(np.mean(overall)),
            }
    whole_level, streamed_level = results["whole"]["level_dbfs"], results["streamed"]["level_dbfs"]
    level_change = [streamed - whole for whole, streamed in zip(whole_level, streamed_level, strict=True)]
    summary["streamed"] |= {"level_change_db_min": min(level_change), "level_change_db_max": max(level_change)}
    return summary


def mel_roughness(mel: np.ndarray) -> tuple[float, float]:
    """(mean absolute difference between neighbouring mel bands, the same between neighbouring frames) of a
    (n_mels, frames) mel: how much fine structure it has across frequency and across time."""
    return float(np.abs(np.diff(mel, axis=0)).mean()), float(np.abs(np.diff(mel, axis=1)).mean())


def smooth_yardstick(
    vocoder: str, sigmas: list[float], args: argparse.Namespace, scratch: Path
) -> dict[str, Any] | None:
    """The vocoder yardstick's clips vocoded from their own mels smoothed across bands (Gaussian, ``sigmas`` in
    mel bands, 0 = as they are, edges extended): words heard right, the mels' roughness, the output's
    frame-rate lines (:func:`buzz_db`, median over clips) and its pitch errors against the recording (mean over
    clips) per sigma."""
    from scipy.ndimage import gaussian_filter1d

    setup = yardstick_setup(vocoder, args)
    if setup is None:
        return None
    pipeline, recognizer, items = setup
    spec = pipeline.vocoder.input_spec
    pairs: dict[float, list[tuple[str, str]]] = {sigma: [] for sigma in sigmas}
    roughness: dict[float, list[tuple[float, float]]] = {sigma: [] for sigma in sigmas}
    buzz: dict[float, list[float]] = {sigma: [] for sigma in sigmas}
    pitch: dict[float, list[PitchErrors]] = {sigma: [] for sigma in sigmas}
    for index, text, samples, mel in items:
        recording_track = track_f0(samples, spec.sample_rate)
        frames = mel.frames[0].numpy()
        for sigma in sigmas:
            smoothed = gaussian_filter1d(frames, sigma, axis=0, mode="nearest") if sigma > 0 else frames
            roughness[sigma].append(mel_roughness(smoothed))
            smoothed_mel = Mel.from_numpy([smoothed.astype(np.float32)], spec)
            output = pipeline.vocoder.vocode(
                dataclasses.replace(smoothed_mel, metadata=mel.metadata), seed=args.seed + index
            )
            path = scratch / f"smooth_{vocoder}_{sigma:g}_{index}.wav"
            save_audio(output, path)
            level = buzz_db(output.item(0), output.sample_rate, spec.hop_length)
            buzz[sigma] += [] if level is None else [level]
            pitch[sigma].append(compare_f0_tracks(recording_track, track_f0(output)))
            pairs[sigma].append((text, recognizer.transcribe(path)))
    return {
        f"sigma {sigma:g}": {
            **heard(pairs[sigma]),
            "band_roughness": float(np.mean([band for band, _ in roughness[sigma]])),
            "frame_roughness": float(np.mean([frame for _, frame in roughness[sigma]])),
            "frame_rate_lines_db": float(np.median(buzz[sigma])) if buzz[sigma] else None,
            **mean_pitch_errors(pitch[sigma]),
        }
        for sigma in sigmas
    }


def synthesizer_roughness(args: argparse.Namespace) -> dict[str, Any]:
    """The band and frame roughness of the default synthesizer's mels (the run's options) for ``args.real`` real
    voices x ``args.sentences`` held-out sentences: which sigma of ``smooth_yardstick`` they resemble."""
    pipeline = Pipeline(device="cpu", settings=load_settings(args.option or []), threads=torch.get_num_threads())
    sentences = held_out_sentences(load_recipe(), args.sentences, first=args.first_sentence)
    synthesized = []
    for _, clips in real_voice_clips(args.shared)[: args.real]:
        embedding = pipeline.embed([clips[0]])
        for output_mel in pipeline.synthesize(sentences, embedding, seed=args.seed):
            synthesized.append(mel_roughness(output_mel.frames[0, :, : int(output_mel.lengths[0])].numpy()))
    return {
        "mels": len(synthesized),
        "band_roughness": float(np.mean([band for band, _ in synthesized])) if synthesized else None,
        "frame_roughness": float(np.mean([frame for _, frame in synthesized])) if synthesized else None,
    }


def seam_convergence(recording: np.ndarray, output: np.ndarray, boundaries: Any, spec: Any) -> tuple[float, float]:
    """(mean per-frame spectral convergence to the recording over frames within two hops of a chunk boundary,
    the same over all frames), after the best single gain; frames where the recording is within 40 dB of its
    loudest frame only."""
    expected, actual = fitted_magnitudes(recording, output, spec)
    per_frame = np.linalg.norm(expected - actual, axis=0) / np.maximum(np.linalg.norm(expected, axis=0), 1e-30)
    energy = np.linalg.norm(expected, axis=0)
    loud = energy >= energy.max() * 10 ** (-40 / 20)
    near = np.zeros_like(loud)
    for boundary in boundaries:
        frame = int(round(boundary / spec.hop_length))
        near[max(0, frame - 2) : frame + 3] = True
    return float(per_frame[near & loud].mean()), float(per_frame[loud].mean())


def source_voice_yardstick(recipe: Any, sentences: list[str], judge: SpeakerJudge, scratch: Path) -> dict[str, Any]:
    """The held-out voices' own engines reading the sentences: WER, words heard right, and similarity to the
    sample clip."""
    recognizer = default_recognizer()
    rows: dict[str, Any] = {}
    for voice in sample_voices():
        speaker = recipe.SPEAKERS_BY_ID[voice.details["speaker"]]
        pairs, similarities = [], []
        for index, text in enumerate(sentences):
            samples = recipe.trim_and_normalise(recipe.synthesize(speaker, text))
            path = scratch / f"source_{voice.name}_{index}.wav"
            soundfile.write(str(path), samples, recipe.SAMPLE_RATE)
            pairs.append((text, recognizer.transcribe(path)))
            similarities.append(judge.similarity(voice.clip, path))
        rows[voice.name] = {**heard(pairs), "similarity": statistics.mean(similarities)}
    return rows


def buzz_db(samples: np.ndarray, sample_rate: int, hop_length: int) -> float | None:
    """Median level (dB) of the spectral lines at multiples of the vocoder's frame rate in its output
    (:func:`~vcframe.metrics.frame_rate.frame_rate_lines`); None for output under a second, too short to tell."""
    if samples.size < sample_rate:
        return None
    return frame_rate_lines(samples, sample_rate, hop_length=hop_length).median_db


def run_system(
    vocoder: str,
    voices: list[tuple[str, str, Path, str | None]],
    sentences: list[str],
    args: argparse.Namespace,
    out: Path,
    judge: SpeakerJudge,
    adapt_steps: int = 0,
    match_spectrum: float | None = None,
    second_clips: dict[str, Path] | None = None,
    adapt_target: AdaptationTarget = "embedding",
) -> list[dict[str, Any]]:
    """Every (voice, sentence) through the default bundle with ``vocoder``; with ``adapt_steps`` the voice's
    embedding (``adapt_target="embedding"``) or the synthesizer's output layer (``"output"``) is adapted to its
    clip first (transcript: the voice's fourth field, None = recognised); with
    ``match_spectrum`` (None: the setting's default, 1) each mel's long-term spectrum is moved that far toward the
    clip's (vcframe.spectrum; 0 = off).
    ``second_clips`` (voice name -> the speaker's second recording) adds each output's similarity to it."""
    matching = [f"match_spectrum={match_spectrum}"] if match_spectrum is not None else []
    settings = load_settings([*(args.option or []), *matching])  # the CLI's -o KEY=VALUE rules
    pipeline = Pipeline(
        encoder=args.encoder,
        synthesizer=args.synthesizer,
        vocoder=vocoder,
        device="cpu",
        settings=settings,
        threads=torch.get_num_threads(),  # --threads, else torch's default, as before
    )
    recognizer = default_recognizer()
    hop_length = pipeline.vocoder.input_spec.hop_length
    adapted_name = "adaptout" if adapt_target == "output" else "adapt"
    system = f"{vocoder}+{adapted_name}{adapt_steps}" if adapt_steps else vocoder
    system += f"+match{match_spectrum:g}" if match_spectrum is not None else ""
    rows = []
    for group, name, clip, transcript in voices:
        embedding = pipeline.embed([clip])
        adaptation: dict[str, Any] | None = None
        if adapt_steps:
            adaptation_asked = SpeakerAdaptation(steps=adapt_steps, seed=args.seed, target=adapt_target)
            adapted = pipeline.adapt_embedding(clip, adaptation_asked, embedding=embedding, transcript=transcript)
            embedding, adaptation = adapted.embedding, adapted.summary()
            print(f"{system} {name}: adapted {adaptation}", flush=True)
        for index, text in enumerate(sentences, start=args.first_sentence):
            started = time.perf_counter()
            # the clip is read for spectrum matching only (on by default): the embedding given wins over it
            waveform = pipeline.clone(text, clip, embedding=embedding, seed=args.seed + index)
            elapsed = time.perf_counter() - started
            path = out / system / f"{name}_{index:02d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            save_audio(waveform, path)
            hypothesis = recognizer.transcribe(path)
            rows.append(
                {
                    "system": system,
                    "group": group,
                    "voice": name,
                    "sentence": index,
                    "text": text,
                    "transcript": hypothesis,
                    "wer": word_error_rate(text, hypothesis),
                    "similarity": judge.similarity(clip, path),
                    "second_similarity": (
                        judge.similarity(second_clips[name], path) if name in (second_clips or {}) else None
                    ),
                    "seconds": waveform.durations[0],
                    "rtf": elapsed / max(waveform.durations[0], 1e-6),
                    "adaptation": adaptation,
                    "spectrum_match": waveform.metadata.get("spectrum_match"),
                    "frame_rate_lines_db": buzz_db(waveform.item(0), waveform.sample_rate, hop_length),
                    "voiced_share": voiced_share(waveform),
                }
            )
            print(
                f"{system} {name} {index}: wer {rows[-1]['wer']:.2f} sim {rows[-1]['similarity']:.3f} "
                f"rtf {rows[-1]['rtf']:.2f}  heard: {hypothesis!r}",
                flush=True,
            )
    return rows


def cli_run_seconds(vocoder: str, text: str, args: argparse.Namespace, scratch: Path) -> tuple[float, float]:
    """Wall time of one ``vcframe run`` (process start and model loading included) and its output length."""
    out = scratch / f"cli_{vocoder}.wav"
    command = [
        str(Path(sys.executable).with_name("vcframe")),
        "run",
        "--voice",
        "clara",
        "--text",
        text,
        "--out",
        str(out),
        "--vocoder",
        vocoder,
        "--seed",
        "0",
        "--device",
        "cpu",
        *(flag for option in args.option or [] for flag in ("-o", option)),
    ]
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed: {finished.stderr.strip()}")
    return time.perf_counter() - started, seconds_of(out)


def table(rows: list[dict[str, Any]]) -> str:
    """Per system and voice group: WER, the share of reference words heard right (WER alone rewards an
    output the recogniser hears nothing in over one where it hears wrong words), similarity to the reference and
    to the speaker's second recording (real voices; "-" where none was measured), RTF, and the vocoder's buzz at
    its frame rate (median over items of :func:`~vcframe.metrics.frame_rate.frame_rate_lines`, dB) and the
    share of the output's sounding frames that are voiced (mean over items of
    :func:`~vcframe.metrics.pitch.voiced_share`); "-" for the last two in runs from before they were measured."""
    lines = [
        "| system | voices | items | WER mean | WER median | words heard right | similarity mean "
        "| similarity to a second recording | RTF mean | frame-rate lines | voiced frames |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(row["system"], row["group"]) for row in rows})
    for system, group in keys:
        chosen = [row for row in rows if row["system"] == system and row["group"] == group]
        wer = [r["wer"] for r in chosen]
        heard_right = heard([(r["text"], r["transcript"]) for r in chosen])["words_right"]
        similarity = statistics.mean(r["similarity"] for r in chosen)
        rtf = statistics.mean(r["rtf"] for r in chosen)
        second_similarities = [r["second_similarity"] for r in chosen if r.get("second_similarity") is not None]
        second = f"{statistics.mean(second_similarities):.3f}" if second_similarities else "-"
        buzz = [r["frame_rate_lines_db"] for r in chosen if r.get("frame_rate_lines_db") is not None]
        voiced = [r["voiced_share"] for r in chosen if r.get("voiced_share") is not None]
        lines.append(
            f"| {system} | {group} | {len(chosen)} | {statistics.mean(wer):.3f} | {statistics.median(wer):.3f} "
            f"| {heard_right:.1%} | {similarity:.3f} | {second} | {rtf:.2f} "
            f"| {f'{statistics.median(buzz):+.1f} dB' if buzz else '-'} "
            f"| {f'{statistics.mean(voiced):.1%}' if voiced else '-'} |"
        )
    return "\n".join(lines)


def _paired_rows(spec: str) -> tuple[str, dict[tuple[str, str, int], dict[str, Any]]]:
    """``PATH[:SYSTEM]`` -> (label, rows keyed by (group, voice, sentence)); SYSTEM may be left out when the
    results.json holds one system."""
    path_text, _, system = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    path = Path(path_text)
    if not path.is_file():
        raise SystemExit(f"error: {path} is not a results.json: give PATH[:SYSTEM] of an earlier run's --out")
    try:
        rows = json.loads(path.read_text())["rows"]
        systems = sorted({row["system"] for row in rows})
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise SystemExit(f"error: {path} is not a results.json of benchmarks/quality.py ({error})") from None
    if not system:
        if len(systems) != 1:
            raise SystemExit(f"error: {path} holds systems {', '.join(systems)}: name one as {path}:SYSTEM")
        system = systems[0]
    if system not in systems:
        raise SystemExit(f"error: {path} has no system {system!r} (it has {', '.join(systems)})")
    chosen = {(row["group"], row["voice"], row["sentence"]): row for row in rows if row["system"] == system}
    return f"{path.parent.name}:{system}", chosen


def paired_table(spec_a: str, spec_b: str, *, seed: int = 0) -> str:
    """B against A on the items both measured, per voice group: words heard right (pooled, with a bootstrap
    interval over items) and similarity (mean of per-item differences, Student-t interval), and on how many
    items B heard more or fewer words. Differences smaller than their interval's half-width are noise."""
    from vcframe.metrics.stats import mean_confidence_interval, paired_ratio_difference

    label_a, rows_a = _paired_rows(spec_a)
    label_b, rows_b = _paired_rows(spec_b)
    shared = sorted(set(rows_a) & set(rows_b))
    if not shared:
        raise SystemExit(f"error: {label_a} and {label_b} share no (voice, sentence) items: run them on the same set")
    for key in shared:
        if rows_a[key]["text"] != rows_b[key]["text"]:
            raise SystemExit(f"error: item {key} has different sentences in {label_a} and {label_b}")
    lines = [
        f"B = {label_b} against A = {label_a}, same items (95 % intervals):",
        "",
        "| voices | items | words heard right A -> B | B - A (interval) | items B hears more / fewer words "
        "| similarity A -> B | B - A (interval) |",
        "|---|---|---|---|---|---|---|",
    ]
    for group in sorted({key[0] for key in shared}):
        keys = [key for key in shared if key[0] == group]
        count_a = [word_errors(rows_a[key]["text"], rows_a[key]["transcript"]) for key in keys]
        count_b = [word_errors(rows_b[key]["text"], rows_b[key]["transcript"]) for key in keys]
        totals = [count.reference_words for count in count_a]
        words = paired_ratio_difference(
            [count.hits for count in count_a], [count.hits for count in count_b], totals, seed=seed
        )
        similarity = mean_confidence_interval(rows_b[key]["similarity"] - rows_a[key]["similarity"] for key in keys)
        assert similarity is not None
        heard_a = sum(count.hits for count in count_a) / sum(totals)
        spread = "" if similarity.low is None else f" ({similarity.low:+.3f} to {similarity.high:+.3f})"
        lines.append(
            f"| {group} | {len(keys)} | {heard_a:.1%} -> {heard_a + words.difference:.1%} "
            f"| {100 * words.difference:+.1f} points ({100 * words.low:+.1f} to {100 * words.high:+.1f}) "
            f"| {words.better} / {words.worse} "
            f"| {statistics.mean(rows_a[k]['similarity'] for k in keys):.3f} -> "
            f"{statistics.mean(rows_b[k]['similarity'] for k in keys):.3f} | {similarity.mean:+.3f}{spread} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocoder", action="append", help="vocoder of a system (repeatable; default: the bundle's)")
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--synthesizer", default=None)
    parser.add_argument("-o", "--option", action="append", help="KEY=VALUE as in vcframe run -o")
    parser.add_argument("--sentences", type=int, default=8, help="held-out sentences per voice")
    parser.add_argument(
        "--first-sentence",
        type=int,
        default=0,
        metavar="K",
        help="start at held-out sentence K (default 0; e.g. 20 with --sentences 20: a fresh set of items)",
    )
    parser.add_argument("--real", type=int, default=6, help="real clips from ../shared/data (0 = none)")
    parser.add_argument("--synthetic", type=int, default=None, help="sample voices (default: all; 0 = none)")
    parser.add_argument(
        "--trained-voices",
        type=Path,
        metavar="CORPUS",
        help="also clone the training voices of this demo corpus folder (group 'synthetic trained')",
    )
    parser.add_argument("--trained", type=int, default=None, help="how many --trained-voices (default: all)")
    parser.add_argument(
        "--train-clean",
        type=int,
        default=0,
        metavar="N",
        help="also clone N LibriSpeech train-clean-100 voices (group 'real train-clean-100')",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("VCFRAME_SHARED", ROOT.parent / "shared")))
    parser.add_argument("--out", type=Path, help="output folder: results.json and the wavs (required to measure)")
    parser.add_argument("--no-yardsticks", action="store_true")
    parser.add_argument(
        "--adapt", type=int, default=0, metavar="N", help="also run each system with N steps of speaker adaptation"
    )
    parser.add_argument(
        "--adapt-recognised", action="store_true", help="adapt to recognised transcripts even where one is known"
    )
    parser.add_argument(
        "--adapt-target",
        choices=["embedding", "output"],
        default="embedding",
        help="what --adapt fits: the speaker embedding (system <vocoder>+adapt<N>) or the synthesizer's output "
        "layer (<vocoder>+adaptout<N>)",
    )
    parser.add_argument(
        "--match-spectrum",
        type=float,
        action="append",
        default=[],
        metavar="S",
        help="also run each system with spectrum matching of strength S (system <vocoder>+match<S>; 0 = off, the "
        "systems without it use the default, 1; repeatable)",
    )
    parser.add_argument(
        "--human-clips",
        type=int,
        default=HUMAN_YARDSTICK_CLIPS,
        help="LJSpeech-mini clips in the human yardstick (the default ones are never vocoder training data)",
    )
    parser.add_argument("--table-from", type=Path, help="print the table of an earlier results.json and stop")
    parser.add_argument(
        "--paired",
        nargs=2,
        metavar=("A", "B"),
        help="compare two earlier runs item by item (each PATH/results.json[:SYSTEM]) and stop: B - A in words "
        "heard right and similarity with 95 %% intervals",
    )
    parser.add_argument(
        "--stream-yardstick",
        action="store_true",
        help="only the vocoder yardstick, each --vocoder whole (vocode) and streamed (vocode_stream): words heard "
        "right, spectral convergence / log-spectral distance to the recordings, level, CPU, seams",
    )
    parser.add_argument(
        "--smooth-yardstick",
        metavar="SIGMAS",
        help="only the vocoder yardstick, each --vocoder from the clips' own mels smoothed across mel bands by "
        "each Gaussian sigma (comma-separated, in bands; 0 = as they are): words heard right and mel roughness",
    )
    args = parser.parse_args()
    if args.smooth_yardstick:
        from vcframe.config import default_bundle

        try:
            sigmas = [float(value) for value in args.smooth_yardstick.split(",")]
        except ValueError:
            parser.error(f"--smooth-yardstick takes sigmas like 0,1,2, got {args.smooth_yardstick!r}")
        if any(sigma < 0 for sigma in sigmas):
            parser.error(f"--smooth-yardstick sigmas must be >= 0, got {args.smooth_yardstick!r}")
        with tempfile.TemporaryDirectory() as scratch_name:
            for vocoder in args.vocoder or [default_bundle()["vocoder"]]:
                summary = smooth_yardstick(vocoder, sigmas, args, Path(scratch_name))
                print(f"{vocoder} ({args.human_clips} LJSpeech-mini clips, their own mels smoothed across bands):")
                print(json.dumps(summary, indent=2))
        print(f"the default synthesizer's mels ({args.real} real voices x {args.sentences} held-out sentences):")
        print(json.dumps(synthesizer_roughness(args), indent=2))
        return
    if args.stream_yardstick:
        from vcframe.config import default_bundle

        with tempfile.TemporaryDirectory() as scratch_name:
            for vocoder in args.vocoder or [default_bundle()["vocoder"]]:
                summary = stream_yardstick(vocoder, args, Path(scratch_name))
                print(f"{vocoder} ({args.human_clips} LJSpeech-mini clips, their own mels, seeds {args.seed}+):")
                print(json.dumps(summary, indent=2))
        return
    if args.paired:
        print(paired_table(*args.paired, seed=args.seed))
        return
    if args.table_from:
        saved = json.loads(args.table_from.read_text())
        print(table(saved["rows"]))
        if "voice_yardsticks" in saved:
            print("\n" + voice_table(saved["rows"], saved["voice_yardsticks"]))
        return
    if args.out is None:
        parser.error("--out is required")
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    recipe = load_recipe()
    sentences = held_out_sentences(recipe, args.sentences, first=args.first_sentence)
    if args.adapt < 0:
        parser.error("--adapt takes a number of steps >= 0")
    if args.adapt_target != "embedding" and not args.adapt:
        parser.error("--adapt-target is read with --adapt N only")
    transcripts = {} if args.adapt_recognised else known_transcripts(args.shared)
    voices: list[tuple[str, str, Path, str | None]] = [
        ("synthetic held-out", voice.name, voice.clip, None if args.adapt_recognised else voice.details.get("text"))
        for voice in sample_voices()[: args.synthetic]
    ]
    real = real_voice_clips(args.shared)[: args.real]
    voices += [("real", name, clips[0], transcripts.get(clips[0])) for name, clips in real]
    second_recordings = {name: clips[1] for name, clips in real if len(clips) > 1}
    if args.trained_voices is not None:
        trained = trained_voice_clips(args.trained_voices)[: args.trained]
        voices += [
            ("synthetic trained", name, clips[0], None if args.adapt_recognised else _text_beside(clips[0]))
            for name, clips in trained
        ]
        second_recordings.update({name: clips[1] for name, clips in trained})
    voices += [
        ("real train-clean-100", name, clip, None) for name, clip in train_clean_clips(args.shared, args.train_clean)
    ]
    judge = SpeakerJudge("ge2e")
    from vcframe.config import default_bundle

    vocoders = args.vocoder or [default_bundle()["vocoder"]]
    rows: list[dict[str, Any]] = []

    def measure(vocoder: str, **variant: Any) -> list[dict[str, Any]]:
        return run_system(vocoder, voices, sentences, args, args.out, judge, second_clips=second_recordings, **variant)

    for vocoder in vocoders:
        rows += measure(vocoder)
        if args.adapt:
            rows += measure(vocoder, adapt_steps=args.adapt, adapt_target=args.adapt_target)
        for strength in args.match_spectrum:
            rows += measure(vocoder, match_spectrum=strength)
    report: dict[str, Any] = {"sentences": sentences, "rows": rows}
    print("\n" + table(rows))
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        if real:
            report["voice_yardsticks"] = voice_yardsticks(real, judge, args, scratch, vocoders)
            report["voice_table"] = voice_table(rows, report["voice_yardsticks"])
            print("\n" + report["voice_table"] + "\n")
        report["cli"] = {}
        for vocoder in vocoders:
            wall, seconds = cli_run_seconds(vocoder, sentences[0], args, scratch)
            report["cli"][vocoder] = {"wall_s": wall, "audio_s": seconds, "rtf": wall / seconds}
            print(
                f"vcframe run --vocoder {vocoder}: {wall:.1f} s wall for {seconds:.2f} s of audio "
                f"(RTF {wall / seconds:.2f}, model loading included)"
            )
        if not args.no_yardsticks:
            human = human_yardstick(args.shared, args.human_clips)
            if human is not None:
                report["human_ljspeech"] = human
                print(
                    f"yardstick: a person reading (first {human['clips']} LJSpeech-mini clips): "
                    f"WER {human['wer']:.3f}, words heard right {human['words_right']:.1%}"
                )
                report["vocoder_resynthesis"] = {}
                for vocoder in vocoders:
                    resynthesis = vocoder_yardstick(vocoder, args, scratch)
                    report["vocoder_resynthesis"][vocoder] = resynthesis
                    if resynthesis is not None:
                        print(
                            f"yardstick: {vocoder} resynthesising those clips from their own mels: "
                            f"WER {resynthesis['wer']:.3f}, words heard right {resynthesis['words_right']:.1%}, "
                            + pitch_summary(resynthesis)
                            + (
                                ""
                                if resynthesis.get("frame_rate_lines_db") is None
                                else f", frame-rate lines {resynthesis['frame_rate_lines_db']:+.1f} dB"
                            )
                        )
        if not args.no_yardsticks and shutil.which("flite"):
            flite = flite_yardstick(sentences, scratch)
            report["flite_slt"] = flite
            print(
                f"yardstick: flite slt reading the sentences: WER {flite['wer']:.3f}, "
                f"words heard right {flite['words_right']:.1%}"
            )
            source = source_voice_yardstick(recipe, sentences, judge, scratch)
            report["source_voices"] = source
            for name, values in source.items():
                print(
                    f"yardstick: {name}'s own engine: WER {values['wer']:.3f}, words heard right "
                    f"{values['words_right']:.1%}, similarity {values['similarity']:.3f}"
                )
    report["commit"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    report["table"] = table(rows)
    (args.out / "results.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"wrote {args.out / 'results.json'} (commit {report['commit']})")


if __name__ == "__main__":
    main()
