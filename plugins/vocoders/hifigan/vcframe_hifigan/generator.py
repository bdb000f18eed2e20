"""The HiFi-GAN generator (jik876/hifi-gan ``models.py``: ``Generator``, ``ResBlock1``, ``ResBlock2``).

Same modules, key names and arithmetic as the original (SPEC section 4), so its state dicts load:

* every convolution has a bias and, for training, weight normalisation
  (``torch.nn.utils.parametrizations.weight_norm``, dim 0: per output channel for Conv1d, per *input*
  channel for ConvTranspose1d, whose weight is ``(in, out, k)``);
* the multi-receptive-field fusion sums the K resblock outputs in order and divides by K;
* every activation is LeakyReLU 0.1 except the last, before ``conv_post``, which has slope 0.01.

:meth:`Generator.remove_weight_norm` folds the normalisation into plain weights for inference (the same
function, computed once). State dicts come in three layouts, all accepted by :func:`to_module_state`:
the original's (``<m>.weight_g``, ``<m>.weight_v``), folded (``<m>.weight``), and torch's parametrization
keys (``<m>.parametrizations.weight.original0`` / ``original1``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from vcframe_hifigan.spec import GeneratorConfig

#: Slope of every LeakyReLU but the last (the original's LRELU_SLOPE).
LRELU_SLOPE = 0.1
#: Slope of the LeakyReLU before conv_post: PyTorch's default, as the original calls F.leaky_relu(x) there.
FINAL_LRELU_SLOPE = 0.01

_WN_GAIN, _WN_DIRECTION = "parametrizations.weight.original0", "parametrizations.weight.original1"


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps the length of a stride-1 convolution: ``(k d - d) / 2`` (the original's get_padding)."""
    return (kernel_size * dilation - dilation) // 2


class ResBlock1(nn.Module):
    """Residual block "1" (V1, V2): for each dilation d, ``x = x + conv2(lrelu(conv1_d(lrelu(x))))``.

    Args:
        channels: input and output channels.
        kernel_size (default 3): kernel of every convolution (odd).
        dilations (default (1, 3, 5)): dilation of each ``convs1`` convolution; ``convs2`` use dilation 1.

    Shape: (B, channels, L) -> (B, channels, L).
    """

    def __init__(self, channels: int, kernel_size: int = 3, dilations: tuple[int, ...] = (1, 3, 5)) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=same_padding(kernel_size, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=same_padding(kernel_size))
            for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2, strict=True):
            residual = conv1(F.leaky_relu(x, LRELU_SLOPE))
            residual = conv2(F.leaky_relu(residual, LRELU_SLOPE))
            x = residual + x
        return x


class ResBlock2(nn.Module):
    """Residual block "2" (V3): for each dilation d, ``x = x + conv_d(lrelu(x))``.

    Args:
        channels: input and output channels.
        kernel_size (default 3): kernel of every convolution (odd).
        dilations (default (1, 3)): dilation of each convolution.

    Shape: (B, channels, L) -> (B, channels, L).
    """

    def __init__(self, channels: int, kernel_size: int = 3, dilations: tuple[int, ...] = (1, 3)) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=same_padding(kernel_size, d))
            for d in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(F.leaky_relu(x, LRELU_SLOPE)) + x
        return x


