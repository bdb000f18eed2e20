"""Synthesizer training data: corpus discovery, mels, speaker embeddings and a manifest.

Corpora (``--format auto`` picks by layout):

* ``librispeech``: ``<root>/[<split>/]<speaker>/<chapter>/*.flac`` with ``<speaker>-<chapter>.trans.txt``;
* ``generic``: ``<root>/<speaker>/<utterance>.wav`` (or .flac/.ogg/.mp3) with ``<utterance>.txt`` or ``.lab``;
* ``ljspeech``: ``<root>/metadata.csv`` (``id|text|normalized text``) and ``<root>/wavs/<id>.wav``, one speaker.

Every utterance gives ``mels/<id>.npy`` ((n_mels, T) float32, ``vcframe.audio.mel_spectrogram`` of the
peak-normalised audio, RTVC's ``rescaling_max`` 0.9) and ``embeds/<id>.npy`` ((D,) float32, the speaker
encoder's embedding of the utterance). Files that exist are skipped, so an interrupted run resumes; the
manifest ``manifest.jsonl`` is rewritten atomically at the end from every finished utterance.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vcframe._io import atomic_path, atomic_write
from vcframe.datasets import load_array
from vcframe.errors import ConfigError, InputError
from vcframe.specs import RTVC_SYNTHESIZER_MEL, MelSpec

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass(frozen=True)
class Utterance:
    id: str
    speaker: str
    audio: str
    text: str


def _safe_id(*parts: str) -> str:
    return "_".join(part.replace(os.sep, "-").replace(" ", "-") for part in parts)


def find_librispeech(root: Path) -> Iterator[Utterance]:
    for transcript in sorted(root.rglob("*.trans.txt")):
        chapter_dir = transcript.parent
        for line in transcript.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            name, _, text = line.strip().partition(" ")
            audio = next(
                (chapter_dir / f"{name}{s}" for s in AUDIO_SUFFIXES if (chapter_dir / f"{name}{s}").is_file()), None
            )
            if audio is not None:
                yield Utterance(name, chapter_dir.parent.name, str(audio), text)


def find_generic(root: Path) -> Iterator[Utterance]:
    for speaker_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for audio in sorted(p for p in speaker_dir.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
            transcript = next((audio.with_suffix(s) for s in (".txt", ".lab") if audio.with_suffix(s).is_file()), None)
            if transcript is not None:
                text = " ".join(transcript.read_text(encoding="utf-8").split())
                relative = audio.relative_to(speaker_dir).with_suffix("")
                yield Utterance(_safe_id(speaker_dir.name, str(relative)), speaker_dir.name, str(audio), text)


def find_ljspeech(root: Path) -> Iterator[Utterance]:
    with open(root / "metadata.csv", encoding="utf-8", newline="") as stream:
        for row in csv.reader(stream, delimiter="|", quoting=csv.QUOTE_NONE):
            if len(row) < 2:
                continue
            text = row[2] if len(row) > 2 and row[2] else row[1]
            yield Utterance(row[0], "ljspeech", str(root / "wavs" / f"{row[0]}.wav"), text)


def detect_format(folder: Path) -> str:
    """ljspeech (metadata.csv), librispeech (*.trans.txt anywhere) or generic."""
    if (folder / "metadata.csv").is_file():
        return "ljspeech"
    if next(folder.rglob("*.trans.txt"), None) is not None:
        return "librispeech"
    return "generic"


def find_utterances(root: str | os.PathLike[str], corpus_format: str = "auto") -> list[Utterance]:
    """Every (audio, transcript) pair of the corpus at ``root``."""
    folder = Path(root)
    if not folder.is_dir():
        raise InputError(f"corpus folder {str(folder)!r} not found", hint="give the corpus root folder")
    corpus_format = detect_format(folder) if corpus_format == "auto" else corpus_format
    finders = {"librispeech": find_librispeech, "generic": find_generic, "ljspeech": find_ljspeech}
    if corpus_format not in finders:
        raise ConfigError(f"unknown corpus format {corpus_format!r}", hint=f"use one of auto, {', '.join(finders)}")
    utterances = list(finders[corpus_format](folder))
    if not utterances:
        raise InputError(f"no utterances with transcripts found in {str(folder)!r} ({corpus_format} layout)")
    return utterances


class SpeakerEmbedder:
    """Embeds audio with an installed encoder plugin (entry point group ``vcframe.encoders``).

    ``name="random-per-speaker"`` gives a fixed random unit vector per speaker name instead (smoke tests and
    corpora without an encoder; the space is then 'random/per-speaker').
    """

    def __init__(self, name: str, overrides: dict[str, Any] | None = None, device: str = "cpu") -> None:
        self.name = name
        self.encoder: Any = None
        if name == "random-per-speaker":
            self.dim, self.space, self.sample_rate = 256, "random/per-speaker", None
            return
        from importlib.metadata import entry_points

        from vcframe.specs import import_string

        found = [ep for ep in entry_points(group="vcframe.encoders") if ep.name == name]
        if not found:
            known = ", ".join(ep.name for ep in entry_points(group="vcframe.encoders")) or "none"
            raise ConfigError(
                f"no speaker encoder plugin named {name!r}", hint=f"installed: {known}, or random-per-speaker"
            )
        spec = found[0].load()
        config = spec.make_config(overrides or {})
        self.encoder = import_string(spec.factory)(config, device=device)
        embedding_spec = spec.resolve_io(config)[1]
        self.dim, self.space = embedding_spec.dim, embedding_spec.space
        self.embedding_spec = embedding_spec
        self.sample_rate = spec.resolve_io(config)[0].sample_rate

    def __call__(self, utterance: Utterance) -> np.ndarray:
        if self.encoder is None:
            seed = int.from_bytes(hashlib.sha256(utterance.speaker.encode()).digest()[:4], "little")
            vector = np.random.default_rng(seed).random(self.dim).astype(np.float32)
            return vector / np.linalg.norm(vector)
        from vcframe.audio import load_audio

        waveform = load_audio(utterance.audio, sample_rate=self.sample_rate)
        embedding: np.ndarray = self.encoder.embed(waveform).vector[0].detach().cpu().numpy().astype(np.float32)
        return embedding


_WORKER: dict[str, Any] = {}


def _init_worker(
    encoder: str, overrides: dict[str, Any] | None, mel: dict[str, Any], out_dir: str, max_frames: int
) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER.update(
        embedder=SpeakerEmbedder(encoder, overrides),
        mel=MelSpec.model_validate(mel),
        out=Path(out_dir),
        max_frames=max_frames,
    )


def _process(utterance: Utterance) -> dict[str, Any] | None:
    from vcframe.audio import load_audio, mel_spectrogram, rescale_peak

    out, spec = _WORKER["out"], _WORKER["mel"]
    mel_path, embed_path = out / "mels" / f"{utterance.id}.npy", out / "embeds" / f"{utterance.id}.npy"
    if mel_path.is_file() and embed_path.is_file():
        frames = int(load_array(mel_path, what="mel", mmap_mode="r").shape[1])
    else:
        try:
            samples = load_audio(utterance.audio, sample_rate=spec.sample_rate).item(0)
        except InputError as error:
            return {"id": utterance.id, "skipped": str(error)}
        samples = rescale_peak(samples)  # RTVC: rescale to a 0.9 peak
        mel = mel_spectrogram(samples, spec)
        frames = int(mel.shape[1])
        if frames > _WORKER["max_frames"]:
            return {"id": utterance.id, "skipped": f"{frames} frames > max_frames"}
        try:
            embedding = _WORKER["embedder"](utterance)
        except InputError as error:  # e.g. a clip shorter than the encoder accepts
            return {"id": utterance.id, "skipped": str(error)}
        for path, array in ((mel_path, mel), (embed_path, embedding)):
            with atomic_path(path, suffix=".npy") as temp:
                np.save(temp, array)
    return {
        **asdict(utterance),
        "mel": f"mels/{utterance.id}.npy",
        "embed": f"embeds/{utterance.id}.npy",
        "frames": frames,
    }


def preprocess(
    root: str,
    out_dir: str,
    *,
    corpus_format: str = "auto",
    encoder: str = "ge2e",
    encoder_overrides: dict[str, Any] | None = None,
    mel: MelSpec = RTVC_SYNTHESIZER_MEL,
    workers: int = 1,
    max_frames: int = 900,
) -> Path:
    """Process the corpus into ``out_dir``; returns the manifest path. Resumable (existing files are kept)."""
    if corpus_format == "auto" and Path(root).is_dir():
        corpus_format = detect_format(Path(root))
    utterances = find_utterances(root, corpus_format)
    out = Path(out_dir)
    (out / "mels").mkdir(parents=True, exist_ok=True)
    (out / "embeds").mkdir(parents=True, exist_ok=True)
    init_args = (encoder, encoder_overrides, mel.model_dump(mode="json"), str(out), max_frames)
    if workers <= 1:
        _init_worker(*init_args)
        rows = [_process(u) for u in utterances]
    else:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers, _init_worker, init_args) as pool:
            rows = pool.map(_process, utterances, chunksize=4)
    kept = [row for row in rows if row is not None and "skipped" not in row]
    embedder = _WORKER.get("embedder") if workers <= 1 else SpeakerEmbedder(encoder, encoder_overrides)
    info = {
        "corpus": str(Path(root).resolve()),
        "format": corpus_format,
        "encoder": encoder,
        "embedding_space": embedder.space if embedder else None,
        "embedding_dim": embedder.dim if embedder else None,
        "mel_spec": mel.model_dump(mode="json"),
        "utterances": len(kept),
        "skipped": [row for row in rows if row is not None and "skipped" in row],
    }
    if encoder != "random-per-speaker" and embedder is not None:
        info["embedding_spec"] = embedder.embedding_spec.model_dump()
    with atomic_write(out / "info.json", "w") as stream:
        json.dump(info, stream, indent=1)
    manifest = out / "manifest.jsonl"
    with atomic_write(manifest, "w") as stream:
        for row in kept:
            stream.write(json.dumps(row) + "\n")
    return manifest


def read_manifest(folder: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(rows, info) of a preprocessed folder."""
    base = Path(folder)
    if not (base / "manifest.jsonl").is_file():
        raise InputError(f"no manifest.jsonl in {str(base)!r}", hint="run the preprocess command first")
    rows = [json.loads(line) for line in (base / "manifest.jsonl").read_text().splitlines() if line.strip()]
    info = json.loads((base / "info.json").read_text()) if (base / "info.json").is_file() else {}
    return rows, info
