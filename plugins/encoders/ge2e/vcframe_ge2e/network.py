"""The GE2E speaker encoder network, parameter for parameter RTVC's ``encoder/model.py:SpeakerEncoder``."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class SpeakerEncoderNet(nn.Module):
    """Stacked LSTM over mel frames -> linear -> ReLU -> L2 normalisation.

    The state-dict keys are RTVC's (``lstm.*``, ``linear.*``, ``similarity_weight``, ``similarity_bias``), so
    an RTVC ``encoder.pt`` or resemblyzer's ``pretrained.pt`` loads with ``strict=True``.

    Args:
        n_mels: mel bands per input frame (default: ``40``).
        hidden_size: LSTM width (default: ``256``).
        num_layers: stacked LSTM layers (default: ``3``).
        embedding_size: output dimension (default: ``256``).

    Shapes: ``forward(mels (B, T, n_mels), lengths (B,) optional) -> (B, embedding_size)``, unit L2 norm,
    non-negative. Without ``lengths`` every item uses all T frames (RTVC); with ``lengths`` each item's
    embedding comes from the LSTM state after its own last frame (packed sequences), so padding is ignored.
    """

    def __init__(
        self, n_mels: int = 40, hidden_size: int = 256, num_layers: int = 3, embedding_size: int = 256
    ) -> None:
        super().__init__()
        for name, value in (
            ("n_mels", n_mels),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
            ("embedding_size", embedding_size),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.n_mels = n_mels
        self.lstm = nn.LSTM(input_size=n_mels, hidden_size=hidden_size, num_layers=num_layers, batch_first=True)
        self.linear = nn.Linear(hidden_size, embedding_size)
        self.relu = nn.ReLU()
        # GE2E similarity scale and bias (Wan et al. 2018; RTVC initialises them to 10 and -5)
        self.similarity_weight = nn.Parameter(torch.tensor([10.0]))
        self.similarity_bias = nn.Parameter(torch.tensor([-5.0]))

    def forward(self, mels: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if mels.dim() != 3 or mels.shape[2] != self.n_mels:
            raise ValueError(f"mels must be (B, T, {self.n_mels}), got {tuple(mels.shape)}")
        if lengths is None:
            _, (hidden, _) = self.lstm(mels)
        else:
            if lengths.shape != (mels.shape[0],):
                raise ValueError(f"lengths must be ({mels.shape[0]},), got {tuple(lengths.shape)}")
            packed = pack_padded_sequence(mels, lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, (hidden, _) = self.lstm(packed)
        embeds_raw: torch.Tensor = self.relu(self.linear(hidden[-1]))
        embeds: torch.Tensor = embeds_raw / (torch.norm(embeds_raw, dim=1, keepdim=True) + 1e-5)
        return embeds
