"""The GE2E speaker encoder component: preprocessing, partial slicing, batched inference, weight loading."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vcframe.checkpoints import ResolvedCheckpoint, check_checkpoint_component, load_state, resolve, uninitialised
from vcframe.errors import AudioInputError, CheckpointError, InputError
from vcframe.interfaces import BaseSpeakerEncoder
from vcframe.types import SpeakerEmbedding, Waveform
from vcframe_ge2e.network import SpeakerEncoderNet
from vcframe_ge2e.preprocess import (
    MIN_SPEECH_S,
    SAMPLE_RATE,
    PartialSlices,
    compute_partial_slices,
    normalize_volume,
    preprocess_wav,
    speech_seconds,
    wav_to_mel,
)
from vcframe_ge2e.spec import SPEC, GE2EConfig

N_MELS = 40


@dataclass
class UtteranceEmbedding:
    """One clip's embedding with its partial embeddings (P, D) and the partials' sample ranges (P, 2)."""

    embedding: torch.Tensor
    partial_embeddings: torch.Tensor
    wav_slices: np.ndarray


def build_network(config: GE2EConfig) -> SpeakerEncoderNet:
    hidden, layers, embedding = config.sizes
    return SpeakerEncoderNet(n_mels=N_MELS, hidden_size=hidden, num_layers=layers, embedding_size=embedding)


def load_weights(network: torch.nn.Module, reference: str) -> ResolvedCheckpoint:
    """Load ``reference`` ('default', 'registry:<id>' or a path) into ``network`` with strict key and shape checks.

    Accepts RTVC ``encoder.pt`` files (``{"step", "model_state", "optimizer_state"}``), resemblyzer's
    ``pretrained.pt``, vcframe training checkpoints and safetensors exports.
    """
    resolved = resolve("encoder", SPEC.name, reference)
    state, metadata = load_state(resolved.path)
    check_checkpoint_component(metadata, "encoder", SPEC.name, str(resolved.path))
    resolved.metadata = metadata
    check_state(network, state, str(resolved.path))
    network.load_state_dict(state, strict=True)
    return resolved


def check_state(network: torch.nn.Module, state: dict[str, Any], name: str) -> None:
    """CheckpointError naming the first missing, unexpected or mis-shaped key (with both shapes)."""
    expected = network.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {name!r} is not a GE2E encoder state: missing keys {missing[:4]}, "
            f"unexpected keys {unexpected[:4]}",
            hint="give an RTVC encoder.pt, resemblyzer's pretrained.pt or a vcframe-ge2e export",
        )
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"checkpoint {name!r} does not fit this encoder: {key} has shape {tuple(state[key].shape)} in the "
                f"checkpoint but {tuple(tensor.shape)} in the model",
                hint="set preset (rtvc, small, tiny) or hidden_size/num_layers/embedding_size to match it",
            )


class GE2EEncoder(BaseSpeakerEncoder):
    """GE2E speaker encoder (Wan et al. 2018) as built by RTVC, with batched inference.

    Args:
        config: GE2EConfig (default: RTVC sizes, the pretrained resemblyzer weights, partials on,
            volume normalisation to -30 dBFS, webrtcvad trimming when installed).
        device: where the network runs (default: ``"cpu"``).

    Shapes: ``embed(Waveform (B, T) at 16 kHz) -> SpeakerEmbedding (B, 256)``, unit L2 norm.
    Each clip is volume-normalised and trimmed, cut into 1.6 s partials with 50 % overlap, and the partial
    embeddings are averaged and re-normalised (RTVC's ``embed_utterance``). The partials of *all* clips in the
    batch go through the LSTM together (they all have 160 frames, so no padding is involved); the result
    equals embedding the clips one at a time up to floating-point reassociation (< 1e-6).
    ``embed_speaker(Waveform (B, T)) -> (1, 256)``: the normalised mean of the B clip embeddings
    (resemblyzer's definition; RTVC's ``embed_speaker`` raises).
    """

    spec = SPEC

    def __init__(self, config: GE2EConfig | None = None, *, device: torch.device | str = "cpu") -> None:
        super().__init__(config, device=device)
        self.config: GE2EConfig
        if self.config.max_batch_partials < 1:
            raise ValueError(f"max_batch_partials must be at least 1, got {self.config.max_batch_partials}")
        self.checkpoint: ResolvedCheckpoint | None = None
        if self.config.checkpoint is None:
            self.network = build_network(self.config)
        else:  # the weights overwrite every parameter: no random initialisation
            self.network = uninitialised(functools.partial(build_network, self.config))
            self.checkpoint = load_weights(self.network, self.config.checkpoint)
        self.network.eval().to(self.device)

    # -- public helpers -------------------------------------------------------------------------------

    def preprocess(self, wav: np.ndarray) -> np.ndarray:
        """Volume normalisation and silence trimming as configured (1-D float32 at 16 kHz)."""
        return preprocess_wav(
            wav,
            normalize=self.config.normalize_volume,
            target_dbfs=self.config.target_dbfs,
            vad=self.config.vad,
        )

    def check_speech(self, wavs: list[np.ndarray]) -> None:
        """AudioInputError for the first clip in which the voice-activity detector finds less than
        ``MIN_SPEECH_S`` of speech (full-scale noise), unless ``require_speech`` is off."""
        if not self.config.require_speech:
            return
        method = self.config.vad if self.config.vad != "off" else "energy"
        for index, wav in enumerate(wavs):
            level = normalize_volume(np.asarray(wav, dtype=np.float32), self.config.target_dbfs)
            found = speech_seconds(level, method)
            if found < MIN_SPEECH_S:
                which = "the reference clip" if len(wavs) == 1 else f"reference clip {index + 1} of {len(wavs)}"
                seconds = len(wav) / SAMPLE_RATE
                raise AudioInputError(
                    f"{which} has no detectable speech: the voice-activity detector found {found:.2f} s of voice in "
                    f"{seconds:.2f} s (needs {MIN_SPEECH_S} s; noise is not a voice)",
                    hint="use a recording of the speaker talking (the ge2e option require_speech=false skips this)",
                )

    def partial_slices(self, n_samples: int) -> PartialSlices:
        return compute_partial_slices(
            n_samples, self.config.partial_frames, self.config.min_pad_coverage, self.config.partial_overlap
        )

    @torch.inference_mode()
    def embed_frames(self, mels: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, 40) power mels (optionally with lengths) -> (B, D) embeddings, in chunks of max_batch_partials."""
        mels = mels.to(self.device, torch.float32)
        if lengths is not None and bool((lengths == mels.shape[1]).all()):
            lengths = None
        outputs = []
        step = self.config.max_batch_partials
        for start in range(0, mels.shape[0], step):
            chunk_lengths = None if lengths is None else lengths[start : start + step]
            outputs.append(self.network(mels[start : start + step], chunk_lengths))
        return torch.cat(outputs)

    def embed_utterances(self, wavs: list[np.ndarray], *, preprocess: bool = True) -> list[UtteranceEmbedding]:
        """Embed clips (1-D float32 at 16 kHz) with partials, all partials in shared forward passes."""
        if not wavs:
            raise InputError("no audio to embed (empty list)")
        partial_mels: list[np.ndarray] = []
        plans: list[tuple[int, int, np.ndarray]] = []
        for index, wav in enumerate(wavs):
            clip = self.preprocess(wav) if preprocess else np.asarray(wav, dtype=np.float32)
            if clip.size == 0:
                raise InputError(f"clip {index} is empty")
            slices = self.partial_slices(len(clip))
            if slices.padded_length >= len(clip):
                clip = np.pad(clip, (0, slices.padded_length - len(clip)))
            mel = wav_to_mel(clip)
            plans.append((len(partial_mels), len(slices.mel), slices.wav))
            partial_mels.extend(mel[start:stop] for start, stop in slices.mel)
        partials = self.embed_frames(torch.from_numpy(np.stack(partial_mels)))
        results = []
        for first, count, wav_slices in plans:
            own = partials[first : first + count]
            mean = own.mean(dim=0)
            results.append(UtteranceEmbedding(mean / torch.norm(mean, 2), own, wav_slices))
        return results

    def embed_whole(self, wavs: list[np.ndarray], *, preprocess: bool = True) -> torch.Tensor:
        """Embed each clip's whole mel at once (RTVC's ``using_partials=False``), padded and packed: (B, D)."""
        mels = [wav_to_mel(self.preprocess(wav) if preprocess else np.asarray(wav, dtype=np.float32)) for wav in wavs]
        lengths = torch.tensor([len(mel) for mel in mels])
        padded = np.zeros((len(mels), int(lengths.max()), N_MELS), dtype=np.float32)
        for row, mel in enumerate(mels):
            padded[row, : len(mel)] = mel
        return self.embed_frames(torch.from_numpy(padded), lengths)

    # -- the component contract ------------------------------------------------------------------------

    def _embed(self, waveform: Waveform) -> SpeakerEmbedding:
        wavs = waveform.items()
        self.check_speech(wavs)
        if self.config.partials:
            vectors = torch.stack([result.embedding for result in self.embed_utterances(wavs)])
        else:
            vectors = self.embed_whole(wavs)
        return SpeakerEmbedding(vectors.to(self.device).clone(), self.output_spec)