class Generator(nn.Module):
    """HiFi-GAN generator: log-mel -> waveform in (-1, 1).

    Args:
        config: the sizes (:class:`~vcframe_hifigan.spec.GeneratorConfig`; ``PRESETS["v1"]`` etc. for the
            released V1, V2, V3).
        weight_norm (default True): wrap every convolution in weight normalisation, as the original does for
            training; False builds plain convolutions (inference, folded checkpoints).

    Shape: ``forward(mel (B, num_mels, T)) -> (B, 1, T * hop_length)``, where hop_length is the product of
    ``upsample_rates``; output samples ``[hop t, hop (t + 1))`` belong to frame t. The channels halve at every
    stage: ``upsample_initial_channel / 2**i`` after stage i.

    Speaker conditioning (not in the original): with ``config.speaker_embedding_dim`` D > 0 the generator also
    reads a speaker embedding v (B, D) or (D,), standardised as ``(v - speaker_embedding_mean) /
    speaker_embedding_scale`` (buffers the trainer sets from its voices: their mean, and the root mean square of
    their deviations from it, so that the entries a voice differs by are of order 1, as the mel's are, and the
    map learns at the rate of the layers around it), and ``speaker_projection`` (a D -> C0 linear map, zero at
    construction: the function is then the unconditioned one) adds its image to conv_pre's output at every frame.
    Without an embedding it reads the mean.
    """

    speaker_projection: nn.Linear  # with speaker_embedding_dim > 0 only
    speaker_embedding_mean: torch.Tensor  # the same (buffers)
    speaker_embedding_scale: torch.Tensor

    def __init__(self, config: GeneratorConfig, *, weight_norm: bool = True) -> None:
        super().__init__()
        self.config = config
        self.num_kernels = len(config.resblock_kernel_sizes)
        self.num_upsamples = len(config.upsample_rates)
        self.conv_pre = nn.Conv1d(config.num_mels, config.upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        block = ResBlock1 if config.resblock == "1" else ResBlock2
        channels = config.upsample_initial_channel
        for rate, kernel in zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True):
            self.ups.append(nn.ConvTranspose1d(channels, channels // 2, kernel, rate, padding=(kernel - rate) // 2))
            channels //= 2
            for kernel_size, dilations in zip(
                config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True
            ):
                self.resblocks.append(block(channels, kernel_size, dilations))
        self.conv_post = nn.Conv1d(channels, 1, 7, 1, padding=3)
        if config.speaker_embedding_dim:
            self.speaker_projection = nn.Linear(config.speaker_embedding_dim, config.upsample_initial_channel)
            nn.init.zeros_(self.speaker_projection.weight)
            nn.init.zeros_(self.speaker_projection.bias)
            self.register_buffer("speaker_embedding_mean", torch.zeros(config.speaker_embedding_dim))
            self.register_buffer("speaker_embedding_scale", torch.ones(()))
        if weight_norm:
            self.apply_weight_norm()

    @property
    def hop_length(self) -> int:
        """Output samples per input frame."""
        return self.config.hop_length

    def convolutions(self) -> list[nn.Module]:
        """Every convolution, in the original's state-dict order (conv_pre, ups, resblocks, conv_post)."""
        return [m for m in self.modules() if isinstance(m, nn.Conv1d | nn.ConvTranspose1d)]

    @property
    def has_weight_norm(self) -> bool:
        return parametrize.is_parametrized(self.conv_pre, "weight")

    def apply_weight_norm(self) -> None:
        """Wrap every convolution in weight normalisation (g initialised to ||v||: the function is unchanged)."""
        for conv in self.convolutions():
            if not parametrize.is_parametrized(conv, "weight"):
                weight_norm(conv, dim=0)

    def remove_weight_norm(self) -> None:
        """Fold the weight normalisation into plain weights, ``v (g / ||v||)``, computed once (inference)."""
        for conv in self.convolutions():
            if parametrize.is_parametrized(conv, "weight"):
                parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)

    def speaker_offset(self, speaker_embedding: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """(B, C0, 1): what speaker conditioning adds to conv_pre's output for ``speaker_embedding`` ((B, D), (1, D)
        or (D,); None: ``speaker_embedding_mean``), or None for a generator without it, which refuses an embedding
        (ValueError)."""
        if not self.config.speaker_embedding_dim:
            return speaker_offset(None, speaker_embedding, batch)
        conditioning = (self.speaker_projection, self.speaker_embedding_mean, self.speaker_embedding_scale)
        return speaker_offset(conditioning, speaker_embedding, batch)

    def forward(
        self,
        mel: torch.Tensor,
        speaker_embedding: torch.Tensor | None = None,
        *,
        record: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """(B, num_mels, T) -> (B, 1, T * hop_length); ``speaker_embedding`` as :meth:`speaker_offset` takes it.

        ``record``, when given, receives the intermediate outputs under the fixture names (SPEC fixtures
        section 5): ``conv_pre``, ``ups.i`` (after the activation and the transposed convolution),
        ``resblock.j`` (every resblock), ``mrf.i`` (stage i's fused output) and ``conv_post`` (before tanh).
        """
        x = self.conv_pre(mel)
        offset = self.speaker_offset(speaker_embedding, mel.shape[0])
        if offset is not None:
            x = x + offset
        if record is not None:
            record["conv_pre"] = x
        for stage, upsample in enumerate(self.ups):
            x = upsample(F.leaky_relu(x, LRELU_SLOPE))
            first = stage * self.num_kernels
            fused: torch.Tensor | None = None
            for index in range(first, first + self.num_kernels):
                output = self.resblocks[index](x)
                if record is not None:
                    record[f"resblock.{index}"] = output
                fused = output if fused is None else fused + output
            if record is not None:
                record[f"ups.{stage}"] = x
            assert fused is not None
            x = fused / self.num_kernels
            if record is not None:
                record[f"mrf.{stage}"] = x
        x = self.conv_post(F.leaky_relu(x, FINAL_LRELU_SLOPE))
        if record is not None:
            record["conv_post"] = x
        return torch.tanh(x)

    def receptive_field_frames(self) -> int:
        """Mel frames on either side of a frame that can change its output samples (an upper bound).

        Streaming with this many context frames gives the same samples as one call on the whole mel.
        """
        return receptive_field_frames(self.config)


def speaker_offset(
    conditioning: tuple[nn.Linear, torch.Tensor, torch.Tensor] | None,
    speaker_embedding: torch.Tensor | None,
    batch: int,
) -> torch.Tensor | None:
    """(B, C0, 1): ``projection((v - mean) / scale)`` for ``conditioning`` = (projection, mean, scale) and the
    embedding v ((B, D), (1, D) or (D,); None: the mean), in the projection's dtype and device (see
    :class:`Generator`, speaker conditioning). None without conditioning, which refuses an embedding; a shape that
    fits neither the batch nor D is refused naming both (ValueError)."""
    if conditioning is None:
        if speaker_embedding is not None:
            raise ValueError("this generator reads no speaker embedding (speaker_embedding_dim 0), got one")
        return None
    projection, mean, scale = conditioning
    dim = projection.in_features
    vectors = mean if speaker_embedding is None else speaker_embedding
    vectors = vectors.reshape(1, -1) if vectors.dim() == 1 else vectors
    if vectors.dim() != 2 or vectors.shape[1] != dim or vectors.shape[0] not in (1, batch):
        raise ValueError(
            f"speaker embedding of shape {tuple(vectors.shape)} for a batch of {batch}: expected ({batch}, {dim}), "
            f"(1, {dim}) or ({dim},)"
        )
    weight = projection.weight
    standardised = (vectors.to(weight.device, weight.dtype) - mean.to(weight.dtype)) / scale.to(weight.dtype)
    offset: torch.Tensor = projection(standardised)
    return offset.expand(batch, -1).unsqueeze(-1)


def receptive_field_frames(config: GeneratorConfig) -> int:
    """Upper bound on the generator's one-sided receptive field, in mel frames (see :class:`Generator`)."""
    if config.resblock == "1":
        block_radius = max(
            sum(d * (k - 1) // 2 + (k - 1) // 2 for d in dilations)
            for k, dilations in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True)
        )
    else:
        block_radius = max(
            sum(d * (k - 1) // 2 for d in dilations)
            for k, dilations in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True)
        )
    radius = 3  # conv_post, in output samples
    for rate, kernel in zip(reversed(config.upsample_rates), reversed(config.upsample_kernel_sizes), strict=True):
        radius += block_radius
        padding = (kernel - rate) // 2
        radius = -(-(radius + max(padding, kernel - 1 - padding)) // rate)  # ceil: samples before the stage
    return radius + 3  # conv_pre


def to_module_state(state: Mapping[str, torch.Tensor], *, weight_norm: bool) -> dict[str, torch.Tensor]:
    """A generator state dict in any of the three layouts, converted for a :class:`Generator` built with
    (``weight_norm=True``: parametrization keys) or without (``False``: folded ``weight`` keys) weight norm.

    Folding computes ``torch._weight_norm(v, g, 0)``, exactly what ``remove_weight_norm`` computes, so a
    folded checkpoint gives the same output as the original's inference path. Unfolding splits only the
    convolutions' (3-D) ``weight`` keys: a speaker-conditioned generator's ``speaker_projection`` (a Linear,
    never weight-normalised) keeps its plain ``weight``.
    """
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.endswith(".weight_g") or key.endswith("." + _WN_GAIN):
            continue
        if key.endswith(".weight_v") or key.endswith("." + _WN_DIRECTION):
            module = key.removesuffix(".weight_v").removesuffix("." + _WN_DIRECTION)
            gain = state.get(f"{module}.weight_g", state.get(f"{module}.{_WN_GAIN}"))
            if gain is None:
                converted[key] = tensor  # unpaired: left for the key check to report
                continue
            if weight_norm:
                converted[f"{module}.{_WN_GAIN}"], converted[f"{module}.{_WN_DIRECTION}"] = gain, tensor
            else:
                converted[f"{module}.weight"] = torch._weight_norm(tensor, gain, 0)
            continue
        if key.endswith(".weight") and weight_norm and tensor.dim() == 3:
            # convolutions only (every one is weight-normalised); the speaker projection is a plain Linear
            module = key.removesuffix(".weight")
            converted[f"{module}.{_WN_GAIN}"] = torch.linalg.vector_norm(
                tensor, dim=tuple(range(1, tensor.dim())), keepdim=True
            )
            converted[f"{module}.{_WN_DIRECTION}"] = tensor
            continue
        converted[key] = tensor
    return converted


def to_original_layout(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with torch's parametrization keys renamed to the original's ``weight_g`` / ``weight_v``
    (what the original code's ``load_state_dict`` accepts); folded ``weight`` keys are kept as they are."""
    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.endswith("." + _WN_GAIN):
            renamed[key.removesuffix(_WN_GAIN) + "weight_g"] = tensor
        elif key.endswith("." + _WN_DIRECTION):
            renamed[key.removesuffix(_WN_DIRECTION) + "weight_v"] = tensor
        else:
            renamed[key] = tensor
    return renamed
