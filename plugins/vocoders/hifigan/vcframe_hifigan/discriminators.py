"""HiFi-GAN's discriminators (training only): the multi-period (MPD) and the multi-scale (MSD) discriminator.

They reproduce jik876/hifi-gan's ``MultiPeriodDiscriminator`` and ``MultiScaleDiscriminator`` (SPEC.md
section 6) with the same state-dict keys, so the ``"mpd"`` and ``"msd"`` entries of an original ``do_XXXXXXXX``
training checkpoint (UNIVERSAL_V1's, for instance) load with ``load_state_dict``:

* weight-normalised convolutions hold ``bias``, ``weight_g`` and ``weight_v`` (:class:`WeightNormConv1d`,
  :class:`WeightNormConv2d`; the effective weight is ``v * (g / ||v||)`` per output channel);
* MSD sub-discriminator 0 uses ``torch.nn.utils.spectral_norm`` (``bias``, ``weight_orig`` and the power-iteration
  buffers ``weight_u``, ``weight_v``): in train mode every call advances ``u`` and ``v`` by one power iteration, in
  eval mode they stay as they are.

``width`` scales every hidden channel count (1.0 = the original, 41.1 M + 29.6 M parameters); a CPU run uses
0.25 or less (the parameter count falls with the square of the width).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Slope of every LeakyReLU in both discriminators.
LRELU_SLOPE = 0.1

#: The original MPD's periods (``discriminators.0`` ... ``.4``).
PERIODS = (2, 3, 5, 7, 11)

#: Output channels of the MPD's five (5, 1) convolutions at width 1.
PERIOD_CHANNELS = (32, 128, 512, 1024, 1024)

#: (output channels, kernel, stride, groups, padding) of the MSD's seven convolutions at width 1.
SCALE_LAYERS = (
    (128, 15, 1, 1, 7),
    (128, 41, 2, 4, 20),
    (256, 41, 2, 16, 20),
    (512, 41, 4, 16, 20),
    (1024, 41, 4, 16, 20),
    (1024, 41, 1, 16, 20),
    (1024, 5, 1, 1, 2),
)

#: The list types the discriminators return: one tensor per sub-discriminator, one list of maps per sub-discriminator.
Logits = list[torch.Tensor]
FeatureMaps = list[list[torch.Tensor]]


def _logits_and_feature_maps(
    convs: nn.ModuleList, conv_post: nn.Module, signal: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Both discriminators' body: each conv then LeakyReLU 0.1 (every activation a feature map), then
    ``conv_post`` (its raw output is the last feature map); returns (logits flattened to (B, -1), feature maps)."""
    feature_maps = []
    for conv in convs:
        signal = F.leaky_relu(conv(signal), LRELU_SLOPE)
        feature_maps.append(signal)
    signal = conv_post(signal)
    feature_maps.append(signal)
    return torch.flatten(signal, 1, -1), feature_maps


class _WeightNorm:
    """Mixin: replaces a convolution's ``weight`` parameter by ``weight_g`` (one gain per output channel) and
    ``weight_v`` (the direction), as ``torch.nn.utils.weight_norm(conv)`` does (dim 0, ``g = ||v||`` at start)."""

    weight_g: nn.Parameter
    weight_v: nn.Parameter

    def _split_weight(self) -> None:
        module: nn.Module = self  # type: ignore[assignment]
        weight = module.weight
        assert isinstance(weight, torch.Tensor)
        weight = weight.detach()
        del module.weight  # re-registered as g and v, after the bias (the original's state-dict order)
        module.weight_g = nn.Parameter(torch.norm_except_dim(weight, 2, 0))
        module.weight_v = nn.Parameter(weight.clone())

    def folded_weight(self) -> torch.Tensor:
        """The effective weight ``v * (g / ||v||)``: the kernel ``torch.nn.utils.weight_norm`` computes."""
        return torch._weight_norm(self.weight_v, self.weight_g, 0)


