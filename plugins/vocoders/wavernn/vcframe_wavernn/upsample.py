"""WaveRNN's conditioning network: mel ResNet (aux features) and the stretch + smoothing upsampler.

Module and parameter names follow RTVC's ``vocoder/models/fatchord_version.py`` exactly, so that the state
dict of an RTVC ``vocoder.pt`` loads with ``strict=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    """``x + BN2(Conv1x1(ReLU(BN1(Conv1x1(x)))))``; no bias, no ReLU after the sum.

    Args:
        dims: channels (RTVC: 128).

    Shapes: (B, dims, T) -> (B, dims, T).
    """

    def __init__(self, dims: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(dims, dims, kernel_size=1, bias=False)
        self.conv2 = nn.Conv1d(dims, dims, kernel_size=1, bias=False)
        self.batch_norm1 = nn.BatchNorm1d(dims)
        self.batch_norm2 = nn.BatchNorm1d(dims)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = F.relu(self.batch_norm1(self.conv1(features)))
        output: torch.Tensor = self.batch_norm2(self.conv2(hidden)) + features
        return output


class MelResNet(nn.Module):
    """Aux feature extractor: Conv1d(k=2*pad+1, no padding) + BN + ReLU, residual blocks, Conv1x1 out.

    Args:
        res_blocks: number of :class:`ResBlock` (RTVC: 10).
        in_dims: mel bands (80).
        compute_dims: hidden channels (RTVC: 128).
        res_out_dims: output channels (RTVC: 128).
        pad: context frames each side; the input conv drops ``2 * pad`` frames.

    Shapes: (B, in_dims, T) -> (B, res_out_dims, T - 2 * pad).
    """

    def __init__(self, res_blocks: int, in_dims: int, compute_dims: int, res_out_dims: int, pad: int) -> None:
        super().__init__()
        self.conv_in = nn.Conv1d(in_dims, compute_dims, kernel_size=pad * 2 + 1, bias=False)
        self.batch_norm = nn.BatchNorm1d(compute_dims)
        self.layers = nn.ModuleList([ResBlock(compute_dims) for _ in range(res_blocks)])
        self.conv_out = nn.Conv1d(compute_dims, res_out_dims, kernel_size=1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        features = F.relu(self.batch_norm(self.conv_in(mel)))
        for layer in self.layers:
            features = layer(features)
        output: torch.Tensor = self.conv_out(features)
        return output


class Stretch2d(nn.Module):
    """Nearest-neighbour repetition along the last two axes (parameter-free).

    Shapes: (B, C, H, W) -> (B, C, H * y_scale, W * x_scale).
    """

    def __init__(self, x_scale: int, y_scale: int) -> None:
        super().__init__()
        self.x_scale = x_scale
        self.y_scale = y_scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = features.size()
        features = features.unsqueeze(-1).unsqueeze(3)
        features = features.repeat(1, 1, 1, self.y_scale, 1, self.x_scale)
        return features.view(batch, channels, height * self.y_scale, width * self.x_scale)


class UpsampleNetwork(nn.Module):
    """Mel (B, n_mels, T + 2 pad) -> per-sample conditioning: mel path (B, S, n_mels), aux (B, S, res_out_dims).

    ``S = T * prod(upsample_scales)``. The mel path repeats each step ``s`` times and smooths it with a
    (1, 2s+1) Conv2d (initialised to the box 1/(2s+1), as RTVC does), for each scale; ``pad * hop`` samples are
    then cropped at each end. The aux path runs :class:`MelResNet` and repeats each frame ``hop`` times.

    Args:
        feat_dims: mel bands (80).
        upsample_scales: factors whose product is the hop length (RTVC: (5, 5, 8)).
        compute_dims, res_blocks, res_out_dims, pad: see :class:`MelResNet`.
    """

    def __init__(
        self,
        feat_dims: int,
        upsample_scales: tuple[int, ...],
        compute_dims: int,
        res_blocks: int,
        res_out_dims: int,
        pad: int,
    ) -> None:
        super().__init__()
        total_scale = 1
        for scale in upsample_scales:
            total_scale *= scale
        self.indent = pad * total_scale
        self.resnet = MelResNet(res_blocks, feat_dims, compute_dims, res_out_dims, pad)
        self.resnet_stretch = Stretch2d(total_scale, 1)
        self.up_layers = nn.ModuleList()
        for scale in upsample_scales:
            kernel = (1, scale * 2 + 1)
            conv = nn.Conv2d(1, 1, kernel_size=kernel, padding=(0, scale), bias=False)
            conv.weight.data.fill_(1.0 / kernel[1])
            self.up_layers.append(Stretch2d(scale, 1))
            self.up_layers.append(conv)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        aux = self.resnet_stretch(self.resnet(mel).unsqueeze(1)).squeeze(1)
        upsampled = mel.unsqueeze(1)
        for layer in self.up_layers:
            upsampled = layer(upsampled)
        upsampled = upsampled.squeeze(1)[:, :, self.indent : -self.indent]
        return upsampled.transpose(1, 2), aux.transpose(1, 2)

    def mel_operator(self, frames: int) -> torch.Tensor:
        """The mel path of :meth:`forward` as a matrix: (S, frames), ``S = (frames - 2 pad) * hop``.

        The stretch + smoothing stages are linear in the mel and the same for every band, so the mel path of a
        ``frames``-frame window is ``operator @ mel_band`` for each band. The operator is the response of the
        stages to unit impulses: one small batch of ``frames`` rows instead of ``batch * n_mels`` (the single-
        channel convolutions are slow to differentiate at that size). Differentiable in the smoothing kernels.
        """
        smoothing = self.up_layers[1]
        assert isinstance(smoothing, nn.Conv2d)
        impulses = torch.eye(frames, dtype=smoothing.weight.dtype, device=smoothing.weight.device)
        upsampled = impulses.view(frames, 1, 1, frames)
        for layer in self.up_layers:
            upsampled = layer(upsampled)
        return upsampled.view(frames, -1)[:, self.indent : -self.indent].t()

    def phase_taps(self, reach: int = 2) -> torch.Tensor:
        """The mel path of :meth:`forward` per output sample: (hop, 2 reach + 1) taps, ``taps[p, reach + d]`` the
        weight of mel frame ``f + d`` in output sample ``f * hop + p``.

        The stretch + smoothing stages are shift-invariant by one frame (``hop`` samples), and their smoothing
        reaches less than ``reach`` frames to each side (RTVC's (5, 5, 8): 248 samples, 1.24 frames), so the
        (S, frames) operator is ``hop`` rows of ``2 reach + 1`` taps repeated along the diagonal.
        Read off the operator of a ``2 (reach + pad) + 1``-frame window at its middle frame.
        """
        pad = self.indent // self._hop()
        operator = self.mel_operator(2 * (reach + pad) + 1)  # ((2 reach + 1) hop, frames)
        hop = self._hop()
        middle = operator[reach * hop : (reach + 1) * hop]
        return middle[:, pad : pad + 2 * reach + 1].contiguous()

    def _hop(self) -> int:
        hop = 1
        for layer in self.up_layers:
            if isinstance(layer, Stretch2d):
                hop *= layer.x_scale
        return hop

    def mel_path_by_phase(self, mel: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
        """:meth:`forward`'s mel path of one padded mel from :meth:`phase_taps`: (n_mels, T + 2 pad) -> (T * hop,
        n_mels), contiguous.

        A few multiply-adds per output value in place of the stretch + three single-channel convolutions, which
        oneDNN runs at a fraction of a GMAC/s at (1, 1, 80, S) (RTVC preset, 4 s, 1 thread: 0.43 s -> about 0.03 s).
        Equal to :meth:`forward`'s mel path within float32 rounding (the taps are the cascade's products; the
        convolutions sum in another order): about 1e-6 of the mel's scale. Elementwise arithmetic, so a window of
        frames gives the same bits as the whole mel at the same positions.
        """
        hop, width = taps.shape
        reach = width // 2
        pad = self.indent // hop
        bands, padded_frames = mel.shape
        frames = padded_frames - 2 * pad
        # frame f + d of the unpadded mel is padded frame pad + f + d; frames outside the padded mel are zeros
        extended = torch.nn.functional.pad(mel, (max(0, reach - pad), max(0, reach - pad))).t()
        offset = max(0, reach - pad) + pad
        out = torch.zeros(frames, hop, bands, dtype=mel.dtype, device=mel.device)
        for index in range(width):
            start = offset + index - reach
            source = extended[start : start + frames].unsqueeze(1)  # (T, 1, n_mels)
            out.addcmul_(taps[:, index].view(1, hop, 1), source)
        return out.view(frames * hop, bands)
