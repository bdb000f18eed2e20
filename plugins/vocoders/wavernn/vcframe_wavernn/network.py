"""The WaveRNN network (RTVC's fatchord version, RAW mode): conditioning, input layer, two GRUs, three FC layers.

Parameter names equal RTVC's (``upsample.*``, ``I``, ``rnn1``, ``rnn2``, ``fc1..3``, ``step``), so
``network.load_state_dict(rtvc_checkpoint["model_state"])`` works with ``strict=True``.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import record_function

from vcframe_wavernn.fused import Engine, gru_sequence
from vcframe_wavernn.upsample import UpsampleNetwork


class GRUParameters(NamedTuple):
    """A one-layer ``nn.GRU``'s ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0`` and ``bias_hh_l0``, typed (the
    module registers them by name, which a type checker reads as ``Tensor | Module``)."""

    weight_ih: torch.Tensor
    weight_hh: torch.Tensor
    bias_ih: torch.Tensor
    bias_hh: torch.Tensor


def gru_parameters(gru: nn.GRU) -> GRUParameters:
    """``gru``'s first-layer parameters: the module's own Parameter objects, not copies."""
    return GRUParameters(
        cast(torch.Tensor, gru.weight_ih_l0),
        cast(torch.Tensor, gru.weight_hh_l0),
        cast(torch.Tensor, gru.bias_ih_l0),
        cast(torch.Tensor, gru.bias_hh_l0),
    )


class WaveRNN(nn.Module):
    """Mel-conditioned autoregressive sample model over ``2**bits`` mu-law classes.

    Args:
        rnn_dims: GRU width (RTVC: 512).
        fc_dims: width of fc1 and fc2 (RTVC: 512).
        bits: mu-law bits; ``n_classes = 2**bits`` (RTVC: 9).
        pad: mel context frames each side (RTVC: 2).
        upsample_factors: product must equal ``hop_length`` (RTVC: (5, 5, 8)).
        feat_dims: mel bands (80).
        compute_dims: mel ResNet channels (RTVC: 128).
        res_out_dims: aux channels, four slices of ``res_out_dims // 4`` (RTVC: 128).
        res_blocks: mel ResNet blocks (RTVC: 10).
        hop_length: samples per mel frame (200).

    ``forward(samples (B, S), mel (B, feat_dims, S / hop + 2 pad)) -> logits (B, S, n_classes)``, teacher
    forced: ``samples[:, i]`` is the previous sample in [-1, 1] when predicting class ``i``.
    """

    def __init__(
        self,
        rnn_dims: int = 512,
        fc_dims: int = 512,
        bits: int = 9,
        pad: int = 2,
        upsample_factors: tuple[int, ...] = (5, 5, 8),
        feat_dims: int = 80,
        compute_dims: int = 128,
        res_out_dims: int = 128,
        res_blocks: int = 10,
        hop_length: int = 200,
    ) -> None:
        super().__init__()
        total = 1
        for factor in upsample_factors:
            total *= factor
        if total != hop_length:
            raise ValueError(
                f"upsample factors {tuple(upsample_factors)} multiply to {total}, not hop_length {hop_length}"
            )
        if res_out_dims % 4:
            raise ValueError(f"res_out_dims ({res_out_dims}) must be a multiple of 4")
        self.pad = pad
        self.n_classes = 2**bits
        self.rnn_dims = rnn_dims
        self.fc_dims = fc_dims
        self.aux_dims = res_out_dims // 4
        self.hop_length = hop_length
        self.feat_dims = feat_dims
        self.upsample = UpsampleNetwork(feat_dims, tuple(upsample_factors), compute_dims, res_blocks, res_out_dims, pad)
        self.I = nn.Linear(feat_dims + self.aux_dims + 1, rnn_dims)
        self.rnn1 = nn.GRU(rnn_dims, rnn_dims, batch_first=True)
        self.rnn2 = nn.GRU(rnn_dims + self.aux_dims, rnn_dims, batch_first=True)
        self.fc1 = nn.Linear(rnn_dims + self.aux_dims, fc_dims)
        self.fc2 = nn.Linear(fc_dims + self.aux_dims, fc_dims)
        self.fc3 = nn.Linear(fc_dims, self.n_classes)
        # RTVC's step counter; typed as the Tensor that ``+=`` returns (in place: it stays this Parameter)
        self.step: torch.Tensor = nn.Parameter(torch.zeros(1, dtype=torch.long), requires_grad=False)

    def split_aux(self, aux: torch.Tensor) -> list[torch.Tensor]:
        """(B, S, 4 * aux_dims) -> four (B, S, aux_dims) slices feeding I, rnn2, fc1 and fc2."""
        width = self.aux_dims
        return [aux[..., width * i : width * (i + 1)] for i in range(4)]

    def forward(
        self, samples: torch.Tensor, mel: torch.Tensor, fused: bool = False, engine: Engine = "auto"
    ) -> torch.Tensor:
        # RTVC increments the step counter on every forward; kept so step counts mean the same thing
        with torch.no_grad():
            self.step += 1
        if fused:
            return self._fused_forward(samples, mel, engine)
        batch = samples.size(0)
        h1 = samples.new_zeros(1, batch, self.rnn_dims)
        h2 = samples.new_zeros(1, batch, self.rnn_dims)
        upsampled, aux = self.upsample(mel)
        a1, a2, a3, a4 = self.split_aux(aux)
        hidden = self.I(torch.cat([samples.unsqueeze(-1), upsampled, a1], dim=2))
        residual = hidden
        hidden, _ = self.rnn1(hidden, h1)
        hidden = hidden + residual
        residual = hidden
        hidden, _ = self.rnn2(torch.cat([hidden, a2], dim=2), h2)
        hidden = hidden + residual
        hidden = F.relu(self.fc1(torch.cat([hidden, a3], dim=2)))
        hidden = F.relu(self.fc2(torch.cat([hidden, a4], dim=2)))
        logits: torch.Tensor = self.fc3(hidden)
        return logits

    def _fused_forward(self, samples: torch.Tensor, mel: torch.Tensor, engine: Engine) -> torch.Tensor:
        """The training forward (``fused=True``): the same function, arranged for speed on the CPU.

        * Time-major (S, B, .) throughout, as the GRUs step through time: every step reads contiguous memory.
          The logits come back as a (B, S, n_classes) view of (S, B, n_classes) memory.
        * The aux features enter I, rnn2, fc1 and fc2 through their own columns of those layers' weights; that
          part is computed once per frame and added to the frame's ``hop`` samples by broadcasting (the
          reference repeats the features ``hop`` times and multiplies them at every sample).
        * The mel path of the upsampler is linear in the mel and the same for every band: a (S, frames)
          operator (:meth:`UpsampleNetwork.mel_operator`), applied after I's mel columns, so the (B, S, n_mels)
          upsampled mel is never formed.
        * Both GRUs run as :func:`~vcframe_wavernn.fused.gru_sequence` (``engine``: 'auto', 'cpp', 'torch').
        * Under bfloat16 autocast the residual stream and the GRUs' recurrent products are bfloat16 too.

        Its parts are labelled for ``torch.profiler`` (``wavernn.mel_resnet``, ``wavernn.upsample``,
        ``wavernn.input``, ``wavernn.gru1``, ``wavernn.gru2``, ``wavernn.output``).
        """
        batch, length = samples.shape
        hop, rnn, n_mels = self.hop_length, self.rnn_dims, self.feat_dims
        frames = length // hop
        low_precision = torch.is_autocast_enabled("cpu")
        matmul_dtype = torch.get_autocast_dtype("cpu") if low_precision else torch.float32

        def per_frame(hidden: torch.Tensor, frame_term: torch.Tensor) -> torch.Tensor:
            # (S, B, D) + (T, B, D) repeated hop times along S, without forming the repetition
            width = hidden.shape[-1]
            return (hidden.view(frames, hop, batch, width) + frame_term.unsqueeze(1)).view(length, batch, width)

        with record_function("wavernn.mel_resnet"):
            aux = self.upsample.resnet(mel).permute(2, 0, 1)  # (T, B, 4 aux), once per frame
            a1, a2, a3, a4 = self.split_aux(aux)
        in_weight = self.I.weight  # columns: previous sample | mel | a1
        with record_function("wavernn.upsample"):
            mel_projection = F.linear(mel.permute(2, 0, 1), in_weight[:, 1 : 1 + n_mels])  # (T + 2 pad, B, rnn)
            operator = self.upsample.mel_operator(mel.shape[-1])  # (S, T + 2 pad)
            mel_term = torch.matmul(operator, mel_projection.flatten(1)).view(length, batch, rnn)
        with record_function("wavernn.input"):
            hidden = per_frame(
                torch.addcmul(mel_term, samples.t().unsqueeze(-1), in_weight[:, 0]),
                F.linear(a1, in_weight[:, 1 + n_mels :], self.I.bias),
            )
            if low_precision:
                hidden = hidden.to(matmul_dtype)
        zeros = hidden.new_zeros(batch, rnn, dtype=torch.float32)

        def recurrent(projection: torch.Tensor, gru: torch.nn.GRU) -> torch.Tensor:
            """``gru`` over the whole sequence from a zero state, given its input projection (S, B, 3 rnn)."""
            parameters = gru_parameters(gru)
            return gru_sequence(
                projection,
                zeros,
                parameters.weight_hh,
                parameters.bias_ih,
                parameters.bias_hh,
                matmul_dtype=matmul_dtype,
                engine=engine,
            )

        with record_function("wavernn.gru1"):
            hidden = hidden + recurrent(F.linear(hidden, gru_parameters(self.rnn1).weight_ih), self.rnn1)
        with record_function("wavernn.gru2"):
            weight = gru_parameters(self.rnn2).weight_ih  # columns: rnn1's output | a2
            projection = per_frame(F.linear(hidden, weight[:, :rnn]), F.linear(a2, weight[:, rnn:]))
            hidden = hidden + recurrent(projection, self.rnn2)
        with record_function("wavernn.output"):
            weight = self.fc1.weight
            hidden = F.relu(per_frame(F.linear(hidden, weight[:, :rnn]), F.linear(a3, weight[:, rnn:], self.fc1.bias)))
            weight, fc = self.fc2.weight, self.fc_dims
            hidden = F.relu(per_frame(F.linear(hidden, weight[:, :fc]), F.linear(a4, weight[:, fc:], self.fc2.bias)))
            logits: torch.Tensor = self.fc3(hidden)
            return logits.transpose(0, 1)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
