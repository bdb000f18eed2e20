"""A wider generator that starts as the same function (Net2WiderNet, Chen et al. 2016).

A trained generator's capacity is fixed by its channel counts. :func:`widen_generator` builds one with ``factor``
times the channels at every stage (``upsample_initial_channel`` times ``factor``) whose output equals the
original's: every hidden channel c becomes ``factor`` copies c, c + C, c + 2C, ... (C the stage's old width), each
with c's incoming weights and bias, so the copies carry the same activation; a convolution reading them takes each
copy's share of c's weight, the shares of one weight summing to 1, so its sum is unchanged. LeakyReLU acts channel
by channel and the residual sums and the MRF mean add copies to copies, so the function holds through the network.

The shares are drawn at random per weight (between ``1 - spread`` and ``1 + spread`` of an even split, then
normalised): copies that read the same inputs but feed the next layer through different weights get different
gradients, so training pulls them apart and the new channels become capacity. Even splits would leave the copies
identical forever.

The original's weight normalisation is recomputed on the widened weights (``g = ||v||``), which keeps the function.
"""

from __future__ import annotations

import torch

from vcframe_hifigan.generator import Generator, to_module_state
from vcframe_hifigan.spec import GeneratorConfig

#: Default spread of the random shares around an even split (0.5: each share between half and 1.5 times 1/factor
#: before normalising).
SHARE_SPREAD = 0.5


def widened_config(config: GeneratorConfig, factor: int) -> GeneratorConfig:
    """``config`` with ``upsample_initial_channel`` times ``factor`` (every stage's width follows)."""
    if factor < 2:
        raise ValueError(f"factor must be 2 or more to widen, got {factor}")
    return config.model_copy(update={"upsample_initial_channel": config.upsample_initial_channel * factor})


def _repeat(tensor: torch.Tensor, dim: int, factor: int) -> torch.Tensor:
    """Copies of every channel along ``dim``: new index c + k C holds old channel c."""
    return torch.cat([tensor] * factor, dim=dim)


def _shares(tensor: torch.Tensor, dim: int, factor: int, spread: float, generator: torch.Generator) -> torch.Tensor:
    """``tensor`` (its ``dim`` already repeated ``factor`` times) times random shares that sum to 1 over the copies
    of each input channel."""
    copies = list(tensor.shape)
    copies[dim] //= factor
    draws = [
        1.0 + spread * (2.0 * torch.rand(copies, generator=generator, dtype=torch.float64) - 1.0) for _ in range(factor)
    ]
    total = torch.stack(draws).sum(dim=0)
    shares = torch.cat([draw / total for draw in draws], dim=dim)
    return (tensor.double() * shares).to(tensor.dtype)


def widen_state(
    state: dict[str, torch.Tensor], factor: int, *, seed: int = 0, spread: float = SHARE_SPREAD
) -> dict[str, torch.Tensor]:
    """A folded generator state dict (plain ``weight`` keys, module layout) widened ``factor`` times.

    Keys by role: ``conv_pre`` and ``speaker_projection`` write hidden channels (outputs repeated); ``ups.*``
    (transposed: weight (in, out, k)) and ``resblocks.*`` read and write them; ``conv_post`` reads them (inputs
    shared out). Speaker buffers are kept. Raises ValueError for a key it does not know.
    """
    if not 0.0 <= spread < 1.0:
        raise ValueError(f"spread must be in [0, 1), got {spread}")
    generator = torch.Generator().manual_seed(seed)
    widened: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        name, _, kind = key.rpartition(".")
        if key.startswith("speaker_embedding_"):
            widened[key] = tensor.clone()
        elif name in ("conv_pre", "speaker_projection") and kind in ("weight", "bias"):
            widened[key] = _repeat(tensor, 0, factor)
        elif name == "conv_post" and kind == "weight":
            widened[key] = _shares(_repeat(tensor, 1, factor), 1, factor, spread, generator)
        elif name == "conv_post" and kind == "bias":
            widened[key] = tensor.clone()
        elif key.startswith("ups.") and kind == "weight":  # ConvTranspose1d: (in, out, k)
            widened[key] = _repeat(_shares(_repeat(tensor, 0, factor), 0, factor, spread, generator), 1, factor)
        elif key.startswith("resblocks.") and kind == "weight":  # Conv1d: (out, in, k)
            widened[key] = _repeat(_shares(_repeat(tensor, 1, factor), 1, factor, spread, generator), 0, factor)
        elif (key.startswith("ups.") or key.startswith("resblocks.")) and kind == "bias":
            widened[key] = _repeat(tensor, 0, factor)
        else:
            raise ValueError(f"cannot widen {key!r}: not a key of a folded HiFi-GAN generator")
    return widened


def widen_generator(network: Generator, factor: int = 2, *, seed: int = 0, spread: float = SHARE_SPREAD) -> Generator:
    """A generator ``factor`` times wider than ``network`` computing the same function (module docstring), with
    weight normalisation where ``network`` has it. ``network`` is left as it is.

    Args:
        network: the generator to widen (any config, with or without weight norm or speaker conditioning).
        factor (default 2): channel multiplier, >= 2.
        seed (default 0): seed of the random shares.
        spread (default :data:`SHARE_SPREAD`): how far the shares stray from an even split, in [0, 1).
    """
    wide = Generator(widened_config(network.config, factor), weight_norm=False)
    folded = to_module_state(network.state_dict(), weight_norm=False)
    wide.load_state_dict(widen_state(folded, factor, seed=seed, spread=spread))
    if network.has_weight_norm:
        wide.apply_weight_norm()
    return wide
