"""The speaker-identity loss of ``fit --speaker-loss-weight`` (not in the original recipe).

HiFi-GAN's losses all compare the output with the one recording of the same mel (mel L1, feature matching) or
with real audio in general (the adversarial terms): none says *whose* voice the output must be, and for a
synthesizer's mel, which has no recording, nothing ties the output to the voice at all. A speaker-conditioned
generator (``--speaker-embeddings``) is told the voice but, with those losses alone, had no reason to use it
(session 35: the projection's output stayed small). This loss gives it one: GE2E's own training objective
(Wan et al. 2018, the softmax variant) applied to the generated segments, with the encoder frozen. Each
segment is volume-normalised as the encoder's preprocessing does, turned into the encoder's 40-band power mel
(differentiably, :class:`~vcframe_hifigan.melspec.MelFrontEnd` on :data:`~vcframe.specs.RTVC_ENCODER_MEL`) and
embedded; its logits are the encoder's scaled cosine similarities ``w cos + b`` to every training voice's
embedding, and the loss is the cross-entropy of its own voice. A contrastive form rather than ``1 - cos``:
GE2E's embeddings share a common direction, so raising the cosine to the own voice alone could be had by
moving every output towards that direction; the softmax only rewards being nearer the own voice than the
others.

Segments whose output is quieter than ``floor_dbfs`` (pauses) are left out: scaled to speech level, their
embedding says nothing about the voice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from vcframe.checkpoints import sha256_of
from vcframe.specs import RTVC_ENCODER_MEL
from vcframe_hifigan.melspec import MelFrontEnd


class SpeakerIdentityLoss(nn.Module):
    """GE2E's softmax loss of generated segments against the training voices' embeddings, the encoder frozen.

    Args:
        encoder: a GE2E network reading :data:`~vcframe.specs.RTVC_ENCODER_MEL` power mels (frozen here: its
            parameters stop requiring gradients; it is not a submodule, so it is in no optimiser or state dict).
        voices: (V, D) the embedding of each voice a segment may belong to (rows are normalised to unit length),
            V >= 2: with one voice there is nothing to tell apart.
        sample_rate: the generator's output rate; must be the encoder mel's (16,000 Hz).
        target_dbfs: the level each segment is scaled to before embedding (the encoder's preprocessing: -30).
        floor_dbfs: segments quieter than this (before scaling) are left out (default: -50).

    Shapes: ``forward(waveform (B, 1, L) or (B, L), voice (B,) int64)`` -> ``(loss (), accuracy ())``: the mean
    cross-entropy over the segments that count (0 if none does) and the share of them whose nearest voice is
    their own (a detached diagnostic).
    """

    voices: torch.Tensor

    def __init__(
        self,
        encoder: nn.Module,
        voices: torch.Tensor,
        sample_rate: int,
        *,
        target_dbfs: float = -30.0,
        floor_dbfs: float = -50.0,
    ) -> None:
        super().__init__()
        if sample_rate != RTVC_ENCODER_MEL.sample_rate:
            raise ValueError(
                f"the speaker loss embeds {RTVC_ENCODER_MEL.sample_rate} Hz audio (GE2E's), the generator makes "
                f"{sample_rate} Hz"
            )
        if voices.dim() != 2 or voices.shape[0] < 2:
            raise ValueError(f"voices must be (V >= 2, D), got {tuple(voices.shape)}")
        embedding_size = getattr(getattr(encoder, "linear", None), "out_features", voices.shape[1])
        if voices.shape[1] != embedding_size:
            raise ValueError(
                f"the voices' embeddings have {voices.shape[1]} values, the encoder makes {embedding_size}"
            )
        for parameter in encoder.parameters():
            parameter.requires_grad_(False)
        self._encoder = [encoder]  # a list: not registered, so not in this module's state dict or parameters
        self.front_end = MelFrontEnd(RTVC_ENCODER_MEL)
        self.register_buffer("voices", F.normalize(voices.float(), dim=1), persistent=False)
        self.target_amplitude = 10.0 ** (target_dbfs / 20.0)
        self.floor_amplitude = 10.0 ** (floor_dbfs / 20.0)

    @property
    def encoder(self) -> nn.Module:
        return self._encoder[0]

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> SpeakerIdentityLoss:
        """``.to(...)`` and the like move the encoder too (it is not a submodule); torch's ``_apply`` is untyped."""
        self._encoder[0] = self._encoder[0]._apply(fn)  # type: ignore[no-untyped-call]
        super()._apply(fn, recurse)  # type: ignore[no-untyped-call]
        return self

    def embed(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) embeddings of each segment scaled to ``target_dbfs`` (gradients flow to ``waveform``), and the
        (B,) mask of those at or above ``floor_dbfs``."""
        signal = waveform.squeeze(1) if waveform.dim() == 3 else waveform
        if signal.dim() != 2:
            raise ValueError(f"expected a waveform (B, L) or (B, 1, L), got shape {tuple(waveform.shape)}")
        rms = signal.detach().float().square().mean(dim=1).sqrt()
        loud = rms >= self.floor_amplitude
        gain = self.target_amplitude / rms.clamp(min=self.floor_amplitude)
        mels = self.front_end(signal.float() * gain.unsqueeze(1)).transpose(1, 2)  # (B, T, 40)
        # cuDNN's LSTM backward refuses an eval-mode network; the GE2E network has no dropout, so its function is
        # the same either way, and on a CPU this changes nothing
        with torch.backends.cudnn.flags(enabled=False):
            embeddings = self.encoder(mels)
        return embeddings, loud

    def forward(self, waveform: torch.Tensor, voice: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if voice.shape != (waveform.shape[0],):
            raise ValueError(f"voice must be ({waveform.shape[0]},), got {tuple(voice.shape)}")
        if voice.numel() and (int(voice.min()) < 0 or int(voice.max()) >= self.voices.shape[0]):
            raise ValueError(f"voice indices must lie in [0, {self.voices.shape[0]}), got {voice.tolist()}")
        embeddings, loud = self.embed(waveform)
        if not bool(loud.any()):
            zero = embeddings.sum() * 0.0  # keeps the graph: backward() works on a batch of pauses
            return zero, torch.zeros((), device=waveform.device)
        scale = cast(torch.Tensor, self.encoder.similarity_weight)  # GE2E's w and b (nn.Module attributes are untyped)
        bias = cast(torch.Tensor, self.encoder.similarity_bias)
        logits = scale * embeddings[loud] @ self.voices.T + bias
        loss = F.cross_entropy(logits, voice[loud])
        accuracy = (logits.detach().argmax(dim=1) == voice[loud]).float().mean()
        return loss, accuracy


def chance_loss(voices: int) -> float:
    """The loss of an output that favours no voice: ``ln V`` (what the logged ``speaker`` loss starts below)."""
    return math.log(voices)


def load_ge2e_network(checkpoint: str, device: torch.device) -> tuple[nn.Module, dict[str, str]]:
    """The GE2E network of the ``vcframe-ge2e`` plugin with ``checkpoint`` ('default': resemblyzer's pretrained
    weights; 'registry:<id>' or a path) and its record: the reference, the file, its sha256 and the embedding
    space. ImportError (for the caller to turn into one line) when the plugin is not installed."""
    from vcframe_ge2e.model import GE2EEncoder  # the speaker loss's optional dependency (extra "speaker-loss")
    from vcframe_ge2e.spec import GE2EConfig

    component = GE2EEncoder(GE2EConfig(checkpoint=checkpoint), device=device)
    path = component.checkpoint.path if component.checkpoint is not None else None
    record = {
        "checkpoint": checkpoint,
        "path": str(path),
        "sha256": sha256_of(path) if path is not None else "",
        "space": component.config.embedding_space,
    }
    return component.network, record
