"""Training data: (mel, mu-law labels) items and RTVC's random-segment collate.

An item is built as RTVC's ``VocoderDataset`` builds it: mel / 4; the wav pre-emphasised, clipped to
[-1, 1], zero-padded to ``(len // hop + 1) * hop``, cut to ``frames * hop`` and mu-law encoded. A batch takes,
per item, a window of ``seq_len / hop + 2 pad`` mel frames at a random offset and the ``seq_len + 1`` labels
that window predicts (``x`` = the first ``seq_len`` as floats, ``y`` = the last ``seq_len``). Optionally the mel
window is smoothed across frequency first (:class:`vcframe.datasets.MelSmoothing`, ``fit --mel-smoothing``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vcframe.audio import preemphasis
from vcframe.datasets import MelCache, MelSmoothing, find_clips, load_audio_and_mel, load_each_once
from vcframe.errors import InputError
from vcframe.specs import MelSpec
from vcframe_wavernn.signal import encode_mu_law


@dataclass
class VocoderItem:
    name: str
    mel: np.ndarray  # (n_mels, T) float32, model scale (mel / max_abs_value)
    labels: np.ndarray  # (T * hop,) uint16 mu-law classes (up to 16 bits; collate returns them as int64)
    given_mel: bool = False  # the mel came with the clip (GTA) rather than from the audio: never smoothed


def make_item(
    name: str, wav: np.ndarray, mel: np.ndarray, spec: MelSpec, bits: int, given_mel: bool = False
) -> VocoderItem:
    """One training item from a 16 kHz wav and its (n_mels, T) mel in the spec's range (RTVC's recipe);
    ``given_mel`` (default False): the mel came with the clip (a GTA mel), so collate leaves it unsmoothed."""
    hop = spec.hop_length
    model_mel = (mel / spec.max_abs_value).astype(np.float32)
    signal = preemphasis(wav, spec.preemphasis) if spec.preemphasis else np.asarray(wav, dtype=np.float64)
    signal = np.clip(signal, -1, 1)
    signal = np.pad(signal, (0, (len(signal) // hop + 1) * hop - len(signal)), mode="constant")
    frames = model_mel.shape[1]
    if len(signal) < frames * hop:
        raise InputError(f"{name}: the mel has {frames} frames but the audio covers only {len(signal) // hop}")
    signal = signal[: frames * hop]
    return VocoderItem(name, model_mel, encode_mu_law(signal, mu=2**bits).astype(np.uint16), given_mel)


def collate(
    items: list[VocoderItem],
    offsets: list[int],
    seq_len: int,
    hop: int,
    pad: int,
    bits: int,
    smoothing: MelSmoothing | None = None,
    indices: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RTVC's ``collate_vocoder`` with the mel offsets given.

    With ``smoothing`` (default None: mels as they are) each ground-truth mel window goes through it, seeded by
    the item's index in the training list (``indices``, required then) and its offset; a given (GTA) mel is a
    synthesizer's already and is left as it is; the labels are never changed.

    Returns x (B, seq_len) floats in [-1, 1], y (B, seq_len) labels and mels (B, n_mels, seq_len / hop + 2 pad).
    """
    mel_win = seq_len // hop + 2 * pad
    windows = [item.mel[:, off : off + mel_win] for item, off in zip(items, offsets, strict=True)]
    if smoothing is not None:
        if indices is None:
            raise ValueError("collate needs the items' indices to smooth their mels")
        windows = [
            window if item.given_mel else smoothing(window, index, off)
            for window, item, index, off in zip(windows, items, indices, offsets, strict=True)
        ]
    mels = np.stack(windows).astype(np.float32)
    starts = [(off + pad) * hop for off in offsets]
    segments = [item.labels[s : s + seq_len + 1] for item, s in zip(items, starts, strict=True)]
    labels = np.stack(segments).astype(np.int64)
    label_tensor = torch.tensor(labels).long()
    x = 2 * label_tensor[:, :seq_len].float() / (2**bits - 1.0) - 1.0
    return x, label_tensor[:, 1:], torch.tensor(mels)


def max_offset(item: VocoderItem, seq_len: int, hop: int, pad: int) -> int:
    """RTVC's exclusive upper bound of the random mel offset (``frames - 2 - (mel_win + 2 pad)``)."""
    mel_win = seq_len // hop + 2 * pad
    upper_bound: int = item.mel.shape[1] - 2 - (mel_win + 2 * pad)
    return upper_bound


def load_items(
    data: str | os.PathLike[str], spec: MelSpec, bits: int, *, mel_cache: MelCache | None = None
) -> tuple[list[VocoderItem], str]:
    """Items for every clip of ``data`` (a folder or manifest, :func:`vcframe.datasets.find_clips`; the
    ground-truth mel computed when the clip gives none, or read from ``mel_cache``, default None: no cache) and a
    one-line description.

    Each wav is peak-normalised first (:func:`vcframe.datasets.load_training_audio`), as the synthesizer's
    preprocessing does before it computes the mels a GTA run starts from, so a given mel and its wav agree in
    level. A clip listed more than once (a manifest's ``--real-speech-repeat``) is loaded once and listed as often,
    so the sampler draws it as often without holding it twice; labels are stored as 16-bit classes (a quarter of
    int64's memory: 12.7 h of listed audio would otherwise take 5.8 GB)."""
    clips = find_clips(data)
    items = load_each_once(
        clips,
        lambda clip: make_item(
            clip.audio.stem, *load_audio_and_mel(clip, spec, mel_cache=mel_cache), spec, bits, clip.mel is not None
        ),
    )
    gta = sum(clip.mel is not None for clip in clips)
    seconds = sum(item.labels.size for item in items) / spec.sample_rate
    loaded = {id(item) for item in items}
    distinct = f" ({len(loaded)} distinct)" if len(loaded) < len(items) else ""
    description = (
        f"{len(items)} utterances{distinct}, {seconds:.1f} s, from {data} ({gta} given mels, "
        f"{len(items) - gta} ground truth)"
    )
    return items, description
