"""Teacher-forced losses over valid frames only, on fixed clips of a preprocessed corpus.

The trainer's logged losses are means over every frame of a padded batch (as RTVC's), so they move with the share
of padding, that is with the batch size and the lengths in the batch. These losses count only the valid frames
(``length_mask``) of the same clips every time, so they compare across checkpoints, batch sizes and runs. The
trainer computes them on held-out corpora (``fit --valid-data``), and ``recipes/demo/eval_synthesizer.py`` on
any checkpoint.

* clips: ``random.Random(seed)`` picks ``clips`` positions among the corpus' clips sorted by frame count
  (stable sort), cut in sorted order into batches of ``batch_size``;
* the network in train mode, as it trains: pre-net dropout, zoneout and batch norm with batch statistics,
  ``torch.manual_seed(0)`` before the first batch, no gradients; the batches padded as the trainer pads them,
  with the network's current ``r``;
* decoder and post-net MSE and L1 against the target mels over valid frames and all mel bands, per batch, then
  the mean over the batches.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from vcframe.errors import ConfigError, InputError

LOSS_NAMES = ("decoder_mse", "decoder_l1", "postnet_mse", "postnet_l1")


def pick_batches(frames: list[int], clips: int, batch_size: int, seed: int) -> list[list[int]]:
    """Indices (into ``frames``, the corpus' frame counts) of the measured clips, in batches (see above)."""
    if clips < 1 or batch_size < 1:
        raise ConfigError(f"clips and batch size must be positive (got {clips} and {batch_size})")
    if clips > len(frames):
        raise InputError(
            f"asked for {clips} clips, more than the corpus' {len(frames)} clips", hint="ask for fewer clips"
        )
    order = sorted(range(len(frames)), key=lambda index: frames[index])
    picks = sorted(random.Random(seed).sample(range(len(order)), clips))
    return [
        [order[position] for position in picks[start : start + batch_size]] for start in range(0, clips, batch_size)
    ]


def valid_frame_losses(
    network: Any,
    dataset: Any,
    batches: list[list[int]],
    *,
    dropout: float,
    silence_value: float,
    clean: bool,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Mean over ``batches`` of each batch's decoder and post-net MSE and L1 over valid frames.

    Args:
        network: the Tacotron network (``vcframe_tacotron.tacotron.Tacotron``); left in train mode.
        dataset: the preprocessed corpus (``vcframe_tacotron.train.Dataset``) the batch indices point into.
        batches: from ``pick_batches``.
        dropout: pre-net dropout, as in training (the config's ``dropout``).
        silence_value: the mel spec's silence level, for padding.
        clean: True for clean masking (the network sees each item's lengths), False for RTVC's.
        device: where the network is.

    The global torch random state is reseeded (``torch.manual_seed(0)``): callers that must not disturb it (the
    trainer) wrap the call in ``torch.random.fork_rng``. Batch norm in train mode updates its running
    statistics; the trainer restores them (``preserved_buffers``).
    """
    from vcframe_tacotron.tacotron import length_mask

    network.train()
    torch.manual_seed(0)
    sums = dict.fromkeys(LOSS_NAMES, 0.0)
    with torch.no_grad():
        for batch in batches:
            collated = {k: v.to(device) for k, v in dataset.collate(batch, network.r, silence_value).items()}
            target = collated["mels"]
            decoder, postnet, _, _ = network(
                collated["chars"],
                target,
                collated["embeds"],
                p=dropout,
                text_lengths=collated["text_lengths"] if clean else None,
                mel_lengths=collated["mel_lengths"] if clean else None,
            )
            valid = length_mask(collated["mel_lengths"], target.size(2))[:, None, :].float()
            count = valid.sum() * target.size(1)
            for name, output in (("decoder", decoder), ("postnet", postnet)):
                error = output - target
                sums[f"{name}_mse"] += float((error**2 * valid).sum() / count)
                sums[f"{name}_l1"] += float((error.abs() * valid).sum() / count)
    return {name: total / len(batches) for name, total in sums.items()}


@contextmanager
def preserved_buffers(module: torch.nn.Module) -> Iterator[None]:
    """The module's buffers (batch norm running statistics) put back as they were on entry, on exit."""
    saved = {name: buffer.detach().clone() for name, buffer in module.named_buffers()}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, buffer in module.named_buffers():
                buffer.copy_(saved[name])