class WeightNormConv1d(_WeightNorm, nn.Conv1d):
    """``torch.nn.utils.weight_norm(nn.Conv1d(...))`` without the deprecated hook: same arguments as
    ``nn.Conv1d``; parameters ``bias`` (out,), ``weight_g`` (out, 1, 1), ``weight_v`` (out, in/groups, kernel)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._split_weight()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self._conv_forward(input, self.folded_weight(), self.bias)
        return output


class WeightNormConv2d(_WeightNorm, nn.Conv2d):
    """``torch.nn.utils.weight_norm(nn.Conv2d(...))``: parameters ``bias``, ``weight_g`` (out, 1, 1, 1) and
    ``weight_v`` (out, in/groups, kh, kw)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._split_weight()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self._conv_forward(input, self.folded_weight(), self.bias)
        return output


def scaled_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1 (the hidden widths of a narrowed discriminator)."""
    return max(1, round(channels * width))


def _check_width(width: float) -> None:
    if not width > 0:
        raise ValueError(f"width must be positive, got {width}")


class PeriodDiscriminator(nn.Module):
    """One MPD sub-discriminator (the original ``DiscriminatorP``): the signal folded into ``period`` columns,
    five (5, 1) convolutions run down every column, then a (3, 1) output convolution.

    Args:
        period: fold period p (2, 3, 5, 7 or 11 in the original).
        width: hidden channel scale (default 1.0: 32, 128, 512, 1024, 1024 channels).

    Shapes: ``forward(waveform (B, 1, L))`` -> logits (B, H * p) and 6 feature maps (B, C, H_l, p), the last one
    the raw output convolution (before flattening). L is reflect-padded on the right to a multiple of p.
    """

    def __init__(self, period: int, width: float = 1.0) -> None:
        super().__init__()
        if period < 1:
            raise ValueError(f"period must be at least 1, got {period}")
        _check_width(width)
        self.period = period
        channels = [1, *(scaled_channels(c, width) for c in PERIOD_CHANNELS)]
        strides = (3, 3, 3, 3, 1)
        self.convs = nn.ModuleList(
            WeightNormConv2d(channels[i], channels[i + 1], (5, 1), (strides[i], 1), padding=(2, 0))
            for i in range(len(strides))
        )
        self.conv_post = WeightNormConv2d(channels[-1], 1, (3, 1), 1, padding=(1, 0))

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        batch, channels, length = waveform.shape
        if length % self.period:
            padding = self.period - length % self.period
            if padding >= length:
                raise ValueError(
                    f"a {length}-sample signal is too short to reflect-pad to a multiple of the period {self.period}"
                )
            waveform = F.pad(waveform, (0, padding), "reflect")
        return _logits_and_feature_maps(self.convs, self.conv_post, waveform.view(batch, channels, -1, self.period))


class MultiPeriodDiscriminator(nn.Module):
    """The MPD: one :class:`PeriodDiscriminator` per period (``discriminators.0`` ... in order).

    Args:
        periods: fold periods (default 2, 3, 5, 7, 11).
        width: hidden channel scale of every sub-discriminator (default 1.0, the original's 41.1 M parameters).

    ``forward(real (B, 1, L), generated (B, 1, L))`` -> (real logits, generated logits, real feature maps,
    generated feature maps): lists over the periods (6 maps each).
    """

    def __init__(self, periods: Sequence[int] = PERIODS, width: float = 1.0) -> None:
        super().__init__()
        if not periods:
            raise ValueError("periods must name at least one period")
        self.discriminators = nn.ModuleList(PeriodDiscriminator(period, width) for period in periods)

    def forward(self, real: torch.Tensor, generated: torch.Tensor) -> tuple[Logits, Logits, FeatureMaps, FeatureMaps]:
        real_logits, generated_logits, real_maps, generated_maps = [], [], [], []
        for discriminator in self.discriminators:
            logits, maps = discriminator(real)
            real_logits.append(logits)
            real_maps.append(maps)
            logits, maps = discriminator(generated)
            generated_logits.append(logits)
            generated_maps.append(maps)
        return real_logits, generated_logits, real_maps, generated_maps


class ScaleDiscriminator(nn.Module):
    """One MSD sub-discriminator (the original ``DiscriminatorS``): seven grouped strided Conv1d, each followed
    by LeakyReLU 0.1, then a kernel-3 output convolution.

    Args:
        spectral_norm: spectral normalisation (sub-discriminator 0) instead of weight normalisation.
        width: hidden channel scale (default 1.0: 128, 128, 256, 512, 1024, 1024, 1024 channels). The grouped
            layers keep the original's groups (4, 16), so 128 * width must be a multiple of 16.

    Shapes: ``forward(waveform (B, 1, L))`` -> logits (B, L') and 8 feature maps (B, C, L_l), the last one the
    raw output convolution.
    """

    def __init__(self, spectral_norm: bool = False, width: float = 1.0) -> None:
        super().__init__()
        _check_width(width)
        layers: list[nn.Module] = []
        in_channels = 1
        for out, kernel, stride, groups, padding in SCALE_LAYERS:
            out_channels = scaled_channels(out, width)
            for name, count in (("input", in_channels), ("output", out_channels)):
                if count % groups:
                    raise ValueError(
                        f"width {width} gives {count} {name} channels for a layer with {groups} groups, not a "
                        f"multiple of it; use a width w with 128 * w a multiple of 16 (1, 0.5, 0.25, 0.125)"
                    )
            layers.append(self._conv(spectral_norm, in_channels, out_channels, kernel, stride, groups, padding))
            in_channels = out_channels
        self.convs = nn.ModuleList(layers)
        self.conv_post = self._conv(spectral_norm, in_channels, 1, 3, 1, 1, 1)

    @staticmethod
    def _conv(
        spectral_norm: bool, in_channels: int, out_channels: int, kernel: int, stride: int, groups: int, padding: int
    ) -> nn.Module:
        if spectral_norm:  # bias, weight_orig, weight_u (out,), weight_v (in/groups * kernel,): the original's keys
            conv = nn.Conv1d(in_channels, out_channels, kernel, stride, groups=groups, padding=padding)
            return nn.utils.spectral_norm(conv)
        return WeightNormConv1d(in_channels, out_channels, kernel, stride, groups=groups, padding=padding)

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return _logits_and_feature_maps(self.convs, self.conv_post, waveform)


class MultiScaleDiscriminator(nn.Module):
    """The MSD: three :class:`ScaleDiscriminator` on the signal, its 2x and its 4x average-pooled version.

    Sub-discriminator 0 is spectral-normed (stateful u, v: see the module docstring), 1 and 2 weight-normed.
    The pooling is ``AvgPool1d(4, 2, padding=2)`` counting the zero padding (``out[t] = (x[2t-2] + ... +
    x[2t+1]) / 4``); it has no parameters.

    Args:
        width: hidden channel scale of every sub-discriminator (default 1.0, the original's 29.6 M parameters).

    ``forward(real (B, 1, L), generated (B, 1, L))`` -> (real logits, generated logits, real feature maps,
    generated feature maps): lists over the three scales (8 maps each).
    """

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            [ScaleDiscriminator(spectral_norm=True, width=width)] + [ScaleDiscriminator(width=width) for _ in range(2)]
        )
        self.meanpools = nn.ModuleList([nn.AvgPool1d(4, 2, padding=2), nn.AvgPool1d(4, 2, padding=2)])

    def forward(self, real: torch.Tensor, generated: torch.Tensor) -> tuple[Logits, Logits, FeatureMaps, FeatureMaps]:
        real_logits, generated_logits, real_maps, generated_maps = [], [], [], []
        for index, discriminator in enumerate(self.discriminators):
            if index:
                real = self.meanpools[index - 1](real)
                generated = self.meanpools[index - 1](generated)
            logits, maps = discriminator(real)  # in train mode sub-discriminator 0 iterates u, v before each call
            real_logits.append(logits)
            real_maps.append(maps)
            logits, maps = discriminator(generated)
            generated_logits.append(logits)
            generated_maps.append(maps)
        return real_logits, generated_logits, real_maps, generated_maps
